"""A folder of the user's own images, or a zip of one, with the guards an upload needs.

Subfolders (or a zip's first-level folders) are classes; unreadable files are skipped and
counted in `Dataset.skipped`. Zips are read in memory, never extracted. Everything a zip declares
is checked before it costs anything: the number of entries (from the end record, before Python's
zipfile parses them), each member's size, compression and encryption, the total, and each
image's pixel count from its header before it is decoded, plus a total pixel budget. A damaged,
encrypted or oversized archive is one `DataError` (a ValueError) naming it.
"""

from __future__ import annotations

import io
import os
import struct
import time
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import IO, Any

import numpy as np
import torch

from .dataset import DataError, Dataset

# Guards for archives a user uploads. The dashboard takes zips up to 50 MB; these bound what one
# can cost. The worst archive crafted against them (250 x 1 MiB members, 19,000 tiny images, then
# 4096x4096 RGBA PNGs up to the pixel budget) costs 3.5 s of CPU and 214 MB peak RSS; before
# them, 400 such PNGs in a 0.3 MB zip cost 84 s (a 50 MB zip: hours) and 900 bytes of bzip2 2 GiB.
_ZIP_MAX_ENTRIES = 50_000          # central-directory records, counted before zipfile parses them
                                   # (each becomes a ~500-byte ZipInfo; 500,000 cost 2.7 s and 270 MB)
_ZIP_MAX_IMAGES = 20_000           # files that may be images: 20,000 x 28 x 28 x 3 = 47 MB kept
_MAX_CLASSES = 1_000               # class folders (a conditional model embeds each), zip or folder
_ZIP_MAX_MEMBER = 64 << 20         # one file, uncompressed (a 12-megapixel phone JPEG is ~4 MB)
_ZIP_MAX_TOTAL = 256 << 20         # all files, uncompressed (5x the dashboard's 50 MB upload limit:
                                   # images are already compressed, so honest zips expand ~1x)
_ZIP_MAX_RATIO = 200               # uncompressed / compressed, per member over 1 MiB (images rarely exceed 10)
_ZIP_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate"}
# bzip2 / LZMA members are refused: zipfile inflates a whole compressed read at once, so 1 kB of
# bzip2 became 2 GiB in memory before any size check could stop it.
_MAX_PIXELS = 4096 * 4096          # per image, from its header, before decoding (larger: skipped)
_ZIP_MAX_TOTAL_PIXELS = 128 << 20  # decoded pixels in all (JPEGs count at their reduced draft size):
                                   # ~1.7 s of decoding 4096x4096 RGBA PNGs on one core; a 50 MB zip of
                                   # PNG photos holds ~25 million, of JPEGs fewer once drafted
_ZIP_MAX_CPU_S = 20.0              # CPU seconds of this thread for one archive, checked between images:
                                   # the backstop for costs the bounds above do not see (honest 50 MB: <5 s)
_BYTES_PER_READ = 512              # an image may make 256 + size / 512 read calls; Pillow's parsers
                                   # loop in Python per chunk, so 1 MB of empty PNG chunks cost 0.2 s
_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "PPM", "TGA")   # JPEG includes phones' MPO
"""Formats Pillow may try; the others are not offered untrusted bytes (EPS runs Ghostscript, TIFF
parses up to 65,535 tags per directory in Python, and a dozen rare decoders)."""
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, RuntimeError,
               NotImplementedError, ValueError, zlib.error, struct.error, KeyError, IndexError,
               OverflowError, UnicodeDecodeError)
"""What zipfile raises on a damaged archive (bad CRC, truncated stream, bad headers, encrypted or
unsupported members): each becomes one DataError naming the archive."""


