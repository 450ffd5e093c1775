"""Latent-space tools: plain functions of a trained model (Keras' ``plot_latent_space(vae)``,
``interpolate_class(gen, a, b)``), used by the dashboard and from Python.

    z, y = encode_dataset(vae, data)            # posterior means (VAE) or prior draws (GAN)
    xy = project_2d(z, "tsne")                  # (n, 2), cached: a page redraws instantly
    images = interpolate(gan, z0, z1, steps=8, method="spherical")
    images = interpolate_classes(cgan, 2, 5)    # a digit between 2 and 5 (soft labels)

Every function that draws returns images in the data range ((N, C, H, W) in [0, 1]; raw points for
2-D toys), on the model's device. Latents are (D,) or (N, D) tensors. Conditional models need
``labels=``: a class index, (N,) ints, or (N, K) class weights (soft labels; rows sum to 1).
Out-of-distribution latents live in ``genlib.ood``.
"""
from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from .device import default_threads

Labels = int | torch.Tensor | None

# ----------------------------------------------------------------------------------------------
# Shared helpers (also used by genlib.ood)
# ----------------------------------------------------------------------------------------------


def prior_draw(model, n: int, seed: int = 0) -> torch.Tensor:
    """z ~ N(0, I) with the model's latent shape, drawn on the CPU so a seed gives the same z on any
    device, then moved to the model's device: (n, D)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, *model.latent_shape, generator=g).to(model.device)


def expand_labels(model, labels: Labels, n: int) -> torch.Tensor | None:
    """``labels`` as ``model.sample`` takes them for n samples: None for unconditional models; an int
    (or a (1,) / (1, K) tensor) is repeated n times; (n,) ints and (n, K) weights pass through."""
    if not model.config.conditional:
        return None
    if labels is None:
        raise ValueError(f"this {model.family} is conditional: pass labels= (a class index, (n,) ints "
                         f"or (n, {model.config.num_classes}) class weights)")
    labels = torch.as_tensor(labels, device=model.device)
    if labels.dim() == 0:
        return labels.long().expand(n).clone()
    if labels.shape[0] == 1 and n != 1:
        return labels.expand(n, *labels.shape[1:]).clone()
    return labels


def class_weights(a: int, b: int, t: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Soft labels (T, K): (1 - t) * onehot(a) + t * onehot(b) for each t in ``t`` (T,)."""
    t = torch.as_tensor(t, dtype=torch.float32).reshape(-1, 1)      # (T, 1)
    eye = torch.eye(num_classes)                                    # (K, K)
    return (1 - t) * eye[a] + t * eye[b]                            # (T, K)


@torch.no_grad()
def classifier_logits(classifier: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                      batch_size: int = 500) -> torch.Tensor:
    """Logits (N, K) on the CPU from any callable x -> logits (e.g. ``genlib.classifier``'s CNN).

    An ``nn.Module`` is run in eval mode on its own device and put back in the mode it was in.
    """
    module = classifier if isinstance(classifier, nn.Module) else None
    params = list(module.parameters()) if module is not None else []
    device = params[0].device if params else x.device
    was_training = module.training if module is not None else False
    if module is not None:
        module.eval()
    try:
        return torch.cat([classifier(x[i:i + batch_size].to(device)).float().cpu()
                          for i in range(0, len(x), batch_size)])
    finally:
        if module is not None:
            module.train(was_training)


@torch.no_grad()
def sample_batched(model, z: torch.Tensor, labels: torch.Tensor | None, batch_size: int = 500) -> torch.Tensor:
    """``model.sample`` over z (N, D) in batches (eval mode, so batches do not interact)."""
    return torch.cat([model.sample(len(z[i:i + batch_size]), z=z[i:i + batch_size],
                                   labels=None if labels is None else labels[i:i + batch_size])
                      for i in range(0, len(z), batch_size)])


