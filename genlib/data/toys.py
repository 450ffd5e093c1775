"""Data that needs no files: scikit-learn's bundled 8x8 digits and the 2-D toys.

The toys are sampled, deterministic given a seed, and have no split (they report 'all'; a
held-out set is simply another seed). Ring and grid are Gaussian mixtures whose `modes` metrics
use to count coverage; moons and spiral are thin curves.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ..sampling import seeded_generator, seeded_subset
from .dataset import Dataset

_DIGITS_TRAIN_FRACTION = 0.8


def load_digits(split: str) -> Dataset:
    """scikit-learn's 8x8 digits, scaled from 0..16 to 0..255.

    'all' is the 1,797 images; 'train' / 'test' are a fixed 80/20 split of a seed-0 permutation,
    so held-out metrics have data they were not trained on and every run agrees on it.
    """
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)
    x = torch.from_numpy(images).unsqueeze(1)  # (N, 1, 8, 8)
    y = torch.from_numpy(bunch.target.astype(np.int64))
    if split != "all":
        perm = seeded_subset(len(x), seed=0)
        cut = int(len(x) * _DIGITS_TRAIN_FRACTION)
        idx = perm[:cut] if split == "train" else perm[cut:]
        x, y = x[idx], y[idx]
    return Dataset("digits", split, x, y, [str(d) for d in range(10)],
                   source="sklearn.datasets.load_digits")


_RING_STD = 0.05   # 8 modes 0.77 apart on the circle: ~15 std, so coverage is unambiguous
_GRID_STEP = 0.5   # 5x5 centres at {-1, -0.5, 0, 0.5, 1}^2, same box as the ring
_GRID_STD = 0.05   # 10 std between neighbours
_MOONS_NOISE = 0.05
_SPIRAL_NOISE = 0.02

# A toy: (n, seed, generator) -> (x (N, 2), labels, modes (K, 2) or None, noise std, class names)
_Toy = tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, float, list[str]]


def _mixture(modes: torch.Tensor, std: float, n: int, g: torch.Generator) -> _Toy:
    y = torch.randint(len(modes), (n,), generator=g)
    x = modes[y] + std * torch.randn(n, 2, generator=g)  # (N, 2)
    return x, y, modes, std, [f"mode {i}" for i in range(len(modes))]


def _ring(n: int, seed: int, g: torch.Generator) -> _Toy:
    angles = torch.arange(8, dtype=torch.float64) * (2 * torch.pi / 8)
    return _mixture(torch.stack([angles.cos(), angles.sin()], 1).float(), _RING_STD, n, g)  # 8 modes


def _grid(n: int, seed: int, g: torch.Generator) -> _Toy:
    ticks = (torch.arange(5) - 2).float() * _GRID_STEP
    gx, gy = torch.meshgrid(ticks, ticks, indexing="ij")
    return _mixture(torch.stack([gx.flatten(), gy.flatten()], 1), _GRID_STD, n, g)  # 25 modes


def _moons(n: int, seed: int, g: torch.Generator) -> _Toy:
    """scikit-learn's make_moons, centred at the origin."""
    from sklearn.datasets import make_moons

    pts, labels = make_moons(n_samples=n, noise=_MOONS_NOISE, random_state=seed)
    return (torch.from_numpy(pts - [0.5, 0.25]), torch.from_numpy(labels), None, _MOONS_NOISE,
            ["moon 0", "moon 1"])


def _spiral(n: int, seed: int, g: torch.Generator) -> _Toy:
    """Two arms of 1.5 turns each, radius growing to 1; label = arm."""
    y = torch.randint(2, (n,), generator=g)
    t = 0.05 + 0.95 * torch.rand(n, generator=g)
    theta = 3 * torch.pi * t + torch.pi * y
    x = torch.stack([t * theta.cos(), t * theta.sin()], 1)  # (N, 2)
    return x + _SPIRAL_NOISE * torch.randn(n, 2, generator=g), y, None, _SPIRAL_NOISE, ["arm 0", "arm 1"]


TOYS: dict[str, Callable[[int, int, torch.Generator], _Toy]] = {
    "ring": _ring, "grid": _grid, "moons": _moons, "spiral": _spiral}


def load_toy(name: str, n: int = 20_000, seed: int = 0) -> Dataset:
    """The 2-D toy `name` (see TOYS): `n` points, deterministic given `seed`, split 'all'."""
    if name not in TOYS:
        raise ValueError(f"unknown 2-D toy {name!r}; choose one of {', '.join(TOYS)}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    x, y, modes, std, names = TOYS[name](n, seed, seeded_generator(seed))
    return Dataset(name, "all", x.float(), y.long(), names, modes=modes, mode_std=std)
