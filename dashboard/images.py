"""Images for the pages and downloads: a grid of samples as one crisp image, PNG bytes, the
training GIF."""
from __future__ import annotations

import io
import math

import numpy as np
import torch

from genlib.sampling import to_uint8


def image_grid(x: torch.Tensor, nrow: int | None = None, pad: int = 1, min_side: int = 320) -> np.ndarray:
    """uint8 (n, C, H, W) -> one uint8 image (rows, cols) or (rows, cols, 3), upscaled by an integer
    factor (nearest neighbour, so pixels stay crisp) until it is at least ``min_side`` wide."""
    x = x.detach().cpu()
    if x.dtype != torch.uint8:
        x = to_uint8(x)
    n, c, h, w = x.shape
    nrow = nrow or math.ceil(math.sqrt(n))
    ncol = math.ceil(n / nrow)
    grid = torch.full((c, ncol * (h + pad) + pad, nrow * (w + pad) + pad), 255, dtype=torch.uint8)
    for i in range(n):
        r, col = divmod(i, nrow)
        grid[:, pad + r * (h + pad): pad + r * (h + pad) + h, pad + col * (w + pad): pad + col * (w + pad) + w] = x[i]
    scale = max(1, math.ceil(min_side / grid.shape[2]))
    grid = grid.repeat_interleave(scale, 1).repeat_interleave(scale, 2)       # (C, H', W')
    arr = grid.permute(1, 2, 0).numpy()
    return arr[:, :, 0] if c == 1 else arr


def png_bytes(img: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def labelled_frame(img: np.ndarray, text: str):
    """A grid image with ``text`` in a white band above it (a PIL RGB image)."""
    from PIL import Image, ImageDraw, ImageFont

    grid = Image.fromarray(img).convert("RGB")
    band = max(18, grid.width // 16)
    try:
        font = ImageFont.load_default(size=int(band * 0.7))
    except TypeError:                                   # Pillow < 10.1: one small bitmap font
        font = ImageFont.load_default()
    out = Image.new("RGB", (grid.width, grid.height + band), "white")
    out.paste(grid, (0, band))
    ImageDraw.Draw(out).text((6, band // 2), text, fill="black", font=font, anchor="lm")
    return out


def gif_bytes(samples: list[tuple[int, torch.Tensor]], ms_per_frame: int = 250) -> bytes:
    """The fixed-noise grids along training as an animated GIF, one frame per saved grid, each
    frame headed by its training step."""
    frames = [labelled_frame(image_grid(x, min_side=256), f"step {step:,}").convert("P") for step, x in samples]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=ms_per_frame, loop=0)
    return buf.getvalue()
