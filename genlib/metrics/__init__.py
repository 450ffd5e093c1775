"""Sample-quality metrics, fed by anything that samples (or by plain tensors).

``evaluate(model, dataset, n)`` returns every metric that applies as one flat JSON-friendly dict;
``evaluate(..., which=LIVE_METRICS)`` computes only the cheap live set (the Trainer's ``metric_fn``,
made by ``live_metric_fn``). A *source* (what ``model`` may be) is described in ``sources``.

Image metrics are computed in the feature space of genlib's own small CNN classifier
(``genlib.classifier``), NOT the ImageNet Inception network of the published FID / IS:

- ``classifier_fid``: Fréchet distance between Gaussians fitted to the classifier's 128-D penultimate
  features (the formula of Heusel et al. 2017, in another network's features): comparable only
  between numbers made with the same classifier file, never with published FIDs;
- ``kid``: kernel inception distance (Bińkowski et al. 2018) in the same features;
- ``classifier_is``: Inception Score (Salimans et al. 2016) with the classifier's softmax;
- ``classes_covered`` / ``class_kl_uniform`` / ``class_histogram``: the mode-collapse meter;
- ``precision`` / ``recall`` (Kynkäänniemi et al. 2019), ``density`` / ``coverage`` (Naeem et al. 2020);
- ``label_accuracy``: conditional models, fraction of samples drawn for class c classified as c.

Plus VAE test-set terms (ELBO, KL per latent dimension, active units), 2-D toy mode metrics, and
cost. Real reference images are a fixed half of the dataset's test split (see ``reference_dataset``);
``floor_fid`` measures the other half against it the same way, the value a perfect model would get.

The package: ``scores`` (the formulas), ``sources`` (drawing samples), ``reference`` (reference
images and their cached statistics), ``vae``, ``cost``, ``table`` (writing results), ``toy`` (the
2-D mixtures' live probe); this file composes them.
"""
from __future__ import annotations

import contextlib
import os
import time
from typing import Any, Callable, Iterable

import numpy as np
import torch

from ..classifier import Classifier
from ..data import Dataset, load_dataset
from ..sampling import classify_batched
from .cost import PeakMemory, cost_metrics
from .reference import (default_cache_dir, reference_dataset, reference_stats, resolve_classifier,
                        split_halves)
from .scores import (ACTIVE_KL, ACTIVITY_THRESHOLD, COVERED_SHARE, activity, burda_active_units, class_coverage,
                     class_shares, frechet_distance, gaussian_stats, inception_score, kernel_distance, kl_active,
                     kl_per_dim, label_accuracy, nearest_mode, polynomial_mmd2, prdc, spearman, toy_mode_metrics)
from .sources import device_of, draw_samples, is_conditional
from .toy import ToyProbe
from .table import write_table
from .vae import VAE_KEYS, has_posterior, vae_metrics

FID_LABEL = "classifier-FID (genlib CNN features, not Inception FID)"

# The quality keys ``which`` may name, per metric group.
IMAGE_KEYS = ("classifier_fid", "kid", "kid_std", "classifier_is", "classes_covered", "num_classes",
              "class_kl_uniform", "class_histogram", "mean_confidence", "precision", "recall", "density",
              "coverage", "prdc_k", "prdc_n", "label_accuracy", "label_accuracy_per_class")
TOY_KEYS = ("toy_modes_covered", "toy_modes_total", "toy_high_quality", "toy_min_count", "label_accuracy")
QUALITY_KEYS = tuple(dict.fromkeys(IMAGE_KEYS + TOY_KEYS + VAE_KEYS))

# The live set: cheap enough to run every few hundred training steps. classifier_fid at n = LIVE_N
# is higher than at n = 5000 (the estimate is biased upward at small n): compare curves made with
# the same n. The fixed seed gives fixed z, so the curve shows the model moving.
LIVE_METRICS = ("classifier_fid", "classes_covered", "mean_confidence", "label_accuracy",
                "toy_modes_covered", "toy_high_quality")
LIVE_N = 1000
_PRDC_KEYS = ("precision", "recall", "density", "coverage", "prdc_k", "prdc_n")


def _wanted(which: tuple[str, ...] | None) -> Callable[..., bool]:
    return lambda *keys: which is None or any(k in which for k in keys)


