"""CIFAR-10's pickled batches, read with an unpickler that cannot run code.

A batch is untrusted input: its size is checked before it is read, the pickle is prescanned
(declared lengths, memo indices, dict and set items) before anything is rebuilt, only the numpy
callables an array needs are allowed (each refusing object dtypes and oversized arrays), and
labels are checked against the classes. Every failure is one `CorruptDataError` naming the file.
The dataset's layout (`CIFAR10`, a `SplitFiles`) is in `formats` beside the others.
"""

from __future__ import annotations

import codecs
import io
import math
import os
import pickle
import pickletools
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .local import CorruptDataError, check_labels


CIFAR_FOLDER = "cifar-10-batches-py"
CIFAR_FILES = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}
_CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer",
                  "dog", "frog", "horse", "ship", "truck"]


_CIFAR_MAX_FILE_BYTES = 1 << 26
"""Ceiling on one CIFAR pickle: 64 MiB, twice a real data batch (10,000 x 3,072 pixel bytes plus
labels and names, 31 MB; batches.meta is 158 bytes). Checked before the file is read; no object
the restricted unpickler builds may be larger than the file (see `_prescan_pickle`)."""
_PICKLE_MAX_ARRAY_BYTES = _CIFAR_MAX_FILE_BYTES   # an array rebuilt from a pickle (shape x item size)
_PICKLE_MAX_NDIM = 8
_PICKLE_MAX_ITEMS = 10_000
"""Ceiling on the items a pickle may put in dicts and sets (a real batch has 4 keys, its meta 3,
and no sets): a dict of integer keys crafted to share one hash costs time quadratic in their
number (10,000 such keys cost about a second)."""
_PICKLE_MEMO_SLACK = 1024   # memo indices may run this far ahead of the objects memoised so far
_CIFAR_CLASS_COUNT = 10
_CIFAR_PIXELS = 3 * 32 * 32


def _refuse(source: Path, what: str) -> CorruptDataError:
    return CorruptDataError(f"{source}: refusing {what}; CIFAR batches hold only numpy arrays and "
                            "plain data, so this file is corrupt or hostile")


def _numpy_pickle_globals(source: Path) -> dict[tuple[str, str], Any]:
    """The only callables a pickled numpy array needs, under numpy 1.x and 2.x module names, each
    wrapped so that it refuses object dtypes and any array over `_PICKLE_MAX_ARRAY_BYTES` before
    allocating (numpy's own functions allocate whatever shape a file declares)."""
    try:
        from numpy._core import multiarray, numeric  # numpy >= 2
    except ImportError:
        from numpy.core import multiarray, numeric  # numpy 1.x

    def plain_dtype(obj: Any, align: bool = False, copy: bool = False) -> np.dtype:
        """np.dtype for plain numbers only: 'O' arrays build objects, 'V'/'S'/'U' can be huge."""
        if isinstance(obj, np.dtype):
            dt = obj
        elif isinstance(obj, (str, bytes)) and len(obj) <= 8:
            try:
                dt = np.dtype(obj.decode("latin-1") if isinstance(obj, bytes) else obj)
            except (TypeError, ValueError):
                raise _refuse(source, f"numpy dtype {obj!r}") from None
        else:
            raise _refuse(source, f"a numpy dtype built from {type(obj).__name__}")
        if dt.kind not in "biuf" or dt.itemsize > 8 or dt.fields is not None:
            raise _refuse(source, f"numpy dtype {dt}")
        return dt

    def check_shape(shape: Any, dt: np.dtype) -> tuple[int, ...]:
        shape = (shape,) if isinstance(shape, int) else shape
        if (not isinstance(shape, tuple) or len(shape) > _PICKLE_MAX_NDIM
                or not all(type(d) is int and d >= 0 for d in shape)):
            raise _refuse(source, f"an array of shape {str(shape)[:80]}")
        if math.prod(shape) * dt.itemsize > _PICKLE_MAX_ARRAY_BYTES:
            raise _refuse(source, f"an array of shape {shape} ({math.prod(shape) * dt.itemsize:,} bytes, "
                                  f"over the {_PICKLE_MAX_ARRAY_BYTES >> 20} MiB ceiling)")
        return shape

    def reconstruct(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
        if subtype is not _NDArrayName:
            raise _refuse(source, f"_reconstruct of {type(subtype).__name__}")
        dt = plain_dtype(dtype)
        return multiarray._reconstruct(np.ndarray, check_shape(shape, dt), dt)

    def frombuffer(buf: Any, dtype: Any, shape: Any, order: Any, axis_order: Any = None) -> np.ndarray:
        if not isinstance(buf, (bytes, bytearray)) or order not in ("C", "F"):
            raise _refuse(source, "a numpy array from a buffer that is not plain bytes")
        dt = plain_dtype(dtype)
        return numeric._frombuffer(buf, dt, check_shape(shape, dt), order)

    def scalar(dtype: Any, obj: Any = None) -> Any:
        dt = plain_dtype(dtype)
        if not isinstance(obj, bytes) or len(obj) != dt.itemsize:
            raise _refuse(source, f"a numpy {dt} scalar from {type(obj).__name__}")
        return multiarray.scalar(dt, obj)

    def latin1(obj: Any, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        """Protocol 2 stores bytes as _codecs.encode(str, 'latin1'); no other codec (a chain of
        'hex' or 'base64' calls would double the data at every step)."""
        if not isinstance(obj, str) or encoding not in ("latin1", "latin-1"):
            raise _refuse(source, f"_codecs.encode(..., {str(encoding)[:20]!r})")
        return codecs.encode(obj, "latin1")

    def bytes_array(source_: Any = b"", encoding: Any = None, errors: Any = None) -> bytearray:
        """bytearray(data) only: bytearray(n) would allocate n bytes the file never held."""
        if isinstance(source_, str) and encoding in ("latin1", "latin-1"):
            return bytearray(source_, "latin1")
        if isinstance(source_, (bytes, bytearray)) and encoding is None:
            return bytearray(source_)
        raise _refuse(source, f"bytearray({type(source_).__name__})")

    def sized(items: Any) -> Any:
        if not isinstance(items, (list, tuple)) or len(items) > _PICKLE_MAX_ITEMS:
            raise _refuse(source, f"a set of {type(items).__name__} (at most {_PICKLE_MAX_ITEMS:,} items)")
        return items

    allowed: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): _NDArrayName,   # only ever _reconstruct's first argument
        ("numpy", "dtype"): plain_dtype,
        ("_codecs", "encode"): latin1,
        ("builtins", "set"): lambda items=(): set(sized(items)),
        ("builtins", "frozenset"): lambda items=(): frozenset(sized(items)),
        ("builtins", "bytearray"): bytes_array,
    }
    for mod in ("numpy.core", "numpy._core"):
        allowed[(f"{mod}.multiarray", "_reconstruct")] = reconstruct
        allowed[(f"{mod}.multiarray", "scalar")] = scalar
        allowed[(f"{mod}.numeric", "_frombuffer")] = frombuffer
    return allowed


