"""Lesson 7: the families compared. (a) The shipped models of one dataset side by side: parameters,
training time and peak memory (from their cards, measured when they were built), sampling time
(measured here) and quality (classifier-FID over the real-vs-real floor, classifier IS, precision,
recall: from the cards, n = 5,000). (b) A fair race: every family trained from scratch for the same
training time (``race_s`` seconds each, one thread, the same seed) on the bundled 8x8 digits, then
measured the same way (classifier-FID on ``n`` samples, classes covered). The cards' models had
different budgets; the race gives every family the same one.
"""
from __future__ import annotations

import time

import numpy as np
import torch

from ..sampling import prior_draw, sample_batched
from . import Check, Lesson, Outcome
from . import _common as C

CARD_FAMILIES = ("vae-2d", "conv-vae", "gan", "dcgan", "wgan-gp", "cgan", "cflow")
RACE_PRESETS = ("vae", "gan", "dcgan", "wgan-gp", "cgan", "flow")     # every family: VAE, GANs, flow matching


def models_for(dataset: str) -> tuple[str, ...]:
    from ..pretrained import list_pretrained
    return tuple(e.name for e in list_pretrained(dataset))


def card_row(name: str, n_sample: int = 100) -> dict:
    ckpt = C.pretrained(name)
    m, met = ckpt.model, ckpt.card.get("metrics", {}) or {}
    z = prior_draw(m, n_sample, 0)
    labels = m.default_labels(n_sample)
    best = float("inf")
    for _ in range(2):                                    # sampling time: the best of 2
        t0 = time.perf_counter()
        sample_batched(m, z, labels)
        best = min(best, time.perf_counter() - t0)
    fid, floor = met.get("classifier_fid", float("nan")), met.get("fid_floor", float("nan"))
    return {"model": name, "preset": ckpt.card.get("preset", ""), "parameters": int(m.num_parameters()),
            "train_time_s": float(ckpt.card.get("wall_time_s", float("nan"))),
            "peak_memory_mb": float(met.get("peak_memory_mb", float("nan"))),
            "sample_ms_per_1000": 1000 * best * 1000 / n_sample, "classifier_fid": fid, "fid_over_floor": fid / floor,
            "classifier_is": met.get("classifier_is", float("nan")), "precision": met.get("precision", float("nan")),
            "recall": met.get("recall", float("nan"))}


def race(preset: str, data, seconds: float, seed: int, n: int) -> dict:
    from ..metrics import evaluate
    from ..models import make_model
    from ..train import TrainConfig, Trainer
    torch.manual_seed(seed)
    model = make_model(preset, data)
    trainer = Trainer(model, data, TrainConfig(steps=10 ** 7, batch_size=64, seed=seed, threads=1, log_every=5,
                                               sample_every=10 ** 7))
    trainer.callbacks.append(lambda ev: trainer.stop() if ev.elapsed >= seconds else None)
    trainer.run()
    model.eval()
    q = evaluate(model, data, n=n, which=("classifier_fid", "classes_covered"), seed=seed)
    x = sample_batched(model, prior_draw(model, 25, seed), model.default_labels(25)).cpu()
    return {"preset": preset, "steps": trainer.step, "train_s": trainer.elapsed,
            "parameters": int(model.num_parameters()), "classifier_fid": q["classifier_fid"],
            "classes_covered": q["classes_covered"], "grid": (x * 255).round().clamp(0, 255).byte()}


def run(seed: int = 0, dataset: str = "mnist", race_dataset: str = "digits", race_s: float = 7.0,
        presets: tuple[str, ...] = RACE_PRESETS, n: int = 500) -> Outcome:
    if race_s <= 0 or not presets:
        raise ValueError("race_s must be > 0 and presets not empty")
    name = C.pick_dataset(dataset, lambda d: tuple(f"{d}-{f}" for f in ("gan", "cgan")))
    shipped = set(models_for(name))
    cards = [card_row(f"{name}-{f}") for f in CARD_FAMILIES if f"{name}-{f}" in shipped]
    data = C.dataset(race_dataset)
    runs = [race(p, data, race_s, seed, n) for p in presets]
    fids = [r["classifier_fid"] for r in runs]
    best, worst = runs[int(np.argmin(fids))], runs[int(np.argmax(fids))]
    spread = worst["classifier_fid"] / best["classifier_fid"]
    times = [r["train_s"] for r in runs]
    fairness = max(times) / min(times)
    card_best = min(cards, key=lambda r: r["classifier_fid"]) if cards else None
    card_fast = min(cards, key=lambda r: r["sample_ms_per_1000"]) if cards else None
    order = sorted(runs, key=lambda r: r["classifier_fid"])
    note = ((f"Shipped {name} models (cards: trained {min(r['train_time_s'] for r in cards):.0f}-"
             f"{max(r['train_time_s'] for r in cards):.0f} s, different budgets): the best classifier-FID is "
             f"{card_best['model']} ({card_best['fid_over_floor']:.1f}x the floor), the fastest sampler "
             f"{card_fast['model']} ({card_fast['sample_ms_per_1000']:.0f} ms per 1,000 images here). "
             if cards else "")
            + f"Fair race on {race_dataset}, {race_s:g} s of training each (seed {seed}, measured "
            f"{min(times):.1f}-{max(times):.1f} s): by classifier-FID ({n} samples) "
            + ", ".join(f"{r['preset']} {r['classifier_fid']:.1f} ({r['steps']} steps, "
                        f"{int(r['classes_covered'])} classes)" for r in order)
            + f"; the slowest learner's FID is {spread:.1f}x the fastest's.")
    return Outcome(spread, note, data={"cards": cards, "race": runs, "dataset": name, "race_dataset": race_dataset},
                   figures={**{f"race_fid_{r['preset']}": r["classifier_fid"] for r in runs},
                            **{f"race_steps_{r['preset']}": float(r["steps"]) for r in runs},
                            "race_time_ratio": fairness},
                   checks=(Check("race: longest / shortest training time", fairness, 1.15, "<="),))


LESSON = Lesson(
    7, "family-race", "Families compared, and a fair race",
    "The shipped models' parameters, training time, peak memory, sampling time and quality side by "
    "side, and every family trained for the same 7 s on the same seed: at equal time they end far apart.",
    page="overview.py", effect="race: worst / best classifier-FID at equal training time", unit="x",
    threshold=2.0, settings={"dataset": "mnist", "race_dataset": "digits", "race_s": 7.0,
                             "presets": RACE_PRESETS, "n": 500}, runner=run)
