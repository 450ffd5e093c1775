"""2-D (or 3-D) views of latents for a scatter plot: identity, PCA or t-SNE, behind a small cache.

    xy = project_2d(z, "tsne")          # (n, 2) float32; a redraw with the same z is a cache hit
"""
from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

import numpy as np
import torch

from ..device import default_threads

class ProjectionCache:
    """A small thread-safe LRU of projections keyed on the latents' bytes and the settings.

    ``hits`` / ``misses`` count lookups, so a test or a page can tell that a redraw was free.
    """

    def __init__(self, maxsize: int = 32):
        self.maxsize = maxsize
        self.hits = 0
        self.misses = 0
        self._items: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(z: np.ndarray, *settings) -> tuple:
        return (hashlib.sha1(np.ascontiguousarray(z).tobytes()).hexdigest(), z.shape, str(z.dtype), *settings)

    def get(self, key: tuple) -> np.ndarray | None:
        with self._lock:
            if key not in self._items:
                self.misses += 1
                return None
            self.hits += 1
            self._items.move_to_end(key)
            return self._items[key].copy()

    def put(self, key: tuple, value: np.ndarray) -> None:
        with self._lock:
            self._items[key] = value.copy()
            self._items.move_to_end(key)
            while len(self._items) > self.maxsize:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._items)


projection_cache = ProjectionCache()

PROJECTIONS = ("auto", "identity", "pca", "tsne")

# t-SNE settings chosen for speed on a 2-core laptop (bench/tsne.py measures them): PCA init (stable
# and reproducible global layout, Kobak & Berens 2019), perplexity 30 (van der Maaten & Hinton 2008's
# usual value), 500 iterations (250 of early exaggeration + 250), the learning rate 'auto' = n / 12.
TSNE_PERPLEXITY = 30.0
TSNE_MAX_ITER = 500


def project_2d(z, method: str = "auto", seed: int = 0, n_components: int = 2,
               cache: ProjectionCache | None = projection_cache, perplexity: float = TSNE_PERPLEXITY,
               max_iter: int = TSNE_MAX_ITER, threads: int | None = None) -> np.ndarray:
    """Latents (n, D) -> float32 numpy (n, n_components) for a scatter plot (n_components 2 or 3).

    'identity': the first n_components dimensions (zero-padded when D is smaller); 'pca' and 'tsne'
    use scikit-learn; 'auto' is identity when D <= n_components, else t-SNE. Results are cached on
    (bytes of z, method, seed, settings); ``cache=None`` recomputes. ``threads`` caps t-SNE's OpenMP
    threads (default ``genlib.device.default_threads()``, one core left free, since on a shared CPU
    more threads can be slower; bench/tsne.py --threads compares caps). At that default,
    bench/results-2core-cpu.txt records 3.99 s for 2,000 points of a 16-D VAE's latents.
    """
    z = np.asarray(z.detach().cpu() if isinstance(z, torch.Tensor) else z, dtype=np.float32)
    if z.ndim != 2:
        raise ValueError(f"z must be (n, D), got shape {z.shape}")
    if n_components not in (2, 3):
        raise ValueError(f"n_components must be 2 or 3, got {n_components}")
    if method not in PROJECTIONS:
        raise ValueError(f"method must be one of {', '.join(PROJECTIONS)}, got {method!r}")
    if method == "auto":
        method = "identity" if z.shape[1] <= n_components else "tsne"
    key = ProjectionCache.key(z, method, seed, n_components, perplexity, max_iter)
    if cache is not None and (hit := cache.get(key)) is not None:
        return hit
    from threadpoolctl import threadpool_limits   # a scikit-learn dependency
    with threadpool_limits(threads or default_threads(), user_api="openmp"):
        out = _project(z, method, seed, n_components, perplexity, max_iter)
    if cache is not None:
        cache.put(key, out)
    return out


def _project(z: np.ndarray, method: str, seed: int, k: int, perplexity: float, max_iter: int) -> np.ndarray:
    n, d = z.shape
    if method == "identity":
        out = z[:, :k]
    elif method == "pca":
        from sklearn.decomposition import PCA
        out = PCA(n_components=min(k, d, n), random_state=seed).fit_transform(z)
    else:
        from sklearn.manifold import TSNE
        if n < 5:
            raise ValueError(f"t-SNE needs at least 5 points, got {n}")
        # sklearn requires perplexity < n; n / 3 keeps ~3 perplexities of neighbours available
        tsne = TSNE(n_components=k, init="pca", perplexity=min(perplexity, (n - 1) / 3),
                    learning_rate="auto", max_iter=max_iter, random_state=seed)
        out = tsne.fit_transform(z)
    out = np.asarray(out, dtype=np.float32)
    if out.shape[1] < k:  # 1-D latents (or fewer points than dims): pad with zeros
        out = np.concatenate([out, np.zeros((n, k - out.shape[1]), np.float32)], 1)
    return out
