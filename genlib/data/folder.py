"""A folder of the user's own images, or a zip of one, with the guards an upload needs.

Subfolders (or a zip's first-level folders) are classes; unreadable files are skipped and
counted in `Dataset.skipped`. Zips are read in memory, never extracted, and refused when they
look like a zip bomb.
"""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import IO, Any

import numpy as np
import torch

from .dataset import Dataset

# Guards for archives a user uploads: a zip bomb expands a few kB into gigabytes.
_ZIP_MAX_MEMBERS = 100_000
_ZIP_MAX_TOTAL = 1 << 30           # 1 GiB uncompressed in all
_ZIP_MAX_RATIO = 200               # uncompressed / compressed, per member (images rarely exceed 10)
_MAX_PIXELS = 4096 * 4096          # per image, before resizing


def load_folder(path: str | os.PathLike | bytes | IO[bytes] | None = None, size: int = 28,
                channels: int = 1, source: str = "upload") -> Dataset:
    """Images in a folder (one subfolder per class, or none), or a zip of one given as a path,
    bytes or a file object; ``source`` names an in-memory zip (e.g. its file name) in messages and
    in ``Dataset.source``."""
    if path is None:
        raise ValueError("dataset 'folder' needs path=<directory of images, or a .zip of one>")
    if not 4 <= size <= 128:
        raise ValueError(f"size must be between 4 and 128 pixels, got {size}")
    if isinstance(path, (bytes, bytearray)) or hasattr(path, "read"):
        return _load_zip(io.BytesIO(path) if isinstance(path, (bytes, bytearray)) else path, size, channels, source)
    folder = Path(path).expanduser()
    if folder.is_file() and zipfile.is_zipfile(folder):
        with open(folder, "rb") as fh:
            return _load_zip(fh, size, channels, str(folder))
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a directory or a zip file")
    files, class_names, skipped = _image_files(folder)
    return _stack_images(iter(files), class_names, skipped, size, channels, str(folder))


def _image_files(path: Path) -> tuple[list[tuple[Path, int]], list[str], int]:
    """([(file, class index)], class names, files outside any class folder).

    Subfolders are classes (sorted, searched recursively); with no subfolders the folder is one
    class 'all'. Hidden files and folders are ignored.
    """
    visible = sorted(p for p in path.iterdir() if not p.name.startswith("."))
    classes = [p for p in visible if p.is_dir()]
    if not classes:
        return [(p, 0) for p in visible if p.is_file()], ["all"], 0
    files = [(f, i) for i, d in enumerate(classes) for f in sorted(d.rglob("*"))
             if f.is_file() and not any(part.startswith(".") for part in f.relative_to(d).parts)]
    stray = sum(1 for p in visible if p.is_file())
    return files, [d.name for d in classes], stray


def _read_image(source: Path | IO[bytes], size: int, mode: str) -> np.ndarray | None:
    """The image centre-cropped to a square and resized (so faces are not squashed), or None."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(source) as img:
            if img.width * img.height > _MAX_PIXELS:   # a decompression bomb in one image
                return None
            img = ImageOps.fit(img.convert(mode), (size, size), Image.Resampling.BILINEAR)
            return np.asarray(img, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None


def _stack_images(items: Iterator[tuple[Any, int]], class_names: list[str], skipped: int,
                  size: int, channels: int, source: str) -> Dataset:
    """Read (image source, class) pairs into a Dataset; unreadable files are skipped and counted."""
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grey) or 3 (RGB), got {channels}")
    images, labels = [], []
    for f, label in items:
        arr = _read_image(f, size, "L" if channels == 1 else "RGB")
        if arr is None:
            skipped += 1
            continue
        images.append(arr.reshape(size, size, channels))
        labels.append(label)
    if not images:
        raise ValueError(f"no readable images in {source} ({skipped} other files); expected image "
                         "files, either directly or in one subfolder per class")
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()  # (N, C, H, W)
    y = torch.tensor(labels, dtype=torch.int64)
    return Dataset("folder", "all", x, y, class_names, source=source, skipped=skipped)


def _unsafe_member(name: str) -> bool:
    """True for a zip member path that is absolute, climbs with '..' or names a drive ('C:')."""
    return name.startswith(("/", "\\")) or ".." in Path(name).parts or ":" in name.split("/")[0]


def _load_zip(fh: IO[bytes], size: int, channels: int, source: str) -> Dataset:
    """Images from a zip, read in memory (nothing is extracted, so member names cannot escape).

    Classes are the first folder of each member's path (after a single shared top folder, as
    zipping a folder produces); members with absolute or '..' paths are refused and counted.
    """
    try:
        zf = zipfile.ZipFile(fh)
    except zipfile.BadZipFile:
        raise ValueError(f"{source} is not a valid zip file") from None
    with zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        if len(infos) > _ZIP_MAX_MEMBERS:
            raise ValueError(f"{source}: {len(infos):,} files is over the {_ZIP_MAX_MEMBERS:,} limit")
        total = sum(i.file_size for i in infos)
        if total > _ZIP_MAX_TOTAL:
            raise ValueError(f"{source}: {total / 2**20:,.0f} MB uncompressed is over the "
                             f"{_ZIP_MAX_TOTAL / 2**20:,.0f} MB limit (zip bomb?)")
        for i in infos:
            if i.compress_size and i.file_size / i.compress_size > _ZIP_MAX_RATIO and i.file_size > 1 << 20:
                raise ValueError(f"{source}: member {i.filename!r} expands {i.file_size / i.compress_size:,.0f}x "
                                 "(zip bomb?)")
        safe = [i for i in infos if not _unsafe_member(i.filename)]
        n_unsafe = len(infos) - len(safe)
        members = [(i, PurePosixPath(i.filename).parts) for i in safe]
        members = [(i, p) for i, p in members if not any(q.startswith(".") or q == "__MACOSX" for q in p)]
        if members and len({p[0] for _, p in members}) == 1 and all(len(p) > 1 for _, p in members):
            members = [(i, p[1:]) for i, p in members]   # strip the single top folder
        dirs = sorted({p[0] for _, p in members if len(p) > 1})
        if dirs:
            stray = [m for m in members if len(m[1]) == 1]
            members = [m for m in members if len(m[1]) > 1]
            class_names, labels = dirs, [dirs.index(p[0]) for _, p in members]
        else:
            stray, class_names, labels = [], ["all"], [0] * len(members)
        items = ((io.BytesIO(zf.read(i)), y) for (i, _), y in zip(members, labels))
        return _stack_images(items, class_names, n_unsafe + len(stray), size, channels, source)

