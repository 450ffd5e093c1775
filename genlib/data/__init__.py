"""Datasets for the lab: real image sets, bundled digits, 2-D toys and image folders.

Everything is loaded into memory as one tensor pair, because every dataset in a teaching lab
fits (Fashion-MNIST train is 47 MB as uint8) and a tensor-only batch iterator is far faster than
a DataLoader on the 2-core machines the lab runs on.

    ds = load_dataset("mnist", split="train", device="cuda")
    for x, y in ds.batches(128):          # infinite, reshuffled each epoch
        ...

Lab machines are offline, so loaders search several roots (see `search_roots`), fall back to the
other split with a human `note` when only one is present, and raise `DataNotFoundError` naming
the missing files and the folder to put them in instead of a network traceback.
"""

from __future__ import annotations

import codecs
import dataclasses
import gzip
import http.client
import io
import os
import pickle
import tarfile
import urllib.request
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

import numpy as np
import torch

Progress = Callable[[int, int | None, str], None]

SPLITS = ("train", "test", "all")

DATASETS: dict[str, str] = {
    "mnist": "MNIST handwritten digits, 28x28 grey (60,000 train / 10,000 test).",
    "fashion-mnist": "Fashion-MNIST clothing photos, 28x28 grey, 10 classes (60,000 / 10,000).",
    "cifar10": "CIFAR-10 small colour photos, 32x32 RGB, 10 classes (50,000 / 10,000).",
    "digits": "scikit-learn's bundled 8x8 digits (1,797 images); always available offline.",
    "ring": "2-D toy: 8 Gaussians on the unit circle, the classic mode-collapse test.",
    "grid": "2-D toy: 5x5 grid of Gaussians, harder mode-coverage test.",
    "moons": "2-D toy: two interleaving half circles (scikit-learn make_moons).",
    "spiral": "2-D toy: two-arm spiral, a thin curved manifold.",
    "folder": "Your own images: a folder (or .zip) with one subfolder per class, or flat.",
}

# Download sources, injectable so an offline mirror (or a test's file:// URL) can stand in for the
# internet. An entry here overrides torchvision's own list for that dataset; a file's URL is
# mirror + file name. MIRRORS: name -> [base URL, ...]; RESOURCES: name -> [(file name, md5|None)].
MIRRORS: dict[str, list[str]] = {}
RESOURCES: dict[str, list[tuple[str, str | None]]] = {}

_DOWNLOAD_TIMEOUT_S = 30  # long enough for a slow mirror, short enough to fail fast when offline
_CHUNK = 1 << 20


class DataNotFoundError(FileNotFoundError):
    """A dataset's files are missing and could not be downloaded; the message says what to do."""


# --------------------------------------------------------------------------------------------
# The in-memory dataset


