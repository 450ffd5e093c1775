"""Lesson 8: posterior collapse. The KL weight beta on a log scale (0.1 ... 1000), and three remedies
(KL annealing, decoder skip connections, free bits), each against the plain run.

Every run is the same MLP VAE from the same initial weights on the same batches (one seed), trained
``steps`` steps on the training split; then the posterior of ``n_eval`` held-out images gives the KL
per latent dimension (``genlib.metrics.kl_per_dim``) and the active units, with the lab's one
definition (``genlib.metrics.kl_active``): a dimension is active when its KL exceeds
``ACTIVE_KL`` = 0.1 nats, so the count is read off the very bars the page draws, against a line at
the same threshold. The KL of each training batch is kept along the way (the curves, one per run,
overlaid).

The remedies run at beta = 1 (the ELBO itself), where a plain VAE leaves most dimensions unused:
linear KL annealing (Bowman et al. 2016) over the first ``anneal_frac`` of the run, the latent fed
to every decoder layer (skip-VAE, Dieng et al. 2019), and free bits (Kingma et al. 2016:
``free_bits`` nats per dimension not penalised). Free bits must add active units; annealing and
skips, in this budget, only raise the KL a little without adding active units, so their bars are
on the KL they add (measured on the digits, 200 steps, beta 1, seeds 0-4: annealing over the whole
run +0.35, +0.39, +0.36, +0.45, +0.41 nats, active units -1, -1, +1, +1, -3; skips +0.21, +0.13,
+0.14, +0.11, +0.12 nats, active units 0, -2, +2, +1, 0; free bits 0.25: +13 to +17 active units;
seed 0 at 300 steps: annealing over half the run only +0.07 nats; at beta 4 everything but free bits
collapses to 0 active units), and the note says so with the run's numbers.
"""
from __future__ import annotations

import numpy as np
import torch

from ..data import load_dataset
from ..metrics import ACTIVE_KL, kl_active, kl_per_dim
from ..latent import posterior_stats
from ..models import make_model
from . import Check, Lesson, Outcome

BETAS = (0.1, 1.0, 10.0, 100.0, 1000.0)


def _train(data, test, seed: int, steps: int, batch_size: int, n_eval: int, curve_every: int,
           **config) -> dict:
    """One seeded VAE run: its KL curve and the held-out KL per dimension / active units."""
    torch.manual_seed(seed)
    m = make_model("vae", data, **config)
    batches = data.batches(batch_size, torch.Generator().manual_seed(seed + 1))
    kl_steps, recon_steps = np.zeros(steps), np.zeros(steps)
    for s in range(steps):
        x, y = next(batches)
        out = m.training_step(x, y)
        kl_steps[s], recon_steps[s] = float(out["kl"]), float(out["recon"])
    mu, logvar = posterior_stats(m, test, n=n_eval, seed=seed)
    kl = kl_per_dim(mu, logvar)                                               # (D,) nats
    mask = kl_active(kl)
    k = steps // curve_every * curve_every
    return {"kl_per_dim": kl.numpy(), "active": mask.numpy(), "active_units": int(mask.sum()),
            "kl": float(kl.sum()), "recon": float(recon_steps[-curve_every:].mean()),
            "curve_step": np.arange(curve_every, k + 1, curve_every),
            "curve_kl": kl_steps[:k].reshape(-1, curve_every).mean(1)}


