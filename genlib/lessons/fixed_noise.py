"""Lesson 5: the same fixed noise decoded along training. Every shipped model stores the grids its
fixed noise vectors gave at regular steps while it trained (``Checkpoint.samples``, kept in the
file); the page plays them as a scrubber and an animation, step numbers shown, and live runs show the
newest grid as it arrives (the Train page).

What it measures: how close each stored grid is to the data, by classifier-FID of the grid's images
(the dataset's own classifier, the same features as ``genlib.metrics``' classifier-FID) against the
dataset's reference statistics. On only 64 images the number is biased far upward (64 held-out real
images score ``floor``, shown beside it), but the bias is the same for every grid of a model, so the
trend along training is what counts: the rank correlation of a grid's FID with its step (negative:
the images approach the data). Also the classes the classifier names among a grid's images. Where a
model's file holds a recorded run with the live classifier-FID (n = 1,000), that curve is given too.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import Check, Lesson, Outcome
from . import _common as C

FALLS = -0.5                          # a model's grids approach the data when rank corr(FID, step) <= this


def _stats(dataset: str, clf) -> dict[str, Any]:
    from ..metrics import default_cache_dir, reference_dataset, reference_stats
    return reference_stats(reference_dataset(dataset), clf, default_cache_dir())


def _checkpoint(source: str):
    """(name, dataset, Checkpoint) of a shipped model's name or a checkpoint file's path."""
    if source.endswith(".pt") or os.sep in source:
        from ..checkpoint import load_checkpoint
        ckpt = load_checkpoint(Path(source))
        return Path(source).stem, str(ckpt.card.get("dataset", "")), ckpt
    from ..pretrained import BY_NAME
    return source, BY_NAME[source].dataset, C.pretrained(source)


def grid_scores(grids: list[tuple[int, torch.Tensor]], dataset: str) -> dict[str, np.ndarray]:
    """Classifier-FID against the reference statistics, classes named and mean confidence, per
    stored grid (step, uint8 (n, C, H, W))."""
    from ..metrics import frechet_distance, gaussian_stats
    clf = C.classifier(dataset)
    ref = _stats(dataset, clf)
    fid, classes, conf = [], [], []
    for _, x in grids:
        f, p = C.features(clf, x.float() / 255)
        mu, sigma = gaussian_stats(f)
        fid.append(frechet_distance(mu, sigma, ref["mu"], ref["sigma"]))
        classes.append(len(np.unique(p.argmax(1))))
        conf.append(float(p.max(1).mean()))
    return {"step": np.array([s for s, _ in grids]), "fid": np.array(fid), "classes": np.array(classes),
            "confidence": np.array(conf)}


def floor(dataset: str, n: int) -> float:
    """Classifier-FID of ``n`` held-out real images (the grid size) against the same statistics."""
    from ..metrics import frechet_distance, gaussian_stats
    ref = _stats(dataset, C.classifier(dataset))
    mu, sigma = gaussian_stats(ref["held_feats"][:n])
    return float(frechet_distance(mu, sigma, ref["mu"], ref["sigma"]))


def run(seed: int = 0, models: tuple[str, ...] = ()) -> Outcome:
    """``models``: shipped names or checkpoint paths; () = every shipped model of an image dataset."""
    if not models:
        from ..pretrained import list_pretrained
        models = tuple(e.name for e in list_pretrained())
    rows, grids, floors = {}, {}, {}
    for source in models:
        name, dataset, ckpt = _checkpoint(source)
        if not ckpt.samples or ckpt.samples[0][1].dim() != 4 or not dataset:
            continue                                            # 2-D points or no grids: nothing to play
        s = grid_scores(ckpt.samples, dataset)
        n = len(ckpt.samples[0][1])
        if (dataset, n) not in floors:
            floors[dataset, n] = floor(dataset, n)
        rec = ckpt.recorded_run
        live = rec.series("classifier_fid") if rec is not None and "classifier_fid" in rec.metrics else None
        rows[name] = {**s, "dataset": dataset, "rho": C.spearman(s["step"], s["fid"]) if len(s["step"]) > 1
                      else float("nan"), "floor": floors[dataset, n], "recorded_fid": live}
        grids[name] = list(ckpt.samples)
    if not rows:
        raise C.MissingAsset("no model with stored fixed-noise grids of images was found")
    falling = [k for k, r in rows.items() if r["rho"] <= FALLS]
    share = len(falling) / len(rows)
    fewest = min(len(g) for g in grids.values())
    worst = max(rows, key=lambda k: rows[k]["rho"])
    first_last = "; ".join(f"{k} {r['fid'][0]:.0f} -> {r['fid'][-1]:.0f}" for k, r in rows.items())
    recorded = [k for k, r in rows.items() if r["recorded_fid"] is not None]
    note = (f"{len(rows)} models, {sum(len(g) for g in grids.values())} stored grids (at least {fewest} each), "
            f"each the same {len(next(iter(grids.values()))[0][1])} noise vectors decoded along training. "
            f"Classifier-FID of each grid against the data (as many held-out real images score "
            + ", ".join(f"{fl:.0f} on {d} ({n} images)" for (d, n), fl in floors.items())
            + f"), first grid -> last: {first_last}. In {len(falling)} of {len(rows)} models the grids' FID "
            f"falls along training (rank correlation with the step {FALLS:g} or lower); the least steady is "
            f"{worst} ({rows[worst]['rho']:.2f}). Classes named in the first grid vs the last: "
            f"{np.median([r['classes'][0] for r in rows.values()]):.0f} vs "
            f"{np.median([r['classes'][-1] for r in rows.values()]):.0f} (medians): noise decodes to a blur the "
            f"classifier files under one or two classes, the trained model to every class."
            + (f" Recorded live classifier-FID (n = 1,000) along training: {', '.join(recorded)}." if recorded
               else " The shipped files predate recorded runs: no live FID curve is stored with them yet."))
    return Outcome(share, note, data={"rows": rows, "grids": grids},
                   figures={"models": float(len(rows)), "falling": float(len(falling)), "fewest_grids": float(fewest),
                            **{f"rho_{k}": r["rho"] for k, r in rows.items()}},
                   checks=(Check("stored grids per model (fewest)", fewest, 2, unit="grids"),))


LESSON = Lesson(
    5, "fixed-noise-along-training", "The same fixed noise decoded along training",
    "Every shipped model's stored fixed-noise grids, played as a scrubber or an animation with their step "
    "numbers: the same noise vectors turn from a blur into data, and the grids' classifier-FID falls.",
    page="train.py", effect="share of models whose grids' classifier-FID falls along training", threshold=0.8,
    settings={"models": ()}, runner=run, seeded=False)
