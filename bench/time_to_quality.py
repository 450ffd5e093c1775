"""Time to quality: how good the default GAN ('gan', and 'dcgan') and the default VAE ('vae') get
on MNIST after 15, 30 and 60 s of training on this machine, with the metrics the dashboard shows.

    python bench/time_to_quality.py [--at 15,30,60] [--presets gan,dcgan,vae] [--n 2000] [--device auto]

One run per model: a genlib.Trainer on its own thread with the preset's defaults and the default
TrainConfig (batch 64, genlib's default threads). At each checkpoint the run is paused, the model is
measured with genlib.metrics.evaluate(..., LIVE_METRICS) (n samples; the Trainer does not count a pause as
training, and neither does the clock here), then resumed. 'train s' is the wall time spent
training up to that checkpoint (the run stops between two steps, so a little over the target).

classifier-FID is the Fréchet distance in genlib's own MNIST classifier's 128-D features, NOT the
Inception FID: compare it only with its floor below (real held-out images against the reference
half, the same n). Its estimate is biased upward at small n, so n is the same for both.
"""
from __future__ import annotations

import argparse
import time

from common import machine, sync

import genlib
import torch
from genlib import metrics

# the targets for the GAN after 60 s of training
TARGET_AT, TARGET_CONFIDENCE, TARGET_CLASSES, TARGET_FID_X = 60.0, 0.85, 10, 5.0


def run(preset: str, data, device, at: list[float], n: int) -> list[dict]:
    torch.manual_seed(0)
    model = genlib.make_model(preset, data)
    trainer = genlib.Trainer(model, data, genlib.TrainConfig(steps=10**9), device=device)
    rows, trained = [], 0.0
    seg = time.perf_counter()
    trainer.start()
    try:
        for target in at:
            while trainer.is_alive and trained + time.perf_counter() - seg < target:
                time.sleep(min(0.02, max(0.0, target - trained - (time.perf_counter() - seg))))
            trainer.pause()
            while trainer.is_alive and trainer.state != "paused":
                time.sleep(0.002)
            trained += time.perf_counter() - seg
            if trainer.state == "error" or not trainer.is_alive:
                raise RuntimeError(f"{preset}: the run ended: {trainer.message}")
            t = time.perf_counter()
            m = metrics.evaluate(model, "mnist", n, metrics.LIVE_METRICS)
            sync(device)
            rows.append({"preset": preset, "at": target, "trained": trained, "steps": trainer.step,
                         "epoch": trainer.epoch, **m, "eval_s": time.perf_counter() - t})
            seg = time.perf_counter()
            trainer.resume()
    finally:
        trainer.stop()
        trainer.join()
    return rows


def verdict(row: dict, floor: float) -> str:
    misses = []
    if row["mean_confidence"] < TARGET_CONFIDENCE:
        misses.append(f"confidence {row['mean_confidence']:.2f} < {TARGET_CONFIDENCE}")
    if row["classes_covered"] < TARGET_CLASSES:
        misses.append(f"classes {row['classes_covered']:.0f} < {TARGET_CLASSES}")
    if row["classifier_fid"] > TARGET_FID_X * floor:
        misses.append(f"FID {row['classifier_fid'] / floor:.1f}x floor > {TARGET_FID_X:g}x")
    return "met" if not misses else "missed: " + ", ".join(misses)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--at", default="15,30,60", help="checkpoints, seconds of training")
    ap.add_argument("--presets", default="gan,dcgan,vae")
    ap.add_argument("--n", type=int, default=2000, help="samples per measurement (and real images for the floor)")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    at = sorted(float(s) for s in args.at.split(","))
    device = genlib.pick_device(args.device)
    t_start = time.perf_counter()
    data = genlib.load_dataset("mnist")
    ref = metrics.reference_dataset("mnist")
    genlib.configure_threads()          # what the Trainer will use; the live metrics run under it too
    floor = metrics.floor_fid("mnist", n=args.n)     # also computes and caches the reference statistics

    print(machine(device, f"MNIST {data.split} split ({len(data):,} images), default TrainConfig (batch 64), "
                          f"metrics of n={args.n} samples"))
    if data.note:
        print(f"# data: {data.note}")
    print(f"# reference: a fixed half of the MNIST {ref.split} split"
          + (", the split the models train on here (and the classifier saw images 0..7999 of it): not held out, "
             "so the floor is one for memorised data" if ref.split == data.split else ""))
    print(f"# {metrics.FID_LABEL}; floor = real held-out images vs the reference half, n={args.n}: {floor:.2f}")
    print(f"# targets for the GAN at {TARGET_AT:g} s: mean confidence >= {TARGET_CONFIDENCE}, "
          f"{TARGET_CLASSES}/10 classes, classifier-FID <= {TARGET_FID_X:g} x floor = {TARGET_FID_X * floor:.2f}")
    print(f"{'model':<6} {'at s':>5} {'train s':>7} {'steps':>6} {'epochs':>6} {'cls-FID':>8} {'x floor':>7} "
          f"{'classes':>7} {'confid.':>7} {'eval s':>6}  target (GAN at 60 s)")
    for preset in args.presets.split(","):
        for r in run(preset, data, device, at, args.n):
            target = verdict(r, floor) if preset in ("gan", "dcgan") and r["at"] == TARGET_AT else ""
            print(f"{preset:<6} {r['at']:>5g} {r['trained']:>7.1f} {r['steps']:>6} {r['epoch']:>6.2f} "
                  f"{r['classifier_fid']:>8.2f} {r['classifier_fid'] / floor:>7.1f} {r['classes_covered']:>5.0f}/10 "
                  f"{r['mean_confidence']:>7.3f} {r['eval_s']:>6.1f}  {target}", flush=True)
    print(f"# total {time.perf_counter() - t_start:.0f} s")


if __name__ == "__main__":
    main()
