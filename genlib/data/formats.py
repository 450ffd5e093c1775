"""The on-disk formats of the real datasets: IDX (MNIST, Fashion-MNIST) and CIFAR-10's pickles,
read with an unpickler that cannot run code, and each dataset's layout as a `SplitFiles`."""

from __future__ import annotations

import codecs
import gzip
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .local import SplitFiles

# --------------------------------------------------------------------------------------------
# MNIST / Fashion-MNIST: IDX files

_IDX_STEMS = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
              "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
# IDX type byte -> numpy dtype; multi-byte types are big-endian (http://yann.lecun.com/exdb/mnist/)
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Parse an IDX file (gzipped if the name ends in .gz) into an array of its declared shape.

    Written here rather than using torchvision's reader because that one cannot read .gz and the
    shared data folder is read-only, so the files cannot be unpacked next to themselves.
    """
    path = Path(path)
    raw = path.read_bytes()
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise ValueError(f"{path} is not a valid gzip file: {e}") from e
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an IDX file: bad magic number {raw[:4].hex() or 'empty'}"
                         " (expected 0000 + type byte + number of dimensions)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header ({len(raw)} bytes, need {header})")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(f"{path}: header declares shape {dims} ({expected} bytes of data) but "
                         f"the file holds {len(raw) - header}; it is truncated or corrupt")
    arr = np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)
    return arr.astype(dtype.newbyteorder("="), copy=False)  # read-only view when already native


def read_idx_split(paths: list[Path]) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 images (N, 1, H, W), int64 labels) from an [images, labels] pair of IDX files."""
    images_path, labels_path = paths
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"{images_path}: expected uint8 images (N, H, W), got {images.dtype} {images.shape}")
    if labels.ndim != 1 or len(labels) != len(images):
        raise ValueError(f"{labels_path}: expected {len(images)} labels, got shape {labels.shape}")
    x = torch.from_numpy(images.copy()).unsqueeze(1)  # (N, 1, H, W) uint8
    return x, torch.from_numpy(labels.astype(np.int64))


def _mnist_class_names(folder: Path) -> list[str]:
    return [str(d) for d in range(10)]


def _fashion_class_names(folder: Path) -> list[str]:
    from torchvision.datasets import FashionMNIST  # lazy: torchvision costs seconds to import

    return list(FashionMNIST.classes)


# --------------------------------------------------------------------------------------------
# CIFAR-10: pickled batches, read with an unpickler that cannot run code

_CIFAR_FOLDER = "cifar-10-batches-py"
_CIFAR_FILES = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}
_CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer",
                  "dog", "frog", "horse", "ship", "truck"]


def _numpy_pickle_globals() -> dict[tuple[str, str], Any]:
    """The only callables a pickled numpy array needs, under numpy 1.x and 2.x module names."""
    try:
        from numpy._core import multiarray, numeric  # numpy >= 2
    except ImportError:
        from numpy.core import multiarray, numeric  # numpy 1.x

    allowed: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): codecs.encode,  # protocol 2 stores bytes this way
        ("builtins", "set"): set, ("builtins", "frozenset"): frozenset,
        ("builtins", "bytearray"): bytearray,
    }
    for mod in ("numpy.core", "numpy._core"):
        allowed[(f"{mod}.multiarray", "_reconstruct")] = multiarray._reconstruct
        allowed[(f"{mod}.multiarray", "scalar")] = multiarray.scalar
        allowed[(f"{mod}.numeric", "_frombuffer")] = numeric._frombuffer
    return allowed


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler for CIFAR batches: plain data and numpy arrays only.

    A pickle can call any importable function while loading; a downloaded or shared file is not
    trusted, so every global outside the numpy array-rebuilding set is refused.
    """

    def __init__(self, file: Any, source: Path):
        super().__init__(file, encoding="bytes")
        self._source = source
        self._allowed = _numpy_pickle_globals()

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._allowed:
            return self._allowed[(module, name)]
        raise pickle.UnpicklingError(
            f"{self._source}: refusing to load {module}.{name}; CIFAR batches hold only numpy "
            "arrays and plain data, so this file is corrupt or hostile")


def load_cifar_batch(path: str | os.PathLike) -> dict:
    """One CIFAR pickle (a data batch or batches.meta) as a dict with bytes keys, safely."""
    path = Path(path)
    with path.open("rb") as f:
        obj = _RestrictedUnpickler(f, path).load()
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected a dict, got {type(obj).__name__}")
    return obj


def _read_cifar_batch(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    batch = load_cifar_batch(path)
    data = np.asarray(batch.get(b"data"))
    labels = np.asarray(batch.get(b"labels"), dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise ValueError(f"{path}: b'data' should be uint8 (N, 3072), got {data.dtype} {data.shape}")
    if labels.shape != (len(data),):
        raise ValueError(f"{path}: expected {len(data)} labels, got shape {labels.shape}")
    x = torch.from_numpy(data.reshape(-1, 3, 32, 32).copy())  # rows are R, G, B planes of 32x32
    return x, torch.from_numpy(labels)


def read_cifar_batches(paths: list[Path]) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 images (N, 3, 32, 32), int64 labels) from a split's batch files, in order."""
    parts = [_read_cifar_batch(p) for p in paths]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


def _cifar_class_names(folder: Path) -> list[str]:
    meta = folder / "batches.meta"
    if not meta.is_file():
        return list(_CIFAR_CLASSES)
    names = load_cifar_batch(meta).get(b"label_names", _CIFAR_CLASSES)
    return [n.decode() if isinstance(n, bytes) else str(n) for n in names]


# --------------------------------------------------------------------------------------------
# Each dataset's layout

MNIST = SplitFiles("mnist", "MNIST", "MNIST/raw", _IDX_STEMS, read_idx_split, _mnist_class_names,
                   suffixes=(".gz", ""))
FASHION_MNIST = SplitFiles("fashion-mnist", "Fashion-MNIST", "FashionMNIST/raw", _IDX_STEMS,
                           read_idx_split, _fashion_class_names, suffixes=(".gz", ""))
CIFAR10 = SplitFiles("cifar10", "CIFAR-10", _CIFAR_FOLDER, _CIFAR_FILES, read_cifar_batches,
                     _cifar_class_names, archive=True)
