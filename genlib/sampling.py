"""Drawing from models and classifying their output: one home for the rules every caller shares.

- ONE seeding rule: latents are drawn on the CPU from a ``torch.Generator`` seeded with ``seed``,
  then moved to the model's device. The same seed gives the same z (and so the same samples) on any
  device, for the Overview, the live grid, the metrics, the OOD page and the latent tools alike.
  ``seeded_subset`` chooses seeded subsets of examples from the same generator.
- ``eval_mode(*modules)``: eval mode for a block, each module put back in the mode it was in.
- ``sample_batched`` / ``classify_batched``: bounded-memory loops over large batches.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import numpy as np
import torch
from torch import nn


def seeded_generator(seed: int) -> torch.Generator:
    """The CPU generator behind every seeded draw in genlib."""
    return torch.Generator().manual_seed(int(seed))


def prior_draw(model, n: int, seed: int = 0) -> torch.Tensor:
    """z ~ N(0, I) with the model's latent shape, (n, *latent_shape), drawn on the CPU with ``seed``
    and moved to the model's device."""
    return torch.randn(n, *model.latent_shape, generator=seeded_generator(seed)).to(model.device)


def seeded_subset(n_total: int, n: int | None = None, seed: int = 0) -> torch.Tensor:
    """Indices of n distinct items of range(n_total) chosen with ``seed`` (all of them, shuffled, when
    n is None or >= n_total): int64 (min(n, n_total),) on the CPU. The one rule behind every seeded
    subset (``Dataset.subset``, ``genlib.latent.subset_index``, the metrics' reference halves)."""
    return torch.randperm(n_total, generator=seeded_generator(seed))[:n]


@contextlib.contextmanager
def eval_mode(*modules: nn.Module | None) -> Iterator[None]:
    """Run a block with ``modules`` in eval mode (``None`` entries are skipped); restore the training
    flag of each of them and of every submodule afterwards, also on error (``train(flag)`` on the
    parent alone would overwrite a submodule that was in another mode, e.g. a frozen one in eval)."""
    mods = [m for m in modules if isinstance(m, nn.Module)]
    flags = [(sub, sub.training) for m in mods for sub in m.modules()]
    for m in mods:
        m.eval()
    try:
        yield
    finally:
        for sub, flag in flags:
            sub.training = flag


@torch.no_grad()
def sample_batched(model, z: torch.Tensor, labels: torch.Tensor | None = None,
                   batch_size: int = 500) -> torch.Tensor:
    """``model.sample`` over z (N, *latent) in batches of ``batch_size``; labels (N,) or (N, K) or None."""
    return torch.cat([model.sample(len(z[i:i + batch_size]), z=z[i:i + batch_size],
                                   labels=None if labels is None else labels[i:i + batch_size])
                      for i in range(0, len(z), batch_size)])


def to_unit_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 images -> float in [0, 1]; float images clamped to [0, 1]."""
    return x.float() / 255 if x.dtype == torch.uint8 else x.float().clamp(0, 1)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] float images (N, C, H, W) -> uint8 on the CPU; 2-D points (N, 2) stay float, on the CPU."""
    x = x.detach().float().cpu()
    return x if x.dim() == 2 else (x * 255).round_().clamp_(0, 255).to(torch.uint8)


@torch.no_grad()
def classify_batched(classifier, x: torch.Tensor, batch_size: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """(penultimate features (N, F), softmax probabilities (N, K)), float64 on the CPU, for images
    ``x`` (N, C, H, W), uint8 or [0, 1] float (clamped). ``classifier`` is a ``genlib`` classifier
    (``features`` and ``head``); it runs in eval mode on its own device."""
    feats, probs = [], []
    with eval_mode(classifier):
        for i in range(0, len(x), batch_size):
            xb = to_unit_float(x[i:i + batch_size].to(classifier.device))
            f = classifier.features(xb)                                        # (B, F)
            feats.append(f.double().cpu())
            probs.append(torch.softmax(classifier.head(f), 1).double().cpu())  # (B, K)
    if not feats:
        return np.zeros((0, 0)), np.zeros((0, 0))
    return torch.cat(feats).numpy(), torch.cat(probs).numpy()
