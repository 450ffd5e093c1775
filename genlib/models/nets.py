"""Network building blocks shared by the model families.

Two architectures, picked by ``arch``:
- ``mlp``: flatten -> Linear layers. Works for every data shape, including 2-D toy points.
- ``conv``: DCGAN-style (Radford et al., 2016): strided convolutions down, transposed convolutions
  up, no pooling, batch norm in the generator. Two stride-2 stages, so the image side must be
  divisible by 4: 8x8 digits (2 -> 4 -> 8), 28x28 MNIST (7 -> 14 -> 28), 32x32 CIFAR (8 -> 16 -> 32).
  The 8x8 digits are used natively, not upscaled: it keeps the offline default fast.
"""
from __future__ import annotations

import math

import torch
from torch import nn
import torch.nn.functional as F


def check_arch(arch: str, shape: tuple[int, ...]) -> None:
    if arch not in ("mlp", "conv"):
        raise ValueError(f"arch must be 'mlp' or 'conv', got {arch!r}")
    if arch == "conv" and (len(shape) != 3 or shape[1] % 4 or shape[2] % 4):
        raise ValueError(f"arch='conv' needs images whose side is divisible by 4, got shape {shape}")


def mlp(sizes: list[int], act: type[nn.Module] = nn.LeakyReLU, final_act: bool = False) -> nn.Sequential:
    """Linear layers with ``act`` between them (and after the last one if ``final_act``)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2 or final_act:
            layers.append(act(0.2) if act is nn.LeakyReLU else act())
    return nn.Sequential(*layers)


class Trunk(nn.Module):
    """Data (B, *shape) -> features (B, out_dim). The bottom half of encoders and discriminators."""

    def __init__(self, arch: str, shape: tuple[int, ...], hidden: tuple[int, ...], width: int,
                 in_extra: int = 0, act: type[nn.Module] = nn.LeakyReLU):
        super().__init__()
        check_arch(arch, shape)
        self.arch = arch
        if arch == "mlp":  # e.g. hidden=(512, 256): 784 -> 512 -> 256
            self.net = mlp([math.prod(shape) + in_extra, *hidden], act, final_act=True)
            self.out_dim = hidden[-1]
        else:
            c, h, w = shape
            self.net = nn.Sequential(
                nn.Conv2d(c, width, 4, 2, 1), nn.LeakyReLU(0.2),            # (B, w, H/2, W/2)
                nn.Conv2d(width, 2 * width, 4, 2, 1), nn.LeakyReLU(0.2),    # (B, 2w, H/4, W/4)
                nn.Flatten(),
            )
            self.out_dim = 2 * width * (h // 4) * (w // 4)
        self.in_extra = in_extra

    def forward(self, x: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        if self.arch == "mlp":
            x = x.flatten(1)
            if extra is not None:
                x = torch.cat([x, extra], 1)
        return self.net(x)


class Decoder(nn.Module):
    """Vector (B, in_dim) -> data (B, *shape), unbounded (the caller applies tanh / sigmoid).

    ``skip=True`` feeds the input vector to every layer, not just the first (Dieng et al., "Avoiding
    Latent Variable Collapse with Generative Skip Models", 2019): the decoder cannot ignore z.
    """

    def __init__(self, arch: str, in_dim: int, shape: tuple[int, ...], hidden: tuple[int, ...],
                 width: int, batch_norm: bool = True, skip: bool = False):
        super().__init__()
        check_arch(arch, shape)
        self.arch, self.shape, self.skip = arch, tuple(shape), skip
        extra = in_dim if skip else 0
        if arch == "mlp":  # mirror of Trunk: hidden=(512, 256) gives in -> 256 -> 512 -> prod(shape)
            sizes = [in_dim, *reversed(hidden), math.prod(shape)]
            self.layers = nn.ModuleList(
                nn.Linear(a + (extra if i else 0), b) for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]))
            )
            self.norms = nn.ModuleList(
                nn.BatchNorm1d(b) if batch_norm else nn.Identity() for b in sizes[1:-1]
            )
        else:
            c, h, w = shape
            self.base = (2 * width, h // 4, w // 4)
            self.fc = nn.Linear(in_dim, math.prod(self.base))
            self.fc_norm = nn.BatchNorm1d(math.prod(self.base)) if batch_norm else nn.Identity()
            self.up1 = nn.ConvTranspose2d(2 * width, width, 4, 2, 1)         # (B, w, H/2, W/2)
            self.up1_norm = nn.BatchNorm2d(width) if batch_norm else nn.Identity()
            self.up2 = nn.ConvTranspose2d(width, c, 4, 2, 1)                 # (B, C, H, W)
            if skip:  # z enters each upsampling stage as a per-channel bias
                self.skip1 = nn.Linear(in_dim, 2 * width)
                self.skip2 = nn.Linear(in_dim, width)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        if self.arch == "mlp":
            h = v
            for i, layer in enumerate(self.layers):
                if i and self.skip:
                    h = torch.cat([h, v], 1)
                h = layer(h)
                if i < len(self.norms):
                    h = F.relu(self.norms[i](h))
            return h.view(-1, *self.shape)
        h = F.relu(self.fc_norm(self.fc(v))).view(-1, *self.base)          # (B, 2w, H/4, W/4)
        if self.skip:
            h = h + self.skip1(v)[:, :, None, None]
        h = F.relu(self.up1_norm(self.up1(h)))                              # (B, w, H/2, W/2)
        if self.skip:
            h = h + self.skip2(v)[:, :, None, None]
        return self.up2(h)                                                  # (B, C, H, W)


def one_hot(labels: torch.Tensor | None, num_classes: int) -> torch.Tensor | None:
    """Int labels (B,) -> one-hot (B, K); class weights (B, K) (soft labels) pass through as floats."""
    if labels is None or num_classes == 0:
        return None
    if labels.dim() == 2:
        return labels.float()
    return F.one_hot(labels, num_classes).float()


class MinibatchStd(nn.Module):
    """Features (B, F) -> (B, F + 1): one more feature, the standard deviation of each feature over the
    batch, averaged (Karras et al. 2018, "Progressive Growing of GANs", section 3). A discriminator
    that sees it can tell a batch without variety from a real one, so a generator that collapses onto
    a few modes is penalised. Over the whole batch (their group size = the batch); a batch of one
    gets ~0 (1e-8 under the square root keeps its gradient finite). So D's score of an image depends
    on the batch it is scored in: compare scores made in batches like the training ones."""

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        spread = (h.var(0, unbiased=False) + 1e-8).sqrt().mean()            # scalar
        return torch.cat([h, spread.expand(h.shape[0], 1)], 1)


def apply_spectral_norm(module: nn.Module) -> None:
    """Spectral normalisation (Miyato et al., 2018) on every Linear/Conv layer of ``module``."""
    for name, child in module.named_children():
        if isinstance(child, (nn.Linear, nn.Conv2d)):
            setattr(module, name, nn.utils.parametrizations.spectral_norm(child))
        else:
            apply_spectral_norm(child)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
