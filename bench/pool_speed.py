"""One run in a pool worker process against the same run on a Trainer thread, no UI (issue 18):
images/s on the Trainer's own clock, two tries each, one torch thread, the Train page's cadence
(log every 15, grids every 100, the live metric every 300 steps).

    OMP_NUM_THREADS=1 python bench/pool_speed.py [vae|gan|dcgan] [--seconds 10]
"""
from __future__ import annotations

import argparse
import time

import common  # noqa: F401  (puts the repo on sys.path)
import torch

import genlib
from dashboard import measure
from genlib.train.pool import DataRef, Pool, RunSpec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("preset", nargs="?", default="vae")
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    data = genlib.load_dataset("mnist", download=False)
    cfg = genlib.TrainConfig(steps=100_000, batch_size=64, threads=1, log_every=15, sample_every=100, metric_every=300)
    factory = measure.live_metric_factory(data)
    out: dict[str, list[int]] = {"pool": [], "thread": []}
    with Pool(1, publish_s=0.25) as pool:
        for _ in range(2):
            torch.manual_seed(0)
            run = pool.submit(RunSpec.new(genlib.make_model(args.preset, data), data, cfg, ref=DataRef("mnist"),
                                          metric=factory), owner="bench")
            while run.state != "running":
                time.sleep(0.05)
            time.sleep(args.seconds)
            run.stop()
            run.wait(60)
            s = run.snapshot()
            out["pool"].append(round(s.step * cfg.batch_size / s.elapsed))
    for _ in range(2):
        torch.manual_seed(0)
        t = genlib.Trainer(genlib.make_model(args.preset, data), data, cfg, metric_fn=factory())
        t.start()
        time.sleep(args.seconds)
        t.stop()
        t.join()
        s = t.snapshot()
        out["thread"].append(round(s.step * cfg.batch_size / s.elapsed))
    print(f"{args.preset} images/s, pool worker: {out['pool']}, thread: {out['thread']}")


if __name__ == "__main__":
    main()
