"""Time to quality (issue 13): how good each preset gets on MNIST and Fashion-MNIST after 15, 30, 60
(and 300) seconds of training on ONE torch thread, with the metrics the dashboard shows plus
precision and recall.

    OMP_NUM_THREADS=1 python bench/time_to_quality.py [--presets gan,dcgan,...] \
        [--datasets mnist,fashion-mnist] [--at 15,30,60] [--n 2000] [--jsonl FILE] \
        [--set KEY=JSON ...]   # a preset with one change, e.g. --set loss='"hinge"' --set spectral_norm=true
    python bench/time_to_quality.py --table bench/time-to-quality-2core-cpu.jsonl   # the README's table

The clock is CPU seconds of the training thread (time.thread_time) with torch.set_num_threads(1),
not wall time: on a shared machine wall time measures the other processes' load (the bench prints
the wall time beside it). With one intra-op thread every training op runs on this thread, so its CPU
seconds are what an idle core would take in wall time (to within cache and turbo effects).

The loop is the Trainer's inner loop without its thread, grids and logging: the model's preset with
its defaults, the default TrainConfig batch (64) drawn by Dataset.batches (shuffled epochs, seeded as
the Trainer seeds them), model.fit_data once (on the clock), model.training_step per step. At each checkpoint the clock stops, the model
is measured with genlib.metrics.evaluate(model, dataset, n, LIVE_METRICS + precision, recall) on n
samples (evaluation is not training time), then training goes on. 'img/s' = steps x batch / CPU s.

classifier-FID is the Fréchet distance in genlib's own classifier's 128-D features for the dataset,
NOT the Inception FID: compare it only with its floor (real held-out images against the reference
half, genlib.metrics.floor_fid at the same n; the estimate is biased upward at small n).
"""
from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

from common import machine  # noqa: E402  (puts the repo on sys.path)

import torch  # noqa: E402

import genlib  # noqa: E402
from genlib import metrics  # noqa: E402
from genlib.models import PRESETS  # noqa: E402
from genlib.sampling import eval_mode  # noqa: E402

WHICH = tuple(metrics.LIVE_METRICS) + ("precision", "recall")
clock = time.thread_time      # CPU seconds of this thread (one torch thread: all training runs here)


def run(preset: str, data, dataset: str, at: list[float], n: int, batch: int, seed: int = 0,
        overrides: dict | None = None):
    """Yield one row per checkpoint."""
    torch.manual_seed(seed)
    model = genlib.make_model(preset, data, **(overrides or {}))
    model.train()
    batches = data.batches(batch, generator=torch.Generator().manual_seed(seed + 1))
    wall0, t0 = time.perf_counter(), clock()
    model.fit_data(data)          # as the Trainer does (a self-conditioned GAN's clusters): training time
    trained, step = clock() - t0, 0
    wall_train = time.perf_counter() - wall0
    for target in at:
        t0, w0 = clock(), time.perf_counter()
        while trained + clock() - t0 < target:
            x, y = next(batches)
            losses = model.training_step(x, y)
            step += 1
        trained += clock() - t0
        wall_train += time.perf_counter() - w0
        bad = [k for k, v in losses.items() if not torch.isfinite(torch.as_tensor(v)).all()]
        e0 = clock()
        with eval_mode(model):
            m = metrics.evaluate(model, dataset, n, WHICH)
        model.train()
        yield {"preset": preset, "dataset": dataset, "at": target, "cpu_s": round(trained, 2),
               "wall_train_s": round(wall_train, 1), "wall_s": round(time.perf_counter() - wall0, 1),
               "steps": step, "epochs": round(step / data.steps_per_epoch(batch), 2),
               "img_per_s": round(step * batch / trained, 1), "eval_cpu_s": round(clock() - e0, 1),
               "nonfinite": bad, **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in m.items()}}


def fmt(r: dict, floor: float) -> str:
    lab = r.get("label_accuracy")
    return (f"{r['preset']:<13} {r['at']:>4g} {r['cpu_s']:>6.1f} {r['wall_train_s']:>6.0f} {r['steps']:>6} "
            f"{r['img_per_s']:>6.0f} {r['classifier_fid']:>8.2f} {r['classifier_fid'] / floor:>7.1f} "
            f"{r['precision']:>5.2f} {r['recall']:>5.2f} {r['classes_covered']:>5.0f}/10 "
            f"{r['mean_confidence']:>6.3f} {('%.3f' % lab) if lab is not None else '-':>6}"
            + (f"  non-finite loss: {','.join(r['nonfinite'])}" if r["nonfinite"] else ""))


