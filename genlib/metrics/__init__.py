"""Sample-quality metrics, fed by anything that samples (or by plain tensors).

A *source* is a genlib model, any object with ``sample(n, labels=None) -> tensor`` (set
``conditional = True`` on it, or ``config.conditional``, to be handed balanced labels), a tensor of
samples ([0, 1] float or uint8 images (N, C, H, W); points (N, 2)), or a ``Dataset``.

Image metrics are computed in the feature space of genlib's own small CNN classifier
(``genlib.classifier``), NOT the ImageNet Inception network of the published FID / IS:

- ``classifier_fid``: Fréchet distance between Gaussians fitted to the classifier's 128-D penultimate
  features (the formula of Heusel et al. 2017, in another network's features): comparable only
  between numbers made with the same classifier file, never with published FIDs;
- ``kid``: kernel inception distance (Bińkowski et al. 2018) in the same features;
- ``classifier_is``: Inception Score (Salimans et al. 2016) with the classifier's softmax;
- ``classes_covered`` / ``class_kl_uniform`` / ``class_histogram``: the mode-collapse meter;
- ``precision`` / ``recall`` (Kynkäänniemi et al. 2019), ``density`` / ``coverage`` (Naeem et al. 2020);
- ``label_accuracy``: conditional models, fraction of samples drawn for class c classified as c.

Plus VAE test-set terms (ELBO, KL per latent dimension, active units), 2-D toy mode metrics, and
cost. ``evaluate`` returns all that apply as one flat JSON-friendly dict; ``quick_metrics`` is the
cheap subset for the Trainer's ``metric_fn``.

Real reference images are a fixed half of the dataset's test split (see ``reference_dataset``);
``floor_fid`` measures the other half against it the same way, the value a perfect model would get.
"""
from __future__ import annotations

import hashlib
import math
import os
import threading
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from .. import losses
from ..checkpoint import atomic_save
from ..classifier import Classifier, has_classifier, load_classifier
from ..data import Dataset, _canonical_name, load_dataset

FID_LABEL = "classifier-FID (genlib CNN features, not Inception FID)"
COVERED_SHARE = 0.1   # a class counts as covered with >= 10 % of its uniform share of the samples


# ================================================================================================
# Pure metric functions: features / probabilities in, numbers out
# ================================================================================================


