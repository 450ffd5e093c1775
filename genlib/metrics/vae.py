"""Test-set terms of a VAE: ELBO, reconstruction, KL per latent dimension, active units."""
from __future__ import annotations

import math
from typing import Any

import torch

from ..models import ENCODER, GenerativeModel, losses
from ..data import Dataset
from ..sampling import eval_mode, seeded_generator
from .scores import kl_active
from .sources import is_conditional

VAE_KEYS = ("neg_elbo", "recon", "kl", "kl_per_dim", "active_units", "latent_dim", "recon_mse", "vae_test_images")


def has_posterior(model: Any) -> bool:
    """True for models with an encoder q(z|x) and a decoder (VAEs)."""
    return isinstance(model, GenerativeModel) and model.supports(ENCODER)


@torch.no_grad()
def vae_metrics(model, data: Dataset, batch_size: int = 500, seed: int = 0) -> dict[str, Any]:
    """Test-set terms of a VAE, with one posterior sample per image (seeded), in eval mode:

    neg_elbo = recon + kl (nats per image; Gaussian likelihoods drop the constant, as in training),
    recon = -log p(x|z), kl = KL(q(z|x) || p(z)), kl_per_dim (mean over the set, sums to kl),
    active_units (dimensions with KL > 0.1 nats, scores.kl_active), recon_mse = mean squared error
    per value of the decoded mean.
    """
    gen = seeded_generator(seed)   # eps drawn on the CPU, then moved: the same on any device
    cond = is_conditional(model)
    mus, kls, recon_sum, se_sum = [], [], 0.0, 0.0
    with eval_mode(model):
        for i in range(0, len(data), batch_size):
            x, y = data.get(torch.arange(i, min(i + batch_size, len(data))))
            x, y = x.to(model.device), y.to(model.device)
            labels = y if cond else None
            mu, logvar = model.posterior(x, labels)                            # (B, D) each
            eps = torch.randn(mu.shape, generator=gen).to(mu.device)
            out = model.decode(mu + eps * (0.5 * logvar).exp(), labels)
            recon_sum += float(model.reconstruction_nll(out, x)) * len(x)     # the batch mean times B
            se_sum += float((model.to_data_range(model.decode(mu, labels)) - x).pow(2).sum())
            mus.append(mu.cpu())
            kls.append(losses.kl_normal_per_dim(mu, logvar).sum(0).cpu())     # (D,) summed over the batch
    n = len(data)
    kl_dim = torch.stack(kls).sum(0) / n                                      # (D,)
    recon = recon_sum / n
    return {"neg_elbo": recon + float(kl_dim.sum()), "recon": recon, "kl": float(kl_dim.sum()),
            "kl_per_dim": [round(float(v), 5) for v in kl_dim], "active_units": int(kl_active(kl_dim).sum()),
            "latent_dim": int(kl_dim.numel()), "recon_mse": se_sum / (n * math.prod(data.shape)),
            "vae_test_images": n}
