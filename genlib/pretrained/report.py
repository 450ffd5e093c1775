"""The README's table and quality bars, written from the shipped files' cards (so the two cannot
disagree): ``python -m genlib.pretrained table``."""
from __future__ import annotations

import os
from typing import Any

from ..checkpoint import load_checkpoint
from .recipes import BY_NAME, RECIPES, list_pretrained

# Issue 13's bars, as multiples of the real-vs-real floor (classifier-FID) and plain values.
BEST_GAN_X = 3.0          # best unconditional GAN, with precision and recall >= PR_BAR
PR_BAR = 0.8
FID_X_BAR = {"gan": 10.0, "dcgan": 5.0, "wgan-gp": 5.0, "cgan": 2.0, "cflow": 3.0}   # cflow: issue 17
LABEL_ACCURACY_BAR = 0.97
CONV_VAE_BARS = {"recall": 0.8, "mean_confidence": 0.85}
LATENT_KNN_BAR = 0.8
TRACKING_BAR = 0.5        # WGAN-GP: rank correlation of the critic's estimate with classifier-FID (lesson 4's)


def _met(ok: bool) -> str:
    return "met" if ok else "**not met**"


def _cpu(card: dict[str, Any]) -> str:
    return f"{card['cpu_time_s']:.0f} s" if isinstance(card.get("cpu_time_s"), (int, float)) else "–"


def estimate_tracks_quality(run) -> dict[str, float] | None:
    """Lesson 4's measure on a recorded run (``RecordedRun.at_measurements``): Spearman's rho of the
    critic's Wasserstein estimate (averaged between quality measurements) with classifier-FID at each
    measurement after the start, and the estimate at the first and last. None without a run, an
    estimate or 3 measurements."""
    if run is None or "wasserstein" not in run.curves or "classifier_fid" not in run.metrics:
        return None
    from ..metrics import spearman   # lazy, as build's metrics: listing the shipped models stays light

    steps, fid, estimate = run.at_measurements("wasserstein")
    if len(steps) < 3:
        return None
    return {"rho": spearman(estimate, fid),
            "first": float(estimate[0]), "end": float(estimate[-1]), "points": len(steps)}


