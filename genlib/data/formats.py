"""The on-disk formats of the real datasets: the IDX reader (MNIST, Fashion-MNIST), and each
dataset's layout as a `SplitFiles` (CIFAR-10's pickles are read by `cifar`).

Every file is untrusted input: the sizes a header declares are checked against the file and
against the stated ceilings below before anything is allocated or decompressed, labels are
checked against the classes, and every failure is one `CorruptDataError` naming the file.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path
from typing import IO

import numpy as np
import torch

from .cifar import CIFAR_FILES, CIFAR_FOLDER, cifar_class_names, read_cifar_batches
from .local import CorruptDataError, SplitFiles, check_labels

_CHUNK = 1 << 20   # decompress and read 1 MiB at a time, so memory follows the data that arrives

# --------------------------------------------------------------------------------------------
# MNIST / Fashion-MNIST: IDX files

_IDX_STEMS = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
              "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
# IDX type byte -> numpy dtype; multi-byte types are big-endian (http://yann.lecun.com/exdb/mnist/)
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


_IDX_MAX_BYTES = 1 << 26
"""Ceiling on the data one IDX file may declare (product of its dims x item size): 64 MiB, 1.4x
the largest IDX file the lab reads (MNIST / Fashion-MNIST train images, 60,000 x 28 x 28 =
47 MB). A header over it is refused before anything is allocated or decompressed, and a .gz is
never inflated past what its header declares, so a gzip bomb costs at most this much."""
_IDX_MAX_NDIM = 4         # the lab reads 1-D labels and 3-D images
_IDX_CLASSES = 10         # MNIST and Fashion-MNIST labels are 0..9
_IDX_SIDE = 28            # and their images 28x28 (models and pretrained checkpoints assume it)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Parse an IDX file (gzipped if the name ends in .gz) into an array of its declared shape.

    Written here rather than using torchvision's reader because that one cannot read .gz and the
    shared data folder is read-only, so the files cannot be unpacked next to themselves. Read
    incrementally: the header is checked first, then exactly the data it declares is inflated,
    then the end of the stream (which also checks a .gz's CRC). Any damage is a CorruptDataError
    (a ValueError) naming the file, never a raw zlib / EOF / OS error.
    """
    path = Path(path)
    try:
        with (gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")) as f:
            return _read_idx_stream(f, path, None if path.suffix == ".gz" else path.stat().st_size)
    except CorruptDataError:
        raise
    except (OSError, EOFError, zlib.error) as e:     # gzip.BadGzipFile is an OSError
        what = "a valid gzip file" if path.suffix == ".gz" else "readable"
        raise CorruptDataError(f"{path} is not {what}: {e}; replace the file") from e


def _read_idx_stream(f: IO[bytes], path: Path, file_size: int | None) -> np.ndarray:
    magic = _read_upto(f, 4)
    if len(magic) < 4 or magic[0] != 0 or magic[1] != 0 or magic[2] not in _IDX_DTYPES:
        raise CorruptDataError(f"{path} is not an IDX file: bad magic number {magic.hex() or 'empty'}"
                               " (expected 0000 + type byte + number of dimensions)")
    ndim = magic[3]
    if not 1 <= ndim <= _IDX_MAX_NDIM:
        raise CorruptDataError(f"{path}: IDX header declares {ndim} dimensions (1 to {_IDX_MAX_NDIM} "
                               "expected); the file is corrupt")
    raw_dims = _read_upto(f, 4 * ndim)
    if len(raw_dims) < 4 * ndim:
        raise CorruptDataError(f"{path}: truncated IDX header ({4 + len(raw_dims)} bytes, need {4 + 4 * ndim})")
    dims = tuple(int(d) for d in np.frombuffer(bytes(raw_dims), dtype=">u4"))
    dtype = np.dtype(_IDX_DTYPES[magic[2]])
    expected = math.prod(dims) * dtype.itemsize
    if expected > _IDX_MAX_BYTES:
        raise CorruptDataError(f"{path}: header declares shape {dims} ({expected:,} bytes of data), over "
                               f"the {_IDX_MAX_BYTES >> 20} MiB ceiling for one IDX file; refused "
                               "before reading it (corrupt or hostile)")
    header = 4 + 4 * ndim
    if file_size is not None and file_size - header != expected:
        raise CorruptDataError(f"{path}: header declares shape {dims} ({expected:,} bytes of data) but "
                               f"the file holds {file_size - header:,}; it is truncated or corrupt")
    data = _read_upto(f, expected)
    if len(data) < expected:
        raise CorruptDataError(f"{path}: header declares shape {dims} ({expected:,} bytes of data) but "
                               f"the file holds {len(data):,}; it is truncated or corrupt")
    if f.read(1):   # at most one more byte is inflated: a .gz bomb stops here (and its CRC is checked)
        raise CorruptDataError(f"{path}: header declares shape {dims} ({expected:,} bytes of data) but "
                               "the file holds more; it is corrupt (or a decompression bomb)")
    arr = np.frombuffer(data, dtype=dtype).reshape(dims)
    return arr.astype(dtype.newbyteorder("="), copy=False)  # writable; copied only if byte-swapped


def _read_upto(f: IO[bytes], n: int) -> bytearray:
    """Up to `n` bytes from `f`, read in chunks so a short file never costs `n` bytes of memory."""
    buf = bytearray()
    while len(buf) < n:
        chunk = f.read(min(_CHUNK, n - len(buf)))
        if not chunk:
            break
        buf += chunk
    return buf


def read_idx_split(paths: list[Path]) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 images (N, 1, H, W), int64 labels) from an [images, labels] pair of IDX files."""
    images_path, labels_path = paths
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8 or images.shape[1:] != (_IDX_SIDE, _IDX_SIDE) \
            or len(images) == 0:
        raise CorruptDataError(f"{images_path}: expected uint8 images (N, {_IDX_SIDE}, {_IDX_SIDE}), got "
                               f"{images.dtype} {images.shape}")
    if labels.ndim != 1 or len(labels) != len(images):
        raise CorruptDataError(f"{labels_path}: expected {len(images)} labels, got shape {labels.shape}")
    check_labels(labels, _IDX_CLASSES, labels_path)
    x = torch.from_numpy(images).unsqueeze(1)  # (N, 1, H, W) uint8
    return x, torch.from_numpy(labels.astype(np.int64))


def _mnist_class_names(folder: Path) -> list[str]:
    return [str(d) for d in range(10)]


def _fashion_class_names(folder: Path) -> list[str]:
    from torchvision.datasets import FashionMNIST  # lazy: torchvision costs seconds to import

    return list(FashionMNIST.classes)


# --------------------------------------------------------------------------------------------
# Each dataset's layout

MNIST = SplitFiles("mnist", "MNIST", "MNIST/raw", _IDX_STEMS, read_idx_split, _mnist_class_names,
                   suffixes=(".gz", ""))
FASHION_MNIST = SplitFiles("fashion-mnist", "Fashion-MNIST", "FashionMNIST/raw", _IDX_STEMS,
                           read_idx_split, _fashion_class_names, suffixes=(".gz", ""))
CIFAR10 = SplitFiles("cifar10", "CIFAR-10", CIFAR_FOLDER, CIFAR_FILES, read_cifar_batches,
                     cifar_class_names, archive=True)