@dataclass(eq=False)
class Dataset:
    """A whole dataset as two tensors, plus what a UI needs to describe it.

    Images stay uint8 (N, C, H, W) so that CIFAR-10 on a GPU costs 150 MB rather than 600 MB;
    `get` and `batches` convert to float in [0, 1] per batch. Toys are float32 (N, 2).
    """

    name: str
    split: str
    x: torch.Tensor
    y: torch.Tensor
    class_names: list[str]
    note: str = ""
    meta: dict = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])

    @property
    def is_image(self) -> bool:
        return self.x.dim() == 4

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def device(self) -> torch.device:
        return self.x.device

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def __repr__(self) -> str:
        # The default repr would print both tensors in full.
        return (f"Dataset(name={self.name!r}, split={self.split!r}, n={len(self)}, "
                f"shape={self.shape}, classes={self.num_classes}, device={self.device})")

    def to(self, device: str | torch.device) -> Dataset:
        """A copy on `device`; tensors in `meta` (toy modes) move too so metrics can use them."""
        meta = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in self.meta.items()}
        return dataclasses.replace(self, x=self.x.to(device), y=self.y.to(device), meta=meta)

    def get(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Examples at `idx`: float images in [0, 1] (toys as stored) and int64 labels."""
        idx = idx.to(self.x.device)
        x = self.x[idx]
        if self.is_image:
            x = x.float().div_(255.0)  # (B, C, H, W) in [0, 1]
        return x, self.y[idx]

    def steps_per_epoch(self, batch_size: int) -> int:
        """Full batches per pass; the incomplete last batch is dropped so shapes never change."""
        return len(self) // self._batch_size(batch_size)

    def batches(self, batch_size: int,
                generator: torch.Generator | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Endless (x, y) batches, reshuffled every epoch on the data's device.

        Validated here, not inside the generator, so a wrong argument fails at the call.
        """
        bs = self._batch_size(batch_size)
        if generator is not None and generator.device.type != self.x.device.type:
            raise ValueError(f"generator is on {generator.device} but the data is on "
                             f"{self.x.device}; create it with torch.Generator(device=...)")
        return self._batch_stream(bs, generator)

    def _batch_stream(self, bs: int, generator: torch.Generator | None
                      ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n, steps = len(self), len(self) // bs
        while True:
            perm = torch.randperm(n, device=self.x.device, generator=generator)
            for i in range(steps):
                yield self.get(perm[i * bs:(i + 1) * bs])

    def _batch_size(self, batch_size: int) -> int:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if len(self) == 0:
            raise ValueError(f"dataset {self.name!r} is empty")
        return min(batch_size, len(self))

    def subset(self, n: int, seed: int = 0) -> Dataset:
        """`n` random examples (all of them, shuffled, if n >= len), reproducible by `seed`."""
        g = torch.Generator().manual_seed(seed)
        idx = torch.randperm(len(self), generator=g)[:n].to(self.x.device)
        return dataclasses.replace(self, x=self.x[idx], y=self.y[idx], meta=dict(self.meta))


# --------------------------------------------------------------------------------------------
# Where data lives


def data_root(root: str | os.PathLike | None = None) -> Path:
    """Where downloads go: explicit `root` > env GENLIB_DATA_DIR > ~/.cache/genlib/data."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get("GENLIB_DATA_DIR")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "genlib" / "data"


def search_roots(root: str | os.PathLike | None = None) -> list[Path]:
    """Roots the loaders search, in order.

    An explicit root or GENLIB_DATA_DIR is taken as the whole truth (so tests and users get
    exactly what they pointed at); otherwise the repo's `data/` and the lab's read-only
    `../shared/data` are searched after the cache, which lets offline machines work unconfigured.
    """
    roots = [data_root(root)]
    if root is None and not os.environ.get("GENLIB_DATA_DIR"):
        repo = Path(__file__).resolve().parents[2]
        roots += [repo / "data", repo.parent / "shared" / "data"]
    unique: list[Path] = []
    for r in roots:
        if r not in unique:
            unique.append(r)
    return unique


# --------------------------------------------------------------------------------------------
# Split selection shared by the file-based loaders


def _wanted_splits(split: str) -> list[str]:
    return ["train", "test"] if split == "all" else [split]


def _should_download(download: bool | None, found: dict[str, Any], missing: list[str]) -> bool:
    """download=None fetches only when no split at all is on disk: offline machines that hold
    just the test split then get it at once (with a note) instead of waiting on a network."""
    if not missing or download is False:
        return False
    return download is True or not any(found.values())


def _choose_splits(split: str, found: dict[str, Any]) -> tuple[list[str], str]:
    """(splits to load, split name to report): the wanted ones on disk, else whatever is."""
    wanted = _wanted_splits(split)
    used = [s for s in wanted if found[s] is not None]
    if used == wanted:
        return used, split
    used = used or [s for s in ("train", "test") if found[s] is not None]
    return used, used[0] if len(used) == 1 else "all"


def _fallback_note(label: str, split: str, used: Sequence[str], n: int,
                   looked_in: Sequence[Path]) -> str:
    """The sentence a UI shows when the loaded split is not the one asked for ('' if it is)."""
    missing = [s for s in _wanted_splits(split) if s not in used]
    if not missing:
        return ""
    words = {"train": "training", "test": "test"}
    where = ", ".join(str(p) for p in looked_in)
    return (f"{label} {' and '.join(words[s] for s in missing)} split not found in {where}; "
            f"using the {' + '.join(words[s] for s in used)} split ({n:,} images). "
            "Load with download=True to fetch it.")


def _not_found(label: str, files: Sequence[str], looked_in: Sequence[Path], put_in: Path,
               sources: str, reason: str = "") -> DataNotFoundError:
    """The error every loader raises: what is missing, where we looked, where to put it, how."""
    msg = (f"{label} files not found: {', '.join(files)}.\n"
           f"Looked in: {', '.join(str(p) for p in looked_in)}.\n"
           f"Put the files in {put_in}, or download them with download=True (needs internet)"
           f" or by hand from {sources}.")
    if reason:
        msg += f"\nDownload failed: {reason}"
    return DataNotFoundError(msg)


# --------------------------------------------------------------------------------------------
# MNIST / Fashion-MNIST: IDX files

_IDX_FOLDER = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}
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


def _find_file(folder: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        if (folder / name).is_file():
            return folder / name
    return None


def _find_idx_split(folders: Sequence[Path], split: str) -> tuple[Path, Path] | None:
    """Images and labels of `split` from the first folder that holds both."""
    for folder in folders:
        files = [_find_file(folder, stem) for stem in _IDX_STEMS[split]]
        if files[0] and files[1]:
            return files[0], files[1]
    return None


def _read_idx_split(images_path: Path, labels_path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"{images_path}: expected uint8 images (N, H, W), got {images.dtype} {images.shape}")
    if labels.ndim != 1 or len(labels) != len(images):
        raise ValueError(f"{labels_path}: expected {len(images)} labels, got shape {labels.shape}")
    x = torch.from_numpy(images.copy()).unsqueeze(1)  # (N, 1, H, W) uint8
    return x, torch.from_numpy(labels.astype(np.int64))


def _idx_class_names(name: str) -> list[str]:
    if name == "mnist":
        return [str(d) for d in range(10)]
    from torchvision.datasets import FashionMNIST  # lazy: torchvision costs seconds to import

    return list(FashionMNIST.classes)


def _load_idx(name: str, split: str, root: Any, download: bool | None,
              progress: Progress | None) -> Dataset:
    label = "MNIST" if name == "mnist" else "Fashion-MNIST"
    folders = [r / _IDX_FOLDER[name] / "raw" for r in search_roots(root)]
    found = {s: _find_idx_split(folders, s) for s in ("train", "test")}
    missing = [s for s in _wanted_splits(split) if found[s] is None]
    if _should_download(download, found, missing):
        stems = [stem for s in missing for stem in _IDX_STEMS[s]]
        _download_all(name, label, stems, data_root(root) / _IDX_FOLDER[name] / "raw", folders, progress)
        found = {s: _find_idx_split(folders, s) for s in ("train", "test")}
    if not any(found.values()):
        stems = [stem + ".gz" for s in _wanted_splits(split) for stem in _IDX_STEMS[s]]
        raise _not_found(label, stems, folders, data_root(root) / _IDX_FOLDER[name] / "raw",
                         _sources_text(name))
    used, used_split = _choose_splits(split, found)
    parts = [_read_idx_split(*found[s]) for s in used]
    x, y = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
    note = _fallback_note(label, split, used, len(x), folders)
    return Dataset(name, used_split, x, y, _idx_class_names(name), note,
                   {"source": str(found[used[0]][0].parent)})


# --------------------------------------------------------------------------------------------
# CIFAR-10: pickled batches, read with an unpickler that cannot run code

_CIFAR_FOLDER = "cifar-10-batches-py"
_CIFAR_FILES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
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


def _cifar_class_names(folder: Path) -> list[str]:
    meta = folder / "batches.meta"
    if not meta.is_file():
        return list(_CIFAR_CLASSES)
    names = load_cifar_batch(meta).get(b"label_names", _CIFAR_CLASSES)
    return [n.decode() if isinstance(n, bytes) else str(n) for n in names]


def _find_cifar_split(folders: Sequence[Path], split: str) -> Path | None:
    for folder in folders:
        if all((folder / f).is_file() for f in _CIFAR_FILES[split]):
            return folder
    return None


def _load_cifar10(split: str, root: Any, download: bool | None, progress: Progress | None) -> Dataset:
    folders = [r / _CIFAR_FOLDER for r in search_roots(root)]
    found = {s: _find_cifar_split(folders, s) for s in ("train", "test")}
    missing = [s for s in _wanted_splits(split) if found[s] is None]
    if _should_download(download, found, missing):
        _download_cifar10(data_root(root), folders, progress)
        found = {s: _find_cifar_split(folders, s) for s in ("train", "test")}
    if not any(found.values()):
        files = [f for s in _wanted_splits(split) for f in _CIFAR_FILES[s]]
        raise _not_found("CIFAR-10", files, folders, data_root(root) / _CIFAR_FOLDER,
                         _sources_text("cifar10"))
    used, used_split = _choose_splits(split, found)
    parts = [_read_cifar_batch(found[s] / f) for s in used for f in _CIFAR_FILES[s]]
    x, y = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
    note = _fallback_note("CIFAR-10", split, used, len(x), folders)
    return Dataset("cifar10", used_split, x, y, _cifar_class_names(found[used[0]]), note,
                   {"source": str(found[used[0]])})


# --------------------------------------------------------------------------------------------
# Downloads


def _sources(name: str) -> tuple[list[str], list[tuple[str, str | None]]]:
    """(mirrors, [(file, md5)]) for `name`: MIRRORS/RESOURCES overrides, else torchvision's."""
    if name in MIRRORS and name in RESOURCES:
        return list(MIRRORS[name]), list(RESOURCES[name])
    from torchvision import datasets  # lazy: only needed when downloading

    if name == "cifar10":
        base, _, fname = datasets.CIFAR10.url.rpartition("/")
        mirrors, resources = [base + "/"], [(fname, datasets.CIFAR10.tgz_md5)]
    else:
        cls = datasets.MNIST if name == "mnist" else datasets.FashionMNIST
        mirrors, resources = list(cls.mirrors), list(cls.resources)
    return list(MIRRORS.get(name, mirrors)), list(RESOURCES.get(name, resources))


def _sources_text(name: str) -> str:
    try:
        return " or ".join(_sources(name)[0])
    except ImportError:
        return "the dataset's home page"


def _fetch(url: str, dest: Path, progress: Progress | None) -> None:
    """Stream `url` to `dest` in chunks, reporting bytes so a UI can draw a bar."""
    req = urllib.request.Request(url, headers={"User-Agent": "genlib"})
    with urllib.request.urlopen(req, timeout=_DOWNLOAD_TIMEOUT_S) as resp, dest.open("wb") as out:
        length = resp.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        done = 0
        if progress:
            progress(0, total, f"Downloading {url}")
        while chunk := resp.read(_CHUNK):
            out.write(chunk)
            done += len(chunk)
            if progress:
                progress(done, total, f"Downloading {url}")


def _download_file(mirrors: Sequence[str], fname: str, md5: str | None, dest_dir: Path,
                   progress: Progress | None) -> Path:
    """Try each mirror until one gives a file with the right md5; raise OSError listing failures.

    Writes to a temporary name first so an interrupted download never looks like a real file.
    """
    from torchvision.datasets.utils import check_integrity

    dest_dir.mkdir(parents=True, exist_ok=True)
    dest, tmp = dest_dir / fname, dest_dir / f".{fname}.{os.getpid()}.part"
    errors = []
    for mirror in mirrors:
        url = mirror + fname
        try:
            _fetch(url, tmp, progress)
        except (OSError, http.client.HTTPException, ValueError) as e:
            errors.append(f"{url}: {e}")
            continue
        if progress:
            progress(0, None, f"Checking md5 of {fname}")
        if md5 is None or check_integrity(tmp, md5):
            tmp.replace(dest)
            return dest
        errors.append(f"{url}: md5 mismatch (expected {md5})")
    tmp.unlink(missing_ok=True)
    raise OSError("; ".join(errors) or "no mirrors configured")


def _download_all(name: str, label: str, stems: Sequence[str], dest_dir: Path,
                  looked_in: Sequence[Path], progress: Progress | None) -> None:
    """Download the resources whose names start with one of `stems` into `dest_dir`."""
    try:
        mirrors, resources = _sources(name)
        todo = [(f, md5) for f, md5 in resources if any(f.startswith(s) for s in stems)]
        for fname, md5 in todo:
            _download_file(mirrors, fname, md5, dest_dir, progress)
    except (OSError, ImportError) as e:
        files = [s + ".gz" for s in stems]
        raise _not_found(label, files, looked_in, dest_dir, _sources_text(name), str(e)) from e


def _download_cifar10(root: Path, looked_in: Sequence[Path], progress: Progress | None) -> None:
    """Fetch and unpack cifar-10-python.tar.gz into `root`, giving `root`/cifar-10-batches-py."""
    from torchvision.datasets.utils import extract_archive

    try:
        mirrors, resources = _sources("cifar10")
        for fname, md5 in resources:
            archive = _download_file(mirrors, fname, md5, root, progress)
            if progress:
                progress(0, None, f"Extracting {fname}")
            extract_archive(archive, root)
    except (OSError, ImportError, EOFError, tarfile.TarError) as e:
        files = _CIFAR_FILES["train"] + _CIFAR_FILES["test"]
        raise _not_found("CIFAR-10", files, looked_in, root / _CIFAR_FOLDER,
                         _sources_text("cifar10"), str(e)) from e


# --------------------------------------------------------------------------------------------
# Bundled and synthetic data

_DIGITS_TRAIN_FRACTION = 0.8


def _load_digits(split: str) -> Dataset:
    """scikit-learn's 8x8 digits, scaled from 0..16 to 0..255.

    'all' is the 1,797 images; 'train' / 'test' are a fixed 80/20 split of a seed-0 permutation,
    so held-out metrics have data they were not trained on and every run agrees on it.
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)
    x = torch.from_numpy(images).unsqueeze(1)  # (N, 1, 8, 8)
    y = torch.from_numpy(bunch.target.astype(np.int64))
    if split != "all":
        perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
        cut = int(len(x) * _DIGITS_TRAIN_FRACTION)
        idx = perm[:cut] if split == "train" else perm[cut:]
        x, y = x[idx], y[idx]
    return Dataset("digits", split, x, y, [str(d) for d in range(10)],
                   meta={"source": "sklearn.datasets.load_digits"})


_RING_STD = 0.05   # 8 modes 0.77 apart on the circle: ~15 std, so coverage is unambiguous
_GRID_STEP = 0.5   # 5x5 centres at {-1, -0.5, 0, 0.5, 1}^2, same box as the ring
_GRID_STD = 0.05   # 10 std between neighbours
_MOONS_NOISE = 0.05
_SPIRAL_NOISE = 0.02


def _mixture(modes: torch.Tensor, std: float, n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    y = torch.randint(len(modes), (n,), generator=g)
    x = modes[y] + std * torch.randn(n, 2, generator=g)  # (N, 2)
    return x, y


def _ring_modes() -> torch.Tensor:
    angles = torch.arange(8, dtype=torch.float64) * (2 * torch.pi / 8)
    return torch.stack([angles.cos(), angles.sin()], 1).float()  # (8, 2)


def _grid_modes() -> torch.Tensor:
    ticks = (torch.arange(5) - 2).float() * _GRID_STEP
    gx, gy = torch.meshgrid(ticks, ticks, indexing="ij")
    return torch.stack([gx.flatten(), gy.flatten()], 1)  # (25, 2)


def _spiral(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Two arms of 1.5 turns each, radius growing to 1; label = arm."""
    y = torch.randint(2, (n,), generator=g)
    t = 0.05 + 0.95 * torch.rand(n, generator=g)
    theta = 3 * torch.pi * t + torch.pi * y
    x = torch.stack([t * theta.cos(), t * theta.sin()], 1)  # (N, 2)
    return x + _SPIRAL_NOISE * torch.randn(n, 2, generator=g), y


def _load_toy(name: str, n: int = 20_000, seed: int = 0) -> Dataset:
    """2-D toy sets, deterministic given `seed`. Sampled, so there is no split: the result is
    'all' and a held-out set is simply another seed. Moons are centred at the origin."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    g = torch.Generator().manual_seed(seed)
    modes: torch.Tensor | None = None
    if name == "ring":
        modes, std = _ring_modes(), _RING_STD
        x, y = _mixture(modes, std, n, g)
    elif name == "grid":
        modes, std = _grid_modes(), _GRID_STD
        x, y = _mixture(modes, std, n, g)
    elif name == "moons":
        from sklearn.datasets import make_moons

        pts, labels = make_moons(n_samples=n, noise=_MOONS_NOISE, random_state=seed)
        x, y, std = torch.from_numpy(pts - [0.5, 0.25]), torch.from_numpy(labels), _MOONS_NOISE
    else:
        (x, y), std = _spiral(n, g), _SPIRAL_NOISE
    names = ([f"mode {i}" for i in range(len(modes))] if modes is not None
             else [f"{'moon' if name == 'moons' else 'arm'} {i}" for i in range(2)])
    return Dataset(name, "all", x.float(), y.long(), names, meta={"modes": modes, "std": std})


# --------------------------------------------------------------------------------------------
# A folder of the user's own images


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
    return Dataset("folder", "all", x, y, class_names, meta={"source": source, "skipped": skipped})


def _load_folder(path: str | os.PathLike | bytes | IO[bytes] | None = None, size: int = 28,
                 channels: int = 1, source: str = "upload") -> Dataset:
    """Images in a folder (one subfolder per class, or none), or a zip of one given as a path, bytes
    or a file object; ``source`` names an in-memory zip in messages and ``meta`` (e.g. its file name)."""
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


# Guards for archives a user uploads: a zip bomb expands a few kB into gigabytes.
_ZIP_MAX_MEMBERS = 100_000
_ZIP_MAX_TOTAL = 1 << 30           # 1 GiB uncompressed in all
_ZIP_MAX_RATIO = 200               # uncompressed / compressed, per member (images rarely exceed 10)
_MAX_PIXELS = 4096 * 4096          # per image, before resizing


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


# --------------------------------------------------------------------------------------------
# Entry point


def _canonical_name(name: str) -> str:
    key = name.lower().replace("_", "-")
    aliases = {"fashion": "fashion-mnist", "fashionmnist": "fashion-mnist", "cifar-10": "cifar10"}
    key = aliases.get(key, key)
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    return key


def load_dataset(name: str, *, split: str = "train", root: str | os.PathLike | None = None,
                 device: str | torch.device = "cpu", download: bool | None = None,
                 progress: Progress | None = None, **kwargs: Any) -> Dataset:
    """Load `name` (see DATASETS) whole into memory on `device`.

    split: 'train' | 'test' | 'all'. If the requested split is missing on disk but the other is
        present, that one is used and `Dataset.note` says so (offline lab machines hold only the
        MNIST test split). Toys and folders have no split and report 'all'.
    download: None fetches only when no split of the dataset is on disk; True fetches the
        missing requested split; False never touches the network. Files go to `data_root(root)`.
    progress: callable(done_bytes, total_bytes | None, message), called while downloading.
    kwargs: toys take n (default 20,000) and seed; folder takes path, size (28), channels (1|3), source (the
        name of an in-memory zip in messages).
    """
    key = _canonical_name(name)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if key in _IDX_FOLDER:
        ds = _load_idx(key, split, root, download, progress, **kwargs)
    elif key == "cifar10":
        ds = _load_cifar10(split, root, download, progress, **kwargs)
    elif key == "digits":
        ds = _load_digits(split, **kwargs)
    elif key == "folder":
        ds = _load_folder(**kwargs)
    else:
        ds = _load_toy(key, **kwargs)
    return ds.to(device)
