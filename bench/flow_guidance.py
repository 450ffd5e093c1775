"""A conditional flow's guidance weight against classifier-FID, label accuracy, precision and recall
(how the shipped 28x28 cflows' weights were chosen; genlib/pretrained/recipes.py), on ONE torch thread.

    OMP_NUM_THREADS=1 python bench/flow_guidance.py pretrained/mnist-cflow.pt [--n 2000] [--w 1,1.2,1.5,2] [--steps 20]

Each weight samples n images from the same seeded noise and balanced labels (``genlib.metrics.evaluate``
at seed 0); the floor is real held-out images against the reference half at the same n.
classifier-FID is in genlib's classifier features, NOT the Inception FID.
"""
from __future__ import annotations

import argparse

import common  # noqa: F401  (puts the repo on sys.path)
import torch

import genlib
from genlib import metrics


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--w", default="1,1.2,1.5,2", help="guidance weights, comma-separated")
    ap.add_argument("--steps", type=int, default=20, help="Euler steps")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    ck = genlib.load_checkpoint(args.checkpoint)
    ds = ck.card["dataset"]
    floor = metrics.floor_metrics(ds, args.n)["classifier_fid"]
    print(common.machine(extra=f"bench/flow_guidance.py {args.checkpoint} --n {args.n} --steps {args.steps}"))
    print(f"# {ds}: floor (real held-out vs reference half, n={args.n}) = {floor:.2f}")
    for w in (float(v) for v in args.w.split(",")):
        m = ck.model.with_sampling(guidance=w, sample_steps=args.steps)
        r = metrics.evaluate(m, ds, n=args.n, which=("classifier_fid", "mean_confidence", "label_accuracy",
                                                       "precision", "recall"))
        print(f"w {w:4g}: classifier-FID {r['classifier_fid']:6.2f} = {r['classifier_fid'] / floor:4.1f}x the floor  "
              f"label accuracy {r['label_accuracy']:.3f}  confidence {r['mean_confidence']:.3f}  "
              f"precision {r['precision']:.2f}  recall {r['recall']:.2f}", flush=True)


if __name__ == "__main__":
    main()
