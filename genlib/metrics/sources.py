"""What the metrics measure: samples drawn from a *source*.

A source is a genlib model, any object with ``sample(n, labels=None) -> tensor`` (set
``conditional = True`` on it, or ``config.conditional``, to be handed balanced labels), a tensor of
samples ([0, 1] float or uint8 images (N, C, H, W); points (N, 2)), or a ``Dataset``.
"""
from __future__ import annotations

from typing import Any

import torch

from ..data import Dataset
from ..sampling import prior_draw, sample_batched, to_unit_float


def is_conditional(source: Any) -> bool:
    cfg = getattr(source, "config", None)
    return bool(getattr(cfg, "conditional", False) or getattr(source, "conditional", False))


def num_classes_of(source: Any, default: int) -> int:
    cfg = getattr(source, "config", None)
    return int(getattr(cfg, "num_classes", 0) or getattr(source, "num_classes", 0) or default)


def device_of(source: Any) -> torch.device:
    dev = getattr(source, "device", None)
    return dev if isinstance(dev, torch.device) else torch.device("cpu")


@torch.no_grad()
def draw_samples(source: Any, n: int, *, num_classes: int = 10, batch_size: int = 500,
                 seed: int = 0) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(n samples, the labels they were drawn for or None). Conditional sources get balanced labels
    0, 1, ..., K-1, 0, ...; genlib models (a ``latent_shape``) get z from ``sampling.prior_draw(model,
    n, seed)``, the seeding rule every seeded draw in genlib follows (the global RNG is left alone,
    so a live metric does not disturb training), sampled ``batch_size`` at a time."""
    if isinstance(source, Dataset):
        x, _ = source.get(torch.arange(min(n, len(source))))
        return x, None
    if isinstance(source, torch.Tensor):
        x = source[:n]
        return (x.float() / 255 if x.dtype == torch.uint8 else x), None
    if not hasattr(source, "sample"):
        raise TypeError(f"cannot draw samples from {type(source).__name__}: expected a model, an object "
                        "with sample(n, labels=None), a tensor or a Dataset")
    labels = None
    if is_conditional(source):
        labels = torch.arange(n) % num_classes_of(source, num_classes)   # (n,)
    if hasattr(source, "latent_shape"):
        x = sample_batched(source, prior_draw(source, n, seed), labels, batch_size)
    else:
        out = [source.sample(min(batch_size, n - i), labels=None if labels is None else labels[i:i + batch_size])
               for i in range(0, n, batch_size)]
        x = torch.cat(out) if out else torch.zeros(0)
    return (to_unit_float(x) if x.dtype == torch.uint8 else x), labels