def run(seed: int = 0, dataset: str = "digits", steps: int = 200, batch_size: int = 64, latent_dim: int = 20,
        hidden: tuple[int, ...] = (256,), lr: float = 1e-3, betas: tuple[float, ...] = BETAS,
        remedy_beta: float = 1.0, anneal_frac: float = 1.0, free_bits: float = 0.25, n_eval: int = 500,
        curve_every: int = 10) -> Outcome:
    if len(betas) < 2 or any(b < 0 for b in betas):
        raise ValueError(f"betas must be two or more values >= 0, got {betas!r}")
    if not 1 <= curve_every <= steps:
        raise ValueError(f"curve_every must be in 1..steps, got {curve_every}")
    torch.set_num_threads(1)
    data = load_dataset(dataset, split="train", download=False)
    test = load_dataset(dataset, split="test", download=False)
    common = dict(hidden=tuple(hidden), latent_dim=latent_dim, lr=lr)
    train = lambda **cfg: _train(data, test, seed, steps, batch_size, n_eval, curve_every, **common, **cfg)

    runs: dict[str, dict] = {}
    for b in sorted(betas):
        runs[f"beta {b:g}"] = train(beta=b)
    plain_key = f"beta {remedy_beta:g}"
    if plain_key not in runs:
        runs[plain_key] = train(beta=remedy_beta)
    plain = runs[plain_key]
    remedies = {
        f"KL annealing (linear over {anneal_frac:.0%} of the run)":
            dict(kl_schedule="linear", anneal_steps=max(1, int(anneal_frac * steps))),
        "decoder skip connections": dict(skip=True),
        f"free bits ({free_bits:g} nats / dim)": dict(free_bits=free_bits),
    }
    for name, cfg in remedies.items():
        runs[name] = train(beta=remedy_beta, **cfg)

    sweep = [runs[f"beta {b:g}"] for b in sorted(betas)]
    lo, hi = sweep[0], sweep[-1]
    drop = lo["active_units"] - hi["active_units"]
    gains = {name: runs[name]["active_units"] - plain["active_units"] for name in remedies}
    free = next(name for name in remedies if name.startswith("free bits"))
    anneal = next(iter(remedies))
    kl_gain = {name: runs[name]["kl"] - plain["kl"] for name in remedies}
    sweep_txt = ", ".join(f"β {b:g}: {r['active_units']} ({r['kl']:.1f} nats)" for b, r in zip(sorted(betas), sweep))
    fix_txt = "; ".join(f"{name}: {runs[name]['active_units']} active, KL {runs[name]['kl']:.1f} nats"
                        for name in remedies)
    note = (f"{len(runs)} VAEs ({latent_dim}-D latent) on {dataset}, seed {seed}, {steps} steps each from the same "
            f"initial weights and batches. Active units (KL per dimension above {ACTIVE_KL:g} nats, the line on "
            f"the bars; total KL in brackets, on {n_eval} held-out images): {sweep_txt}. The heavier the KL "
            f"weight, the more dimensions collapse to the prior (their posterior is N(0, 1) whatever the "
            f"image). At β {remedy_beta:g} the plain run keeps {plain['active_units']} "
            f"({plain['kl']:.1f} nats); {fix_txt}. Free bits leaves each dimension its first {free_bits:g} nats "
            f"for nothing, so every dimension keeps them; annealing and skips change the KL by "
            f"{kl_gain[anneal]:+.2f} and {kl_gain['decoder skip connections']:+.2f} nats here"
            + (", without adding active units." if max(gains[n] for n in remedies if n != free) <= 0 else "."))
    checks = (Check(f"active units gained by {free}", gains[free], 1, unit="units"),
              Check("KL gained by KL annealing", kl_gain[anneal], 0.1, unit="nats"),
              Check("KL gained by decoder skip connections", kl_gain["decoder skip connections"], 0.05, unit="nats"))
    return Outcome(
        drop, note,
        data={"runs": runs, "betas": tuple(sorted(betas)), "plain": plain_key, "remedies": tuple(remedies),
              "threshold": ACTIVE_KL, "latent_dim": latent_dim, "dataset": dataset},
        figures={**{f"active_beta_{b:g}": float(r["active_units"]) for b, r in zip(sorted(betas), sweep)},
                 **{f"kl_beta_{b:g}": r["kl"] for b, r in zip(sorted(betas), sweep)},
                 **{f"active_{name.split(' (')[0]}": float(runs[name]["active_units"]) for name in remedies},
                 **{f"kl_{name.split(' (')[0]}": runs[name]["kl"] for name in remedies}},
        checks=checks)


LESSON = Lesson(
    8, "posterior-collapse", "Posterior collapse: beta, KL annealing, skip connections, free bits",
    "As beta grows from 0.1 to 1000 the KL per dimension falls to zero dimension by dimension and the active "
    "units with it; free bits keeps every dimension in use, while KL annealing and decoder skips (shown against the "
    "same plain run) add only a little KL in this budget.",
    page="latent.py", effect="active units lost from the smallest to the largest beta", unit="units",
    threshold=5, direction=">=",
    settings={"dataset": "digits", "steps": 200, "batch_size": 64, "latent_dim": 20, "hidden": (256,), "lr": 1e-3,
              "betas": BETAS, "remedy_beta": 1.0, "anneal_frac": 1.0, "free_bits": 0.25, "n_eval": 500,
              "curve_every": 10},
    runner=run)
