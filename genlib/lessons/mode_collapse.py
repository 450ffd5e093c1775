"""Lesson 9: mode collapse on a 2-D mixture, and a fix.

A vanilla GAN (non-saturating loss, the toy MLPs of ``genlib.models.presets.TOY_DEFAULTS``) whose
generator learns 10x faster than its discriminator (``lr_g`` 1e-3, ``lr_d`` 1e-4): G jumps to
wherever D currently rates the data most likely, D follows, and the samples pile onto one or two of
the ring's 8 modes, hopping between them. The fix, WGAN-GP (Gulrajani et al. 2017) with the settings
of their toy experiments (gradient-penalty weight 0.1 rather than the image setting 10, five critic
steps per G step, Adam betas (0.5, 0.9)), its critic at G's learning rate (1e-3), and the same
networks, batches and number of steps, spreads over every mode: a critic trained close to optimum
that scores instead of classifying gives G a gradient towards all the data, not only towards D's
current favourite. Measured (ring, 1,000 steps, seeds 0 and 1): WGAN-GP with the critic at 1e-4
like the vanilla D covers only 4/8 and 4/8; and with D as fast as G (1e-3 both) the vanilla GAN
covers 8/8 too: on this toy collapse is a race the generator wins.

Both runs are seeded (weights, batches, noise); coverage is ``genlib.metrics.toy_mode_metrics``
(a mode is covered when at least 20 per 2,500 samples sit within 3 std of it; high quality = the
share of samples within 3 std of some mode), measured along training and at the end.

Why the page's defaults showed the opposite (vanilla 8/8, WGAN-GP 2-5 on the ring): equal learning
rates (1e-3) keep the vanilla GAN balanced, and WGAN-GP ran with the image recipe's penalty weight
10. Measured (ring, lr 1e-3 for both nets, 5 critic steps, 1,000 steps, seeds 0 / 1): penalty 10 with
Adam beta1 0 (the preset) covers 4/8 and 6/8 with 6-9 % of points near a mode; penalty 10 with
beta1 0.5 2/8 and 2/8; penalty 0.1 with beta1 0 8/8 and 8/8 (21-25 %), with beta1 0.5 8/8 and 8/8:
the penalty weight is the cause (Gulrajani et al.'s toy code uses 0.1 for the same reason).
"""
from __future__ import annotations

import numpy as np
import torch

from ..metrics.scores import toy_mode_metrics
from ..models import make_model
from ..sampling import prior_draw
from . import Check, Lesson, Outcome
from . import _common as C

RUNS = ("vanilla", "fix")


def _coverage(model, data, n: int, seed: int) -> tuple[dict, torch.Tensor]:
    pts = model.sample(n, z=prior_draw(model, n, seed)).cpu()                    # (n, 2)
    return toy_mode_metrics(pts, data.modes, data.mode_std), pts


def spread(points: torch.Tensor) -> float:
    """Root-mean-square distance of 2-D points (n, 2) to their centroid: ~1 for the ring, small for a blob."""
    return float((points - points.mean(0)).pow(2).sum(1).mean().sqrt())