def image_metrics(x: torch.Tensor, labels: torch.Tensor | None, ref_stats: dict[str, Any], classifier: Classifier,
                  *, which: Iterable[str] | None = None, k: int = 5, kid_subsets: int = 100,
                  kid_subset_size: int = 1000, prdc_max: int = 5000, seed: int = 0) -> dict[str, Any]:
    """The classifier-based metrics of images ``x`` against reference statistics (all, or those in
    ``which``: a group is computed when any of its keys is wanted)."""
    wanted = _wanted(None if which is None else tuple(which))
    feats, probs = classify_batched(classifier, x)                        # (N, F), (N, K)
    pred, num_classes = probs.argmax(1), probs.shape[1]
    out: dict[str, Any] = {}
    if wanted("classifier_fid"):
        out["classifier_fid"] = frechet_distance(*gaussian_stats(feats), ref_stats["mu"], ref_stats["sigma"])
    if wanted("kid", "kid_std"):
        out["kid"], out["kid_std"] = kernel_distance(ref_stats["feats"], feats, kid_subsets, kid_subset_size, seed)
    if wanted("classifier_is"):
        out["classifier_is"] = inception_score(probs)
    if wanted("classes_covered", "num_classes", "class_kl_uniform", "class_histogram"):
        out.update(class_coverage(pred, num_classes))
    if wanted("mean_confidence"):
        out["mean_confidence"] = float(probs.max(1).mean())
    if wanted(*_PRDC_KEYS):
        real = ref_stats["feats"]
        m = min(len(feats), len(real), prdc_max)   # equal sizes, as Naeem et al. recommend
        k = min(k, m - 1)
        rng = np.random.default_rng(seed)
        out.update(prdc(real[rng.choice(len(real), m, replace=False)], feats[rng.choice(len(feats), m, replace=False)],
                        k=k), prdc_k=k, prdc_n=m)
    if labels is not None and wanted("label_accuracy", "label_accuracy_per_class"):
        out.update(label_accuracy(pred, labels.cpu().numpy(), num_classes))
    return out


