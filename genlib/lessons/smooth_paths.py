"""Lesson 10: a smooth latent space. (a) Interpolation: the images along a spherical path from z_A to
z_B change by small, even steps (no step much larger than the average, against the one big jump from
A to B directly). (b) Traversal: one latent dimension changes one visible feature.

The model is the dataset's conditional GAN: its label holds the class, so its latent holds the style
(the shipped VAEs' dimensions each change the digit's class and several features at once; measured
while writing this lesson: on mnist-conv-vae a +-2 traversal kept the class in 9-50 % of samples per
dimension). The visible features are image moments: ink (mean brightness), slant (the
x-y covariance of the ink over its y variance), width and height (the ink's spread along x and y).
A traversal's effect on a feature is its mean change from value -span to +span, in standard
deviations of that feature over the samples. The dimension is chosen on one set of codes (``seed``)
and measured on fresh ones (``seed + 1000``), so the number is not a selection artefact.
"""
from __future__ import annotations

import numpy as np
import torch

from ..latent.paths import interpolation_path, traversal_latents
from ..sampling import prior_draw, sample_batched
from . import Check, Lesson, Outcome
from . import _common as C

FEATURES = ("ink", "slant", "width", "height")


def models_for(dataset: str) -> tuple[str, ...]:
    return (f"{dataset}-cgan",)


