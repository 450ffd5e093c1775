"""Lesson 1: a VAE's samples are blurrier than a GAN's; is the GAN less diverse? Measured, side by side.

The same seed's 25-image grids of a VAE, a GAN and a conditional GAN (shipped models of one dataset,
conv VAE against conv GAN: comparable architectures; their training times are on the cards and
reported). Sharpness: the variance of the Laplacian (a standard focus measure) of n samples, beside
the real test images'. Diversity, honestly: recall (Kynkäänniemi et al. 2019: the share of real
images whose neighbourhood a sample reaches), classes covered, and the within-class spread in the
classifier's features relative to the real images' spread.
"""
from __future__ import annotations

import numpy as np
import torch

from ..sampling import prior_draw, sample_batched
from . import Check, Lesson, Outcome
from . import _common as C

ROLES = ("vae", "gan", "cgan")


def models_for(dataset: str) -> dict[str, str]:
    if dataset == "digits":
        return {"vae": "digits-vae", "gan": "digits-dcgan", "cgan": "digits-cgan"}
    return {"vae": f"{dataset}-conv-vae", "gan": f"{dataset}-dcgan", "cgan": f"{dataset}-cgan"}


def run(seed: int = 0, dataset: str = "mnist", n: int = 1000, grid: int = 25) -> Outcome:
    from ..metrics import evaluate
    name = C.pick_dataset(dataset, lambda d: models_for(d).values())
    clf = C.classifier(name)
    xr, _ = C.real_images(name, n, seed)
    fr, pr = C.features(clf, xr)
    real = {"sharpness": C.laplacian_variance(xr), "spread": C.class_spread(fr, pr.argmax(1))}
    rows, grids = {}, {}
    for role, model_name in models_for(name).items():
        ckpt = C.pretrained(model_name)
        m = ckpt.model
        z = prior_draw(m, n, seed)
        x = sample_batched(m, z, m.default_labels(n)).cpu()
        f, p = C.features(clf, x)
        q = evaluate(m, name, n=n, which=("precision", "recall", "classes_covered"), seed=seed)
        rows[role] = {"model": model_name, "sharpness": C.laplacian_variance(x),
                      "sharpness_vs_real": C.laplacian_variance(x) / real["sharpness"],
                      "recall": q.get("recall", float("nan")), "precision": q.get("precision", float("nan")),
                      "classes_covered": int(len(np.unique(p.argmax(1)))),
                      "spread_vs_real": C.class_spread(f, p.argmax(1)) / real["spread"],
                      "train_time_s": float(ckpt.card.get("wall_time_s", float("nan")))}
        grids[role] = (x[:grid] * 255).round().clamp(0, 255).to(torch.uint8)
    v, g, c = (rows[r] for r in ROLES)
    ratio = g["sharpness"] / v["sharpness"]
    more_diverse = max(ROLES, key=lambda r: rows[r]["recall"])
    diversity = ("the GAN is less diverse than the VAE by recall" if g["recall"] < v["recall"] - 0.02 else
                 "the GAN is NOT less diverse than the VAE here: its recall is as high or higher")
    note = (f"On {name} (seed {seed}, {n} samples each), the Laplacian variance, a blur measure, is "
            f"{C.fmt(v['sharpness_vs_real'])}x the real images' for the VAE ({v['model']}), "
            f"{C.fmt(g['sharpness_vs_real'])}x for the GAN ({g['model']}) and {C.fmt(c['sharpness_vs_real'])}x for "
            f"the conditional GAN: the GAN's samples are {C.fmt(ratio)}x as sharp as the VAE's. "
            f"Recall (diversity): VAE {C.fmt(v['recall'])}, GAN {C.fmt(g['recall'])}, cGAN {C.fmt(c['recall'])}; "
            f"within-class spread vs real: {C.fmt(v['spread_vs_real'])}, {C.fmt(g['spread_vs_real'])}, "
            f"{C.fmt(c['spread_vs_real'])}; classes covered {v['classes_covered']}, {g['classes_covered']}, "
            f"{c['classes_covered']} -- {diversity} (highest recall: {rows[more_diverse]['model']}). "
            f"Training time on the cards: {v['train_time_s']:.0f} s, {g['train_time_s']:.0f} s, "
            f"{c['train_time_s']:.0f} s.")
    figures = {f"{r}_{k}": float(val) for r in ROLES for k, val in rows[r].items() if k != "model"}
    figures["real_sharpness"] = real["sharpness"]
    return Outcome(ratio, note, data={"grids": grids, "rows": rows, "real": real, "dataset": name},
                   figures=figures,
                   checks=(Check("cGAN sharpness / VAE sharpness", c["sharpness"] / v["sharpness"], 1.5),))


LESSON = Lesson(
    1, "vae-blurry-gan-sharp", "VAE blurry, GAN sharp: and which is more diverse?",
    "The same seed's 25 samples of a VAE, a GAN and a conditional GAN side by side: the VAE's are "
    "measurably blurrier, with recall, classes covered and within-class spread beside each.",
    page="overview.py", effect="GAN sharpness / VAE sharpness (Laplacian variance)", unit="x",
    threshold=1.5, settings={"dataset": "mnist", "n": 1000, "grid": 25}, runner=run)