# The linear algebra below runs in torch, not numpy: torch keeps to torch.get_num_threads(), while
# numpy's BLAS spawns a thread per core, which oversubscribes the lab's shared 2-core machines.
def gaussian_stats(feats: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(mean (F,), covariance (F, F), unbiased) of features (N, F), in float64."""
    f = torch.as_tensor(np.asarray(feats), dtype=torch.float64)          # (N, F)
    mu = f.mean(0)
    centred = f - mu
    return mu.numpy(), (centred.T @ centred / (len(f) - 1)).numpy()


# Fréchet distance between N(mu1, S1) and N(mu2, S2) (Dowson & Landau 1982; the FID of Heusel et
# al. 2017, "GANs Trained by a Two Time-Scale Update Rule"):
#   d^2 = |mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2))
# tr((S1 S2)^(1/2)) = sum sqrt(eig(S1^(1/2) S2 S1^(1/2))): the same eigenvalues (S1 S2 is similar
# to that symmetric matrix), but from two symmetric eigen-decompositions, which stay real and
# stable where a general matrix square root (scipy.linalg.sqrtm, as in pytorch-fid) can go complex.
def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    t = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float64)
    mu1, mu2 = t(mu1), t(mu2)
    s1, s2 = torch.atleast_2d(t(sigma1)), torch.atleast_2d(t(sigma2))
    w, v = torch.linalg.eigh(s1)
    root1 = (v * w.clamp(min=0).sqrt()) @ v.T                             # S1^(1/2), (F, F)
    m = root1 @ s2 @ root1
    tr_covmean = torch.linalg.eigvalsh((m + m.T) / 2).clamp(min=0).sqrt().sum()
    diff = mu1 - mu2
    return float(diff @ diff + s1.trace() + s2.trace() - 2 * tr_covmean)


# Unbiased MMD^2 (Gretton et al. 2012, eq. 3) with the cubic polynomial kernel of KID
# (Bińkowski et al. 2018, "Demystifying MMD GANs"): k(x, y) = (x.y / d + 1)^3.
#   MMD^2_u = sum_{i!=j} k(x_i, x_j) / (m(m-1)) + sum_{i!=j} k(y_i, y_j) / (n(n-1)) - 2 sum_ij k(x_i, y_j) / (mn)
def polynomial_mmd2(x: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor,
                    dtype: torch.dtype = torch.float64) -> float:
    """``dtype``: float32 (relative error ~1e-6 per kernel value; ~1.5x faster at 1000 x 128 on one
    thread, best of 45 runs: 15 vs 23 ms) or float64; the sums are always accumulated in float64."""
    x, y = torch.as_tensor(np.asarray(x), dtype=dtype), torch.as_tensor(np.asarray(y), dtype=dtype)
    d, m, n = x.shape[1], len(x), len(y)

    def k(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (a @ b.T).div_(d).add_(1).pow_(3)                          # (len(a), len(b))

    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    f64 = torch.float64
    return float((kxx.sum(dtype=f64) - kxx.diagonal().sum(dtype=f64)) / (m * (m - 1))
                 + (kyy.sum(dtype=f64) - kyy.diagonal().sum(dtype=f64)) / (n * (n - 1))
                 - 2 * kxy.sum(dtype=f64) / (m * n))


def kernel_distance(real: np.ndarray, fake: np.ndarray, subsets: int = 100, subset_size: int = 1000,
                    seed: int = 0) -> tuple[float, float]:
    """KID: mean and std of ``polynomial_mmd2`` over random subsets (drawn without replacement
    within a subset), as in Bińkowski et al.'s reference code. Unbiased: ~0 for equal distributions,
    and may be slightly negative."""
    rng = np.random.default_rng(seed)
    m = min(subset_size, len(real), len(fake))
    real32, fake32 = torch.as_tensor(np.asarray(real), dtype=torch.float32), torch.as_tensor(np.asarray(fake), dtype=torch.float32)
    vals = [polynomial_mmd2(real32[rng.choice(len(real), m, replace=False)],
                            fake32[rng.choice(len(fake), m, replace=False)], torch.float32) for _ in range(subsets)]
    return float(np.mean(vals)), float(np.std(vals))


# Inception Score (Salimans et al. 2016, "Improved Techniques for Training GANs"):
#   IS = exp( E_x KL( p(y|x) || p(y) ) ),  p(y) = E_x p(y|x)
# Between 1 (every sample the same class distribution) and K (confident and all classes equally).
def inception_score(probs: np.ndarray | torch.Tensor, eps: float = 1e-12) -> float:
    p = np.asarray(probs, dtype=np.float64)                               # (N, K)
    py = p.mean(0, keepdims=True)                                         # (1, K)
    kl = (p * (np.log(p + eps) - np.log(py + eps))).sum(1)                # (N,)
    return float(np.exp(kl.mean()))


def class_coverage(pred: np.ndarray | torch.Tensor, num_classes: int, share: float = COVERED_SHARE) -> dict[str, Any]:
    """The mode-collapse meter on predicted classes (N,).

    classes_covered: classes receiving at least ``share`` of their uniform share 1/K of samples
    (default 10 %: at least 1 % of the samples for 10 classes). class_kl_uniform: KL(histogram ||
    uniform) = sum_c h_c log(K h_c) in nats, 0 when balanced, log K (2.30 for 10) when collapsed to one.
    """
    pred = np.asarray(pred, dtype=np.int64)
    hist = np.bincount(pred, minlength=num_classes)[:num_classes] / max(1, len(pred))
    nz = hist > 0
    kl = float((hist[nz] * np.log(hist[nz] * num_classes)).sum())
    return {"classes_covered": int((hist >= share / num_classes).sum()), "num_classes": int(num_classes),
            "class_kl_uniform": kl, "class_histogram": [round(float(h), 5) for h in hist]}


def _kth_nn_distance(x: torch.Tensor, k: int, chunk: int = 1000) -> torch.Tensor:
    """Distance of each row of x (N, F) to its k-th nearest other row, (N,)."""
    out = []
    for i in range(0, len(x), chunk):
        d = torch.cdist(x[i:i + chunk], x)                                # (c, N)
        out.append(d.topk(k + 1, dim=1, largest=False).values[:, k])       # index 0 is the point itself
    return torch.cat(out)


# Precision / recall: Kynkäänniemi et al. 2019, "Improved Precision and Recall Metric for Assessing
# Generative Models" (manifold = union of k-NN balls). Density / coverage: Naeem et al. 2020,
# "Reliable Fidelity and Diversity Metrics for Generative Models", following their reference code:
#   precision = share of fakes inside some real's k-NN ball;  recall = share of reals inside some fake's
#   density   = (1 / kM) sum_j #{reals i whose ball holds fake j};  coverage = share of reals whose ball holds a fake
def prdc(real: np.ndarray | torch.Tensor, fake: np.ndarray | torch.Tensor, k: int = 5,
         chunk: int = 1000) -> dict[str, float]:
    real = torch.as_tensor(np.asarray(real), dtype=torch.float32)         # (R, F)
    fake = torch.as_tensor(np.asarray(fake), dtype=torch.float32)         # (M, F)
    r_rad, f_rad = _kth_nn_distance(real, k, chunk), _kth_nn_distance(fake, k, chunk)
    in_real_balls = torch.zeros(len(fake))                                # per fake: reals whose ball holds it
    real_hit = torch.zeros(len(real), dtype=torch.bool)                   # per real: a fake in its ball
    real_recalled = torch.zeros(len(real), dtype=torch.bool)              # per real: inside some fake's ball
    for j in range(0, len(fake), chunk):
        d = torch.cdist(real, fake[j:j + chunk])                          # (R, c)
        inside = d < r_rad[:, None]
        in_real_balls[j:j + chunk] = inside.sum(0).float()
        real_hit |= inside.any(1)
        real_recalled |= (d < f_rad[None, j:j + chunk]).any(1)
    return {"precision": float((in_real_balls > 0).float().mean()), "recall": float(real_recalled.float().mean()),
            "density": float(in_real_balls.mean() / k), "coverage": float(real_hit.float().mean())}


def label_accuracy(pred: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor,
                   num_classes: int) -> dict[str, Any]:
    """Share of samples drawn for class c that the classifier assigns to c; overall and per class."""
    pred, labels = np.asarray(pred), np.asarray(labels)
    per = [float((pred[labels == c] == c).mean()) if (labels == c).any() else float("nan")
           for c in range(num_classes)]
    return {"label_accuracy": float((pred == labels).mean()), "label_accuracy_per_class": per}


# --- VAEs -----------------------------------------------------------------------------------------


def kl_per_dim(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Mean over examples of KL(q(z_d|x) || N(0, 1)) for each latent dimension d: (D,), in nats.
    Sums to the KL term of the ELBO (losses.kl_normal_per_dim, Kingma & Welling 2014, App. B)."""
    return losses.kl_normal_per_dim(mu, logvar).mean(0)


# Active units (Burda et al. 2016, "Importance Weighted Autoencoders", section 5.2): dimension d is
# active when A_d = Cov_x( E_{q(z|x)}[z_d] ) > 0.01, i.e. its posterior mean moves with the input.
def activity(mu: torch.Tensor) -> torch.Tensor:
    """A_d of posterior means mu (N, D): their variance over the N examples, float64 (D,)."""
    return mu.double().var(0, unbiased=False)


def active_units(mu: torch.Tensor, threshold: float = 0.01) -> int:
    return int((activity(mu) > threshold).sum())


# --- 2-D toys -------------------------------------------------------------------------------------


def toy_mode_metrics(points: torch.Tensor, modes: torch.Tensor, std: float, min_count: int | None = None,
                     labels: torch.Tensor | None = None) -> dict[str, Any]:
    """Mode coverage of 2-D samples on a Gaussian mixture (VEEGAN, Srivastava et al. 2017; PacGAN,
    Lin et al. 2018): a sample is high quality when within 3 std of its nearest mode; a mode is
    covered when at least ``min_count`` high-quality samples sit at it. Default min_count: PacGAN's
    20 per 2,500 samples, scaled to len(points). With ``labels`` (conditional models), also the
    share of samples whose nearest mode is the requested one."""
    points, modes = points.detach().float().cpu(), modes.detach().float().cpu()
    if min_count is None:
        min_count = max(1, math.ceil(20 * len(points) / 2500))
    d = torch.cdist(points, modes)                                        # (N, K)
    dmin, nearest = d.min(1)
    good = dmin <= 3 * std
    counts = torch.bincount(nearest[good], minlength=len(modes))          # (K,)
    out: dict[str, Any] = {"toy_modes_covered": int((counts >= min_count).sum()), "toy_modes_total": len(modes),
                           "toy_high_quality": float(good.float().mean()), "toy_min_count": int(min_count)}
    if labels is not None:
        out["label_accuracy"] = float((nearest == labels.cpu()).float().mean())
    return out


# ================================================================================================
# Drawing samples and classifier outputs
# ================================================================================================


def is_conditional(source: Any) -> bool:
    cfg = getattr(source, "config", None)
    return bool(getattr(cfg, "conditional", False) or getattr(source, "conditional", False))


def _num_classes(source: Any, default: int) -> int:
    cfg = getattr(source, "config", None)
    return int(getattr(cfg, "num_classes", 0) or getattr(source, "num_classes", 0) or default)


@torch.no_grad()
def draw_samples(source: Any, n: int, *, num_classes: int = 10, batch_size: int = 500,
                 seed: int = 0) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(n samples, the labels they were drawn for or None). Conditional sources get balanced labels
    0, 1, ..., K-1, 0, ...; genlib models get z from a generator seeded by ``seed`` (the global RNG
    is left alone, so a live metric does not disturb training)."""
    if isinstance(source, Dataset):
        x, _ = source.get(torch.arange(min(n, len(source))))
        return x, None
    if isinstance(source, torch.Tensor):
        x = source[:n]
        return (x.float() / 255 if x.dtype == torch.uint8 else x), None
    if not hasattr(source, "sample"):
        raise TypeError(f"cannot draw samples from {type(source).__name__}: expected a model, an object "
                        "with sample(n, labels=None), a tensor or a Dataset")
    labels = None
    if is_conditional(source):
        labels = torch.arange(n) % _num_classes(source, num_classes)      # (n,)
    gen = None
    if hasattr(source, "prior"):
        dev = getattr(source, "device", torch.device("cpu"))
        gen = torch.Generator(device=dev).manual_seed(seed)
    out = []
    for i in range(0, n, batch_size):
        b = min(batch_size, n - i)
        lb = None if labels is None else labels[i:i + b]
        if gen is not None:
            z = source.prior(b, generator=gen)
            out.append(source.sample(b, labels=None if lb is None else lb.to(z.device), z=z))
        else:
            out.append(source.sample(b, labels=lb))
    x = torch.cat(out) if out else torch.zeros(0)
    return (x.float() / 255 if x.dtype == torch.uint8 else x), labels


@torch.no_grad()
def classifier_outputs(classifier: Classifier, x: torch.Tensor, batch_size: int = 1000
                       ) -> tuple[np.ndarray, np.ndarray]:
    """(penultimate features (N, F) float64, softmax probabilities (N, K) float64) for [0, 1] images."""
    classifier.eval()
    feats, probs = [], []
    for i in range(0, len(x), batch_size):
        xb = x[i:i + batch_size].to(classifier.device)
        xb = xb.float() / 255 if xb.dtype == torch.uint8 else xb.float().clamp(0, 1)
        f = classifier.features(xb)                                       # (B, F)
        feats.append(f.double().cpu())
        probs.append(torch.softmax(classifier.head(f), 1).double().cpu())  # (B, K)
    return torch.cat(feats).numpy(), torch.cat(probs).numpy()


# ================================================================================================
# Reference data and its cached statistics
# ================================================================================================

_REF_CACHE: dict[str, dict[str, Any]] = {}
_REF_LOCK = threading.Lock()


def reference_dataset(dataset: str | Dataset, root=None) -> Dataset:
    """The real images a model is compared with: a name means its test split (digits: all 1,797
    images, since its test split has only 360); toys: a fresh draw (seed 1). A Dataset is used as is.

    Where only the MNIST test split is on disk, the models trained on it and the classifier saw
    images 0..7999 of it too: there the reference is not held out, and floor_fid is a floor for
    memorised data rather than for generalisation.
    """
    if isinstance(dataset, Dataset):
        return dataset
    name = _canonical_name(dataset)
    if name in ("ring", "grid", "moons", "spiral"):
        return load_dataset(name, seed=1)
    if name == "digits":
        return load_dataset(name, split="all")
    return load_dataset(name, split="test", root=root, download=False)


def split_halves(n_total: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two disjoint fixed halves of range(n_total): (reference half, held-out half)."""
    perm = torch.randperm(n_total, generator=torch.Generator().manual_seed(seed))
    return perm[: n_total - n_total // 2], perm[n_total - n_total // 2:]


def _fingerprint(classifier: Classifier, x: torch.Tensor) -> str:
    h = hashlib.sha1()
    for v in classifier.state_dict().values():
        h.update(v.detach().cpu().numpy().tobytes())
    h.update(str(tuple(x.shape)).encode())
    h.update(x.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:20]


def reference_stats(ref: Dataset, classifier: Classifier, cache_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """Classifier features of both halves of ``ref`` and the Gaussian fit of the reference half.

    Cached in memory per (classifier weights, images), and on disk under ``cache_dir`` when given
    (``python -m genlib evaluate`` uses ~/.cache/genlib/metrics).
    """
    key = f"{ref.name}-{_fingerprint(classifier, ref.x)}"
    path = Path(cache_dir).expanduser() / f"ref-{key}.pt" if cache_dir else None
    with _REF_LOCK:
        stats = _REF_CACHE.get(key)
    if stats is not None:
        if path is not None and not path.is_file():
            _save_stats(stats, path)
        return stats
    if path is not None and path.is_file():
        try:
            stats = {k: v.numpy() for k, v in torch.load(path, weights_only=True).items()}
            if set(stats) != {"feats", "held_feats", "mu", "sigma"}:
                stats = None
        except Exception:   # a broken cache file (any reason) is recomputed, never trusted
            stats = None
    if stats is None:
        ref_idx, held_idx = split_halves(len(ref))
        feats, _ = classifier_outputs(classifier, ref.x)
        stats = {"feats": feats[ref_idx.numpy()], "held_feats": feats[held_idx.numpy()]}
        stats["mu"], stats["sigma"] = gaussian_stats(stats["feats"])
        if path is not None:
            _save_stats(stats, path)
    with _REF_LOCK:
        _REF_CACHE[key] = stats
    return stats


def _save_stats(stats: dict[str, Any], path: Path) -> None:
    # atomic: another process reading the cache never sees half a file
    atomic_save({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in stats.items()}, path)


def _resolve_classifier(ref: Dataset, classifier: Classifier | None, device) -> Classifier | None:
    if classifier is not None:
        return classifier.to(device)
    return load_classifier(ref.name, device) if has_classifier(ref.name) else None


# ================================================================================================
# Metric groups
# ================================================================================================


def image_metrics(x: torch.Tensor, labels: torch.Tensor | None, ref_stats: dict[str, Any], classifier: Classifier,
                  *, k: int = 5, kid_subsets: int = 100, kid_subset_size: int = 1000, prdc_max: int = 5000,
                  seed: int = 0) -> dict[str, Any]:
    """All classifier-based metrics of images ``x`` against reference statistics."""
    feats, probs = classifier_outputs(classifier, x)
    pred = probs.argmax(1)
    num_classes = probs.shape[1]
    mu, sigma = gaussian_stats(feats)
    kid, kid_std = kernel_distance(ref_stats["feats"], feats, kid_subsets, kid_subset_size, seed)
    m = min(len(feats), len(ref_stats["feats"]), prdc_max)   # equal sizes, as Naeem et al. recommend
    k = min(k, m - 1)
    rng = np.random.default_rng(seed)
    pr = prdc(ref_stats["feats"][rng.choice(len(ref_stats["feats"]), m, replace=False)],
              feats[rng.choice(len(feats), m, replace=False)], k=k)
    out: dict[str, Any] = {
        "classifier_fid": frechet_distance(mu, sigma, ref_stats["mu"], ref_stats["sigma"]),
        "kid": kid, "kid_std": kid_std, "classifier_is": inception_score(probs),
        **class_coverage(pred, num_classes),
        "mean_confidence": float(probs.max(1).mean()),
        **pr, "prdc_k": k, "prdc_n": m,
    }
    if labels is not None:
        out.update(label_accuracy(pred, labels.cpu().numpy(), num_classes))
    return out


@torch.no_grad()
def vae_metrics(model, data: Dataset, batch_size: int = 500, seed: int = 0) -> dict[str, Any]:
    """Test-set terms of a VAE, with one posterior sample per image (seeded):

    neg_elbo = recon + kl (nats per image; Gaussian likelihoods drop the constant, as in training),
    recon = -log p(x|z), kl = KL(q(z|x) || p(z)), kl_per_dim (mean over the set, sums to kl),
    active_units (Burda et al. 2016), recon_mse = mean squared error per value of the decoded mean.
    """
    model.eval()
    gen = torch.Generator(device=model.device).manual_seed(seed)
    cond = is_conditional(model)
    mus, kls, recon_sum, se_sum = [], [], 0.0, 0.0
    for i in range(0, len(data), batch_size):
        x, y = data.get(torch.arange(i, min(i + batch_size, len(data))))
        x, y = x.to(model.device), y.to(model.device)
        labels = y if cond else None
        mu, logvar = model.posterior(x, labels)                            # (B, D) each
        z = mu + torch.randn(mu.shape, generator=gen, device=mu.device) * (0.5 * logvar).exp()
        out = model.decode(z, labels)
        recon_sum += float(model.reconstruction_nll(out, x)) * len(x)     # the batch mean times B
        se_sum += float((model.to_data_range(model.decode(mu, labels)) - x).pow(2).sum())
        mus.append(mu.cpu())
        kls.append(losses.kl_normal_per_dim(mu, logvar).sum(0).cpu())     # (D,) summed over the batch
    n = len(data)
    kl_dim = (torch.stack(kls).sum(0) / n)                                # (D,)
    recon = recon_sum / n
    return {"neg_elbo": recon + float(kl_dim.sum()), "recon": recon, "kl": float(kl_dim.sum()),
            "kl_per_dim": [round(float(v), 5) for v in kl_dim], "active_units": active_units(torch.cat(mus)),
            "latent_dim": int(kl_dim.numel()), "recon_mse": se_sum / (n * math.prod(data.shape)),
            "vae_test_images": n}


def cost_metrics(model, card: dict[str, Any] | None = None) -> dict[str, Any]:
    """Parameters and bytes per network; training time and speed from a checkpoint card."""
    out: dict[str, Any] = {}
    if hasattr(model, "network_sizes"):
        sizes = model.network_sizes()
        out["parameters"] = int(sum(sizes.values()))
        out.update({f"parameters_{k}": int(v) for k, v in sizes.items()})
        for name in sizes:
            net = getattr(model, name, None)
            if isinstance(net, torch.nn.Module):
                out[f"size_bytes_{name}"] = sum(p.numel() * p.element_size() for p in net.parameters())
    if hasattr(model, "size_bytes"):
        out["size_bytes"] = int(model.size_bytes())
    card = card or {}
    if card.get("wall_time_s"):
        out["train_time_s"] = float(card["wall_time_s"])
        if card.get("steps") and card.get("batch_size"):
            out["train_images_per_s"] = round(card["steps"] * card["batch_size"] / card["wall_time_s"], 1)
    if card.get("steps") is not None:
        out["train_steps"] = int(card["steps"])
    if card.get("device"):
        out["train_device"] = str(card["device"])
    return out


class _PeakMemory:
    """Peak memory while the block runs. CUDA: torch.cuda.max_memory_allocated above the start.
    CPU: growth of the process's resident set (RSS), read from /proc/self/statm every 2 ms by a
    thread: an approximation that includes allocator caching and misses spikes under 2 ms."""

    def __init__(self, device: torch.device):
        self.device, self.peak_mb, self.method = device, float("nan"), ""

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.start = torch.cuda.memory_allocated(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.method = "cuda max_memory_allocated"
        elif os.path.exists("/proc/self/statm"):
            self.method = "cpu RSS growth (sampled every 2 ms)"
            self.start = self.peak = self._rss()
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._poll, daemon=True)
            self._thread.start()
        return self

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _poll(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, self._rss())

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak_mb = (torch.cuda.max_memory_allocated(self.device) - self.start) / 2**20
        elif self.method:
            self._stop.set()
            self._thread.join()
            self.peak = max(self.peak, self._rss())
            self.peak_mb = (self.peak - self.start) / 2**20


# ================================================================================================
# Entry points
# ================================================================================================


def _device_of(source: Any) -> torch.device:
    dev = getattr(source, "device", None)
    return dev if isinstance(dev, torch.device) else torch.device("cpu")


def evaluate(model: Any, dataset: str | Dataset, n: int = 5000, *, classifier: Classifier | None = None,
             card: dict[str, Any] | None = None, root=None, k: int = 5, kid_subsets: int = 100,
             kid_subset_size: int = 1000, batch_size: int = 500, seed: int = 0,
             cache_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """Every metric that applies to ``model`` (a source, see the module doc), as a flat dict.

    dataset: a name (compared with its test split, see ``reference_dataset``) or a Dataset
    (compared with exactly those images). ``card``: a checkpoint card, for training cost.
    Keys: see the module doc; ``classifier_fid`` is NOT the Inception FID.
    """
    if n < 10:
        raise ValueError(f"n must be >= 10 samples, got {n}")
    t0 = time.perf_counter()
    ref = reference_dataset(dataset, root)
    device = _device_of(model)
    with _PeakMemory(device) as mem:
        ts = time.perf_counter()
        x, labels = draw_samples(model, n, num_classes=ref.num_classes, batch_size=batch_size, seed=seed)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        sample_s = time.perf_counter() - ts

    # 'n' is what was drawn: a tensor or Dataset source may hold fewer than n
    out: dict[str, Any] = {"dataset": ref.name, "reference_split": ref.split, "reference_images": len(ref),
                           "n": len(x)}
    if ref.note:
        out["reference_note"] = ref.note
    out.update(cost_metrics(model, card))
    if hasattr(model, "sample"):
        out.update(sample_seconds=round(sample_s, 4), samples_per_s=round(len(x) / max(sample_s, 1e-9), 1),
                   sample_batch_size=batch_size, peak_memory_mb=round(mem.peak_mb, 2),
                   peak_memory_method=mem.method)

    if ref.is_image:
        clf = _resolve_classifier(ref, classifier, device)
        if clf is None:
            out["notes"] = f"no classifier for {ref.name!r}: classifier metrics skipped"
        else:
            stats = reference_stats(ref, clf, cache_dir)
            out.update(image_metrics(x, labels, stats, clf, k=k, kid_subsets=kid_subsets,
                                     kid_subset_size=kid_subset_size, seed=seed))
            out["reference_half_images"] = len(stats["feats"])
            out["classifier"] = getattr(clf, "card", {}).get("command", "given")
            out["classifier_fid_label"] = FID_LABEL
    elif ref.meta.get("modes") is not None:
        out.update(toy_mode_metrics(x, ref.meta["modes"], float(ref.meta["std"]), labels=labels))

    if hasattr(model, "posterior") and hasattr(model, "decode"):
        vae_data = ref if isinstance(dataset, Dataset) or not ref.is_image or ref.name == "folder" else \
            load_dataset(ref.name, split="test", root=root, download=False)
        out.update(vae_metrics(model, vae_data, batch_size=batch_size, seed=seed))
        out["vae_test_split"] = vae_data.split
    out["evaluate_seconds"] = round(time.perf_counter() - t0, 3)
    return out


def quick_metrics(model: Any, dataset: str | Dataset, n: int = 1000, *, classifier: Classifier | None = None,
                  root=None, seed: int = 0) -> dict[str, float]:
    """Cheap metrics for live curves (the Trainer's ``metric_fn``), floats only.

    Images: classifier_fid of ``n`` samples (higher than at n=5000: the estimate is biased upward at
    small n, so compare curves made with the same n), classes_covered, mean_confidence. Toys with
    modes: toy_modes_covered, toy_high_quality. Fixed z (``seed``): the curve shows the model moving.
    """
    ref = reference_dataset(dataset, root)
    device = _device_of(model)
    x, labels = draw_samples(model, n, num_classes=ref.num_classes, seed=seed)
    if ref.is_image:
        clf = _resolve_classifier(ref, classifier, device)
        if clf is None:
            return {}
        stats = reference_stats(ref, clf)
        feats, probs = classifier_outputs(clf, x)
        pred, num_classes = probs.argmax(1), probs.shape[1]
        mu, sigma = gaussian_stats(feats)
        out = {"classifier_fid": frechet_distance(mu, sigma, stats["mu"], stats["sigma"]),
               "classes_covered": float(class_coverage(pred, num_classes)["classes_covered"]),
               "mean_confidence": float(probs.max(1).mean())}
        if labels is not None:
            out["label_accuracy"] = label_accuracy(pred, labels.numpy(), num_classes)["label_accuracy"]
        return out
    if ref.meta.get("modes") is not None:
        m = toy_mode_metrics(x, ref.meta["modes"], float(ref.meta["std"]), labels=labels)
        return {k: float(v) for k, v in m.items() if k in ("toy_modes_covered", "toy_high_quality", "label_accuracy")}
    return {}


def live_metric_fn(dataset: str | Dataset, n: int = 1000, **kwargs: Any) -> Callable[[Any], dict[str, float]]:
    """``Trainer(..., metric_fn=live_metric_fn('mnist'), config=TrainConfig(metric_every=500))``.

    Pass the dataset's name for numbers comparable with ``python -m genlib evaluate``; a Dataset is
    compared with exactly its own images. Reference statistics are computed on the first call.
    """
    ref = reference_dataset(dataset, kwargs.get("root"))   # loaded once, not on every call
    return lambda model: quick_metrics(model, ref, n, **kwargs)


def floor_metrics(dataset: str | Dataset, n: int | None = None, *, classifier: Classifier | None = None,
                  root=None, **kwargs: Any) -> dict[str, Any]:
    """``evaluate`` of real held-out images (the half of the reference split not in the statistics):
    what a perfect model scores. ``n`` defaults to all of that half."""
    ref = reference_dataset(dataset, root)
    _, held = split_halves(len(ref))
    held = held[:n] if n else held
    real = ref.get(held)[0] if ref.is_image else ref.x[held]
    out = evaluate(real, ref, len(held), classifier=classifier, **kwargs)
    out["floor_of"] = ref.name
    return out


def floor_fid(dataset: str | Dataset, n: int | None = None, *, classifier: Classifier | None = None,
              root=None) -> float:
    """classifier-FID of real held-out images against the reference half: the lowest value a model
    can expect at this sample size (NOT the Inception FID)."""
    ref = reference_dataset(dataset, root)
    clf = _resolve_classifier(ref, classifier, torch.device("cpu"))
    if clf is None:
        raise ValueError(f"no classifier for {ref.name!r}")
    stats = reference_stats(ref, clf)
    feats = stats["held_feats"][:n] if n else stats["held_feats"]
    mu, sigma = gaussian_stats(feats)
    return frechet_distance(mu, sigma, stats["mu"], stats["sigma"])


# ================================================================================================
# Checkpoints and tables (used by ``python -m genlib evaluate`` / ``compare``)
# ================================================================================================


def default_cache_dir() -> Path:
    """Where the command line keeps reference statistics: $GENLIB_CACHE_DIR or ~/.cache/genlib, /metrics."""
    return Path(os.environ.get("GENLIB_CACHE_DIR") or Path.home() / ".cache" / "genlib").expanduser() / "metrics"


def evaluate_checkpoint(path: str | os.PathLike, n: int = 5000, *, dataset: str | None = None, root=None,
                        device: str = "cpu", **kwargs: Any) -> dict[str, Any]:
    """``evaluate`` of a checkpoint's model, on the dataset its card names unless ``dataset`` is given."""
    from ..checkpoint import load_checkpoint

    ckpt = load_checkpoint(path, device=device)
    name = dataset or ckpt.card.get("dataset")
    if not name:
        raise ValueError(f"{path}: the checkpoint's card names no dataset; pass one (--dataset)")
    head = {"checkpoint": str(path), "preset": ckpt.card.get("preset", ""), "family": ckpt.model.family,
            "steps": ckpt.model.steps}
    return {**head, **evaluate(ckpt.model, name, n, card=ckpt.card, root=root, **kwargs)}


def write_table(rows: list[dict[str, Any]], path: str | os.PathLike) -> Path:
    """One row per evaluation into .csv (lists as JSON text in their cell) or .json (a list of rows)."""
    import csv
    import json

    path = Path(path)
    if path.suffix not in (".csv", ".json"):
        raise ValueError(f"table must end in .csv or .json, got {path.name!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".json":
        path.write_text(json.dumps(rows, indent=2))
        return path
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns)
        w.writeheader()
        for row in rows:
            w.writerow({k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in row.items()})
    return path
