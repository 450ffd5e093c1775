"""Loss functions, each a small pure function with its formula and source.

Conventions: ``logits`` are raw network outputs (pre-sigmoid), ``scores`` are raw critic outputs.
Every function returns a scalar tensor averaged over the batch unless it says otherwise.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

# ----------------------------------------------------------------------------------------------
# VAE
# ----------------------------------------------------------------------------------------------


# KL( N(mu, sigma^2) || N(0, 1) ) per latent dimension, closed form:
#   0.5 * (mu^2 + sigma^2 - 1 - log sigma^2)
# Kingma & Welling, "Auto-Encoding Variational Bayes" (2014), Appendix B.
def kl_normal_per_dim(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL of each latent dimension, shape (B, D). Sum over D for the usual KL term."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


# Free bits (Kingma et al., "Improved Variational Inference with Inverse Autoregressive Flow",
# 2016, eq. 15): each dimension's batch-mean KL counts at least lambda nats, so the optimiser gains
# nothing by pushing a dimension below lambda, which keeps units from collapsing to the prior.
def free_bits_kl(kl_per_dim: torch.Tensor, free_bits: float) -> torch.Tensor:
    """(B, D) KL per dimension -> scalar KL with per-dimension floor ``free_bits`` (nats)."""
    kl_dim = kl_per_dim.mean(0)  # (D,)
    if free_bits > 0:
        kl_dim = kl_dim.clamp(min=free_bits)
    return kl_dim.sum()


# Bernoulli likelihood: -log p(x|z) = sum_pixels BCE(logits, x)   (x in [0, 1])
def bernoulli_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood in nats per example (summed over pixels, mean over batch)."""
    return F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / x.shape[0]


# Gaussian likelihood with fixed sigma, constants dropped:
#   -log p(x|z) = sum_pixels (x - mean)^2 / (2 sigma^2)
def gaussian_nll(mean: torch.Tensor, x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Negative log-likelihood up to a constant, per example (summed over pixels, mean over batch)."""
    return (x - mean).pow(2).sum() / (2.0 * sigma**2 * x.shape[0])


# ----------------------------------------------------------------------------------------------
# GAN: discriminator outputs are logits of P(real)
# Goodfellow et al., "Generative Adversarial Nets" (2014), eq. 1 and section 3.
# ----------------------------------------------------------------------------------------------


# D maximises log D(x) + log(1 - D(G(z)))  <=>  minimises BCE(real -> 1) + BCE(fake -> 0).
# One-sided label smoothing (Salimans et al., "Improved Techniques for Training GANs", 2016)
# replaces the real target 1 with e.g. 0.9.
def d_loss_bce(real_logits: torch.Tensor, fake_logits: torch.Tensor, real_target: float = 1.0) -> torch.Tensor:
    real = F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, real_target))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real + fake


# Minimax (saturating) generator: minimise log(1 - D(G(z))) = -softplus(logit).
# Its gradient vanishes when D confidently rejects fakes, i.e. early in training.
def g_loss_minimax(fake_logits: torch.Tensor) -> torch.Tensor:
    return -F.softplus(fake_logits).mean()


# Non-saturating generator: minimise -log D(G(z)) = softplus(-logit).
# Same fixed point, strong gradients when D(G(z)) is near 0 (Goodfellow et al. 2014, section 3).
def g_loss_nonsaturating(fake_logits: torch.Tensor) -> torch.Tensor:
    return F.softplus(-fake_logits).mean()


# ----------------------------------------------------------------------------------------------
# Wasserstein GAN: the critic outputs an unbounded score, not a probability.
# Arjovsky et al., "Wasserstein GAN" (2017), Algorithm 1.
# ----------------------------------------------------------------------------------------------


# Critic maximises E[f(x)] - E[f(G(z))], i.e. minimises E[f(G(z))] - E[f(x)].
def d_loss_wasserstein(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    return fake_scores.mean() - real_scores.mean()


# Generator minimises -E[f(G(z))]. Also the generator loss of the hinge GAN.
def g_loss_wasserstein(fake_scores: torch.Tensor) -> torch.Tensor:
    return -fake_scores.mean()


# Gradient penalty, Gulrajani et al., "Improved Training of Wasserstein GANs" (2017), Algorithm 1:
#   x_hat = eps * x + (1 - eps) * G(z),  eps ~ U[0, 1] per sample
#   GP = E[ (||grad_x_hat f(x_hat)||_2 - 1)^2 ]
def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor, *critic_args,
                     eps: torch.Tensor | None = None) -> torch.Tensor:
    """Penalty (not yet multiplied by lambda). ``critic_args`` go to the critic (e.g. labels)."""
    if eps is None:
        eps = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device, dtype=real.dtype)
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    scores = critic(x_hat, *critic_args)
    (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
    return (grad.flatten(1).norm(2, dim=1) - 1).pow(2).mean()


# Hinge loss, Lim & Ye, "Geometric GAN" (2017); Miyato et al., "Spectral Normalization" (2018):
#   L_D = E[relu(1 - f(x))] + E[relu(1 + f(G(z)))]
def d_loss_hinge(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    return F.relu(1 - real_scores).mean() + F.relu(1 + fake_scores).mean()