class _Budget:
    """The pixels and CPU time one load may still spend (None: unbounded, for a local folder, the
    user's own). One per load, so concurrent sessions never share it."""

    def __init__(self, max_total_pixels: int | None = None, max_cpu_s: float | None = None):
        self.max_total_pixels, self.max_cpu_s, self.pixels, self.images = max_total_pixels, max_cpu_s, 0, 0
        self.source, self.size = "", 0      # for the message; set by _stack_images
        self._start = time.thread_time()    # this thread's CPU: a server runs one session per thread

    def check_time(self) -> None:
        if self.max_cpu_s is not None and time.thread_time() - self._start > self.max_cpu_s:
            raise DataError(f"{self.source}: reading it took over {self.max_cpu_s:.0f} s of CPU (after "
                            f"{self.images:,} images); upload fewer or smaller images")

    def take(self, pixels: int) -> None:
        """Count an image about to be decoded; DataError if it would go over the budget."""
        if self.max_total_pixels is not None and self.pixels + pixels > self.max_total_pixels:
            raise DataError(f"{self.source}: the images hold over {self.max_total_pixels / 1e6:,.0f} million "
                            f"pixels in all (after {self.images:,} images); the lab resizes them to "
                            f"{self.size}x{self.size}, so shrink them before zipping, or upload fewer")
        self.pixels += pixels
        self.images += 1


def load_folder(path: str | os.PathLike | bytes | IO[bytes] | None = None, size: int = 28,
                channels: int = 1, source: str = "upload") -> Dataset:
    """Images in a folder (one subfolder per class, or none), or a zip of one given as a path,
    bytes or a file object; ``source`` names an in-memory zip (e.g. its file name) in messages and
    in ``Dataset.source``. DataError (a ValueError) for a damaged, hostile or oversized input."""
    if path is None:
        raise ValueError("dataset 'folder' needs path=<directory of images, or a .zip of one>")
    if not 4 <= size <= 128:
        raise ValueError(f"size must be between 4 and 128 pixels, got {size}")
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grey) or 3 (RGB), got {channels}")
    if isinstance(path, (bytes, bytearray)) or hasattr(path, "read"):
        return _load_zip(io.BytesIO(path) if isinstance(path, (bytes, bytearray)) else path, size, channels, source)
    folder = Path(path).expanduser()
    try:
        if folder.is_file() and zipfile.is_zipfile(folder):
            with open(folder, "rb") as fh:
                return _load_zip(fh, size, channels, str(folder))
        if not folder.is_dir():
            raise DataError(f"{folder} is not a directory or a zip file")
        files, class_names, skipped = _image_files(folder)
        if len(class_names) > _MAX_CLASSES:
            raise DataError(f"{folder}: {len(class_names):,} class folders is over the {_MAX_CLASSES:,} limit")
    except DataError:
        raise
    except OSError as e:   # an unreadable folder, a broken link on the way, ...
        raise DataError(f"cannot read {e.filename or folder}: {e.strerror or e}") from e
    return _stack_images(iter(files), class_names, skipped, size, channels, str(folder), _Budget())


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


def _read_image(source: Path | IO[bytes], size: int, mode: str, budget: _Budget) -> np.ndarray | None:
    """The image centre-cropped to a square and resized (so faces are not squashed), or None if it
    cannot be read. Its size is checked from the header, before anything is decoded."""
    from PIL import Image, ImageOps

    try:
        img = Image.open(source, formats=_FORMATS)
    except Exception:  # noqa: BLE001 - Pillow raises OSError, SyntaxError, struct.error, ... on
        return None    # damaged or unknown files: each is one unreadable (skipped) file
    with img:
        if img.width * img.height > _MAX_PIXELS:   # a decompression bomb in one image
            return None
        try:
            if img.format in ("JPEG", "MPO"):      # decode at 1/2..1/8 scale while that stays >= 2x the target
                img.draft(mode, (2 * size, 2 * size))
        except Exception:  # noqa: BLE001 - as above
            return None
        budget.take(img.width * img.height)        # DataError when over the archive's budget
        try:
            img = ImageOps.fit(img.convert(mode), (size, size), Image.Resampling.BILINEAR)
            return np.asarray(img, dtype=np.uint8)
        except Exception:  # noqa: BLE001 - as above
            return None