def report(folder: str | os.PathLike | None = None) -> str:
    """Markdown: one row per shipped model from its card, then each of issue 13's quality bars with
    the value measured and whether it is met. ``python -m genlib.pretrained table`` prints it."""
    entries = list_pretrained(root=folder)
    ckpts = {e.name: load_checkpoint(e.path) for e in entries}
    cards = {n: ck.card for n, ck in ckpts.items()}
    megabytes = {e.name: e.path.stat().st_size / 2**20 for e in entries}
    rows = ["| model | steps | batch | epochs | wall time | CPU time | classifier-FID (floor) | precision / recall "
            "| classes | label acc. | confidence | MB |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, c in cards.items():
        m = c.get("metrics") or {}
        label = f"`{name}`" + (f" (2-D latent 5-NN acc. {m['latent_knn_accuracy']:.2f})"
                               if "latent_knn_accuracy" in m else "")
        acc = f"{m['label_accuracy']:.1%}" if "label_accuracy" in m else ""
        rows.append(f"| {label} | {c['steps']:,} | {c['batch_size']} | {c['epochs']:,.0f} | {c['wall_time_s']:.0f} s "
                    f"| {_cpu(c)} "
                    f"| {m.get('classifier_fid', float('nan')):.2f} ({m.get('fid_floor', float('nan')):.2f}) "
                    f"| {m.get('precision', float('nan')):.2f} / {m.get('recall', float('nan')):.2f} "
                    f"| {m.get('classes_covered', '?')}/{m.get('num_classes', 10)} | {acc} "
                    f"| {m.get('mean_confidence', float('nan')):.2f} | {megabytes[name]:.1f} |")
    total = sum(c["wall_time_s"] for c in cards.values())
    timed = [c["cpu_time_s"] for c in cards.values() if isinstance(c.get("cpu_time_s"), (int, float))]
    cpu = (f"; CPU time {sum(timed) / 60:.1f} minutes, summed over the {len(timed)} of {len(cards)} cards that "
           f"record it"
           if timed else "")
    rows += ["", f"Training time of the set, summed from the cards: {total / 60:.1f} minutes of wall time{cpu}.",
             "", "Quality bars (issue 13), as measured:", ""]
    for ds in dict.fromkeys(r.dataset for r in RECIPES):
        mine = {n: c for n, c in cards.items() if c["dataset"] == ds and c.get("metrics")}
        plain = {n: c for n, c in mine.items() if c.get("family") == "gan" and "label_accuracy" not in c["metrics"]}
        if plain:
            n, c = min(plain.items(), key=lambda kv: kv[1]["metrics"]["fid_over_floor"])
            m = c["metrics"]
            rows.append(f"- {ds}, best unconditional GAN `{n}`: classifier-FID {m['classifier_fid']:.2f} = "
                        f"{m['fid_over_floor']:.1f}x the floor {m['fid_floor']:.2f} "
                        f"({_met(m['fid_over_floor'] <= BEST_GAN_X)}: <= {BEST_GAN_X:g}x); precision "
                        f"{m['precision']:.2f}, recall {m['recall']:.2f} "
                        f"({_met(min(m['precision'], m['recall']) >= PR_BAR)}: >= {PR_BAR:g}); classes "
                        f"{m['classes_covered']}/{m['num_classes']}.")
        for n, c in mine.items():
            m, preset = c["metrics"], BY_NAME[n].preset if n in BY_NAME else c.get("preset")
            if preset in FID_X_BAR:
                bar = FID_X_BAR[preset]
                line = (f"- {ds}, `{n}`: {m['fid_over_floor']:.1f}x the floor ({_met(m['fid_over_floor'] <= bar)}: "
                        f"<= {bar:g}x)")
                if "label_accuracy" in m:
                    line += (f"; label accuracy {m['label_accuracy']:.1%} "
                             f"({_met(m['label_accuracy'] >= LABEL_ACCURACY_BAR)}: >= {LABEL_ACCURACY_BAR:.0%})")
                if preset == "wgan-gp":
                    t = estimate_tracks_quality(ckpts[n].recorded_run)
                    line += ("; recorded run: none (built before recorded runs)" if t is None else
                             f"; recorded run: the critic's estimate {t['first']:.2f} -> {t['end']:.2f}, "
                             f"rank correlation with classifier-FID {t['rho']:.2f} over {t['points']} "
                             f"measurements (lesson 4) ({_met(t['rho'] >= TRACKING_BAR)}: >= {TRACKING_BAR:g})")
                rows.append(line + ".")
            elif c.get("family") == "vae":
                line = (f"- {ds}, `{n}`: classes {m['classes_covered']}/{m['num_classes']}, recall "
                        f"{m['recall']:.2f}, mean classifier confidence {m['mean_confidence']:.2f}")
                if preset == "conv-vae":
                    ok = (m["classes_covered"] == m["num_classes"] and m["recall"] >= CONV_VAE_BARS["recall"]
                          and m["mean_confidence"] >= CONV_VAE_BARS["mean_confidence"])
                    line += f" ({_met(ok)}: all classes, recall >= 0.8, confidence >= 0.85)"
                if "latent_knn_accuracy" in m:
                    line += (f"; 2-D latent: 5-NN accuracy {m['latent_knn_accuracy']:.2f} "
                             f"({_met(m['latent_knn_accuracy'] >= LATENT_KNN_BAR)}: >= {LATENT_KNN_BAR:g}), "
                             f"silhouette {m['latent_silhouette']:.2f}")
                rows.append(line + ".")
    return "\n".join(rows) + "\n"
