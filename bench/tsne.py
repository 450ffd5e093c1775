"""How long the latent-space page's 2-D projections take: genlib.latent.project_2d's t-SNE
(scikit-learn, PCA init, perplexity 30) at 500 / 1,000 / 2,000 points, and PCA.

    python bench/tsne.py [--dim 20] [--threads 1,2] [--max-iter 500,1000] [--sizes 500,1000,2000]

The points are a seeded mixture of 10 Gaussians in --dim dimensions (a VAE's latent codes of 10
classes look like that): centres ~ N(0, 4 I), points ~ N(centre, I). Each row is the best of --repeats runs, on
an empty cache. 'trust' is sklearn's trustworthiness (k=10): 1 = every 2-D neighbourhood was a
neighbourhood in the latent space too, so a faster setting that keeps it has lost nothing visible.
--threads: the OpenMP thread caps to compare (project_2d's default is genlib.device.default_threads(),
one core left free). Note the machine's load: on a shared CPU, more threads can be far slower.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from common import machine

from genlib.device import default_threads
from genlib.latent import project_2d


def mixture(n: int, dim: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = 2 * rng.normal(size=(10, dim))                                     # (10, D) ~ N(0, 4 I)
    return (centres[rng.integers(0, 10, n)] + rng.normal(size=(n, dim))).astype(np.float32)


def timed(fn, repeats: int) -> tuple[float, np.ndarray]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dim", type=int, default=20, help="latent dimensions (the VAE preset's 20)")
    p.add_argument("--sizes", default="500,1000,2000")
    p.add_argument("--max-iter", default="500,1000", help="t-SNE iterations to compare (genlib uses 500)")
    p.add_argument("--threads", default=str(default_threads()), help="comma-separated, e.g. 1,2")
    p.add_argument("--repeats", type=int, default=1)
    a = p.parse_args()

    from sklearn.manifold import trustworthiness

    print(machine("cpu", f"dim={a.dim}"))
    print(f"{'method':<6} {'max_iter':>8} {'threads':>7} {'n':>6} {'seconds':>8} {'trust':>6}")
    for n in [int(s) for s in a.sizes.split(",")]:
        z = mixture(n, a.dim)
        rows = [("pca", "-", 1, lambda: project_2d(z, "pca", cache=None))]
        rows += [("tsne", it, th, lambda it=int(it), th=int(th): project_2d(z, "tsne", cache=None, max_iter=it,
                                                                            threads=th))
                 for it in a.max_iter.split(",") for th in a.threads.split(",")]
        for method, it, th, fn in rows:
            seconds, xy = timed(fn, a.repeats)
            trust = trustworthiness(z, xy, n_neighbors=10)
            print(f"{method:<6} {it:>8} {th:>7} {n:>6} {seconds:>8.2f} {trust:>6.3f}", flush=True)


if __name__ == "__main__":
    main()
