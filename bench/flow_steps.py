"""Flow: sampling steps against quality and time (a 2-D toy checkpoint), on ONE torch thread.

    OMP_NUM_THREADS=1 python bench/flow_explore.py grid flow --seconds 20 --evals 20 --save /tmp/grid.pt
    OMP_NUM_THREADS=1 python bench/flow_steps.py /tmp/grid.pt
"""
from __future__ import annotations

import sys
import time

import common  # noqa: F401
import torch

import genlib
from genlib.metrics.scores import toy_mode_metrics


def main():
    torch.set_num_threads(1)
    model = genlib.load_checkpoint(sys.argv[1]).model
    data = genlib.load_dataset(model_dataset(sys.argv[1]))
    z = model.prior(2500, generator=torch.Generator().manual_seed(0))
    print(common.machine(extra=sys.argv[1]))
    for sampler in ("euler", "heun"):
        for steps in (1, 2, 4, 8, 20, 50):
            c0 = time.process_time()
            x = model.sample(2500, z=z, steps=steps, sampler=sampler)
            cpu = time.process_time() - c0
            m = toy_mode_metrics(x, data.modes, float(data.mode_std))
            print(f"{sampler:5s} steps {steps:3d} ({steps * (2 if sampler == 'heun' else 1):3d} net calls) "
                  f"modes {m['toy_modes_covered']}/{m['toy_modes_total']} high_quality {m['toy_high_quality']:.3f} "
                  f"2500 samples {cpu:.3f} CPU-s", flush=True)


def model_dataset(path):
    return genlib.load_checkpoint(path).card.get("dataset") or ("grid" if "grid" in path else "ring")


if __name__ == "__main__":
    main()
