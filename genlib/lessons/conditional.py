"""Lesson 2: a conditional GAN draws the class it is told ("all 8s"), and a soft label 0.5 * onehot(2) +
0.5 * onehot(5) draws a digit between 2 and 5.

Measured with the dataset's classifier: the share of the n samples for class 8 that it calls 8, and,
for the in-between digits, its mean probability of each end class (both must be substantial; the
note says which other classes, e.g. 3s, the blends are taken for), and how P(5) rises along the blend.
"""
from __future__ import annotations

import numpy as np
import torch

from ..sampling import prior_draw, sample_batched
from . import Check, Lesson, Outcome
from . import _common as C


def models_for(dataset: str) -> tuple[str, ...]:
    return (f"{dataset}-cgan",)


def run(seed: int = 0, dataset: str = "mnist", cls: int = 8, between: tuple[int, int] = (2, 5),
        n: int = 400, steps: int = 9) -> Outcome:
    name = C.pick_dataset(dataset, models_for)
    m = C.pretrained(models_for(name)[0]).model
    clf = C.classifier(name)
    k = m.config.num_classes
    if not 0 <= cls < k or not all(0 <= c < k for c in between) or between[0] == between[1]:
        raise ValueError(f"classes must be in 0..{k - 1} and the two ends of 'between' different")
    z = prior_draw(m, n, seed)
    x_cls = sample_batched(m, z, torch.full((n,), cls, dtype=torch.long)).cpu()
    _, p_cls = C.features(clf, x_cls)
    share = float((p_cls.argmax(1) == cls).mean())
    a, b = between
    ts = np.linspace(0, 1, steps)
    path = []                                                     # classifier's mean P(a), P(b) along the blend
    for t in ts:
        w = torch.zeros(n, k)
        w[:, a], w[:, b] = 1 - t, t
        x_t = sample_batched(m, z, w).cpu()
        _, p_t = C.features(clf, x_t)
        path.append((float(p_t[:, a].mean()), float(p_t[:, b].mean())))
        if abs(t - 0.5) < 1e-9:
            x_mix, p_mix = x_t, p_t
    pa, pb = path[steps // 2]
    named = np.bincount(p_mix.argmax(1), minlength=k) / n
    others = [c for c in np.argsort(-named) if c not in (a, b) and named[c] >= 0.05]
    rise = C.spearman(ts, [q[1] for q in path])
    note = (f"{n} samples of the conditional GAN on {name} told class {cls} (seed {seed}): the classifier calls "
            f"{share:.0%} of them {cls}. The same z with the soft label half {a}, half {b}: the classifier's mean "
            f"probability is {pa:.2f} for {a} and {pb:.2f} for {b}; it names {named[a]:.0%} of them {a} and "
            f"{named[b]:.0%} {b}"
            + (", and " + ", ".join(f"{named[c]:.0%} {c}" for c in others) + " (other classes)"
               if others else "")
            + f". Along the blend from {a} to {b} in {steps} steps, P({b}) rises (rank correlation {rise:.2f}) "
            f"from {path[0][1]:.2f} to {path[-1][1]:.2f} while P({a}) falls from {path[0][0]:.2f} to "
            f"{path[-1][0]:.2f}.")
    return Outcome(share, note,
                   data={"class_grid": (x_cls[:25] * 255).round().to(torch.uint8),
                         "between_grid": (x_mix[:25] * 255).round().to(torch.uint8),
                         "p_class": p_cls, "p_between": p_mix, "blend_t": ts, "blend_p": np.array(path),
                         "dataset": name},
                   figures={"share_class": share, "p_between_a": pa, "p_between_b": pb,
                            "named_a": float(named[a]), "named_b": float(named[b]), "blend_rank_corr": rise},
                   checks=(Check(f"weaker of mean P({a}), P({b}) at half-half", min(pa, pb), 0.2),
                           Check(f"rank correlation of P({b}) with the blend weight", rise, 0.9)))


LESSON = Lesson(
    2, "all-eights", "All 8s, and a digit between 2 and 5",
    "A conditional GAN told '8' draws 8s (the classifier agrees), and told 'half 2, half 5' draws digits "
    "the classifier splits between 2 and 5.",
    page="conditional.py", effect="share of class-8 samples classified 8", unit="", threshold=0.9,
    settings={"dataset": "mnist", "cls": 8, "between": (2, 5), "n": 400, "steps": 9}, runner=run)
