"""The GAN objectives, one small object each: what D and G minimise, an optional penalty, what
happens after D's step, whether D outputs a probability, and how its curves are named.

The GAN, the training form and the charts ask ``objective(config.loss)`` instead of comparing loss
names. The formulas (with their sources) are in ``genlib.models.losses``.

    name            D minimises                            G minimises        extra
    nonsaturating   BCE(D(x) -> 1 - s) + BCE(D(G(z)) -> 0)    -log D(G(z))
    minimax         the same                                 log(1 - D(G(z)))
    wgan            E[f(G(z))] - E[f(x)]                     -E[f(G(z))]         clip D's weights
    wgan-gp         the same + lambda * GP                   -E[f(G(z))]         gradient penalty
    hinge           E[relu(1 - f(x))] + E[relu(1 + f(G(z)))]  -E[f(G(z))]
"""
from __future__ import annotations

import dataclasses
from typing import Protocol

import torch
from torch import nn

from . import losses


class ObjectiveSettings(Protocol):
    """The GANConfig fields an objective may read (each objective names its own in ``settings``).
    A protocol rather than GANConfig itself, so this module does not import the GAN that uses it."""

    label_smoothing: float
    clip: float
    gp_weight: float


@dataclasses.dataclass(frozen=True)
class Curve:
    key: str      # a key of the dict training_step returns
    label: str    # its legend entry


@dataclasses.dataclass(frozen=True)
class LossChart:
    """How to draw a run's losses: a left panel of losses and a side panel (D's outputs or the penalty)."""

    title: str
    units: str
    curves: tuple[Curve, ...]
    side_title: str
    side_units: str
    side_curves: tuple[Curve, ...]
    side_range: tuple[float, float] | None = None   # fixed y range (probabilities), else from zero / free
    # gradient norms (L2, over each network's parameters): their own axis, never the losses'
    grad_curves: tuple[Curve, ...] = (Curve("g_grad_norm", "‖∇ G's loss‖ (generator)"),
                                      Curve("d_grad_norm", "‖∇ D's loss‖ (discriminator)"))
    grad_title: str = "Gradient norms"
    grad_units: str = "L2 norm of the gradient"


_PROBABILITY_CHART = dict(
    title="Losses (binary cross-entropy, nats)", units="nats",
    side_title="D's mean output: P(real) it assigns", side_units="probability", side_range=(0.0, 1.0),
    side_curves=(Curve("d_real", "D(x) on real"), Curve("d_fake", "D(G(z)) on generated")))
_CRITIC_CURVES = (Curve("wasserstein", "Wasserstein estimate E[f(x)] − E[f(G(z))]"), Curve("d_loss", "critic loss"),
                  Curve("g_loss", "generator loss −E[f(G(z))]"))
_CRITIC_SCORES = dict(side_title="Critic score, real vs generated", side_units="critic score",
                      side_curves=(Curve("d_real", "f(x) on real"), Curve("d_fake", "f(G(z)) on generated")))


class GANObjective:
    """Non-saturating GAN (Goodfellow et al. 2014, section 3): the base every objective adapts."""

    name = "nonsaturating"
    label = "non-saturating"
    probabilistic = True             # D outputs a logit of P(real) (else an unbounded critic score)
    wasserstein = False              # -d_loss estimates W(p_data, p_g): reported as 'wasserstein'
    settings: tuple[str, ...] = ("label_smoothing",)   # the GANConfig fields this objective reads
    chart = LossChart(curves=(Curve("d_loss", "D loss"), Curve("g_loss", "G loss")), **_PROBABILITY_CHART)

    def d_loss(self, real_out: torch.Tensor, fake_out: torch.Tensor, config: ObjectiveSettings) -> torch.Tensor:
        return losses.d_loss_bce(real_out, fake_out, real_target=1.0 - config.label_smoothing)

    def g_loss(self, fake_out: torch.Tensor) -> torch.Tensor:
        return losses.g_loss_nonsaturating(fake_out)

    def penalty(self, critic: nn.Module, real: torch.Tensor, fake: torch.Tensor,
                labels: torch.Tensor | None) -> torch.Tensor | None:
        """A term added to D's loss (times its config weight), or None."""
        return None

    def after_d_step(self, critic: nn.Module, config: ObjectiveSettings) -> None:
        """Runs after each optimiser step of D (e.g. weight clipping)."""

    def __repr__(self) -> str:
        return f"objective({self.name!r})"


