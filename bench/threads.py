"""Threads: images/s of the 'vae', 'gan' and 'dcgan' presets with 1 and 2 torch threads, headless
and beside a busy emulated UI thread: the measurement behind genlib.device.default_threads()
(one thread on <= 8 cores, leaving a core free for the UI and the OS).

    python bench/threads.py [--seconds 4] [--repeats 2] [--threads 1,2] [--presets vae,gan,dcgan]
                            [--ui-every 0.5] [--device auto]

The UI thread (bench/common.py FragmentEmulator) does what the Train page's live fragment does on
each rerun, every --ui-every seconds: trainer.snapshot(), the plotly loss figure serialised to JSON,
and the newest sample grid upscaled and encoded to PNG. Its frame times are printed too: a thread
count that trains faster but makes the UI stutter is not a better default.

Training is a genlib.Trainer on its own thread with the default TrainConfig (batch 64) on
Fashion-MNIST 28x28 (pixels do not change speed); each row counts steps over --seconds of wall time
after a 1.5 s warm-up. The configurations are run round-robin --repeats times and each row is the
median ('spread' = (max - min) / median over the repeats: a large one means the machine's load
moved, and the row says little).
"""
from __future__ import annotations

import argparse
import itertools
import time

from common import machine, measure_rate, median, percentile

import genlib
import torch
from genlib.device import default_threads


def one(preset: str, data, device, threads: int, ui_every: float | None, seconds: float) -> dict:
    torch.manual_seed(0)
    model = genlib.make_model(preset, data)
    trainer = genlib.Trainer(model, data, genlib.TrainConfig(steps=10**9, threads=threads), device=device)
    return measure_rate(trainer, seconds, ui_every=ui_every)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=4.0, help="measured wall time per row and repeat")
    ap.add_argument("--threads", default="1,2", help="torch thread counts to compare")
    ap.add_argument("--presets", default="vae,gan,dcgan")
    ap.add_argument("--ui-every", type=float, default=0.5, help="seconds between emulated UI frames")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    device = genlib.pick_device(args.device)
    data = genlib.load_dataset("fashion-mnist", device=device)
    threads = [int(t) for t in args.threads.split(",")]
    presets = args.presets.split(",")
    configs = list(itertools.product(presets, threads, (False, True)))
    t_start = time.perf_counter()
    print(machine(device, f"Fashion-MNIST 28x28, batch 64, {args.seconds:g} s per row after a 1.5 s warm-up, "
                          f"UI frame every {args.ui_every:g} s, {args.repeats} repeat(s)"))
    print("# UI = a Python thread emulating the Train page's live fragment (snapshot + plotly figure to JSON + "
          "PNG of the sample grid); UI ms = its frame time, median / 90th percentile")
    results: dict[tuple, list[dict]] = {c: [] for c in configs}
    for _ in range(args.repeats):
        for preset, th, ui in configs:
            results[preset, th, ui].append(one(preset, data, device, th, args.ui_every if ui else None, args.seconds))

    print(f"{'model':<7} {'threads':>7} {'UI':>4} {'img/s':>8} {'spread':>7} {'vs best':>8} {'UI ms med':>10} "
          f"{'UI ms p90':>10} {'frames':>6}")
    rate = {c: median([r["images_per_s"] for r in rs]) for c, rs in results.items()}
    for preset, th, ui in configs:
        rs = results[preset, th, ui]
        best = max(rate[preset, t, ui] for t in threads)
        ms = [m for r in rs for m in r.get("ui_ms", [])]
        all_rates = [r["images_per_s"] for r in rs]
        spread = (max(all_rates) - min(all_rates)) / rate[preset, th, ui]
        ui_cols = f"{median(ms):>10.0f} {percentile(ms, 0.9):>10.0f} {len(ms):>6}" if ui else f"{'-':>10} {'-':>10} {'-':>6}"
        print(f"{preset:<7} {th:>7} {'on' if ui else 'off':>4} {rate[preset, th, ui]:>8,.0f} {spread:>7.0%} "
              f"{rate[preset, th, ui] / best:>7.0%} {ui_cols}", flush=True)

    default = default_threads()
    print(f"\n# genlib.device.default_threads() = {default} on this machine ({device}); best thread count per model:")
    agree = True
    for preset in presets:
        best_head = max(threads, key=lambda t: rate[preset, t, False])
        best_ui = max(threads, key=lambda t: rate[preset, t, True])
        near = default in threads and rate[preset, default, True] >= 0.95 * rate[preset, best_ui, True]
        agree &= near
        print(f"#   {preset:<6} headless {best_head}, with UI {best_ui}"
              + (f"; the default is within 5% of the best with UI: {'yes' if near else 'no'}" if default in threads else ""))
    if default in threads and device.type == "cpu":
        print(f"# verdict: with a busy UI thread, default_threads()={default} is "
              f"{'as fast as any count tried (within 5%)' if agree else 'NOT the fastest for every model'}"
              " (a loaded machine's numbers are only indicative)")
    print("# the emulated UI leaves out Streamlit's own threads and the browser: bench/app_overhead.py compares "
          "the thread counts in the real app")
    print(f"# total {time.perf_counter() - t_start:.0f} s")


if __name__ == "__main__":
    main()
