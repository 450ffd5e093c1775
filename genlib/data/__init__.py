"""Datasets for the lab: real image sets, bundled digits, 2-D toys and image folders.

Everything is loaded into memory as one tensor pair (see `dataset`):

    ds = load_dataset("mnist", split="train", device="cuda")
    for x, y in ds.batches(128):          # infinite, reshuffled each epoch
        ...

Where each idea lives: `dataset` (Dataset, batches, DataError), `local` (data roots, split
choice, DataNotFoundError, the one find / download / fall-back flow of the file datasets),
`formats` (the IDX reader and each dataset's file layout), `cifar` (CIFAR-10's pickles, by an
unpickler that cannot run code), both reading within stated bounds, `download` (mirrors,
fetching, md5), `toys` (digits and the 2-D toys), `folder` (image folders and zips, bounded).
This module names every dataset once, in a {name: loader} registry that `load_dataset`
dispatches on; `register` adds one.

Errors: `DataNotFoundError` (missing files: says where to put them), `DataError` (a ValueError: a
damaged, hostile or oversized file or upload, named), and `CorruptDataError`, both at once, for a
dataset's own file that is there but unusable, so code that shows the one shows the other.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import torch

from .dataset import DataError, Dataset
from .download import MIRRORS, RESOURCES, Progress
from .folder import load_folder
from .cifar import load_cifar_batch
from .formats import CIFAR10, FASHION_MNIST, MNIST, read_idx
from .local import SPLITS, CorruptDataError, DataNotFoundError, SplitFiles, data_root, load_split_files, search_roots
from .toys import load_digits, load_toy

__all__ = ["DATASETS", "LOADERS", "SPLITS", "MIRRORS", "RESOURCES", "CorruptDataError", "DataError",
           "Dataset", "DataNotFoundError",
           "Loader", "Progress", "canonical_name", "data_root", "load_cifar_batch", "load_dataset",
           "read_idx", "register", "search_roots"]

Loader = Callable[..., Dataset]
"""loader(split=, root=, download=, progress=, **options) -> a Dataset on the CPU."""

DATASETS: dict[str, str] = {}      # name -> one-line description, in menu order
LOADERS: dict[str, Loader] = {}    # name -> loader


def register(name: str, description: str, loader: Loader) -> None:
    """Make `load_dataset(name)` call `loader`; `description` is what menus and --help show."""
    DATASETS[name] = description
    LOADERS[name] = loader


def _files_loader(files: SplitFiles) -> Loader:
    def load(split: str, root: Any, download: bool | None, progress: Progress | None) -> Dataset:
        return load_split_files(files, split, root, download, progress)
    return load


def _toy_loader(name: str) -> Loader:
    def load(split: str, root: Any, download: bool | None, progress: Progress | None,
             **options: Any) -> Dataset:
        return load_toy(name, **options)
    return load


register("mnist", "MNIST handwritten digits, 28x28 grey (60,000 train / 10,000 test).",
         _files_loader(MNIST))
register("fashion-mnist", "Fashion-MNIST clothing photos, 28x28 grey, 10 classes (60,000 / 10,000).",
         _files_loader(FASHION_MNIST))
register("cifar10", "CIFAR-10 small colour photos, 32x32 RGB, 10 classes (50,000 / 10,000).",
         _files_loader(CIFAR10))
register("digits", "scikit-learn's bundled 8x8 digits (1,797 images); always available offline.",
         lambda split, root, download, progress, **options: load_digits(split, **options))
register("ring", "2-D toy: 8 Gaussians on the unit circle, the classic mode-collapse test.",
         _toy_loader("ring"))
register("grid", "2-D toy: 5x5 grid of Gaussians, harder mode-coverage test.", _toy_loader("grid"))
register("moons", "2-D toy: two interleaving half circles (scikit-learn make_moons).",
         _toy_loader("moons"))
register("spiral", "2-D toy: two-arm spiral, a thin curved manifold.", _toy_loader("spiral"))
register("folder", "Your own images: a folder (or .zip) with one subfolder per class, or flat.",
         lambda split, root, download, progress, **options: load_folder(**options))

_ALIASES = {"fashion": "fashion-mnist", "fashionmnist": "fashion-mnist", "cifar-10": "cifar10"}


def canonical_name(name: str) -> str:
    """The registry key for `name` ('Fashion_MNIST' -> 'fashion-mnist'); ValueError if unknown."""
    key = name.lower().replace("_", "-")
    key = _ALIASES.get(key, key)
    if key not in LOADERS:
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
    key = canonical_name(name)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    ds = LOADERS[key](split=split, root=root, download=download, progress=progress, **kwargs)
    return ds.to(device)