class Minimax(GANObjective):
    """The saturating generator loss of the original minimax game (Goodfellow et al. 2014, eq. 1)."""

    name, label = "minimax", "minimax (saturating)"

    def g_loss(self, fake_out: torch.Tensor) -> torch.Tensor:
        return losses.g_loss_minimax(fake_out)


class WassersteinClip(GANObjective):
    """WGAN (Arjovsky et al. 2017): a critic kept Lipschitz by clipping its weights to [-clip, clip]."""

    name, label = "wgan", "WGAN (weight clipping)"
    probabilistic, wasserstein, settings = False, True, ("clip",)
    chart = LossChart(title="Critic and generator losses (critic-score units)", units="critic-score units",
                      curves=_CRITIC_CURVES, **_CRITIC_SCORES,
                      grad_curves=(Curve("g_grad_norm", "‖∇ G's loss‖ (generator)"),
                                   Curve("d_grad_norm", "‖∇ critic's loss‖ (critic)")))

    def d_loss(self, real_out: torch.Tensor, fake_out: torch.Tensor, config: ObjectiveSettings) -> torch.Tensor:
        return losses.d_loss_wasserstein(real_out, fake_out)

    def g_loss(self, fake_out: torch.Tensor) -> torch.Tensor:
        return losses.g_loss_wasserstein(fake_out)

    @torch.no_grad()
    def after_d_step(self, critic: nn.Module, config: ObjectiveSettings) -> None:
        for p in critic.parameters():
            p.clamp_(-config.clip, config.clip)


class WassersteinGP(WassersteinClip):
    """WGAN-GP (Gulrajani et al. 2017): the Lipschitz constraint as a gradient penalty, reported as 'gp'."""

    name, label, settings = "wgan-gp", "WGAN-GP (gradient penalty)", ("gp_weight",)
    chart = dataclasses.replace(WassersteinClip.chart, side_title="Gradient penalty (before ×λ)",
                                side_units="(‖∇f‖ − 1)²", side_curves=(Curve("gp", "gradient penalty"),))

    def penalty(self, critic: nn.Module, real: torch.Tensor, fake: torch.Tensor,
                labels: torch.Tensor | None) -> torch.Tensor | None:
        return losses.gradient_penalty(critic, real, fake, labels)

    def after_d_step(self, critic: nn.Module, config: ObjectiveSettings) -> None:
        pass


class Hinge(WassersteinClip):
    """Hinge loss (Lim & Ye 2017; Miyato et al. 2018); G's loss is WGAN's."""

    name, label, wasserstein, settings = "hinge", "hinge", False, ()
    chart = dataclasses.replace(WassersteinClip.chart, curves=_CRITIC_CURVES[1:])

    def d_loss(self, real_out: torch.Tensor, fake_out: torch.Tensor, config: ObjectiveSettings) -> torch.Tensor:
        return losses.d_loss_hinge(real_out, fake_out)

    def after_d_step(self, critic: nn.Module, config: ObjectiveSettings) -> None:
        pass


OBJECTIVES: dict[str, GANObjective] = {o.name: o for o in (GANObjective(), Minimax(), WassersteinClip(),
                                                          WassersteinGP(), Hinge())}


def objective(name: str) -> GANObjective:
    """The objective called ``name`` (a GANConfig.loss value)."""
    if name not in OBJECTIVES:
        raise ValueError(f"unknown GAN loss {name!r}; choose from {', '.join(OBJECTIVES)}")
    return OBJECTIVES[name]
