"""What the lessons share: which dataset they use (MNIST, else the bundled digits), cached loads of the
shipped models, classifiers and data, and small image measurements (sharpness, class spread)."""
from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch

from ..metrics.scores import spearman  # noqa: F401  (its one home; the lessons read it as C.spearman)
from ..sampling import classify_batched


class MissingAsset(RuntimeError):
    """A lesson's data or shipped model is not on this machine; the message says which."""


@functools.lru_cache(maxsize=16)
def dataset(name: str, split: str = "test"):
    """``genlib.load_dataset(name, split=split)`` offline, once per process (digits: 'all')."""
    from ..data import load_dataset
    return load_dataset(name, split="all" if name == "digits" else split, download=False)


@functools.lru_cache(maxsize=32)
def pretrained(name: str):
    """The shipped checkpoint ``name`` (model in eval mode on the CPU), once per process."""
    from ..pretrained import load_pretrained
    return load_pretrained(name)


@functools.lru_cache(maxsize=8)
def classifier(name: str):
    from ..classifier import load_classifier
    return load_classifier(name)


def available(name: str, models: tuple[str, ...]) -> bool:
    """Whether dataset ``name`` loads offline and every shipped model in ``models`` exists."""
    from ..files import PRETRAINED_DIR
    if not all((PRETRAINED_DIR / f"{m}.pt").is_file() for m in models):
        return False
    try:
        dataset(name)
    except Exception:
        return False
    return True


def pick_dataset(wanted: str, models_for: Any, fallback: str = "digits") -> str:
    """``wanted`` when its data and models (``models_for(name)`` -> tuple of names) are here, else
    ``fallback`` (the bundled digits, always offline)."""
    if available(wanted, tuple(models_for(wanted))):
        return wanted
    if available(fallback, tuple(models_for(fallback))):
        return fallback
    raise MissingAsset(f"neither {wanted!r} nor {fallback!r} (data and shipped models {models_for(wanted)}) "
                       "is available on this machine")


def real_images(name: str, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """n real test images of dataset ``name`` in [0, 1] (n, C, H, W) and their labels, a seeded choice."""
    data = dataset(name)
    sub = data.subset(min(n, len(data)), seed)
    x, y = sub.get(torch.arange(len(sub)))
    return x.float().cpu(), y.cpu()


def gradient_magnitude(x: torch.Tensor) -> float:
    """Mean |finite-difference gradient| of images (n, C, H, W) in [0, 1]: edges make it large, blur small."""
    x = x.float()
    gx = (x[..., :, 1:] - x[..., :, :-1]).abs().mean()
    gy = (x[..., 1:, :] - x[..., :-1, :]).abs().mean()
    return float((gx + gy) / 2)


def laplacian_variance(x: torch.Tensor) -> float:
    """Variance of the 4-neighbour Laplacian over all pixels (a standard focus / blur measure)."""
    x = x.float()
    lap = (x[..., 1:-1, :-2] + x[..., 1:-1, 2:] + x[..., :-2, 1:-1] + x[..., 2:, 1:-1] - 4 * x[..., 1:-1, 1:-1])
    return float(lap.var())


def class_spread(feats: np.ndarray, pred: np.ndarray, min_count: int = 5) -> float:
    """Mean distance to the class centroid in classifier features, averaged over the (predicted) classes
    with at least ``min_count`` members: how varied the images of one class are."""
    spreads = [np.linalg.norm(feats[pred == c] - feats[pred == c].mean(0), axis=1).mean()
               for c in np.unique(pred) if (pred == c).sum() >= min_count]
    return float(np.mean(spreads)) if spreads else 0.0


def features(clf, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(classifier features (n, F), probabilities (n, K)) for images in [0, 1]."""
    return classify_batched(clf, x)


def knn_accuracy(z: np.ndarray, y: np.ndarray, k: int = 5, seed: int = 0) -> float:
    """5-fold cross-validated k-nearest-neighbour accuracy of labels y from points z (chance ~1/K)."""
    from sklearn.model_selection import KFold, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier
    cv = KFold(5, shuffle=True, random_state=seed)
    return float(cross_val_score(KNeighborsClassifier(k), z, y, cv=cv).mean())


def fmt(v: float, digits: int = 2) -> str:
    return f"{v:.{digits}f}"