@torch.no_grad()
def _posterior_at(vae, data, idx: torch.Tensor, batch_size: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
    """(mu, logvar) of q(z | x) for the examples ``data.get(idx)``, each (len(idx), D) on the CPU,
    in batches, in eval mode (so mu is what ``vae.encode`` returns). Every encoding here uses it."""
    if not vae.has_encoder:
        raise ValueError(f"a {vae.family} has no posterior")
    cond = vae.config.conditional
    was_training = vae.training
    vae.eval()
    try:
        mus, logvars = [], []
        for i in range(0, len(idx), batch_size):
            x, y = data.get(idx[i:i + batch_size])
            mu, logvar = vae.posterior(x.to(vae.device), y.to(vae.device) if cond else None)   # (B, D) each
            mus.append(mu.cpu())
            logvars.append(logvar.cpu())
    finally:
        vae.train(was_training)
    return torch.cat(mus), torch.cat(logvars)


# ----------------------------------------------------------------------------------------------
# Encoding a dataset, and 2-D views of the latents
# ----------------------------------------------------------------------------------------------


@torch.no_grad()
def encode_dataset(model, data=None, n: int = 2000, seed: int = 0, classifier=None,
                   batch_size: int = 500) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Latents of n points and their labels, on the CPU: (z (n, D), labels (n,) or None).

    VAE: posterior means mu(x) of ``data.subset(n, seed)`` and the data's labels. GAN (no encoder):
    z ~ N(0, I) and the labels of the generated samples: the conditioning labels (balanced
    0, 1, ..., K-1, ...) for conditional models, else the classifier's argmax when a classifier
    (x -> logits) is given, else None.
    """
    if model.has_encoder:
        if data is None:
            raise ValueError("encoding needs data= (a genlib Dataset)")
        sub = data.subset(n, seed)
        mu, _ = _posterior_at(model, sub, torch.arange(len(sub)), batch_size)  # (n, D): encode() = mu
        return mu, sub.y.cpu()
    z = prior_draw(model, n, seed)                                       # (n, D)
    if model.config.conditional:
        return z.cpu(), model.default_labels(n).cpu()
    if classifier is not None:
        x = sample_batched(model, z, None, batch_size)
        return z.cpu(), classifier_logits(classifier, x, batch_size).argmax(1)
    return z.cpu(), None


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


# ----------------------------------------------------------------------------------------------
# The 2-D manifold, interpolation, traversal
# ----------------------------------------------------------------------------------------------


@torch.no_grad()
def manifold_grid(model, n: int = 15, dims: tuple[int, int] = (0, 1), labels: Labels = None,
                  lo: float = 0.05, hi: float = 0.95) -> torch.Tensor:
    """The classic VAE manifold (Kingma & Welling 2014, fig. 4; Keras ``plot_latent_space``):
    decode an n x n grid of the prior's quantiles Phi^-1(linspace(lo, hi, n)) over two latent
    dimensions, the others 0. Returns (n*n, C, H, W), row-major: columns step ``dims[0]`` up, rows
    step ``dims[1]`` down (the top row has its largest value, as on a plot). Any model works."""
    d = model.config.latent_dim
    if len(dims) != 2 or dims[0] == dims[1] or not all(0 <= i < d for i in dims):
        raise ValueError(f"dims must be two different latent dimensions in 0..{d - 1}, got {dims}")
    if not 0 < lo < hi < 1:
        raise ValueError(f"need 0 < lo < hi < 1, got lo={lo}, hi={hi}")
    v = torch.distributions.Normal(0.0, 1.0).icdf(torch.linspace(lo, hi, n))   # (n,)
    z = torch.zeros(n * n, d)                                                 # (n*n, D)
    z[:, dims[0]] = v.repeat(n)
    z[:, dims[1]] = v.flip(0).repeat_interleave(n)
    return sample_batched(model, z.to(model.device), expand_labels(model, labels, n * n))


def _t_like(t, a: torch.Tensor) -> torch.Tensor:
    """t (scalar or (T,)) shaped to broadcast against a (...): () or (T, 1, ..., 1)."""
    t = torch.as_tensor(t, dtype=a.dtype, device=a.device)
    return t.reshape(*t.shape, *([1] * a.dim()))


def lerp(a: torch.Tensor, b: torch.Tensor, t) -> torch.Tensor:
    """(1 - t) a + t b. a, b: (..., D); t: scalar -> (..., D), or (T,) -> (T, ..., D)."""
    a, b = torch.as_tensor(a), torch.as_tensor(b)
    t = _t_like(t, a)
    return a + t * (b - a)


def slerp(a: torch.Tensor, b: torch.Tensor, t, eps: float = 1e-4) -> torch.Tensor:
    """Spherical interpolation along the great circle from a to b (Shoemake 1985; for GAN latents,
    White 2016, "Sampling Generative Networks"):

        slerp(a, b; t) = sin((1 - t) theta) / sin(theta) a + sin(t theta) / sin(theta) b,
        cos(theta) = a.b / (|a| |b|)

    Norms are kept when |a| = |b|, so the path stays in the shell where N(0, I) has its mass in high
    dimensions, whereas lerp's midpoint is shorter. When sin(theta) < eps (near-parallel or
    opposite vectors, or a zero vector) the arc is ill-defined and this falls back to lerp.
    Shapes as ``lerp``; computed in float64.
    """
    a, b = torch.as_tensor(a), torch.as_tensor(b)
    dtype = a.dtype
    a, b = a.double(), b.double()
    t = _t_like(t, a)
    norms = a.norm(dim=-1, keepdim=True) * b.norm(dim=-1, keepdim=True)             # (..., 1)
    cos = (a * b).sum(-1, keepdim=True) / norms.clamp_min(1e-300)
    theta = torch.acos(cos.clamp(-1.0, 1.0))                                         # (..., 1)
    sin = torch.sin(theta)
    near = (sin < eps) | (norms < 1e-300)
    safe = torch.where(near, torch.ones_like(sin), sin)
    arc = torch.sin((1 - t) * theta) / safe * a + torch.sin(t * theta) / safe * b
    return torch.where(near, a + t * (b - a), arc).to(dtype)


INTERPOLATIONS = {"linear": lerp, "spherical": slerp}


def interpolation_path(z0: torch.Tensor, z1: torch.Tensor, steps: int = 8, method: str = "linear") -> torch.Tensor:
    """``steps`` latents from z0 to z1 inclusive: (steps, D)."""
    if method not in INTERPOLATIONS:
        raise ValueError(f"method must be one of {', '.join(INTERPOLATIONS)}, got {method!r}")
    if steps < 2:
        raise ValueError(f"steps must be >= 2, got {steps}")
    z0, z1 = torch.as_tensor(z0).reshape(-1), torch.as_tensor(z1).reshape(-1)   # (D,)
    return INTERPOLATIONS[method](z0, z1, torch.linspace(0, 1, steps))          # (steps, D)


@torch.no_grad()
def interpolate(model, z0: torch.Tensor, z1: torch.Tensor, steps: int = 8, method: str = "linear",
                labels: Labels = None) -> torch.Tensor:
    """Images along the path z0 -> z1 (``method`` 'linear' or 'spherical'): (steps, C, H, W)."""
    z = interpolation_path(z0, z1, steps, method).to(model.device)
    return model.sample(steps, labels=expand_labels(model, labels, steps), z=z)


@torch.no_grad()
def interpolate_images(vae, x0: torch.Tensor, x1: torch.Tensor, steps: int = 8, method: str = "linear",
                       labels: int | tuple[int, int] | None = None) -> torch.Tensor:
    """Between two data points through the encoder: decode the path mu(x0) -> mu(x1).

    The endpoints are the reconstructions of x0 and x1, not x0 and x1. For a conditional VAE give
    ``labels=(y0, y1)`` (or one int for both): each image is encoded with its label, and the label
    fed to the decoder is blended with the latent, (1 - t) onehot(y0) + t onehot(y1).
    """
    if not vae.has_encoder:
        raise ValueError(f"a {vae.family} has no encoder; use interpolate() between latents")
    x0, x1 = x0.reshape(1, *vae.config.data_shape), x1.reshape(1, *vae.config.data_shape)
    if not vae.config.conditional:
        return interpolate(vae, vae.encode(x0)[0], vae.encode(x1)[0], steps, method)
    if labels is None:
        raise ValueError("a conditional VAE needs labels=(y0, y1) (or one class index for both)")
    y0, y1 = (labels, labels) if isinstance(labels, int) else labels
    z0 = vae.encode(x0, torch.tensor([y0]))[0]
    z1 = vae.encode(x1, torch.tensor([y1]))[0]
    w = class_weights(y0, y1, torch.linspace(0, 1, steps), vae.config.num_classes)   # (steps, K)
    return interpolate(vae, z0, z1, steps, method, labels=w)


@torch.no_grad()
def interpolate_classes(model, a: int, b: int, steps: int = 8, z: torch.Tensor | None = None,
                        seed: int = 0) -> torch.Tensor:
    """A conditional model's images with z fixed and the label blended from class a to class b
    (e.g. a digit half-way between 2 and 5): label weights (1 - t) onehot(a) + t onehot(b), t in
    linspace(0, 1, steps). z defaults to one prior draw from ``seed``. Returns (steps, C, H, W)."""
    k = model.config.num_classes
    if not model.config.conditional:
        raise ValueError("class interpolation needs a conditional model (cgan, cvae)")
    if not (0 <= a < k and 0 <= b < k):
        raise ValueError(f"classes must lie in 0..{k - 1}, got {a} and {b}")
    z = prior_draw(model, 1, seed) if z is None else torch.as_tensor(z).reshape(1, -1).to(model.device)
    w = class_weights(a, b, torch.linspace(0, 1, steps), k)                          # (steps, K)
    return model.sample(steps, labels=w, z=z.expand(steps, -1))


def traversal_latents(z: torch.Tensor, dim: int, values) -> torch.Tensor:
    """Copies of z (D,) with dimension ``dim`` set to each of ``values`` (V,): (V, D)."""
    z = torch.as_tensor(z).reshape(-1)
    if not 0 <= dim < len(z):
        raise ValueError(f"dim must lie in 0..{len(z) - 1}, got {dim}")
    values = torch.as_tensor(values, dtype=z.dtype, device=z.device).reshape(-1)
    zs = z.repeat(len(values), 1)                                    # (V, D)
    zs[:, dim] = values
    return zs


DEFAULT_TRAVERSAL = torch.linspace(-3, 3, 9)   # +-3 std of the prior: the range it covers


@torch.no_grad()
def traverse(model, z: torch.Tensor, dim: int, values=DEFAULT_TRAVERSAL, labels: Labels = None) -> torch.Tensor:
    """Images varying latent ``dim`` over ``values`` with the other dimensions of z fixed: (V, C, H, W)."""
    zs = traversal_latents(z, dim, values).to(model.device)
    return model.sample(len(zs), labels=expand_labels(model, labels, len(zs)), z=zs)


@torch.no_grad()
def traverse_grid(model, z: torch.Tensor, dims: Sequence[int] | None = None, values=DEFAULT_TRAVERSAL,
                  labels: Labels = None) -> torch.Tensor:
    """One traversal row per dimension in ``dims`` (default: the first 10): (len(dims) * V, C, H, W),
    row-major, so a grid with V columns shows dimension ``dims[i]`` in row i."""
    dims = list(range(min(10, model.config.latent_dim))) if dims is None else list(dims)
    zs = torch.cat([traversal_latents(z, d, values) for d in dims]).to(model.device)   # (len(dims)*V, D)
    return sample_batched(model, zs, expand_labels(model, labels, len(zs)))


# ----------------------------------------------------------------------------------------------
# Concept vectors
# ----------------------------------------------------------------------------------------------


@torch.no_grad()
def class_latents(model, data, cls: int, n: int = 500, seed: int = 0, batch_size: int = 500) -> torch.Tensor:
    """Posterior means of up to n examples of class ``cls`` (a seeded random choice): (m, D) on the CPU."""
    idx = (data.y == cls).nonzero().flatten().cpu()
    if len(idx) == 0:
        raise ValueError(f"the data has no examples of class {cls}")
    idx = idx[torch.randperm(len(idx), generator=torch.Generator().manual_seed(seed))[:n]]
    return _posterior_at(model, data, idx, batch_size)[0]


@torch.no_grad()
def concept_vector(model, data, class_a: int, class_b: int, n: int = 500, classifier=None,
                   seed: int = 0) -> torch.Tensor:
    """Attribute vector (White 2016; Larsen et al. 2016): mean latent of class a minus class b, (D,).

    VAE: means of the encoder's posterior means over up to n examples of each class in ``data``.
    GAN: draw n prior z, generate, and let ``classifier`` (x -> logits) label the samples; mean z of
    those it assigns to a minus those it assigns to b. For conditional models the label, not z,
    carries the class, so the vector captures what else differs (style).
    """
    if model.has_encoder:
        return class_latents(model, data, class_a, n, seed).mean(0) - class_latents(model, data, class_b, n, seed).mean(0)
    if classifier is None:
        raise ValueError("a GAN has no encoder: pass classifier= (x -> logits) to label its samples")
    z = prior_draw(model, n, seed)                                           # (n, D)
    labels = model.default_labels(n)
    pred = classifier_logits(classifier, sample_batched(model, z, labels)).argmax(1)
    za, zb = z.cpu()[pred == class_a], z.cpu()[pred == class_b]
    if len(za) == 0 or len(zb) == 0:
        missing = class_a if len(za) == 0 else class_b
        raise ValueError(f"the classifier assigned none of {n} samples to class {missing} (a larger n may)")
    return za.mean(0) - zb.mean(0)


def apply_concept(z: torch.Tensor, v: torch.Tensor, strength=1.0) -> torch.Tensor:
    """z + strength * v. strength scalar -> z's shape; (T,) -> (T, *z.shape) (a row of edits)."""
    z = torch.as_tensor(z)
    return z + _t_like(strength, z) * torch.as_tensor(v, dtype=z.dtype, device=z.device)


