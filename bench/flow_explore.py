"""Flow matching: quality against seconds of training on ONE torch thread (issue 17).

    OMP_NUM_THREADS=1 python bench/flow_explore.py ring flow batch=256 lr=2e-3 --seconds 20

Trains by process CPU time (evaluation excluded; on a shared machine a 1-thread process's CPU
time is close to its wall time alone; the wall time is printed too) and prints the metrics at checkpoints:
toys: genlib.metrics.toy_mode_metrics on 2,500 samples; images: genlib.metrics.evaluate(which=LIVE_METRICS) on 1,000 samples.
"""
from __future__ import annotations

import argparse
import sys
import time

import common  # noqa: F401  (sys.path)
import torch

import genlib
from genlib.metrics import LIVE_METRICS, evaluate as evaluate_metrics
from genlib.metrics.scores import toy_mode_metrics
from genlib.models import make_model


def parse(items):
    out = {}
    for it in items:
        k, v = it.split("=")
        if "," in v:
            out[k] = tuple(int(a) for a in v.split(",") if a)
        else:
            for typ in (int, float):
                try:
                    out[k] = typ(v)
                    break
                except ValueError:
                    continue
            else:
                out[k] = {"true": True, "false": False}.get(v, v)
    return out


def evaluate(model, data, name, n=2500):
    if not data.is_image:
        gen = torch.Generator().manual_seed(0)
        z = model.prior(n, generator=gen)
        labels = (torch.arange(n) % data.num_classes) if model.config.conditional else None
        x = model.sample(n, labels=labels, z=z)
        m = toy_mode_metrics(x, data.modes, float(data.mode_std), labels=labels)
        return {k: m[k] for k in ("toy_modes_covered", "toy_high_quality", *(("label_accuracy",) if labels is not None else ()))}
    return evaluate_metrics(model, name, n=1000, which=LIVE_METRICS)   # classifier-FID etc. at n = 1,000


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dataset")
    ap.add_argument("preset")
    ap.add_argument("overrides", nargs="*")
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--evals", type=str, default="5,10,15,20")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--save", type=str, default="")
    a, rest = ap.parse_known_args()
    a.overrides = a.overrides + rest
    torch.set_num_threads(1)
    data = genlib.load_dataset(a.dataset)
    torch.manual_seed(a.seed)
    ov = parse(a.overrides)
    model = make_model(a.preset, data, **ov)
    evals = [float(s) for s in a.evals.split(",")]
    batches = data.batches(a.batch, generator=torch.Generator().manual_seed(a.seed + 1))
    train_s, wall_s, steps, losses = 0.0, 0.0, 0, []
    print(f"# {a.dataset} {a.preset} {ov} batch {a.batch} seed {a.seed} params {model.num_parameters():,} "
          f"threads {torch.get_num_threads()}", flush=True)
    for target in evals:
        while train_s < target:
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(10):
                out = model.training_step(*next(batches))
            losses.append(float(out["loss"]))
            train_s += time.process_time() - c0
            wall_s += time.perf_counter() - t0
            steps += 10
        t0 = time.perf_counter()
        m = evaluate(model, data, a.dataset)
        ev = time.perf_counter() - t0
        print(f"cpu={train_s:6.1f}s wall={wall_s:6.1f}s steps={steps:6d} img/s={steps * a.batch / train_s:8.0f} "
              f"loss={sum(losses[-5:]) / len(losses[-5:]):.4f} "
              + " ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in m.items())
              + f" (eval {ev:.1f}s)", flush=True)
    if a.save:
        genlib.save_checkpoint(a.save, model, note=f"bench/flow_explore.py {' '.join(sys.argv[1:])}")


if __name__ == "__main__":
    main()
