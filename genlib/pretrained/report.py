"""The README's table and quality bars, written from the shipped files' cards (so the two cannot
disagree): ``python -m genlib.pretrained table``."""
from __future__ import annotations

import os

from ..checkpoint import load_checkpoint
from .recipes import RECIPES, list_pretrained


def _met(ok: bool) -> str:
    return "met" if ok else "**not met**"


def report(folder: str | os.PathLike | None = None) -> str:
    """Markdown: one row per shipped model from its card, then each quality bar of the issue with
    the value measured and whether it is met. ``python -m genlib.pretrained table`` prints it."""
    entries = list_pretrained(root=folder)
    cards = {e.name: load_checkpoint(e.path).card for e in entries}
    megabytes = {e.name: e.path.stat().st_size / 2**20 for e in entries}
    rows = ["| model | steps | batch | epochs | wall time | classifier-FID (floor) | precision / recall "
            "| classes | label acc. | confidence | MB |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, c in cards.items():
        m = c.get("metrics") or {}
        label = f"`{name}`" + (f" (2-D latent 5-NN acc. {m['latent_knn_accuracy']:.2f})"
                               if "latent_knn_accuracy" in m else "")
        acc = f"{m['label_accuracy']:.1%}" if "label_accuracy" in m else ""
        rows.append(f"| {label} | {c['steps']:,} | {c['batch_size']} | {c['epochs']:,.0f} | {c['wall_time_s']:.0f} s "
                    f"| {m.get('classifier_fid', float('nan')):.2f} ({m.get('fid_floor', float('nan')):.2f}) "
                    f"| {m.get('precision', float('nan')):.2f} / {m.get('recall', float('nan')):.2f} "
                    f"| {m.get('classes_covered', '?')}/{m.get('num_classes', 10)} | {acc} "
                    f"| {m.get('mean_confidence', float('nan')):.2f} | {megabytes[name]:.1f} |")
    total = sum(c["wall_time_s"] for c in cards.values())
    rows += ["", f"Training time of the set, summed from the cards: {total / 60:.1f} minutes.", "",
             "Quality bars, as measured:", ""]
    for ds in dict.fromkeys(r.dataset for r in RECIPES):
        mine = {n: c for n, c in cards.items() if c["dataset"] == ds and c.get("metrics")}
        gans = {n: c for n, c in mine.items() if c.get("family") == "gan"}
        if gans:
            best, c = min(gans.items(), key=lambda kv: kv[1]["metrics"]["classifier_fid"])
            m = c["metrics"]
            rows.append(f"- {ds}, best GAN `{best}`: classes covered {m['classes_covered']}/{m['num_classes']} "
                        f"({_met(m['classes_covered'] == m['num_classes'])}); precision {m['precision']:.2f}, "
                        f"recall {m['recall']:.2f} ({_met(min(m['precision'], m['recall']) >= 0.8)}); "
                        f"classifier-FID {m['classifier_fid']:.2f} = {m['fid_over_floor']:.2f}x the floor "
                        f"{m['fid_floor']:.2f} ({_met(m['fid_over_floor'] <= 2)}).")
            plain = {n: c for n, c in gans.items() if "label_accuracy" not in c["metrics"]}
            if plain:
                n, c = min(plain.items(), key=lambda kv: kv[1]["metrics"]["classifier_fid"])
                m = c["metrics"]
                rows.append(f"  Best unconditional GAN `{n}`: classes {m['classes_covered']}/{m['num_classes']}, "
                            f"precision {m['precision']:.2f}, recall {m['recall']:.2f}, classifier-FID "
                            f"{m['classifier_fid']:.2f} = {m['fid_over_floor']:.1f}x the floor.")
        for n, c in mine.items():
            m = c["metrics"]
            if "label_accuracy" in m:
                rows.append(f"- {ds}, `{n}` label accuracy {m['label_accuracy']:.1%} "
                            f"({_met(m['label_accuracy'] >= 0.95)}).")
            if c.get("family") == "vae":
                line = (f"- {ds}, `{n}`: mean classifier confidence {m['mean_confidence']:.2f}, classes covered "
                        f"{m['classes_covered']}/{m['num_classes']}")
                if "latent_knn_accuracy" in m:
                    line += (f"; 2-D latent: 5-NN accuracy {m['latent_knn_accuracy']:.2f}, "
                             f"silhouette {m['latent_silhouette']:.2f}")
                rows.append(line + ".")
    return "\n".join(rows) + "\n"
