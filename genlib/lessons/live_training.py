"""Lesson 13: train from scratch, live. The Train page's GAN preset ('gan': the vanilla MLP GAN,
non-saturating loss) with the Train page's run settings (``dashboard.train_form.run_settings``: batch
64, a loss point every few steps, a fixed-noise grid every so often), trained on MNIST (the bundled
digits when MNIST is not here) for ``budget_s`` seconds of training on one thread, then measured.

The measurement is the dataset's classifier on ``n`` fresh samples (seeded z): its mean confidence
(the probability of the class it names; noise is read with low confidence by a well-calibrated
classifier, but a confident call alone can be a fluke, so) together with the number of classes it
names in at least 2 % of the samples (recognisable *and* varied digits), and the share of samples it
is at least 90 % sure of. The page runs the same recipe as a live session run (loss curves and the
newest grid updating, pause / step / resume) and measures its model with ``measure`` at the same
budget; ``run`` trains headless for the budget (bench/lessons.py, tests).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ..sampling import prior_draw, sample_batched
from . import Check, Lesson, Outcome
from . import _common as C

PRESET = "gan"                     # the Train page's GAN preset
CLASS_SHARE = 0.02                 # a class counts as drawn when at least this share of samples is in it
SURE = 0.9                         # "sure" samples: classifier probability at least this


def models_for(dataset: str) -> tuple[str, ...]:
    return ()                                      # trains from scratch: needs only the data


def train_config(seed: int, batch_size: int = 64, budget_s: float = 55.0, log_every: int = 10,
                 sample_every: int = 100, threads: int = 1) -> dict[str, Any]:
    """The TrainConfig fields of the lesson's run: open-ended steps, done after ``budget_s`` seconds of
    training (``TrainConfig.max_seconds``: pauses excluded)."""
    return dict(steps=10 ** 7, max_seconds=budget_s, batch_size=batch_size, seed=seed, log_every=log_every,
                sample_every=sample_every, n_fixed=64, threads=threads)


@torch.no_grad()
def measure(model, dataset: str, n: int = 1000, seed: int = 0) -> dict[str, Any]:
    """The classifier's reading of ``n`` seeded samples of ``model`` (images of ``dataset``):
    mean confidence, share it is sure of, classes drawn, and a 25-image grid (uint8)."""
    clf = C.classifier(dataset)
    was = model.training
    model.eval()
    try:
        x = sample_batched(model, prior_draw(model, n, seed), model.default_labels(n)).cpu()
    finally:
        model.train(was)
    _, p = C.features(clf, x)
    conf = p.max(1)
    counts = np.bincount(p.argmax(1), minlength=p.shape[1])
    return {"confidence": float(conf.mean()), "sure_share": float((conf >= SURE).mean()),
            "classes": int((counts >= CLASS_SHARE * n).sum()), "class_counts": counts,
            "grid": (x[:25] * 255).round().clamp(0, 255).to(torch.uint8)}


MIN_CLASSES = 8                    # varied: at least this many classes drawn


def checks(m: dict[str, Any]) -> tuple[Check, ...]:
    """The further bar of a measurement (``measure``): recognisable digits of most classes, not one."""
    return (Check(f"classes drawn (each >= {CLASS_SHARE:.0%} of samples)", m["classes"], MIN_CLASSES,
                  unit="classes"),)


def describe(dataset: str, steps: int, seconds: float, m: dict[str, Any], k: int, seed: int) -> str:
    """The note, from the measurement."""
    k_half = max(1, k // 2)
    looks = ("most of them read as clear digits of most classes" if m["confidence"] >= 0.8
             and m["classes"] >= MIN_CLASSES
             else f"they are not varied digits yet: the classifier files them under only {m['classes']} classes "
                  "(blobs or one shape, a collapsed generator), however sure it is" if m["classes"] < k_half
             else "they are starting to look like digits" if m["confidence"] >= 0.6
             else "they do not look like digits yet")
    return (f"A vanilla MLP GAN (the Train page's 'gan' preset, batch 64) trained from scratch on {dataset} for "
            f"{seconds:.0f} s on one CPU thread ({steps:,} steps, seed {seed}). The {dataset} classifier reads its "
            f"samples with mean confidence {m['confidence']:.2f}, is at least {SURE:.0%} sure of "
            f"{m['sure_share']:.0%} of them, and names {m['classes']} of the {k} classes (each in at least "
            f"{CLASS_SHARE:.0%} of the samples): {looks}.")


def run(seed: int = 0, dataset: str = "mnist", budget_s: float = 55.0, n: int = 1000, batch_size: int = 64) -> Outcome:
    if not (budget_s > 0 and math.isfinite(budget_s)):
        raise ValueError(f"budget_s must be a positive number of seconds, got {budget_s!r}")
    from ..models import make_model
    from ..train import TrainConfig, Trainer
    name = C.pick_dataset(dataset, models_for)
    data = C.dataset(name) if name == "digits" else _train_split(name)
    torch.manual_seed(seed)
    model = make_model(PRESET, data)
    trainer = Trainer(model, data, TrainConfig(**train_config(seed, batch_size, budget_s)))
    trainer.run()
    m = measure(model, name, n, seed)
    rec = trainer.recorded_run()
    k = data.num_classes
    note = describe(name, trainer.step, trainer.elapsed, m, k, seed)
    return Outcome(m["confidence"], note,
                   data={"grid": m["grid"], "history": rec.history(), "samples": rec.samples[-1:],
                         "class_counts": m["class_counts"], "dataset": name},
                   figures={"confidence": m["confidence"], "sure_share": m["sure_share"], "classes": m["classes"],
                            "steps": trainer.step, "train_s": trainer.elapsed},
                   checks=checks(m))


def _train_split(name: str):
    """The training split when it is here (the 10k test split otherwise, as the shipped models do)."""
    from ..data import load_dataset
    try:
        return load_dataset(name, split="train", download=False)
    except Exception:
        return C.dataset(name)


LESSON = Lesson(
    13, "train-from-scratch", "Train from scratch, live",
    "A vanilla GAN trained from scratch for 55 s on the CPU (a minute with the measurement) draws recognisable, "
    "varied digits; the loss curves and the newest samples update as it trains, and it can be paused, stepped "
    "and resumed.",
    page="train.py", effect="classifier confidence of the samples after the budget", unit="", threshold=0.8,
    settings={"dataset": "mnist", "budget_s": 55.0, "n": 1000, "batch_size": 64}, runner=run)
