"""Lesson 12: a concept vector adds an attribute. v = mean code of class a - mean code of class b (a
VAE's posterior means on the test images); images of class b are encoded, v is added with a rising
strength, and the decoded images are classified: the probability of class a must rise with the
strength. Default: "ankle boot minus sneaker" (an ankle shaft) added to sneakers. Measured pairs
differ: "sandal minus pullover" on pullovers mostly gives sneakers (the VAE blurs sandal straps), which
the note then says (it names the class the classifier sees most at the highest strength).
"""
from __future__ import annotations

import numpy as np
import torch

from ..latent.concepts import apply_concept, class_latents, concept_vector
from . import Check, Lesson, Outcome
from . import _common as C


def models_for(dataset: str) -> tuple[str, ...]:
    return ("digits-vae",) if dataset == "digits" else (f"{dataset}-conv-vae",)


@torch.no_grad()
def run(seed: int = 0, dataset: str = "fashion-mnist", add: int = 9, remove: int = 7, max_strength: float = 1.5,
        steps: int = 7, n: int = 100) -> Outcome:
    name = C.pick_dataset(dataset, models_for)
    m = C.pretrained(models_for(name)[0]).model
    clf = C.classifier(name)
    data = C.dataset(name)
    names = getattr(data, "class_names", None) or [str(i) for i in range(data.num_classes)]
    if add == remove or not (0 <= add < data.num_classes and 0 <= remove < data.num_classes):
        raise ValueError(f"add and remove must be different classes in 0..{data.num_classes - 1}")
    if not (steps >= 3 and max_strength > 0):
        raise ValueError("steps must be >= 3 and max_strength > 0")
    v = concept_vector(m, data, add, remove, n=500, seed=seed)                          # (D,)
    # start points: n other examples of the class removed (a seed-dependent choice)
    z0 = class_latents(m, data, remove, n=n, seed=seed + 1)                            # (n, D)
    s = torch.linspace(0, max_strength, steps)
    p_add, p_remove, strip, top = [], [], [], 0
    for t in s.tolist():
        x = m.to_data_range(m.decode(apply_concept(z0, v, t).to(m.device))).cpu()        # (n, C, H, W)
        _, p = C.features(clf, x)
        p_add.append(float(p[:, add].mean()))
        p_remove.append(float(p[:, remove].mean()))
        strip.append((x[:8] * 255).round().clamp(0, 255).byte())
        top = int(np.bincount(p.argmax(1), minlength=p.shape[1]).argmax())
    rise = p_add[-1] - p_add[0]
    corr = C.spearman(s.numpy(), p_add)
    cross = next((t for t, pa, pr in zip(s.tolist(), p_add, p_remove) if pa > pr), None)
    note = (f"{models_for(name)[0]}: '{names[add]}' minus '{names[remove]}' (|v| = {float(v.norm()):.2f} latent "
            f"units) added to {n} encoded '{names[remove]}' images. The classifier's mean P({names[add]}) goes "
            f"from {p_add[0]:.2f} at strength 0 to {p_add[-1]:.2f} at strength {max_strength:g} "
            f"(rank correlation with strength {corr:.2f}), while P({names[remove]}) goes from {p_remove[0]:.2f} "
            f"to {p_remove[-1]:.2f}; "
            + (f"'{names[add]}' overtakes '{names[remove]}' at strength {cross:.2f}." if cross is not None
               else f"'{names[add]}' never overtakes '{names[remove]}' in this range.")
            + f" At strength {max_strength:g} the class the classifier names most is '{names[top]}'.")
    return Outcome(rise, note, data={"strengths": s.numpy(), "p_add": np.array(p_add), "p_remove": np.array(p_remove),
                                     "strips": torch.stack(strip, 1), "dataset": name, "class_names": names},
                   figures={"p_add_start": p_add[0], "p_add_end": p_add[-1], "p_remove_start": p_remove[0],
                            "p_remove_end": p_remove[-1], "rank_corr": corr,
                            "crossover_strength": float("nan") if cross is None else cross},
                   checks=(Check("rank correlation of P(added class) with strength", corr, 0.9),))


LESSON = Lesson(
    12, "concept-vectors", "Concept vectors add an attribute",
    "Adding 'mean code of ankle boots minus mean code of sneakers' to encoded sneakers with a rising "
    "strength grows an ankle shaft: the classifier's probability of 'ankle boot' rises with the strength.",
    page="interpolate.py", effect="rise of P(added class) from strength 0 to max", unit="",
    threshold=0.5, settings={"dataset": "fashion-mnist", "add": 9, "remove": 7, "max_strength": 1.5, "steps": 7,
                             "n": 100}, runner=run)
