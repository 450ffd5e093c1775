"""How long evaluation takes: genlib.metrics.evaluate (n=5000 by default) and its live set
(evaluate(..., LIVE_METRICS), n=1000, the Trainer's live metric) for an MLP GAN on MNIST, split into its parts.

    python bench/metrics.py [--n 5000] [--quick-n 1000] [--steps 200] [--threads 1] [--repeats 3]

The GAN is trained for --steps first (its quality does not change the timing). 'cold' includes
loading the test split and computing the reference statistics (10,000 images through the
classifier); 'warm' is a repeat with them cached in memory, what a second evaluation in the same
process (the dashboard, ``compare``) costs. classifier_fid is NOT the Inception FID. Note the
machine's load: on a shared CPU every number here moves with the other processes.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from common import machine

from genlib import Trainer, TrainConfig, load_dataset, make_model
from genlib import metrics as M
from genlib.classifier import load_classifier
from genlib.sampling import classify_batched


def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t0, out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=5000)
    p.add_argument("--quick-n", type=int, default=1000)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(machine("cpu"))

    data = load_dataset("mnist")
    torch.manual_seed(0)
    gan = make_model("gan", data)
    Trainer(gan, data, TrainConfig(steps=args.steps, threads=args.threads)).run()

    t_cold, res = timed(M.evaluate, gan, "mnist", args.n)
    print(f"evaluate n={args.n}, cold: {t_cold:.2f} s  (classifier_fid {res['classifier_fid']:.2f}, "
          f"classes_covered {res['classes_covered']}, sampling {res['sample_seconds']:.3f} s)")
    warm = [timed(M.evaluate, gan, "mnist", args.n)[0] for _ in range(args.repeats)]
    print(f"evaluate n={args.n}, warm: median {np.median(warm):.2f} s of {args.repeats}")

    ref = M.reference_dataset("mnist")
    clf = load_classifier("mnist")
    stats = M.reference_stats(ref, clf)
    x, _ = M.draw_samples(gan, args.n)
    t_feat, (feats, probs) = timed(classify_batched, clf, x)
    t_fid, _ = timed(lambda: M.frechet_distance(*M.gaussian_stats(feats), stats["mu"], stats["sigma"]))
    t_kid, _ = timed(M.kernel_distance, stats["feats"], feats)
    t_prdc, _ = timed(M.prdc, stats["feats"], feats)
    print(f"  parts: classifier features {t_feat:.2f} s, classifier_fid {t_fid:.3f} s, "
          f"kid (100 x 1000) {t_kid:.2f} s, prdc (k=5) {t_prdc:.2f} s")

    quick = [timed(M.evaluate, gan, "mnist", args.quick_n, M.LIVE_METRICS)[0] for _ in range(args.repeats)]
    print(f"live metrics n={args.quick_n}, warm: median {np.median(quick):.3f} s of {args.repeats} "
          f"(min {min(quick):.3f})")


if __name__ == "__main__":
    main()