def _stack_images(items: Iterator[tuple[Any, int]], class_names: list[str], skipped: int,
                  size: int, channels: int, source: str, budget: _Budget) -> Dataset:
    """Read (image source, class) pairs into a Dataset; unreadable files are skipped and counted."""
    budget.source, budget.size = source, size
    images, labels = [], []
    for f, label in items:
        budget.check_time()
        arr = _read_image(f, size, "L" if channels == 1 else "RGB", budget)
        if arr is None:
            skipped += 1
            continue
        images.append(arr.reshape(size, size, channels))
        labels.append(label)
    if not images:
        raise DataError(f"no readable images in {source} ({skipped} other files); expected image "
                        "files, either directly or in one subfolder per class")
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()  # (N, C, H, W)
    y = torch.tensor(labels, dtype=torch.int64)
    return Dataset("folder", "all", x, y, class_names, source=source, skipped=skipped)


def _unsafe_member(name: str) -> bool:
    """True for a zip member path that is absolute, climbs with '..' or names a drive ('C:')."""
    return name.startswith(("/", "\\")) or ".." in Path(name).parts or ":" in name.split("/")[0]


def _count_entries(fh: IO[bytes], source: str) -> None:
    """DataError unless `fh` ends in a zip end record whose central directory holds at most
    `_ZIP_MAX_ENTRIES` records: counted as signatures in the bytes zipfile would parse (the
    record's own count can lie), before zipfile builds one object per record."""
    try:
        end = zipfile._EndRecData(fh)   # the same reader ZipFile uses; handles zip64
    except _ZIP_ERRORS as e:
        raise DataError(f"{source} is not a valid zip file ({e})") from None
    if end is None:
        raise DataError(f"{source} is not a valid zip file (no end-of-archive record; truncated?)")
    declared, cd_size = end[zipfile._ECD_ENTRIES_TOTAL], end[zipfile._ECD_SIZE]
    start = max(0, end[zipfile._ECD_LOCATION] - cd_size - 76)    # 76: a zip64 end record + locator
    if declared > _ZIP_MAX_ENTRIES:
        count = declared
    else:
        fh.seek(start)
        count = fh.read(end[zipfile._ECD_LOCATION] - start).count(b"PK\x01\x02")
    if count > _ZIP_MAX_ENTRIES:
        raise DataError(f"{source}: {count:,} entries is over the {_ZIP_MAX_ENTRIES:,} limit")
    fh.seek(0)


def _load_zip(fh: IO[bytes], size: int, channels: int, source: str) -> Dataset:
    """Images from a zip, read in memory (nothing is extracted, so member names cannot escape).

    Classes are the first folder of each member's path (after a single shared top folder, as
    zipping a folder produces); members with absolute or '..' paths are refused and counted.
    Everything the central directory declares is checked before any member is read (see the
    module's note); any damage found while reading is one DataError naming the archive.
    """
    _count_entries(fh, source)
    try:
        zf = zipfile.ZipFile(fh)
    except _ZIP_ERRORS as e:
        raise DataError(f"{source} is not a valid zip file ({e})") from None
    with zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        _check_members(infos, source)
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
            index = {d: k for k, d in enumerate(dirs)}
            class_names, labels = dirs, [index[p[0]] for _, p in members]
        else:
            stray, class_names, labels = [], ["all"], [0] * len(members)
        _check_counts(len(members), len(class_names), source)
        budget = _Budget(_ZIP_MAX_TOTAL_PIXELS, _ZIP_MAX_CPU_S)
        items = ((_CountedReads(_read_member(zf, i, source)), y) for (i, _), y in zip(members, labels))
        return _stack_images(items, class_names, n_unsafe + len(stray), size, channels, source, budget)