def run(seed: int = 0, toy: str = "ring", steps: int = 600, batch_size: int = 128, lr_g: float = 1e-3,
        lr_d: float = 1e-4, fix: str = "wgan-gp", fix_lr_d: float = 1e-3, gp_weight: float = 0.1, n_critic: int = 5,
        eval_every: int = 100, n_eval: int = 2500) -> Outcome:
    if toy not in ("ring", "grid"):
        raise ValueError(f"toy must be 'ring' or 'grid' (a mixture with modes to count), got {toy!r}")
    if fix not in ("wgan-gp", "hinge"):
        raise ValueError(f"fix must be 'wgan-gp' or 'hinge', got {fix!r}")
    if eval_every < 1 or steps < 1:
        raise ValueError("steps and eval_every must be >= 1")
    torch.set_num_threads(1)
    data = C.dataset(toy)
    configs = {
        "vanilla": dict(lr_g=lr_g, lr_d=lr_d),
        "fix": dict(lr_g=lr_g, lr_d=fix_lr_d, loss=fix, n_critic=n_critic, beta1=0.5, beta2=0.9,
                    **({"gp_weight": gp_weight} if fix == "wgan-gp" else {"spectral_norm": True})),
    }
    curves, final, points = {}, {}, {}
    for name in RUNS:
        torch.manual_seed(seed)
        m = make_model("gan", data, **configs[name])
        batches = data.batches(batch_size, torch.Generator().manual_seed(seed + 1))
        at, covered, good = [], [], []
        for s in range(steps):
            x, y = next(batches)
            m.training_step(x, y)
            if (s + 1) % eval_every == 0 and s + 1 < steps:
                q, _ = _coverage(m, data, 1000, seed)
                at.append(s + 1)
                covered.append(q["toy_modes_covered"])
                good.append(q["toy_high_quality"])
        final[name], pts = _coverage(m, data, n_eval, seed)
        at.append(steps)
        covered.append(round(final[name]["toy_modes_covered"]))
        good.append(final[name]["toy_high_quality"])
        points[name] = pts[:1000]
        curves[name] = {"step": np.array(at), "modes_covered": np.array(covered), "high_quality": np.array(good)}

    v, f = final["vanilla"], final["fix"]
    k = v["toy_modes_total"]
    gain = f["toy_modes_covered"] - v["toy_modes_covered"]
    spreads = {name: spread(points[name]) for name in RUNS}
    real_spread = spread(data.x[:n_eval].cpu())
    label = {"wgan-gp": f"WGAN-GP (λ {gp_weight:g}, {n_critic} critic steps per G step)",
             "hinge": f"hinge loss + spectral norm ({n_critic} D steps per G step)"}[fix] + f", critic lr {fix_lr_d:g}"
    note = (f"The {toy} ({k} modes), seed {seed}, {steps} steps each, G's learning rate {lr_g:g}. "
            f"The vanilla GAN, D's learning rate {lr_d:g}, ends covering {v['toy_modes_covered']}/{k} modes "
            f"(its modes covered along training: "
            f"{', '.join(str(int(c)) for c in curves['vanilla']['modes_covered'])}), {v['toy_high_quality']:.0%} of "
            f"its points near a mode, their spread {spreads['vanilla']:.2f} against the data's {real_spread:.2f}: "
            f"its samples bunch into a blob that hops between modes, chasing D. {label}, "
            f"same networks, batches and steps, covers {f['toy_modes_covered']}/{k} "
            f"({', '.join(str(int(c)) for c in curves['fix']['modes_covered'])} along training), with "
            f"{f['toy_high_quality']:.0%} of its points near a mode and a spread of {spreads['fix']:.2f}: the rest "
            f"lie between modes, the price of spreading out this early.")
    return Outcome(
        gain, note,
        data={"curves": curves, "points": points, "real": data.x[:1000].cpu(), "modes": data.modes.cpu(),
              "labels": {"vanilla": "vanilla GAN (non-saturating)", "fix": label}, "toy": toy},
        figures={"modes_vanilla": v["toy_modes_covered"], "modes_fix": f["toy_modes_covered"],
                 "high_quality_vanilla": v["toy_high_quality"], "high_quality_fix": f["toy_high_quality"],
                 "spread_vanilla": spreads["vanilla"], "spread_fix": spreads["fix"], "spread_real": real_spread},
        checks=(Check("modes covered by the vanilla GAN", v["toy_modes_covered"], 3 if k == 8 else 15, "<=",
                      unit="modes"),))


LESSON = Lesson(
    9, "mode-collapse", "Mode collapse on a 2-D mixture, and a fix",
    "A seeded vanilla GAN collapses onto a few of the ring's 8 modes; WGAN-GP with toy settings, same networks "
    "and budget, covers (nearly) all of them.",
    page="mode_collapse.py", effect="modes covered: fix minus vanilla GAN", unit="modes", threshold=4,
    direction=">=",
    settings={"toy": "ring", "steps": 600, "batch_size": 128, "lr_g": 1e-3, "lr_d": 1e-4, "fix": "wgan-gp",
              "fix_lr_d": 1e-3,
              "gp_weight": 0.1, "n_critic": 5, "eval_every": 100, "n_eval": 2500},
    runner=run)
