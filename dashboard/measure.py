"""Measurements the pages show, as plain functions: thin adapters over the optional
``genlib.metrics`` / ``genlib.classifier`` modules, and the 2-D toy probe of the mode-collapse lab.

Every function returns None (or an empty result) when the module it needs is not there, so a page
can say so with one ``st.info`` instead of failing.
"""
from __future__ import annotations

import importlib
import math
import threading
from types import ModuleType
from typing import Any, Callable

import torch

import genlib


def optional_module(name: str) -> ModuleType | None:
    """``genlib.<name>`` if that module exists; a bug inside an existing module still raises."""
    try:
        return importlib.import_module(f"genlib.{name}")
    except ModuleNotFoundError as e:
        if e.name == f"genlib.{name}":
            return None
        raise


# --- the dataset's classifier (genlib.classifier) -------------------------------------------------
def classifier_for(dataset: str):
    """The shipped classifier for ``dataset`` (with ``.card``), or None."""
    mod = optional_module("classifier")
    if mod is None or not mod.has_classifier(dataset):
        return None
    return mod.load_classifier(dataset)


def classify(classifier, images: torch.Tensor) -> torch.Tensor:
    """Predicted class per image, (N,) int64; images uint8 or [0, 1] (N, C, H, W)."""
    return optional_module("classifier").predict(classifier, images)


def classifier_accuracy_note(classifier) -> str:
    card = getattr(classifier, "card", {}) or {}
    acc = card.get("test_accuracy", card.get("accuracy"))
    return f"{acc:.1%} on held-out real images" if isinstance(acc, float) else "accuracy unknown"


def label_accuracy(classifier, images: torch.Tensor, label: int) -> float:
    """Share of generated images that the classifier assigns to the class they were asked for."""
    return float((classify(classifier, images) == label).float().mean())


def class_histogram(samples: list[tuple[int, torch.Tensor]], classifier, num_classes: int):
    """(steps, (T, K) class shares) of the fixed-noise grids saved along a training run."""
    steps, rows = [], []
    for step, images in samples:
        pred = classify(classifier, images)                                   # (n,)
        rows.append(torch.bincount(pred, minlength=num_classes).float() / len(pred))
        steps.append(step)
    return steps, (torch.stack(rows) if rows else torch.zeros(0, num_classes))


# --- quality metrics (genlib.metrics) -------------------------------------------------------------
def has_quality_metrics(data: genlib.Dataset) -> bool:
    """True when genlib.metrics can judge this dataset (images need the dataset's classifier)."""
    mod = optional_module("metrics")
    if mod is None or not hasattr(mod, "quick_metrics"):
        return False
    return classifier_for(data.name) is not None if data.is_image else data.meta.get("modes") is not None


def quick_metrics(model, data: genlib.Dataset, n: int = 1000) -> dict[str, float]:
    """``genlib.metrics.quick_metrics`` (classifier-FID, classes covered, ...); {} when unavailable."""
    if not has_quality_metrics(data):
        return {}
    return dict(optional_module("metrics").quick_metrics(model, data.name, n))


def live_metric_fn(data: genlib.Dataset) -> Callable[[Any], dict[str, float]] | None:
    """A cheap metric for the Trainer's ``metric_fn`` (from ``genlib.metrics``), or None."""
    if not has_quality_metrics(data):
        return None
    return optional_module("metrics").live_metric_fn(data.name)


# --- 2-D toys: mode coverage and the discriminator's map -------------------------------------------
def toy_mode_stats(points: torch.Tensor, modes: torch.Tensor, std: float) -> tuple[int, float]:
    """(modes covered, high-quality share) of generated 2-D ``points`` on a Gaussian mixture: the
    fallback for when ``genlib.metrics.toy_mode_metrics`` is absent, with the same rule.

    A sample is *high quality* when within 3 standard deviations of its nearest mode (VEEGAN,
    Srivastava et al. 2017); a mode is *covered* when at least 20 high-quality samples per 2,500
    drawn sit at it (PacGAN, Lin et al. 2018), scaled to len(points).
    """
    min_count = max(1, math.ceil(20 * len(points) / 2500))
    d = torch.cdist(points.float(), modes.float())                  # (N, K)
    nearest, which = d.min(1)                                        # (N,), (N,)
    hq = nearest <= 3 * std                                          # (N,)
    counts = torch.bincount(which[hq], minlength=len(modes))          # (K,)
    return int((counts >= min_count).sum()), float(hq.float().mean())


def toy_metrics_source() -> str:
    mod = optional_module("metrics")
    return ("genlib.metrics.toy_mode_metrics" if mod is not None and hasattr(mod, "toy_mode_metrics")
            else "dashboard.measure.toy_mode_stats")


def toy_metrics(points: torch.Tensor, data: genlib.Dataset) -> dict[str, float]:
    """Modes covered and high-quality share, by ``toy_metrics_source()``."""
    modes, std = data.meta["modes"], float(data.meta["std"])
    mod = optional_module("metrics")
    if mod is not None and hasattr(mod, "toy_mode_metrics"):
        m = mod.toy_mode_metrics(points, modes, std)
        return {"toy_modes_covered": float(m["toy_modes_covered"]), "toy_high_quality": float(m["toy_high_quality"])}
    covered, hq = toy_mode_stats(points, modes, std)
    return {"toy_modes_covered": float(covered), "toy_high_quality": hq}


class ToyProbe:
    """A Trainer ``metric_fn`` for 2-D mixtures. It runs on the trainer thread (the only thread
    allowed to touch the model while it trains) and also keeps the discriminator's values on a
    grid over the plane for the page to draw.
    """

    def __init__(self, data: genlib.Dataset, n: int = 1000, grid: int = 60, lim: float = 1.6, seed: int = 0):
        if data.meta.get("modes") is None:
            raise ValueError(f"{data.name} has no modes to cover (use ring or grid)")
        self.data, self.n, self.seed = data.to("cpu"), n, seed
        ticks = torch.linspace(-lim, lim, grid)
        gy, gx = torch.meshgrid(ticks, ticks, indexing="ij")
        self.ticks = ticks
        self.plane = torch.stack([gx.flatten(), gy.flatten()], 1)     # (grid*grid, 2), row-major in y
        self._lock = threading.Lock()
        self._heat: tuple[int, torch.Tensor] | None = None
        self._mode_share: torch.Tensor | None = None

    def __call__(self, model) -> dict[str, float]:
        g = torch.Generator(device=model.device).manual_seed(self.seed)
        points = model.sample(self.n, z=model.prior(self.n, generator=g)).cpu()   # (n, 2)
        out = toy_metrics(points, self.data)
        which = torch.cdist(points, self.data.meta["modes"]).argmin(1)               # (n,) nearest mode
        share = torch.bincount(which, minlength=len(self.data.meta["modes"])).float() / len(points)
        with self._lock:
            self._mode_share = share
        if hasattr(model, "discriminate"):
            d = model.discriminate(self.plane.to(model.device)).cpu()      # (grid*grid,)
            with self._lock:
                self._heat = (model.steps, d.view(len(self.ticks), len(self.ticks)))
        return out

    def mode_share(self) -> torch.Tensor | None:
        """(K,) share of the last measurement's samples whose nearest mode is each mode, or None."""
        with self._lock:
            return self._mode_share

    def heat(self) -> tuple[int, torch.Tensor] | None:
        """(model step, (grid, grid) D values, rows = y) from the last measurement, or None."""
        with self._lock:
            return self._heat
