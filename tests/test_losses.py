"""genlib.models.losses, the GAN objectives built on them and the VAE's KL-weight schedules, checked
against references: torch.distributions, hand-computed values, and critics whose gradients are known
in closed form."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Bernoulli, Normal, kl_divergence

from genlib.models import GANConfig, field_specs
from genlib.models import losses as L
from genlib.models.gan import LOSSES
from genlib.models.gan_objectives import OBJECTIVES, ObjectiveSettings, objective
from genlib.models.vae import VAEConfig, kl_weight


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


# ---------------------------------------------------------------------------------------------
# VAE terms


def test_kl_per_dim_matches_torch_distributions():
    mu = torch.randn(6, 5, dtype=torch.float64) * 2
    logvar = torch.randn(6, 5, dtype=torch.float64)
    ref = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0))   # (6, 5)
    got = L.kl_normal_per_dim(mu, logvar)
    assert got.shape == (6, 5)
    torch.testing.assert_close(got, ref)
    assert L.kl_normal_per_dim(torch.zeros(2, 3), torch.zeros(2, 3)).abs().max() == 0   # q = prior


def test_free_bits_floor():
    # batch means per dimension: 0.1, 2.0, 0.6
    kl = torch.tensor([[0.0, 1.0, 0.5], [0.2, 3.0, 0.7]], requires_grad=True)
    value = lambda fb: float(L.free_bits_kl(kl, fb).detach())
    assert value(0.0) == pytest.approx(0.1 + 2.0 + 0.6)
    assert value(0.5) == pytest.approx(0.5 + 2.0 + 0.6)   # only dim 0 is floored
    assert value(3.0) == pytest.approx(9.0)               # every dim floored
    L.free_bits_kl(kl, 0.5).backward()
    # A dimension under the floor gets no gradient (no pressure towards the prior); others get 1/B.
    torch.testing.assert_close(kl.grad, torch.tensor([[0.0, 0.5, 0.5], [0.0, 0.5, 0.5]]))


def test_bernoulli_nll_matches_torch_distributions_and_hand_formula():
    logits = torch.randn(4, 1, 3, 3, dtype=torch.float64) * 3
    x_bin = torch.randint(0, 2, (4, 1, 3, 3)).double()
    ref = -Bernoulli(logits=logits).log_prob(x_bin).sum() / 4
    torch.testing.assert_close(L.bernoulli_nll(logits, x_bin), ref)
    # Grey levels in [0, 1]: the cross-entropy -x log p - (1 - x) log(1 - p), summed, mean over batch.
    x = torch.rand(4, 1, 3, 3, dtype=torch.float64)
    p = torch.sigmoid(logits)
    hand = -(x * p.log() + (1 - x) * (1 - p).log()).sum() / 4
    torch.testing.assert_close(L.bernoulli_nll(logits, x), hand)


def test_gaussian_nll_matches_normal_log_prob_up_to_constant():
    mean = torch.rand(5, 2, dtype=torch.float64)
    x = torch.rand(5, 2, dtype=torch.float64)
    for sigma in (0.1, 1.0, 2.5):
        ref = -Normal(mean, sigma).log_prob(x).sum() / 5
        const = 2 * (math.log(sigma) + 0.5 * math.log(2 * math.pi))   # per example: D terms
        torch.testing.assert_close(L.gaussian_nll(mean, x, sigma) + const, ref)


# ---------------------------------------------------------------------------------------------
# GAN losses on known values


def test_bce_losses_at_logit_zero():
    zero = torch.zeros(8)
    assert float(L.d_loss_bce(zero, zero)) == pytest.approx(2 * math.log(2))   # -log 1/2 twice
    assert float(L.g_loss_nonsaturating(zero)) == pytest.approx(math.log(2))   # -log D = log 2
    assert float(L.g_loss_minimax(zero)) == pytest.approx(-math.log(2))        # log(1 - D) = -log 2


def test_d_loss_bce_hand_values_and_label_smoothing():
    real = torch.tensor([2.0, -1.0])
    fake = torch.tensor([0.5, -3.0])
    sig = torch.sigmoid
    for t in (1.0, 0.9):
        hand_real = -(t * sig(real).log() + (1 - t) * (1 - sig(real)).log()).mean()
        hand_fake = -(1 - sig(fake)).log().mean()
        assert float(L.d_loss_bce(real, fake, real_target=t)) == pytest.approx(float(hand_real + hand_fake), rel=1e-6)


def test_generator_losses_hand_values():
    logits = torch.tensor([-2.0, 0.0, 3.0])
    d = torch.sigmoid(logits)
    assert float(L.g_loss_nonsaturating(logits)) == pytest.approx(float(-d.log().mean()), rel=1e-6)
    assert float(L.g_loss_minimax(logits)) == pytest.approx(float((1 - d).log().mean()), rel=1e-6)


def test_nonsaturating_gradient_survives_where_minimax_vanishes():
    """Goodfellow et al. 2014, section 3: when D confidently rejects fakes (D(G(z)) ~ 0), log(1 - D)
    saturates; -log D does not. The gradients with respect to the logit are -D and -(1 - D)."""
    logit = torch.tensor([-10.0], requires_grad=True)   # D(G(z)) = 4.5e-5
    (g_mm,) = torch.autograd.grad(L.g_loss_minimax(logit), logit)
    (g_ns,) = torch.autograd.grad(L.g_loss_nonsaturating(logit), logit)
    d = torch.sigmoid(logit.detach())
    torch.testing.assert_close(g_mm, -d)
    torch.testing.assert_close(g_ns, -(1 - d))
    assert g_mm.abs() < 1e-4 and g_ns.abs() > 0.99
    # Both push the logit up (minimising lowers the loss by raising D(G(z))).
    assert g_mm < 0 and g_ns < 0


def test_wasserstein_losses():
    real = torch.tensor([1.0, 3.0])      # mean 2
    fake = torch.tensor([-1.0, 0.0, 4.0])  # mean 1
    assert float(L.d_loss_wasserstein(real, fake)) == pytest.approx(1.0 - 2.0)
    assert float(L.g_loss_wasserstein(fake)) == pytest.approx(-1.0)


def test_hinge_loss():
    real = torch.tensor([2.0, 0.5])      # relu(1 - f): 0, 0.5 -> mean 0.25
    fake = torch.tensor([-2.0, 0.5])     # relu(1 + f): 0, 1.5 -> mean 0.75
    assert float(L.d_loss_hinge(real, fake)) == pytest.approx(1.0)
    assert float(L.d_loss_hinge(torch.full((3,), 5.0), torch.full((3,), -5.0))) == 0.0   # margins met


# ---------------------------------------------------------------------------------------------
# Gradient penalty against critics with known gradients


def test_gradient_penalty_linear_critic_is_exact():
    """f(x) = w.x has gradient w everywhere, so GP = (||w|| - 1)^2 whatever eps is."""
    w = torch.tensor([[[2.0, 0.0], [1.0, 2.0]]], requires_grad=True)   # (1, 2, 2), ||w|| = 3
    critic = lambda x: (x * w).flatten(1).sum(1)                      # (B,)
    real, fake = torch.rand(5, 1, 2, 2), torch.rand(5, 1, 2, 2)
    gp = L.gradient_penalty(critic, real, fake)
    assert float(gp.detach()) == pytest.approx(4.0)
    # create_graph: the penalty is differentiable in the critic's weights, d/dw = 2 (||w|| - 1) w / ||w||
    (g,) = torch.autograd.grad(gp, w)
    torch.testing.assert_close(g, 2 * (3 - 1) * w.detach() / 3)


def test_gradient_penalty_quadratic_critic_by_hand():
    """f(x) = 0.5 ||x||^2 has gradient x, so with x_hat = eps real + (1 - eps) fake,
    GP = mean_i (||x_hat_i|| - 1)^2."""
    critic = lambda x: 0.5 * x.pow(2).flatten(1).sum(1)
    real = torch.tensor([[1.0, 2.0], [0.0, 0.0], [3.0, 4.0]])
    fake = torch.tensor([[0.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    eps = torch.tensor([[0.5], [0.25], [1.0]])
    # x_hat: (0.5, 1.0) norm sqrt(1.25); (0, 0.75) norm 0.75; (3, 4) norm 5
    hand = ((math.sqrt(1.25) - 1) ** 2 + (0.75 - 1) ** 2 + (5 - 1) ** 2) / 3
    assert float(L.gradient_penalty(critic, real, fake, eps=eps).detach()) == pytest.approx(hand, rel=1e-6)


def test_gradient_penalty_interpolates_per_sample_and_passes_critic_args():
    seen = {}

    def critic(x, labels):
        seen["x_hat"], seen["labels"] = x.detach().clone(), labels
        return x.flatten(1).sum(1)

    real, fake = torch.rand(6, 1, 3, 3), torch.rand(6, 1, 3, 3) + 2   # fake > real everywhere
    labels = torch.arange(6)
    L.gradient_penalty(critic, real, fake, labels)
    assert seen["labels"] is labels
    t = (seen["x_hat"] - fake) / (real - fake)           # the eps of each sample, for every pixel
    assert ((t >= 0) & (t <= 1)).all()
    torch.testing.assert_close(t, t[:, :1, :1, :1].expand_as(t))   # one eps per sample (Gulrajani Alg. 1)
    assert t.flatten(1)[:, 0].unique().numel() > 1                  # not one eps for the batch


# ---------------------------------------------------------------------------------------------
# KL weight schedules (genlib.models.vae.kl_weight)


@pytest.mark.parametrize("step,expected", [(0, 2.0), (1, 2.0), (10_000, 2.0)])
def test_kl_weight_none(step, expected):
    assert kl_weight(VAEConfig(beta=2.0), step) == expected


@pytest.mark.parametrize("step,expected", [(0, 0.0), (25, 0.5), (50, 1.0), (100, 2.0), (150, 2.0), (10_000, 2.0)])
def test_kl_weight_linear(step, expected):
    cfg = VAEConfig(beta=2.0, kl_schedule="linear", anneal_steps=100)
    assert kl_weight(cfg, step) == pytest.approx(expected)


# cycle of 100: 0 -> beta over the first 50 steps, then beta until the cycle restarts (Fu et al. 2019)
@pytest.mark.parametrize("step,expected", [(0, 0.0), (25, 1.5), (50, 3.0), (99, 3.0), (100, 0.0), (125, 1.5),
                                           (160, 3.0), (200, 0.0)])
def test_kl_weight_cyclical(step, expected):
    cfg = VAEConfig(beta=3.0, kl_schedule="cyclical", anneal_steps=100)
    assert kl_weight(cfg, step) == pytest.approx(expected)


def test_kl_weight_beta_zero_is_zero():
    for schedule in ("none", "linear", "cyclical"):
        cfg = VAEConfig(beta=0.0, kl_schedule=schedule, anneal_steps=10)
        assert all(kl_weight(cfg, s) == 0 for s in range(30))


# ---------------------------------------------------------------------------------------------
# GAN objectives (genlib.models.gan_objectives): each object is its loss functions, nothing else


def test_objectives_are_the_config_choices():
    assert tuple(OBJECTIVES) == LOSSES == next(s.choices for s in field_specs(GANConfig) if s.name == "loss")
    assert all(objective(name).name == name for name in OBJECTIVES)
    with pytest.raises(ValueError, match="unknown GAN loss 'least-squares'"):
        objective("least-squares")


@pytest.mark.parametrize("name, d_loss, g_loss", [
    ("nonsaturating", lambda r, f: L.d_loss_bce(r, f, real_target=0.9), L.g_loss_nonsaturating),
    ("minimax", lambda r, f: L.d_loss_bce(r, f, real_target=0.9), L.g_loss_minimax),
    ("wgan", L.d_loss_wasserstein, L.g_loss_wasserstein),
    ("wgan-gp", L.d_loss_wasserstein, L.g_loss_wasserstein),
    ("hinge", L.d_loss_hinge, L.g_loss_wasserstein),
])
def test_objective_losses_are_the_formulas(name, d_loss, g_loss):
    obj, config = objective(name), GANConfig(loss=name, label_smoothing=0.1)
    real, fake = torch.randn(8), torch.randn(8)
    assert torch.equal(obj.d_loss(real, fake, config), d_loss(real, fake))
    assert torch.equal(obj.g_loss(fake), g_loss(fake))
    assert obj.probabilistic == (name in ("nonsaturating", "minimax"))
    assert obj.wasserstein == (name in ("wgan", "wgan-gp"))      # -d_loss estimates W only for these
    readable = set(ObjectiveSettings.__annotations__)        # what an objective may read of a config
    assert set(obj.settings) <= readable <= {f.name for f in field_specs(GANConfig)}
    assert obj.label and obj.chart.title and obj.chart.curves


def test_only_wgan_gp_has_a_penalty_and_only_wgan_clips():
    critic = torch.nn.Linear(4, 1)
    real, fake = torch.randn(6, 4), torch.randn(6, 4)
    f = lambda x, labels: critic(x).squeeze(1)                            # noqa: E731
    for name, obj in OBJECTIVES.items():
        torch.manual_seed(1)
        gp = obj.penalty(f, real, fake, None)
        if name == "wgan-gp":
            torch.manual_seed(1)
            torch.testing.assert_close(gp, L.gradient_penalty(f, real, fake, None))
        else:
            assert gp is None, name
        with torch.no_grad():
            critic.weight.fill_(0.5)
        obj.after_d_step(critic, GANConfig(clip=0.01))
        assert float(critic.weight.detach().max()) == pytest.approx(0.01 if name == "wgan" else 0.5), name