def evaluate(model: Any, dataset: str | Dataset, n: int = 5000, which: Iterable[str] | None = None, *,
             classifier: Classifier | None = None, card: dict[str, Any] | None = None, root=None, k: int = 5,
             kid_subsets: int = 100, kid_subset_size: int = 1000, batch_size: int = 500, seed: int = 0,
             cache_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """Every metric that applies to ``model`` (a source, see ``sources``), as a flat dict.

    dataset: a name (compared with its test split, see ``reference_dataset``) or a Dataset
    (compared with exactly those images). ``card``: a checkpoint card, for training cost.
    which: None for everything (plus the header, cost and timing keys), or quality keys to compute
    (e.g. ``LIVE_METRICS``): then only those that apply come back, numbers as floats, {} when none
    does (no classifier for the dataset, a toy without modes).
    Keys: see the module doc; ``classifier_fid`` is NOT the Inception FID.
    """
    if n < 10:
        raise ValueError(f"n must be >= 10 samples, got {n}")
    if which is not None:
        which = tuple(which)
        unknown = sorted(set(which) - set(QUALITY_KEYS))
        if unknown:
            raise ValueError(f"unknown metric {', '.join(unknown)}; which= chooses among {', '.join(QUALITY_KEYS)}")
    wanted, full = _wanted(which), which is None
    t0 = time.perf_counter()
    ref = reference_dataset(dataset, root)
    device = device_of(model)
    with PeakMemory(device) if full else contextlib.nullcontext() as mem:
        ts = time.perf_counter()
        x, labels = draw_samples(model, n, num_classes=ref.num_classes, batch_size=batch_size, seed=seed)
        if full and device.type == "cuda":
            torch.cuda.synchronize(device)
        sample_s = time.perf_counter() - ts

    out: dict[str, Any] = {}
    if full:   # 'n' is what was drawn: a tensor or Dataset source may hold fewer than n
        out.update(dataset=ref.name, reference_split=ref.split, reference_images=len(ref), n=len(x))
        if ref.note:
            out["reference_note"] = ref.note
        out.update(cost_metrics(model, card))
        if hasattr(model, "sample"):
            out.update(sample_seconds=round(sample_s, 4), samples_per_s=round(len(x) / max(sample_s, 1e-9), 1),
                       sample_batch_size=batch_size, peak_memory_mb=round(mem.peak_mb, 2),
                       peak_memory_method=mem.method)

    if ref.is_image and wanted(*IMAGE_KEYS):
        clf = resolve_classifier(ref, classifier, device)
        if clf is None:
            out["notes"] = f"no classifier for {ref.name!r}: classifier metrics skipped"
        else:
            stats = reference_stats(ref, clf, cache_dir)
            out.update(image_metrics(x, labels, stats, clf, which=which, k=k, kid_subsets=kid_subsets,
                                     kid_subset_size=kid_subset_size, seed=seed))
            out["reference_half_images"] = len(stats["feats"])
            out["classifier"] = getattr(clf, "card", {}).get("command", "given")
            out["classifier_fid_label"] = FID_LABEL
    elif not ref.is_image and ref.modes is not None and wanted(*TOY_KEYS):
        out.update(toy_mode_metrics(x, ref.modes, float(ref.mode_std), labels=labels))

    if has_posterior(model) and wanted(*VAE_KEYS):
        vae_data = ref if isinstance(dataset, Dataset) or not ref.is_image or ref.name == "folder" else \
            load_dataset(ref.name, split="test", root=root, download=False)
        out.update(vae_metrics(model, vae_data, batch_size=batch_size, seed=seed))
        out["vae_test_split"] = vae_data.split
    if not full:
        return {key: float(out[key]) if isinstance(out[key], (int, float)) else out[key]
                for key in which if key in out}
    out["evaluate_seconds"] = round(time.perf_counter() - t0, 3)
    return out


def live_metric_fn(dataset: str | Dataset, n: int = LIVE_N, **kwargs: Any) -> Callable[[Any], dict[str, float]]:
    """``Trainer(..., metric_fn=live_metric_fn('mnist'), config=TrainConfig(metric_every=500))``:
    ``evaluate(model, dataset, n, LIVE_METRICS, **kwargs)`` on each call.

    Pass the dataset's name for numbers comparable with ``python -m genlib evaluate``; a Dataset is
    compared with exactly its own images. Reference statistics are computed on the first call.
    """
    ref = reference_dataset(dataset, kwargs.get("root"))   # loaded once, not on every call
    return lambda model: evaluate(model, ref, n, LIVE_METRICS, **kwargs)


def floor_metrics(dataset: str | Dataset, n: int | None = None, *, classifier: Classifier | None = None,
                  root=None, **kwargs: Any) -> dict[str, Any]:
    """``evaluate`` of real held-out images (the half of the reference split not in the statistics):
    what a perfect model scores. ``n`` defaults to all of that half."""
    ref = reference_dataset(dataset, root)
    _, held = split_halves(len(ref))
    held = held[:n] if n else held
    real = ref.get(held)[0] if ref.is_image else ref.x[held]
    out = evaluate(real, ref, len(held), classifier=classifier, **kwargs)
    out["floor_of"] = ref.name
    return out


def floor_fid(dataset: str | Dataset, n: int | None = None, *, classifier: Classifier | None = None,
              root=None) -> float:
    """classifier-FID of real held-out images against the reference half: the lowest value a model
    can expect at this sample size (NOT the Inception FID)."""
    ref = reference_dataset(dataset, root)
    clf = resolve_classifier(ref, classifier, torch.device("cpu"))
    if clf is None:
        raise ValueError(f"no classifier for {ref.name!r}")
    stats = reference_stats(ref, clf)
    feats = stats["held_feats"][:n] if n else stats["held_feats"]
    return frechet_distance(*gaussian_stats(feats), stats["mu"], stats["sigma"])


def evaluate_checkpoint(path: str | os.PathLike, n: int = 5000, *, dataset: str | None = None, root=None,
                        device: str = "cpu", **kwargs: Any) -> dict[str, Any]:
    """``evaluate`` of a checkpoint's model, on the dataset its card names unless ``dataset`` is given
    (``python -m genlib evaluate`` / ``compare``)."""
    from ..checkpoint import load_checkpoint   # lazy: the checkpoint module loads every model family

    ckpt = load_checkpoint(path, device=device)
    name = dataset or ckpt.card.get("dataset")
    if not name:
        raise ValueError(f"{path}: the checkpoint's card names no dataset; pass one (--dataset)")
    head = {"checkpoint": str(path), "preset": ckpt.card.get("preset", ""), "family": ckpt.model.family,
            "steps": ckpt.model.steps}
    return {**head, **evaluate(ckpt.model, name, n, card=ckpt.card, root=root, **kwargs)}


__all__ = [
    "evaluate", "live_metric_fn", "floor_metrics", "floor_fid", "evaluate_checkpoint", "image_metrics",
    "FID_LABEL", "LIVE_METRICS", "LIVE_N", "QUALITY_KEYS", "IMAGE_KEYS", "TOY_KEYS", "VAE_KEYS",
    # scores
    "ACTIVE_KL", "ACTIVITY_THRESHOLD", "COVERED_SHARE", "activity", "burda_active_units", "class_coverage",
    "class_shares", "frechet_distance", "gaussian_stats", "inception_score", "kernel_distance", "kl_active",
    "kl_per_dim", "label_accuracy", "nearest_mode", "polynomial_mmd2", "prdc", "spearman", "toy_mode_metrics",
    # sources, reference data, VAE, cost, tables
    "draw_samples", "is_conditional", "ToyProbe", "reference_dataset", "reference_stats", "split_halves",
    "default_cache_dir", "vae_metrics", "has_posterior", "cost_metrics", "PeakMemory", "write_table",
]
