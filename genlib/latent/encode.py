"""The posterior over a dataset: encode a seeded subset once, with the chosen examples returned.

    enc = encode_dataset(vae, data, n=2000)      # Encoding(z (n, D), labels (n,), index (n,))
    x, _ = data.get(enc.index[i:i + 1])          # the example behind point i
    mu, logvar = posterior_stats(vae, data)      # feed genlib.metrics.kl_per_dim / activity
    posterior_collapse(vae, data).active_units   # KL per dimension, activity, active units at once

The formulas (KL per dimension, activity, active units) live once, in ``genlib.metrics``; this
module only computes the posterior they take.
"""
from __future__ import annotations

import dataclasses
from typing import NamedTuple

import torch

from ..models import ENCODER
from ..sampling import classify_batched, eval_mode, prior_draw, sample_batched, seeded_subset


class Encoding(NamedTuple):
    """What ``encode_dataset`` returns, all on the CPU."""

    z: torch.Tensor                    # (n, D) posterior means (VAE) or prior draws (GAN)
    labels: torch.Tensor | None        # (n,) int64, or None
    index: torch.Tensor | None         # (n,) the examples of ``data`` encoded (VAE), or None (GAN)


def subset_index(data, n: int, seed: int = 0) -> torch.Tensor:
    """Indices (min(n, len(data)),) of n distinct examples of ``data`` chosen at random with ``seed``,
    on the CPU: the examples ``data.subset(n, seed)`` holds (``genlib.sampling.seeded_subset``)."""
    return seeded_subset(len(data), n, seed)


@torch.no_grad()
def posterior_at(vae, data, index: torch.Tensor, batch_size: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
    """(mu, logvar) of q(z | x) for the examples ``data.get(index)``, each (len(index), D) on the CPU,
    in batches, in eval mode (so mu is what ``vae.encode`` returns). Every encoding in genlib.latent
    goes through it."""
    if not vae.supports(ENCODER):
        raise ValueError(f"a {vae.family} has no posterior")
    cond = vae.config.conditional
    mus, logvars = [], []
    with eval_mode(vae):
        for i in range(0, len(index), batch_size):
            x, y = data.get(index[i:i + batch_size])
            mu, logvar = vae.posterior(x.to(vae.device), y.to(vae.device) if cond else None)   # (B, D) each
            mus.append(mu.cpu())
            logvars.append(logvar.cpu())
    return torch.cat(mus), torch.cat(logvars)


@torch.no_grad()
def encode_dataset(model, data=None, n: int = 2000, seed: int = 0, classifier=None,
                   batch_size: int = 500) -> Encoding:
    """Latents of n points and their labels, on the CPU, as an ``Encoding(z, labels, index)``.

    VAE: posterior means mu(x) of the examples ``index = subset_index(data, n, seed)`` and their
    labels. GAN (no encoder): z = ``prior_draw(model, n, seed)`` and the labels of the generated
    samples: the conditioning labels (balanced 0, 1, ..., K-1, ...) for conditional models, else the
    classifier's argmax when a ``classifier`` (a genlib Classifier) is given, else None; index None.
    """
    if model.supports(ENCODER):
        if data is None:
            raise ValueError("encoding needs data= (a genlib Dataset)")
        index = subset_index(data, n, seed)
        mu, _ = posterior_at(model, data, index, batch_size)                 # (n, D): encode() = mu
        return Encoding(mu, data.y[index.to(data.y.device)].cpu(), index)
    z = prior_draw(model, n, seed)                                           # (n, D)
    if model.config.conditional:
        return Encoding(z.cpu(), model.default_labels(n).cpu(), None)
    if classifier is not None:
        _, probs = classify_batched(classifier, sample_batched(model, z, None, batch_size))   # (n, K)
        return Encoding(z.cpu(), torch.from_numpy(probs.argmax(1)), None)
    return Encoding(z.cpu(), None, None)


def posterior_stats(vae, data, n: int = 1000, seed: int = 0,
                    batch_size: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
    """(mu, logvar) of q(z | x) for ``subset_index(data, n, seed)``, each (n, D) on the CPU (eval mode).
    Encode once and derive the collapse statistics from these with ``genlib.metrics.kl_per_dim``,
    ``kl_active`` and ``activity`` (``posterior_collapse`` does all three)."""
    return posterior_at(vae, data, subset_index(data, n, seed), batch_size)


@dataclasses.dataclass(frozen=True)
class PosteriorCollapse:
    """How much of its latent space a VAE uses, over a dataset (``posterior_collapse``)."""

    kl_per_dim: torch.Tensor     # (D,) E_x KL(q(z_d | x) || N(0, 1)), nats; collapsed dims are ~0
    activity: torch.Tensor       # (D,) float32 A_u = Cov_x(E_q[z_u]) (Burda et al. 2016), a diagnostic
    active_units: int            # how many dimensions have KL > threshold (nats; metrics.kl_active)
    threshold: float


def posterior_collapse(vae, data, n: int = 1000, seed: int = 0, threshold: float | None = None) -> PosteriorCollapse:
    """KL per dimension, activity and active units of ``vae``'s posterior over ``posterior_stats(vae,
    data, n, seed)``, with the formulas of ``genlib.metrics``: a dimension is active when its KL
    exceeds ``threshold`` nats (default ``metrics.ACTIVE_KL``, see ``metrics.kl_active``)."""
    from .. import metrics   # lazily: genlib.metrics loads the classifier module
    threshold = metrics.ACTIVE_KL if threshold is None else threshold
    mu, logvar = posterior_stats(vae, data, n, seed)
    kl = metrics.kl_per_dim(mu, logvar)
    return PosteriorCollapse(kl, metrics.activity(mu).float(), int(metrics.kl_active(kl, threshold).sum()),
                             threshold)
