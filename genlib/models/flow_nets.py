"""Velocity networks v(x, t, c) for the flow family: an MLP for points and 8x8 digits, a U-Net for images.

Both read the time t in [0, 1] through a sinusoidal embedding (Vaswani et al. 2017, as in DDPM, Ho
et al. 2020) followed by a small MLP, and a class code ``c`` (already embedded: a vector of the same
size, or None). The code is added to the time embedding, so one conditioning path serves both.
Outputs have the input's shape and are unbounded (a velocity, not an image).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def sinusoidal_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """t (B,) in [0, 1] -> (B, dim): [cos(1000 t f_i), sin(1000 t f_i)], f_i = max_period^(-i / (dim/2)).

    t is scaled by 1000 so the frequencies span what a DDPM's integer step index would (Ho et al.
    2020); without it the low frequencies barely change over [0, 1]. An odd ``dim`` gets a zero column.
    """
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = 1000.0 * t.float()[:, None] * freqs[None]                      # (B, half)
    emb = torch.cat([args.cos(), args.sin()], 1)
    return F.pad(emb, (0, dim % 2))


class TimeEmbedding(nn.Module):
    """t (B,) -> (B, out_dim): sinusoidal features through Linear-SiLU-Linear."""

    def __init__(self, freq_dim: int, out_dim: int):
        super().__init__()
        self.freq_dim = freq_dim
        self.net = nn.Sequential(nn.Linear(freq_dim, out_dim), nn.SiLU(), nn.Linear(out_dim, out_dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.net(sinusoidal_embedding(t, self.freq_dim))


def fourier_features(x: torch.Tensor, octaves: int) -> torch.Tensor:
    """x (B, D) -> (B, D + 2 D octaves): x, then sin and cos of 2^k pi x for k = 0..octaves-1
    (positional encoding, Mildenhall et al. 2020; Tancik et al. 2020): lets a small MLP draw the
    sharp, many-moded fields of the 2-D toys (25 modes 0.5 apart, std 0.05)."""
    freqs = math.pi * 2.0 ** torch.arange(octaves, device=x.device, dtype=x.dtype)   # (K,)
    args = (x[:, :, None] * freqs).flatten(1)                                           # (B, D K)
    return torch.cat([x, args.sin(), args.cos()], 1)


class VelocityMLP(nn.Module):
    """Residual MLP on the flattened input: h = Linear(x) + Linear(e), then blocks h += Linear(SiLU(Linear(SiLU(h + Pe)))),
    where e is the time (plus class) embedding projected per block; -> out. For 2-D points and 8x8
    digits (64 pixels): a few hundred units are enough and run at thousands of points per ms.
    ``octaves`` > 0 feeds Fourier features of the input (``fourier_features``) instead of x alone."""

    def __init__(self, shape: tuple[int, ...], hidden: tuple[int, ...], emb_dim: int, octaves: int = 0):
        super().__init__()
        self.shape = tuple(shape)
        d, h = math.prod(shape), hidden[0]
        self.emb_dim, self.octaves = emb_dim, octaves
        self.time = TimeEmbedding(emb_dim, emb_dim)
        self.inp = nn.Linear(d * (1 + 2 * octaves), h)
        self.emb_in = nn.Linear(emb_dim, h)      # the embedding also enters the first layer (so one size works)
        self.blocks = nn.ModuleList()
        self.emb_proj = nn.ModuleList()
        for a, b in zip(hidden[:-1], hidden[1:]):
            self.blocks.append(nn.Sequential(nn.SiLU(), nn.Linear(a, b), nn.SiLU(), nn.Linear(b, b)))
            self.emb_proj.append(nn.Linear(emb_dim, a))
            # residual only where sizes match; otherwise a projection
        self.skips = nn.ModuleList(nn.Identity() if a == b else nn.Linear(a, b, bias=False)
                                   for a, b in zip(hidden[:-1], hidden[1:]))
        self.out = nn.Sequential(nn.SiLU(), nn.Linear(hidden[-1], d))
        _start_small(self.out[1])

    def forward(self, x: torch.Tensor, t: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        e = self.time(t)                                                  # (B, E)
        if c is not None:
            e = e + c
        x_in = x.flatten(1)
        h = self.inp(fourier_features(x_in, self.octaves) if self.octaves else x_in) + self.emb_in(e)                                        # (B, H)
        for block, proj, skip in zip(self.blocks, self.emb_proj, self.skips):
            h = skip(h) + block(h + proj(e))
        return self.out(h).view(-1, *self.shape)


def _start_small(layer: nn.Module) -> None:
    """The output layer starts at a tenth of its default scale and zero bias, so v(x, t) ~ 0 at first
    (the first loss is about E|x1 - x0|^2 / D) yet already depends on the input and the label."""
    with torch.no_grad():
        layer.weight.mul_(0.1)
        layer.bias.zero_()


class ResBlock(nn.Module):
    """GroupNorm-SiLU-Conv, + per-channel shift from the embedding, GroupNorm-SiLU-Conv, residual."""

    def __init__(self, cin: int, cout: int, emb_dim: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(_groups(cin), cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.emb = nn.Linear(emb_dim, cout)
        self.norm2 = nn.GroupNorm(_groups(cout), cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Identity() if cin == cout else nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.emb(e)[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


def _groups(c: int) -> int:
    for g in (8, 4, 2):
        if c % g == 0:
            return g
    return 1


class UNet(nn.Module):
    """A small U-Net (Ronneberger et al. 2015, in the DDPM layout of Ho et al. 2020, no attention):
    channels (w, 2w, 2w) at sides (H, H/2, H/4), one residual block per level on the way down, one
    in the middle, one per level on the way up over the concatenated skip. Sides divisible by 4:
    8x8 (8, 4, 2), 28x28 (28, 14, 7), 32x32 (32, 16, 8). Sized for a CPU: with w=32 it has ~0.9 M
    parameters; the full-resolution level is kept to one block each way, where the cost is.
    ``patch`` = 2 first folds each 2x2 pixel block into channels (pixel unshuffle, as the patches of
    DiT, Peebles & Xie 2023) and unfolds at the end: the net then runs at half the side, ~4x cheaper.
    """

    def __init__(self, shape: tuple[int, ...], width: int, emb_dim: int, patch: int = 1):
        super().__init__()
        c = shape[0] * patch * patch
        w1, w2 = width, 2 * width
        self.emb_dim, self.patch = emb_dim, patch
        self.time = TimeEmbedding(emb_dim, emb_dim)
        self.inp = nn.Conv2d(c, w1, 3, padding=1)
        self.down1 = ResBlock(w1, w1, emb_dim)                            # H
        self.pool1 = nn.Conv2d(w1, w1, 3, stride=2, padding=1)            # H/2
        self.down2 = ResBlock(w1, w2, emb_dim)
        self.pool2 = nn.Conv2d(w2, w2, 3, stride=2, padding=1)            # H/4
        self.mid = ResBlock(w2, w2, emb_dim)
        self.up2 = ResBlock(w2 + w2, w2, emb_dim)                         # H/4 -> H/2 after upsampling
        self.up1 = ResBlock(w2 + w1, w1, emb_dim)                         # H/2 -> H
        self.out_norm = nn.GroupNorm(_groups(w1), w1)
        self.out = nn.Conv2d(w1 + w1, c, 3, padding=1)
        _start_small(self.out)

    def forward(self, x: torch.Tensor, t: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        e = self.time(t)                                                  # (B, E)
        if c is not None:
            e = e + c
        if self.patch > 1:   # (B, C, H, W) -> (B, C p^2, H/p, W/p): 2x2 pixels become 4 channels
            x = F.pixel_unshuffle(x, self.patch)
        h0 = self.inp(x)                                                  # (B, w, H, W)
        h1 = self.down1(h0, e)                                            # (B, w, H, W)
        h2 = self.down2(self.pool1(h1), e)                                # (B, 2w, H/2, W/2)
        h = self.mid(self.pool2(h2), e)                                   # (B, 2w, H/4, W/4)
        h = F.interpolate(h, size=h2.shape[-2:], mode="nearest")
        h = self.up2(torch.cat([h, h2], 1), e)                            # (B, 2w, H/2, W/2)
        h = F.interpolate(h, size=h1.shape[-2:], mode="nearest")
        h = self.up1(torch.cat([h, h1], 1), e)                            # (B, w, H, W)
        out = self.out(torch.cat([F.silu(self.out_norm(h)), h0], 1))      # (B, C p^2, H, W)
        return F.pixel_shuffle(out, self.patch) if self.patch > 1 else out
