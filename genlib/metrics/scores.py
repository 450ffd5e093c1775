"""The metric formulas: features, probabilities, latents or points in; numbers out.

Each function cites its paper. Nothing here samples a model or loads a file: ``genlib.metrics``
feeds them (``evaluate``), and anything else may call them on its own arrays.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ..models import losses

COVERED_SHARE = 0.1      # a class counts as covered with >= 10 % of its uniform share of the samples
ACTIVITY_THRESHOLD = 0.01  # Burda et al. 2016's threshold on activity (variance of the posterior mean)
ACTIVE_KL = 0.1         # nats: a latent dimension is active when its KL term exceeds this (kl_active)


# --- image features and class probabilities ------------------------------------------------------


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
    real32 = torch.as_tensor(np.asarray(real), dtype=torch.float32)
    fake32 = torch.as_tensor(np.asarray(fake), dtype=torch.float32)
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


def class_shares(pred: np.ndarray | torch.Tensor, num_classes: int) -> np.ndarray:
    """Share of the predicted classes (N,) falling in each class, (K,) float64 summing to 1 (0 if N = 0)."""
    pred = np.asarray(pred, dtype=np.int64)
    return np.bincount(pred, minlength=num_classes)[:num_classes] / max(1, len(pred))


def class_coverage(pred: np.ndarray | torch.Tensor, num_classes: int, share: float = COVERED_SHARE) -> dict[str, Any]:
    """The mode-collapse meter on predicted classes (N,).

    classes_covered: classes receiving at least ``share`` of their uniform share 1/K of samples
    (default 10 %: at least 1 % of the samples for 10 classes). class_kl_uniform: KL(histogram ||
    uniform) = sum_c h_c log(K h_c) in nats, 0 when balanced, log K (2.30 for 10) when collapsed to one.
    """
    hist = class_shares(pred, num_classes)
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


# --- VAE latents ---------------------------------------------------------------------------------


def kl_per_dim(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Mean over examples of KL(q(z_d|x) || N(0, 1)) for each latent dimension d: (D,), in nats.
    Sums to the KL term of the ELBO (losses.kl_normal_per_dim, Kingma & Welling 2014, App. B)."""
    return losses.kl_normal_per_dim(mu, logvar).mean(0)


# Active units, the lab's ONE definition (every count and every coloured KL bar): latent dimension d
# is active when its KL term KL_d = E_x KL(q(z_d|x) || N(0, 1)) (kl_per_dim, the bars the pages
# draw, summing to the ELBO's KL) exceeds ACTIVE_KL = 0.1 nats. The count is then read off the same
# numbers the chart shows, against a line drawn at the same threshold.
#
# Why not Burda et al.'s activity A_d = Var_x(mu_d) > 0.01 (``activity`` / ``burda_active_units`` below,
# kept as a diagnostic): with a posterior std near 1, KL_d ~ A_d / 2, so it counts a dimension
# carrying 0.005 nats, and a code spread thinly over all the axes counts every axis. Measured
# (beta = 10 MLP VAE 784-400-20 on MNIST, seed 0, 500 steps): total KL 1.56 nats, every KL_d between
# 0.010 and 0.377 nats, and 20 / 20 "active" by A_d > 0.01, while the covariance of the posterior
# means had 5 eigenvalues above 0.09 (0.93 ... 0.094) and the rest below 0.02: the information sits
# in about 5 directions. KL_d > 0.1 counts 4 there, and 5 at 1,000 steps (5 eigenvalues above 0.3,
# the next 0.05); on the digits (beta = 1, 1,500 steps) 5 against A_d's 11.
def kl_active(kl_dim: torch.Tensor, threshold: float = ACTIVE_KL) -> torch.Tensor:
    """(D,) bool: the latent dimensions whose KL per dimension ``kl_dim`` (D,) (nats, ``kl_per_dim``)
    exceeds ``threshold``. ``int(kl_active(kl).sum())`` is the active-unit count."""
    return torch.as_tensor(kl_dim) > threshold


# Burda et al. 2016, "Importance Weighted Autoencoders", section 5.2: dimension d is active when
# A_d = Cov_x( E_{q(z|x)}[z_d] ) > 0.01, i.e. its posterior mean moves with the input. A diagnostic
# here; the lab counts active units with ``kl_active`` (see above).
def activity(mu: torch.Tensor) -> torch.Tensor:
    """A_d of posterior means mu (N, D): their variance over the N examples, float64 (D,)."""
    return mu.double().var(0, unbiased=False)


def burda_active_units(mu: torch.Tensor, threshold: float = ACTIVITY_THRESHOLD) -> int:
    """How many latent dimensions of posterior means mu (N, D) have Burda's activity above ``threshold``
    (a diagnostic: the lab's count is ``kl_active``, in the units of the KL bars)."""
    return int((activity(mu) > threshold).sum())


def spearman(a, b) -> float:
    """Spearman's rank correlation of two equal-length sequences (scipy.stats.spearmanr); 0 where
    it is undefined (a constant sequence)."""
    from scipy.stats import spearmanr   # lazy: scipy.stats costs a second to import

    r = spearmanr(np.asarray(a, dtype=float), np.asarray(b, dtype=float)).statistic
    return float(r) if np.isfinite(r) else 0.0


# --- 2-D toys -------------------------------------------------------------------------------------


def nearest_mode(points: torch.Tensor, modes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(distance (N,), index (N,)) of each 2-D point's nearest mixture mode; modes (K, 2)."""
    return torch.cdist(points, modes).min(1)                              # of (N, K)


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
    dmin, nearest = nearest_mode(points, modes)
    good = dmin <= 3 * std
    counts = torch.bincount(nearest[good], minlength=len(modes))          # (K,)
    out: dict[str, Any] = {"toy_modes_covered": int((counts >= min_count).sum()), "toy_modes_total": len(modes),
                           "toy_high_quality": float(good.float().mean()), "toy_min_count": int(min_count)}
    if labels is not None:
        out["label_accuracy"] = float((nearest == labels.cpu()).float().mean())
    return out