class _NDArrayName:
    """Stands for numpy.ndarray inside a pickle: the wrapped _reconstruct builds the real one.
    Calling it (numpy.ndarray(shape) would allocate any size) is refused."""

    def __init__(self, *args: Any, **kwargs: Any):
        raise pickle.UnpicklingError("refusing to call numpy.ndarray; CIFAR batches never do")


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler for CIFAR batches: plain data and numpy arrays only.

    A pickle can call any importable function while loading; a downloaded or shared file is not
    trusted, so every global outside the numpy array-rebuilding set is refused, and those are
    wrapped to bound what they allocate (see `_numpy_pickle_globals`).
    """

    def __init__(self, file: Any, source: Path):
        super().__init__(file, encoding="bytes")
        self._source = source
        self._allowed = _numpy_pickle_globals(source)

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._allowed:
            return self._allowed[(module, name)]
        raise _refuse(self._source, f"to load {module}.{name}")


_MEMO_PUTS = {"PUT", "BINPUT", "LONG_BINPUT"}


def _prescan_pickle(raw: bytes, source: Path) -> None:
    """Walk the opcodes without building anything (pure Python, bounded by the file) and refuse
    what would make CPython's unpickler allocate more than the file holds or run for long:
    bytes/str whose declared length runs past the end (it allocates the declared length first),
    memo indices far beyond the objects so far (it grows the memo to twice the index), and more
    than `_PICKLE_MAX_ITEMS` dict or set items. The stack is tracked as a depth, as
    pickletools.dis does, to count the items each SETITEMS / ADDITEMS / FROZENSET takes.
    """
    memoised = items = depth = 0
    marks: list[int] = []        # stack depth at each open MARK
    try:
        for op, arg, _ in pickletools.genops(raw):
            before, after = op.stack_before, op.stack_after
            if op.name in _MEMO_PUTS or op.name == "MEMOIZE":
                index = memoised if op.name == "MEMOIZE" else int(arg)
                if index > memoised + _PICKLE_MEMO_SLACK:
                    raise _refuse(source, f"memo index {index:,} after {memoised:,} objects")
                memoised += 1
            if op.name == "MARK":
                marks.append(depth)
                continue
            if op.name == "POP" and marks and marks[-1] == depth:
                marks.pop()
                continue
            if pickletools.markobject in before:
                if not marks:
                    raise ValueError(f"{op.name} without a MARK")
                mark = marks.pop()
                taken = depth - mark
                depth = mark - before.index(pickletools.markobject)
                items += taken // 2 if op.name == "SETITEMS" else taken if op.name in ("ADDITEMS", "FROZENSET") else 0
            else:
                depth -= len(before)
                items += op.name == "SETITEM"
            if items > _PICKLE_MAX_ITEMS:
                raise _refuse(source, f"over {_PICKLE_MAX_ITEMS:,} dict and set items")
            depth = max(depth, 0) + len(after)
    except CorruptDataError:
        raise
    except ValueError as e:      # genops: an argument runs past the end, a bad opcode, no STOP
        raise CorruptDataError(f"{source}: not a valid pickle ({e}); the file is truncated or "
                               "corrupt") from e


def load_cifar_batch(path: str | os.PathLike) -> dict:
    """One CIFAR pickle (a data batch or batches.meta) as a dict with bytes keys, safely.

    CorruptDataError (naming the file) for a file over `_CIFAR_MAX_FILE_BYTES`, a damaged or
    hostile pickle, or anything but a dict.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > _CIFAR_MAX_FILE_BYTES:
            raise CorruptDataError(f"{path} is {size:,} bytes, over the {_CIFAR_MAX_FILE_BYTES >> 20} MiB "
                                   "ceiling for one CIFAR batch (a real one is 31 MB); refused unread")
        raw = path.read_bytes()
    except CorruptDataError:
        raise
    except OSError as e:
        raise CorruptDataError(f"cannot read {path}: {e.strerror or e}") from e
    _prescan_pickle(raw, path)
    try:
        obj = _RestrictedUnpickler(io.BytesIO(raw), path).load()
    except CorruptDataError:
        raise
    except pickle.UnpicklingError as e:
        raise CorruptDataError(str(e) if str(e).startswith(str(path)) else f"{path}: {e}") from e
    except Exception as e:  # noqa: BLE001 - any failure to rebuild an untrusted file means it is corrupt
        raise CorruptDataError(f"{path}: not a valid CIFAR pickle ({type(e).__name__}: {e})") from e
    if not isinstance(obj, dict):
        raise CorruptDataError(f"{path}: expected a dict, got {type(obj).__name__}")
    return obj


