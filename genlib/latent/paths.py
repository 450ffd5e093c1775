"""Paths through latent space, decoded: interpolation (linear or spherical), class blends,
traversals of one dimension, and the 2-D manifold grid.

    images = interpolate(gan, z0, z1, steps=8, method="spherical")
    images = interpolate_classes(cgan, 2, 5)      # a digit between 2 and 5 (soft labels)
    images, values = manifold_grid(vae, n=12)     # (144, C, H, W) and the 12 axis values

Latents are (D,) or (N, D) tensors; images come back in the data range on the model's device.
Conditional models need ``labels=``: a class index, (N,) ints, or (N, K) class weights (rows sum to 1).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

from ..models import ENCODER
from ..sampling import prior_draw, sample_batched

Labels = int | torch.Tensor | None


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


def t_like(t, a: torch.Tensor) -> torch.Tensor:
    """t (scalar or (T,)) shaped to broadcast against a (...): () or (T, 1, ..., 1)."""
    t = torch.as_tensor(t, dtype=a.dtype, device=a.device)
    return t.reshape(*t.shape, *([1] * a.dim()))


# ----------------------------------------------------------------------------------------------
# Interpolation
# ----------------------------------------------------------------------------------------------


def lerp(a: torch.Tensor, b: torch.Tensor, t) -> torch.Tensor:
    """(1 - t) a + t b. a, b: (..., D); t: scalar -> (..., D), or (T,) -> (T, ..., D)."""
    a, b = torch.as_tensor(a), torch.as_tensor(b)
    t = t_like(t, a)
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
    t = t_like(t, a)
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
    if not vae.supports(ENCODER):
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


# ----------------------------------------------------------------------------------------------
# Traversal and the 2-D manifold
# ----------------------------------------------------------------------------------------------


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


@torch.no_grad()
def manifold_grid(model, n: int = 15, dims: tuple[int, int] = (0, 1), labels: Labels = None,
                  lo: float = 0.05, hi: float = 0.95) -> tuple[torch.Tensor, torch.Tensor]:
    """The classic VAE manifold (Kingma & Welling 2014, fig. 4; Keras ``plot_latent_space``):
    decode an n x n grid of the prior's quantiles Phi^-1(linspace(lo, hi, n)) over two latent
    dimensions, the others 0. Any model works.

    Returns (images (n*n, C, H, W) on the model's device, values (n,) on the CPU, ascending).
    Row-major: column j has ``dims[0]`` = values[j]; row i has ``dims[1]`` = values[n - 1 - i]
    (the top row has the largest value, as on a plot), so values are the x-axis ticks and
    values.flip(0) the y-axis ticks, top to bottom."""
    d = model.config.latent_dim
    if len(dims) != 2 or dims[0] == dims[1] or not all(0 <= i < d for i in dims):
        raise ValueError(f"dims must be two different latent dimensions in 0..{d - 1}, got {dims}")
    if not 0 < lo < hi < 1:
        raise ValueError(f"need 0 < lo < hi < 1, got lo={lo}, hi={hi}")
    v = torch.distributions.Normal(0.0, 1.0).icdf(torch.linspace(lo, hi, n))   # (n,)
    z = torch.zeros(n * n, d)                                                 # (n*n, D)
    z[:, dims[0]] = v.repeat(n)
    z[:, dims[1]] = v.flip(0).repeat_interleave(n)
    return sample_batched(model, z.to(model.device), expand_labels(model, labels, n * n)), v