def image_features(x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per image (n, 1, H, W) in [0, 1]: ink, slant, width, height (the ink's moments), each (n,)."""
    x = x[:, 0].float()
    h, w = x.shape[-2:]
    ink = x.sum((1, 2)).clamp_min(1e-6)
    yy, xx = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")
    mx, my = (x * xx).sum((1, 2)) / ink, (x * yy).sum((1, 2)) / ink
    dx, dy = xx - mx[:, None, None], yy - my[:, None, None]
    cxx, cyy, cxy = ((x * dx * dx).sum((1, 2)) / ink, (x * dy * dy).sum((1, 2)) / ink,
                     (x * dx * dy).sum((1, 2)) / ink)
    return {"ink": ink / (h * w), "slant": cxy / cyy.clamp_min(1e-6), "width": cxx.sqrt(), "height": cyy.sqrt()}


@torch.no_grad()
def traversal_effects(m, z: torch.Tensor, labels: torch.Tensor, span: float, dims) -> np.ndarray:
    """Each dimension's standardised feature changes from -span to +span, (len(dims), 4): the mean
    change over the codes z (n, D) with class ``labels`` (n,), in standard deviations of the feature."""
    effects = []
    for d in dims:
        zs = torch.cat([traversal_latents(z[i], d, torch.tensor([-span, span])) for i in range(len(z))])   # (2n, D)
        x = sample_batched(m, zs.to(m.device), labels.repeat_interleave(2).to(m.device)).cpu()
        f = image_features(x)
        effects.append([float((f[k][1::2] - f[k][0::2]).mean() / f[k].std().clamp_min(1e-6)) for k in FEATURES])
    return np.array(effects)


@torch.no_grad()
def run(seed: int = 0, dataset: str = "mnist", feature: str = "slant", span: float = 3.0, n: int = 40,
        steps: int = 9, pairs: int = 8) -> Outcome:
    if feature not in FEATURES:
        raise ValueError(f"feature must be one of {', '.join(FEATURES)}")
    name = C.pick_dataset(dataset, models_for)
    m = C.pretrained(models_for(name)[0]).model
    clf = C.classifier(name)
    k, dim_count = m.config.num_classes, m.config.latent_dim
    fi = FEATURES.index(feature)
    # (a) interpolation: `pairs` spherical paths z_A -> z_B, class fixed
    za, zb = prior_draw(m, pairs, seed).cpu(), prior_draw(m, pairs, seed + 1).cpu()
    unevenness, jumps, paths = [], [], []
    for i in range(pairs):
        zs = interpolation_path(za[i], zb[i], steps, "spherical")
        x = sample_batched(m, zs.to(m.device), torch.full((steps,), i % k, device=m.device)).cpu()
        flat = x.flatten(1)
        step = (flat[1:] - flat[:-1]).abs().mean(1)                       # (steps - 1,) mean |pixel change|
        unevenness.append(float(step.max() / step.mean()))
        jumps.append(float((flat[-1] - flat[0]).abs().mean() / step.mean()))
        paths.append((x * 255).round().clamp(0, 255).byte())
    uneven = float(np.mean(unevenness))
    # (b) traversal: choose the dimension on codes from `seed`, measure on codes from `seed + 1000`
    labels = torch.arange(n) % k
    choose = traversal_effects(m, prior_draw(m, n, seed).cpu(), labels, span, range(dim_count))
    dim = int(np.abs(choose[:, fi]).argmax())
    z_test = prior_draw(m, n, seed + 1000).cpu()
    test = traversal_effects(m, z_test, labels, span, range(dim_count))
    chosen = test[dim]
    median = float(np.median(np.abs(test[:, fi])))
    ratio = abs(chosen[fi]) / max(median, 1e-6)
    others = [abs(chosen[j]) for j in range(len(FEATURES)) if j != fi]
    selectivity = abs(chosen[fi]) / max(max(others), 1e-6)
    values = torch.linspace(-span, span, 7)
    row_z = torch.cat([traversal_latents(z_test[i], dim, values) for i in range(min(n, 10))])
    row_labels = labels[:min(n, 10)].repeat_interleave(len(values))
    rows = sample_batched(m, row_z.to(m.device), row_labels.to(m.device)).cpu()
    _, p = C.features(clf, rows)
    kept = float((p.argmax(1) == row_labels.numpy()).mean())
    other_words = ", ".join(f"{FEATURES[j]} {chosen[j]:+.2f}" for j in range(len(FEATURES)) if j != fi)
    note = (f"{models_for(name)[0]} (seed {seed}). Interpolation: over {pairs} spherical paths of {steps} images, "
            f"the largest step changes the pixels {uneven:.2f}x as much as the average step (1 = perfectly "
            f"even), while going from A to B directly is a jump of {np.mean(jumps):.1f} average steps. "
            f"Traversal: dimension {dim} (chosen on one set of codes, measured on {n} fresh ones) moves {feature} "
            f"by {chosen[fi]:+.2f} standard deviations from {-span:g} to {span:g}, {ratio:.1f}x the median "
            f"dimension's {median:.2f}; the other features move {other_words} ({selectivity:.1f}x less than "
            f"{feature} at most), and the classifier still reads the intended class in {kept:.0%} of the "
            f"traversal images.")
    return Outcome(ratio, note,
                   data={"paths": torch.stack(paths), "traversal": (rows * 255).round().clamp(0, 255).byte(),
                         "traversal_values": values.numpy(), "dim": dim, "effects": test, "features": FEATURES,
                         "unevenness": np.array(unevenness), "dataset": name},
                   figures={"unevenness": uneven, "jump_in_steps": float(np.mean(jumps)), "dim": dim,
                            "feature_change_sd": float(chosen[fi]), "median_dim_change_sd": median,
                            "selectivity": selectivity, "class_kept": kept},
                   checks=(Check("interpolation: largest step / mean step", uneven, 2.0, "<="),
                           Check(f"{feature} change / largest other feature change", selectivity, 2.0),
                           Check("traversal images read as the intended class", kept, 0.8)))


LESSON = Lesson(
    10, "smooth-interpolation", "Smooth interpolation, and one dimension that changes one feature",
    "Between two codes the images change by small even steps instead of one jump, and moving one latent "
    "dimension of the conditional GAN changes the slant of the digit and little else.",
    page="interpolate.py", effect="slant change of the chosen dimension / median dimension's", unit="x",
    threshold=2.0, settings={"dataset": "mnist", "feature": "slant", "span": 3.0, "n": 40, "steps": 9, "pairs": 8},
    runner=run)
