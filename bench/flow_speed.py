"""Flow U-Net speed on ONE torch thread: training images/s, and seconds for 64 samples at 20 Euler steps.

Wall time and process CPU time are both printed: on a shared machine the CPU time of a 1-thread
process is close to what it would take alone (the wall time includes waiting for a core).

    OMP_NUM_THREADS=1 python bench/flow_speed.py 28 16,24,32 [patch]
"""
from __future__ import annotations

import sys
import time

import common  # noqa: F401
import torch

from genlib.models import make_model


def main():
    torch.set_num_threads(1)
    side = int(sys.argv[1]) if len(sys.argv) > 1 else 28
    widths = [int(w) for w in (sys.argv[2] if len(sys.argv) > 2 else "16,24,32").split(",")]
    patch = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    chans = 3 if side == 32 else 1
    print(common.machine(extra=f"{side}x{side}x{chans}"))
    for cond in (False, True):
        for w in widths:
            torch.manual_seed(0)
            m = make_model("cflow" if cond else "flow", data_shape=(chans, side, side), num_classes=10,
                           arch="conv", width=w, patch=patch)
            x, y = torch.rand(128, chans, side, side), torch.randint(10, (128,))
            m.training_step(x, y)
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(5):
                m.training_step(x, y)
            train, train_cpu = 5 * 128 / (time.perf_counter() - t0), 5 * 128 / (time.process_time() - c0)
            m.sample(8)
            t0, c0 = time.perf_counter(), time.process_time()
            m.sample(64, steps=20)
            s, s_cpu = time.perf_counter() - t0, time.process_time() - c0
            print(f"{'cflow' if cond else 'flow':5s} width {w:3d} patch {patch} params {m.num_parameters():9,d} "
                  f"train {train:6.0f} img/s wall, {train_cpu:6.0f} per CPU-s (batch 128)  "
                  f"64 samples x 20 Euler steps {s:5.2f} s wall, {s_cpu:5.2f} CPU-s"
                  f"{' (guided: 2 calls/step)' if cond else ''}", flush=True)


if __name__ == "__main__":
    main()