def _check_members(infos: list[zipfile.ZipInfo], source: str) -> None:
    """DataError for an encrypted or unsupported member, one over `_ZIP_MAX_MEMBER` or the
    compression ratio, or a total over `_ZIP_MAX_TOTAL` or the ratio, all from the central directory."""
    total = packed = 0
    for i in infos:
        if i.flag_bits & 0x1:
            raise DataError(f"{source}: {i.filename!r} is encrypted; zip the images without a password")
        if i.compress_type not in _ZIP_METHODS:
            raise DataError(f"{source}: {i.filename!r} uses compression method {i.compress_type} "
                            f"(only {' and '.join(_ZIP_METHODS.values())} are read); re-zip it with a "
                            "standard zip tool")
        if i.file_size > _ZIP_MAX_MEMBER:
            raise DataError(f"{source}: {i.filename!r} is {i.file_size / 2**20:,.0f} MB uncompressed, over "
                            f"the {_ZIP_MAX_MEMBER >> 20} MB limit for one file")
        if i.file_size > 1 << 20 and i.file_size / max(i.compress_size, 1) > _ZIP_MAX_RATIO:
            raise DataError(f"{source}: member {i.filename!r} expands "
                            f"{i.file_size / max(i.compress_size, 1):,.0f}x (zip bomb?)")
        total += i.file_size
        packed += i.compress_size
    if total > _ZIP_MAX_TOTAL:
        raise DataError(f"{source}: {total / 2**20:,.0f} MB uncompressed is over the "
                        f"{_ZIP_MAX_TOTAL / 2**20:,.0f} MB limit (zip bomb?)")
    if total > 16 << 20 and total / max(packed, 1) > _ZIP_MAX_RATIO:   # many small members, each under 1 MiB
        raise DataError(f"{source}: {total / 2**20:,.0f} MB uncompressed from {packed / 2**20:,.1f} MB expands "
                        f"{total / max(packed, 1):,.0f}x in all (zip bomb?)")


def _check_counts(n_files: int, n_classes: int, source: str) -> None:
    if n_files > _ZIP_MAX_IMAGES:
        raise DataError(f"{source}: {n_files:,} files is over the {_ZIP_MAX_IMAGES:,} limit")
    if n_classes > _MAX_CLASSES:
        raise DataError(f"{source}: {n_classes:,} class folders is over the {_MAX_CLASSES:,} limit")


class _CountedReads(io.BytesIO):
    """A member's bytes for Pillow, allowing 256 + size / `_BYTES_PER_READ` read calls: its PNG,
    GIF and JPEG parsers loop in Python once per chunk or marker, so a file made of millions of
    empty chunks is cut off (as unreadable) instead of costing seconds per megabyte."""

    def __init__(self, data: bytes):
        super().__init__(data)
        self._reads_left = 256 + len(data) // _BYTES_PER_READ

    def read(self, size: int | None = -1) -> bytes:
        self._reads_left -= 1
        if self._reads_left < 0:
            raise OSError("too many small reads: not an ordinary image file")
        return super().read(size)

    def readline(self, size: int | None = -1) -> bytes:
        self._reads_left -= 1
        if self._reads_left < 0:
            raise OSError("too many small reads: not an ordinary image file")
        return super().readline(size)


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, source: str) -> bytes:
    """The member's bytes, CRC verified, never inflating more than its declared size (checked
    above): ZipFile.read would inflate the whole stream at once, however much a lying header hides."""
    try:
        with zf.open(info) as f:
            data = f.read(info.file_size)   # read(n) inflates at most max(n, 4 kB) per step
            if f.read(1):                    # (zipfile stops at the declared size anyway)
                raise zipfile.BadZipFile("more data than declared")
            return data
    except _ZIP_ERRORS as e:
        raise DataError(f"{source} is damaged: {info.filename!r}: {e}") from None
