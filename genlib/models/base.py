"""The one interface every model family implements, and the optional capabilities some add.

Every model (``GenerativeModel``) has, and the Trainer, metrics, latent tools and dashboard may use:

- ``config``: a dataclass that rebuilds the model (saved inside checkpoints); ``family``;
- ``training_step(x, y) -> dict[str, Tensor]``: one optimisation step on a batch, named losses back
  as detached 0-d tensors (no host sync: the caller decides when to read them);
- ``sample(n, labels=None, z=None)``: data in the data's range ([0, 1] images, raw 2-D points);
  conditional models take int labels (n,) or class weights (n, K) (a soft label, rows summing to 1);
- ``prior(n, generator=None)``, ``latent_shape``: latent codes z ~ p(z) and their shape;
- ``default_labels(n)``, ``to_data_range(out)``, ``prepare_sampling()``;
- ``network_sizes()``, ``num_parameters()``, ``size_bytes()``, ``optimizers()``,
  ``set_learning_rates(**rates)``, ``steps``, ``device``.

Anything more is a capability, declared on the class (``capabilities = frozenset({ENCODER})``) and
asked one way: ``model.supports(ENCODER)``. Each capability guarantees the methods of its protocol
below (checked when the class is defined), so code that asked may call them:

- ``ENCODER`` (``HasEncoder``): ``posterior``, ``encode``, ``decode``, ``reconstruction_nll`` (VAEs);
- ``CRITIC`` (``HasCritic``): ``discriminate`` (GANs);
- ``STANDING_STATS`` (``HasStandingStats``): ``standing_statistics`` (GANs: re-estimate the sampling
  generator's batch-norm statistics);
- ``ODE_ENCODER`` (``HasODEEncoder``): ``encode`` by running the sampling ODE backwards, deterministic
  and as costly as sampling (``encode_evaluations``), no posterior (flows).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, ClassVar, Protocol

import torch
from torch import nn

from .config import BaseConfig

ENCODER = "encoder"
CRITIC = "critic"
STANDING_STATS = "standing_stats"
ODE_ENCODER = "ode_encoder"


class HasEncoder(Protocol):
    def posterior(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z | x, y) as (mu, logvar), each (B, latent_dim), with gradients (for training and metrics)."""

    def encode(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Posterior means mu(x), (B, latent_dim), no gradients, in eval mode."""

    def decode(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The decoder's raw output for z (logits for images); ``to_data_range`` maps it to data."""

    def reconstruction_nll(self, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """-log p(x | z) of data x given the decoder's raw output ``out``: a 0-d mean over the batch,
        nats per example (Gaussian likelihoods drop the constant); the ELBO's reconstruction term."""


class HasCritic(Protocol):
    def discriminate(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """D's (B,) output on data in the data range: P(real) where the objective is probabilistic,
        else the critic's score (``model.config.probabilistic`` says which)."""


class HasStandingStats(Protocol):
    def standing_statistics(self, batches: int = 16, batch_size: int = 256, seed: int = 0) -> None:
        """Re-estimate the sampling network's batch-norm statistics from its own outputs."""


class HasODEEncoder(Protocol):
    def encode(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """z with ``sample(z) ~= x``: the sampling ODE run backwards, (B, *latent_shape), no gradients."""

    def encode_evaluations(self) -> int:
        """Network calls per image that ``encode`` (and ``sample``) costs at the config's settings."""


CAPABILITIES: dict[str, type] = {ENCODER: HasEncoder, CRITIC: HasCritic, STANDING_STATS: HasStandingStats,
                                 ODE_ENCODER: HasODEEncoder}


def _protocol_methods(protocol: type) -> list[str]:
    return [name for name in vars(protocol) if not name.startswith("_")]


class GenerativeModel(nn.Module):
    family: ClassVar[str]
    family_title: ClassVar[str]      # how a page names the family in a sentence: "VAE", "GAN", "flow"
    config_class: ClassVar[type[BaseConfig]]
    capabilities: ClassVar[frozenset[str]] = frozenset()   # keys of CAPABILITIES
    lr_fields: ClassVar[dict[str, str]] = {}   # optimiser name -> config field holding its rate

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A family declaring a capability must define every method of its protocol."""
        super().__init_subclass__(**kwargs)
        for cap in cls.capabilities:
            if cap not in CAPABILITIES:
                raise TypeError(f"{cls.__name__}: unknown capability {cap!r}; known: {', '.join(CAPABILITIES)}")
            missing = [m for m in _protocol_methods(CAPABILITIES[cap])
                       if getattr(cls, m, None) is None or getattr(cls, m) is getattr(GenerativeModel, m, None)]
            if missing:
                raise TypeError(f"{cls.__name__} declares {cap!r} but does not define {', '.join(missing)}")

    @classmethod
    def supports(cls, capability: str) -> bool:
        """Whether this family has ``capability`` (ENCODER, CRITIC, STANDING_STATS) and so its methods."""
        if capability not in CAPABILITIES:
            raise ValueError(f"unknown capability {capability!r}; known: {', '.join(CAPABILITIES)}")
        return capability in cls.capabilities

    def __init__(self, config: BaseConfig):
        super().__init__()
        self.config = config
        self.steps = 0  # optimisation steps taken; drives schedules (KL annealing, n_critic)

    # --- the interface ------------------------------------------------------------------------
    def training_step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    @torch.no_grad()
    def sample(self, n: int, labels: torch.Tensor | None = None, z: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    def encode(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Families without ENCODER say so (``supports(ENCODER)`` is the way to ask first)."""
        raise NotImplementedError(f"{self.family} has no encoder")

    def network_sizes(self) -> dict[str, int]:
        raise NotImplementedError

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    # --- shared helpers -----------------------------------------------------------------------
    def set_learning_rates(self, **rates: float) -> None:
        """Change learning rates mid-run, e.g. to resume after divergence: ``set_learning_rates(lr_g=1e-4)``.

        The config is rebuilt (and so validated) first; nothing changes if a value is invalid.
        """
        unknown = set(rates) - set(self.lr_fields.values())
        if unknown:
            raise ValueError(f"{self.family} has no learning rate {', '.join(sorted(unknown))}; "
                             f"use {', '.join(self.lr_fields.values())}")
        self.config = dataclasses.replace(self.config, **rates)
        for name, opt in self.optimizers().items():
            for group in opt.param_groups:
                group["lr"] = getattr(self.config, self.lr_fields[name])

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def latent_shape(self) -> tuple[int, ...]:
        return (self.config.latent_dim,)

    def prior(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """z ~ N(0, I), shape (n, latent_dim), on the model's device."""
        return torch.randn(n, *self.latent_shape, generator=generator, device=self.device)

    def default_labels(self, n: int) -> torch.Tensor | None:
        """Labels 0, 1, ..., K-1, 0, 1, ... for a conditional model (one row per class in a grid)."""
        if not self.config.conditional:
            return None
        return torch.arange(n, device=self.device) % self.config.num_classes

    def _check_sample_args(self, n: int, labels, z):
        if z is None:
            z = self.prior(n)
        z = z.to(self.device)
        if z.shape[1:] != self.latent_shape:
            raise ValueError(f"z must have shape (n, {self.config.latent_dim}), got {tuple(z.shape)}")
        if self.config.conditional and labels is not None and labels.dim() == 2:
            labels = self._check_soft_labels(labels.to(self.device).float(), z.shape[0])
        elif self.config.conditional:
            labels = self.default_labels(z.shape[0]) if labels is None else labels.to(self.device).long()
            if labels.shape != (z.shape[0],):
                raise ValueError(f"labels must have shape ({z.shape[0]},), got {tuple(labels.shape)}")
            if labels.min() < 0 or labels.max() >= self.config.num_classes:
                raise ValueError(f"labels must lie in 0..{self.config.num_classes - 1}")
        else:
            labels = None
        return z, labels

    def _check_soft_labels(self, weights: torch.Tensor, n: int) -> torch.Tensor:
        """Class weights (n, K), each row a convex combination, e.g. 0.5 * onehot(2) + 0.5 * onehot(5).

        The networks read them where they would read a one-hot label (``nets.one_hot``).
        """
        k = self.config.num_classes
        if weights.shape != (n, k):
            raise ValueError(f"soft labels must have shape ({n}, {k}), got {tuple(weights.shape)}")
        if not torch.isfinite(weights).all() or weights.min() < 0:
            raise ValueError("soft labels must be finite and >= 0")
        if not torch.allclose(weights.sum(1), torch.ones(n, device=weights.device), atol=1e-4):
            raise ValueError("soft labels must sum to 1 in each row")
        return weights

    def to_data_range(self, out: torch.Tensor) -> torch.Tensor:
        """Identity; image families override (sigmoid or tanh) to return [0, 1]."""
        return out

    def compact_state(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``state`` (this model's state dict) without what ``complete_state`` can rebuild: a shipped
        file stores only what sampling uses (default: everything)."""
        return state

    def complete_state(self, state: Any) -> Any:
        """A stored state dict with what ``compact_state`` left out put back (anything else as it is)."""
        return state

    def fit_data(self, data) -> None:
        """Learn what the model takes from its training data (a ``genlib.data.Dataset``) before the
        first step; the Trainer calls it. A no-op unless a family needs it (a self-conditioned GAN
        finds its image clusters); a model that has it already, e.g. one loaded from a file, keeps it."""

    def prepare_sampling(self) -> None:
        """Bring state that sampling derives from training up to date (e.g. a GAN's averaged
        generator's batch-norm statistics). A no-op unless a family needs it; called by ``sample``
        and before saving."""

    def num_parameters(self) -> int:
        return sum(self.network_sizes().values())

    def size_bytes(self) -> int:
        return sum(p.numel() * p.element_size() for p in self.parameters())


    def distribute(self, wrap: Callable[[nn.Module], nn.Module] | None) -> None:
        """Data-parallel training (``genlib.train.distributed``, under torchrun): each network (a direct
        submodule) becomes ``wrap(net)``, a ``DistributedDataParallel`` that averages its gradients
        across the processes, and ``training_step`` runs through the wrappers unchanged (the optimisers
        hold the same parameters). ``wrap=None`` puts the plain networks back, before saving: a
        checkpoint never holds a wrapper. A family whose step calls a network other than through its
        forward overrides this."""
        plain = self.__dict__.setdefault("_plain_networks", {})
        if wrap is None:
            for name, net in plain.items():
                setattr(self, name, net)
            plain.clear()
            return
        for name, net in list(self.named_children()):
            if name not in plain:
                plain[name] = net
                setattr(self, name, wrap(net))
