"""Clusters of the training data, for a self-conditioned GAN (after Liu et al. 2020, "Diverse Image
Generation via Self-Conditioned GANs", CVPR): G and D are conditioned on which of k clusters an image
falls in, found without labels, so one hard adversarial game becomes k easier ones, each D judging an
image against images like it.

Liu et al. cluster D's features and re-cluster as training goes; here the clusters are k-means on the
images' first principal components, found once before the first step (scikit-learn; 1-3 CPU-seconds on
one thread for the 10,000 images it looks at, 100 clusters), what a CPU budget affords.

The cluster is a function of z, so the model stays an ordinary unconditional generator x = G(z) with
z ~ N(0, I), and the latent tools work on it unchanged: z's first coordinate, through the normal CDF,
picks a cluster with the probability of its share of the images. Training draws that coordinate from
the slice of the normal that picks the real batch's clusters, so training and sampling see the same
pairs of z and cluster.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..sampling import seeded_subset

COMPONENTS = 50       # principal components the k-means runs on
FIT_IMAGES = 10_000   # images it looks at (a seeded subset of larger datasets)


class DataClusters(nn.Module):
    """k clusters of images (C, H, W) in [0, 1] or 2-D points: ``fit`` them, ``assign`` data to them, and map a
    standard-normal coordinate to a cluster (``of_z``) and back (``z_for``). All state is buffers, so
    it travels in the model's state dict."""

    def __init__(self, k: int, dim: int, components: int = COMPONENTS):
        super().__init__()
        p = min(components, dim)
        self.k = k
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("basis", torch.zeros(dim, p))
        self.register_buffer("centres", torch.zeros(k, p))
        self.register_buffer("share", torch.full((k,), 1.0 / k))    # each cluster's share of the images
        self.register_buffer("fitted", torch.tensor(0))             # 1 once fit (an int: files hold no bools)

    @property
    def is_fitted(self) -> bool:
        return bool(self.fitted)

    @torch.no_grad()
    def fit(self, images: torch.Tensor, seed: int = 0, max_images: int = FIT_IMAGES) -> None:
        """k-means (k-means++ start, best of 3) on the first principal components of up to
        ``max_images`` of ``images`` (uint8 images, or floats: images in [0, 1], points), drawn by
        genlib's seeding rule."""
        from sklearn.cluster import KMeans
        from sklearn.decomposition import PCA
        from threadpoolctl import threadpool_limits

        need = max(self.k, self.basis.shape[1])
        if len(images) < need:
            raise ValueError(f"{self.k} clusters in {self.basis.shape[1]} principal components need at least "
                             f"{need} examples, got {len(images)}")
        x = images[seeded_subset(len(images), max_images, seed).to(images.device)].cpu()
        x = (x.float() / 255 if x.dtype == torch.uint8 else x.float()).flatten(1).numpy()   # (n, D)
        with threadpool_limits(torch.get_num_threads()):      # torch's thread budget, not every core
            pca = PCA(self.basis.shape[1], random_state=seed).fit(x)
            km = KMeans(self.k, n_init=3, random_state=seed).fit(pca.transform(x))
        dev = self.mean.device
        self.mean.copy_(torch.as_tensor(pca.mean_, device=dev))
        self.basis.copy_(torch.as_tensor(pca.components_.T, device=dev))
        self.centres.copy_(torch.as_tensor(km.cluster_centers_, device=dev))
        counts = torch.bincount(torch.as_tensor(km.labels_, dtype=torch.long), minlength=self.k).float()
        self.share.copy_((counts / counts.sum()).to(dev))
        self.fitted.fill_(1)

    @torch.no_grad()
    def assign(self, x: torch.Tensor) -> torch.Tensor:
        """The nearest cluster of each example of x ((B, C, H, W) images in [0, 1], or (B, 2) points): (B,) int64."""
        f = (x.flatten(1).to(self.mean.dtype) - self.mean) @ self.basis          # (B, p)
        return torch.cdist(f, self.centres).argmin(1)

    def _cdf(self) -> torch.Tensor:
        share = self.share.float().clamp_min(0) + 1e-12    # a crafted file's zeros cannot make it NaN
        return share.cumsum(0) / share.sum()                                      # (k,), ends at 1

    @torch.no_grad()
    def of_z(self, z0: torch.Tensor) -> torch.Tensor:
        """The cluster that the standard-normal coordinates z0 (B,) pick: (B,) int64; cluster c's
        share of N(0, 1) is its share of the images."""
        u = 0.5 * (1 + torch.erf(z0.float() / math.sqrt(2)))                    # Phi(z0) in [0, 1]
        return torch.searchsorted(self._cdf(), u.contiguous(), right=True).clamp_(max=self.k - 1)

    @torch.no_grad()
    def z_for(self, labels: torch.Tensor) -> torch.Tensor:
        """Standard-normal coordinates (B,) that pick ``labels`` (B,): drawn from each cluster's
        slice of N(0, 1), so that of_z(z_for(c)) == c."""
        cdf = self._cdf()
        hi = cdf[labels]
        lo = hi - (cdf - torch.cat([cdf.new_zeros(1), cdf[:-1]]))[labels]
        u = (lo + torch.rand(labels.shape, device=labels.device) * (hi - lo)).clamp(1e-6, 1 - 1e-6)
        return math.sqrt(2) * torch.erfinv(2 * u - 1)
