"""The real images a model is compared with, and their classifier statistics, cached.

Reference images are a fixed half of the dataset's test split (``split_halves``); the other half is
held out, so real-vs-real scores (``floor_fid``, ``floor_metrics``) are measured the same way as a model's.
"""
from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.weak import WeakIdKeyDictionary

from ..files import atomic_save
from ..classifier import Classifier, has_classifier, load_classifier
from ..data import Dataset, canonical_name, load_dataset
from ..data.toys import TOYS
from ..sampling import classify_batched, seeded_subset
from .scores import gaussian_stats

STATS_KEYS = {"feats", "held_feats", "mu", "sigma"}


def reference_dataset(dataset: str | Dataset, root=None) -> Dataset:
    """The real images a model is compared with: a name means its test split (digits: all 1,797
    images, since its test split has only 360); toys: a fresh draw (seed 1). A Dataset is used as is.

    Where only the MNIST test split is on disk, the models trained on it and the classifier saw
    images 0..7999 of it too: there the reference is not held out, and floor_fid is a floor for
    memorised data rather than for generalisation.
    """
    if isinstance(dataset, Dataset):
        return dataset
    name = canonical_name(dataset)
    if name in TOYS:
        return load_dataset(name, seed=1)
    if name == "digits":
        return load_dataset(name, split="all")
    return load_dataset(name, split="test", root=root, download=False)


def split_halves(n_total: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two disjoint fixed halves of range(n_total): (reference half, held-out half)."""
    perm = seeded_subset(n_total, seed=seed)
    return perm[: n_total - n_total // 2], perm[n_total - n_total // 2:]


def resolve_classifier(ref: Dataset, classifier: Classifier | None, device) -> Classifier | None:
    """``classifier`` moved to ``device``, else the shipped one for ``ref``'s dataset, else None."""
    if classifier is not None:
        return classifier.to(device)
    return load_classifier(ref.name, device) if has_classifier(ref.name) else None


def default_cache_dir() -> Path:
    """Where the command line keeps reference statistics: $GENLIB_CACHE_DIR or ~/.cache/genlib, /metrics."""
    return Path(os.environ.get("GENLIB_CACHE_DIR") or Path.home() / ".cache" / "genlib").expanduser() / "metrics"


# --- fingerprints: hashed once per object --------------------------------------------------------
# The cache key must change when the images or the classifier's weights do, so both are hashed; but
# a live metric calls reference_stats every few hundred steps with the same objects, and hashing
# 10,000 MNIST images each time cost more than the lookup saves. So each tensor / module is hashed
# once and the digest kept beside it (weakly, dropped with the object), re-hashed only when torch's
# version counter says it was changed in place.
_DIGESTS: WeakIdKeyDictionary = WeakIdKeyDictionary()
_DIGEST_LOCK = threading.Lock()


def _digest(obj: torch.Tensor | torch.nn.Module) -> str:
    tensors = [obj] if isinstance(obj, torch.Tensor) else [v for v in obj.state_dict().values()]
    version = tuple(t._version for t in tensors)
    with _DIGEST_LOCK:
        known = _DIGESTS.get(obj)
    if known is not None and known[0] == version:
        return known[1]
    h = hashlib.sha1()
    for t in tensors:
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    digest = h.hexdigest()[:10]
    with _DIGEST_LOCK:
        _DIGESTS[obj] = (version, digest)
    return digest


def stats_key(ref: Dataset, classifier: Classifier) -> str:
    """``{dataset}-{split}-{images}-{classifier digest}-{images digest}``: names the cache entry."""
    return f"{ref.name}-{ref.split}-{len(ref)}-{_digest(classifier)}-{_digest(ref.x)}"


# --- the statistics cache: memory, and disk when asked ---------------------------------------------
_REF_CACHE: dict[str, dict[str, Any]] = {}
_REF_LOCK = threading.Lock()


def reference_stats(ref: Dataset, classifier: Classifier, cache_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """Classifier features of both halves of ``ref`` and the Gaussian fit of the reference half:
    {'feats', 'held_feats', 'mu', 'sigma'}.

    Cached in memory per ``stats_key`` (classifier weights, images), and on disk under ``cache_dir``
    when given (``python -m genlib evaluate`` uses ~/.cache/genlib/metrics).
    """
    key = stats_key(ref, classifier)
    path = Path(cache_dir).expanduser() / f"ref-{key}.pt" if cache_dir else None
    with _REF_LOCK:
        stats = _REF_CACHE.get(key)
    if stats is not None:
        if path is not None and not path.is_file():
            _save_stats(stats, path)
        return stats
    if path is not None and path.is_file():
        stats = _load_stats(path)
    if stats is None:
        ref_idx, held_idx = split_halves(len(ref))
        feats, _ = classify_batched(classifier, ref.x)
        stats = {"feats": feats[ref_idx.numpy()], "held_feats": feats[held_idx.numpy()]}
        stats["mu"], stats["sigma"] = gaussian_stats(stats["feats"])
        if path is not None:
            _save_stats(stats, path)
    with _REF_LOCK:
        _REF_CACHE[key] = stats
    return stats


def _load_stats(path: Path) -> dict[str, Any] | None:
    try:
        stats = {k: v.numpy() for k, v in torch.load(path, weights_only=True).items()}
    except Exception:   # a broken cache file (any reason) is recomputed, never trusted
        return None
    return stats if set(stats) == STATS_KEYS else None


def _save_stats(stats: dict[str, Any], path: Path) -> None:
    # atomic: another process reading the cache never sees half a file
    atomic_save({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in stats.items()}, path)