# ----------------------------------------------------------------------------------------------
# Posterior collapse
# ----------------------------------------------------------------------------------------------


def posterior_stats(vae, data, n: int = 1000, seed: int = 0, batch_size: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
    """(mu, logvar) of q(z | x) for ``data.subset(n, seed)``, each (n, D) on the CPU (eval mode).
    Encode once and derive the collapse statistics from these with ``genlib.metrics.kl_per_dim``,
    ``activity`` and ``active_units``, as the functions below do."""
    sub = data.subset(n, seed)
    return _posterior_at(vae, sub, torch.arange(len(sub)), batch_size)


def kl_per_dimension(vae, data, n: int = 1000, seed: int = 0) -> torch.Tensor:
    """E_x KL(q(z_d | x) || N(0, 1)) per latent dimension, nats: (D,). Collapsed dims are ~0."""
    from .metrics import kl_per_dim   # lazily: genlib.metrics loads the classifier module
    return kl_per_dim(*posterior_stats(vae, data, n, seed))


def latent_activity(vae, data, n: int = 1000, seed: int = 0) -> torch.Tensor:
    """Activity A_u = Cov_x(E_q[z_u]) of each dimension (Burda et al. 2016), the quantity
    ``active_units`` thresholds: variance over examples of the posterior mean, (D,) float32."""
    from .metrics import activity
    return activity(posterior_stats(vae, data, n, seed)[0]).float()


def active_units(vae, data, n: int = 1000, threshold: float = 0.01, seed: int = 0) -> int:
    """How many latent dimensions have activity A_u > ``threshold`` (Burda et al. 2016: 0.01)."""
    from .metrics import active_units as count_active
    return count_active(posterior_stats(vae, data, n, seed)[0], threshold)
