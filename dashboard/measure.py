"""Measurements the pages show: thin adapters over ``genlib.metrics`` and ``genlib.classifier`` for
the dashboard's datasets. Nothing is computed here
that genlib does not compute; what is added is the "not available" answer.

A measurement a dataset does not support (no shipped classifier, a toy without modes) returns None
or an empty result, so a page can say so with one ``st.info`` instead of failing.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

import numpy as np
import torch

import genlib
from genlib import classifier as gclassifier
from genlib import metrics as gmetrics
from genlib.metrics import LIVE_N   # samples per live measurement, and the floor it is compared with
from genlib.sampling import classify_batched


# --- the dataset's classifier (genlib.classifier) -------------------------------------------------
def classifier_for(dataset: str):
    """The shipped classifier for ``dataset`` (with ``.card``), or None."""
    if not gclassifier.has_classifier(dataset):
        return None
    return gclassifier.load_classifier(dataset)


def classify(classifier, images: torch.Tensor) -> torch.Tensor:
    """Predicted class per image, (N,) int64; images uint8 or [0, 1] (N, C, H, W)."""
    return torch.from_numpy(classify_batched(classifier, images)[1].argmax(1))


def classifier_accuracy_note(classifier) -> str:
    card = getattr(classifier, "card", {}) or {}
    acc = card.get("test_accuracy", card.get("accuracy"))
    return f"{acc:.1%} on held-out real images" if isinstance(acc, float) else "accuracy unknown"


def share_classified_as(classifier, images: torch.Tensor, label: int) -> float:
    """``genlib.metrics.label_accuracy`` of images all drawn for class ``label``: the share of them
    the classifier assigns to that class."""
    pred = classify(classifier, images).numpy()
    return gmetrics.label_accuracy(pred, np.full(len(pred), label), classifier.config.num_classes)["label_accuracy"]


def class_histogram(samples: list[tuple[int, torch.Tensor]], classifier, num_classes: int):
    """(steps, (T, K) class shares) of the fixed-noise grids saved along a training run."""
    steps = [step for step, _ in samples]
    rows = [torch.from_numpy(gmetrics.class_shares(classify(classifier, images), num_classes)).float()
            for _, images in samples]                                      # (K,) each
    return steps, (torch.stack(rows) if rows else torch.zeros(0, num_classes))


# --- quality metrics (genlib.metrics) -------------------------------------------------------------
def has_quality_metrics(data: genlib.Dataset) -> bool:
    """True when genlib.metrics can judge this dataset (images need the dataset's classifier)."""
    return classifier_for(data.name) is not None if data.is_image else data.modes is not None


def live_metrics(model, data: genlib.Dataset, n: int = LIVE_N) -> dict[str, float]:
    """``genlib.metrics.evaluate(model, data.name, n, LIVE_METRICS)`` (classifier-FID, classes
    covered, ...), compared with the dataset's reference images; {} when unavailable."""
    if not has_quality_metrics(data):
        return {}
    return gmetrics.evaluate(model, data.name, n, gmetrics.LIVE_METRICS)


# What the Overview's "Measure every model now" computes: the live set plus precision, recall and
# the classifier IS (the table's columns; its caption defines them), and the cost of sampling.
TABLE_METRICS = tuple(dict.fromkeys(gmetrics.LIVE_METRICS + ("precision", "recall", "classifier_is")))


def table_metrics(model, data: genlib.Dataset, n: int = LIVE_N) -> dict[str, float]:
    """``genlib.metrics.evaluate(model, data.name, n, TABLE_METRICS)``, plus ``sample_seconds``
    (drawing the n samples once more, timed) and ``peak_memory_mb`` (``genlib.metrics.cost.PeakMemory``
    around that draw) and ``n``; {} when the dataset has no quality metrics."""
    import time

    from genlib.metrics.cost import PeakMemory

    if not has_quality_metrics(data):
        return {}
    out = gmetrics.evaluate(model, data.name, n, TABLE_METRICS)
    with PeakMemory(model.device) as mem:
        t = time.perf_counter()
        gmetrics.draw_samples(model, n, num_classes=data.num_classes)
        out["sample_seconds"] = time.perf_counter() - t
    out["peak_memory_mb"] = mem.peak_mb
    out["n"] = n
    return out


def floor_fid_with_count(data: genlib.Dataset, n: int = LIVE_N) -> tuple[float, int] | None:
    """(``genlib.metrics.floor_fid``, images it used): the classifier-FID of up to ``n`` held-out real
    images, what a perfect model scores at that sample size (the estimate rises as n falls); None
    without a classifier. The held-out half can be smaller than ``n`` (digits: 898 images)."""
    if not data.is_image or not has_quality_metrics(data):
        return None
    held = len(gmetrics.split_halves(len(gmetrics.reference_dataset(data.name)))[1])
    return gmetrics.floor_fid(data.name, n=n), min(n, held)


def live_metric_factory(data: genlib.Dataset, n: int = LIVE_N) -> Callable[[], Callable[[Any], dict[str, float]]] | None:
    """``genlib.metrics.live_metric_fn(data.name, n)`` as a picklable factory of the Trainer's ``metric_fn``
    (a worker process of the pool builds it; a thread here calls it), or None."""
    if not has_quality_metrics(data):
        return None
    return functools.partial(gmetrics.live_metric_fn, data.name, n)


# --- 2-D toys: mode coverage (the live probe: genlib.metrics.ToyProbe) --------------------------------
def toy_metrics_source() -> str:
    """What measures the toys' coverage, for the page's caption."""
    return "genlib.metrics.toy_mode_metrics"