HEADER = (f"{'preset':<13} {'at':>4} {'CPU s':>6} {'wall s':>6} {'steps':>6} {'img/s':>6} {'cls-FID':>8} "
          f"{'x floor':>7} {'prec':>5} {'rec':>5} {'classes':>7} {'conf':>6} {'label':>6}")


def cell(r: dict) -> str:
    """One time-to-quality cell: classifier-FID / floor, precision / recall, classes, confidence, label."""
    x = r["classifier_fid"] / r["floor"]
    lab = f", label {r['label_accuracy'] * 100:.0f}%" if r.get("label_accuracy") is not None else ""
    return (f"{x:.1f}×" if x < 10 else f"{x:.0f}×") + (f", {r['precision']:.2f}/{r['recall']:.2f}, "
                                                        f"{r['classes_covered']:.0f}/10, {r['mean_confidence']:.2f}{lab}")


def table(rows: list[dict]) -> str:
    """The README's markdown table from --jsonl rows: one line per (dataset, preset, overrides, label),
    a column per checkpoint; a later row for the same cell replaces an earlier one. A row's optional
    'label' names it in place of its overrides (e.g. a preset as it was before it changed)."""
    runs: dict[tuple, dict[float, dict]] = {}
    for r in rows:
        key = (r["dataset"], r["preset"], json.dumps(r.get("overrides") or {}), r.get("label", ""))
        runs.setdefault(key, {})[r["at"]] = r
    ats = sorted({a for d in runs.values() for a in d})
    out = ["| data, preset | img/s (CPU) | " + " | ".join(f"{a:g} CPU-s" for a in ats) + f" | training wall s ({ats[-1]:g} CPU-s) |",
           "|---|---:|" + "---|" * len(ats) + "---:|"]
    for (dataset, preset, ov, label), d in runs.items():
        name = {"mnist": "MNIST", "fashion-mnist": "Fashion"}.get(dataset, dataset) + " " + preset
        name += f" ({label})" if label else "".join(f" `{k}={json.dumps(v)}`" for k, v in json.loads(ov).items())
        last = d[max(d)]
        cells = [(f"**{cell(d[a])}**" if a == ats[-1] else cell(d[a])) if a in d else "–" for a in ats]
        out.append(f"| {name} | {last['img_per_s']:,.0f} | " + " | ".join(cells) + f" | {last['wall_train_s']:.0f} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", default=",".join(PRESETS), help="default: every preset in genlib.models.PRESETS")
    ap.add_argument("--datasets", default="mnist,fashion-mnist")
    ap.add_argument("--at", default="15,30,60", help="checkpoints, CPU seconds of training")
    ap.add_argument("--n", type=int, default=2000, help="samples per measurement (and real images for the floor)")
    ap.add_argument("--batch", type=int, default=genlib.TrainConfig().batch_size)
    ap.add_argument("--jsonl", default="", help="also append one JSON line per checkpoint here")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                    help="a config field of every preset run, its value as JSON (repeatable), e.g. "
                         "--set loss='\"hinge\"' --set spectral_norm=true")
    ap.add_argument("--table", nargs="+", metavar="JSONL", help="print the markdown table of these --jsonl files "
                    "(nothing is trained)")
    args = ap.parse_args()
    if args.table:
        print(table([json.loads(line) for f in args.table for line in open(f) if line.strip()]))
        return
    overrides = {k: json.loads(v) for k, v in (kv.split("=", 1) for kv in args.set)}
    torch.set_num_threads(1)
    at = sorted(float(s) for s in args.at.split(","))
    t_start = time.perf_counter()
    print(machine("cpu", f"clock = CPU seconds of the training thread (time.thread_time), one torch thread; "
                         f"batch {args.batch}; metrics of n={args.n} samples"
                         + (f"; every preset with {overrides}" if overrides else "")), flush=True)
    for dataset in args.datasets.split(","):
        data = genlib.load_dataset(dataset, download=False)
        floor = metrics.floor_fid(dataset, n=args.n)
        print(f"# {dataset}: {data.split} split ({len(data):,} images); {metrics.FID_LABEL}; "
              f"floor (real held-out vs reference half, n={args.n}) = {floor:.3f}", flush=True)
        print(HEADER, flush=True)
        for preset in args.presets.split(","):
            try:
                for r in run(preset, data, dataset, at, args.n, args.batch, overrides=overrides):
                    r["floor"], r["overrides"] = round(floor, 4), overrides
                    print(fmt(r, floor), flush=True)
                    if args.jsonl:
                        with open(args.jsonl, "a") as f:
                            f.write(json.dumps(r) + "\n")
            except (ValueError, RuntimeError) as e:    # a preset that does not fit the dataset
                print(f"{preset:<13} skipped: {type(e).__name__}: {e}", flush=True)
    print(f"# total wall {time.perf_counter() - t_start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