def _read_cifar_batch(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    batch = load_cifar_batch(path)
    data, labels = batch.get(b"data"), batch.get(b"labels")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
            or data.shape[1] != _CIFAR_PIXELS or data.shape[0] == 0:
        what = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise CorruptDataError(f"{path}: b'data' should be a uint8 array (N, 3072), got {what}")
    if not isinstance(labels, (list, tuple, np.ndarray)) or len(labels) != len(data):
        n = len(labels) if isinstance(labels, (list, tuple, np.ndarray)) else type(labels).__name__
        raise CorruptDataError(f"{path}: expected {len(data)} labels in b'labels', got {n}")
    if isinstance(labels, np.ndarray) and labels.ndim != 1 or \
            not isinstance(labels, np.ndarray) and not all(type(v) is int for v in labels):
        raise CorruptDataError(f"{path}: b'labels' should be a flat list of integers")
    try:
        labels = np.asarray(labels)
        check_labels(labels, _CIFAR_CLASS_COUNT, path)   # before int64: 2**70 would not fit
    except OverflowError as e:
        raise CorruptDataError(f"{path}: b'labels' hold integers too large to be labels") from e
    x = torch.from_numpy(data.reshape(-1, 3, 32, 32).copy())  # rows are R, G, B planes of 32x32
    return x, torch.from_numpy(labels.astype(np.int64))


def read_cifar_batches(paths: list[Path]) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 images (N, 3, 32, 32), int64 labels) from a split's batch files, in order."""
    parts = [_read_cifar_batch(p) for p in paths]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


def cifar_class_names(folder: Path) -> list[str]:
    meta = folder / "batches.meta"
    if not meta.is_file():
        return list(_CIFAR_CLASSES)
    names = load_cifar_batch(meta).get(b"label_names", _CIFAR_CLASSES)
    if (not isinstance(names, (list, tuple)) or len(names) != _CIFAR_CLASS_COUNT
            or not all(isinstance(n, (bytes, str)) and 0 < len(n) <= 100 for n in names)):
        raise CorruptDataError(f"{meta}: b'label_names' should be {_CIFAR_CLASS_COUNT} short names, got "
                               f"{type(names).__name__} of {len(names) if hasattr(names, '__len__') else '?'}")
    return [n.decode("utf-8", "replace") if isinstance(n, bytes) else n for n in names]
