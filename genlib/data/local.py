"""Where data lives on disk, and the one find / download / choose-split flow of the file datasets.

Lab machines are offline, so loaders search several roots (see `search_roots`), fall back to the
other split with a human `note` when only one is present, and raise `DataNotFoundError` naming
the missing files and the folder to put them in instead of a network traceback. MNIST,
Fashion-MNIST and CIFAR-10 differ only in their `SplitFiles` (see `formats`).
"""

from __future__ import annotations

import os
import tarfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .dataset import DataError, Dataset
from .download import Progress, download, sources_text

SPLITS = ("train", "test", "all")


class DataNotFoundError(FileNotFoundError):
    """A dataset's files are missing and could not be downloaded; the message says what to do."""


class CorruptDataError(DataNotFoundError, DataError):
    """A dataset's file is there but cannot be used (damaged, hostile, over a bound, unreadable).

    Both a DataNotFoundError (the fix is the same: replace the file; code that shows a missing
    dataset shows this too) and a ValueError (it is bad input, not a missing path).
    """


def check_labels(labels: np.ndarray, num_classes: int, path: Path | str) -> None:
    """CorruptDataError naming `path` unless every label is an integer in 0..num_classes-1."""
    if labels.dtype.kind not in "iu":
        raise CorruptDataError(f"{path}: labels must be integers, got {labels.dtype}")
    bad = (labels < 0) | (labels >= num_classes)
    if bad.any():
        raise CorruptDataError(f"{path}: label {int(labels[bad][0])} is outside the {num_classes} "
                               f"classes (0..{num_classes - 1}); {int(bad.sum()):,} of {labels.size:,} "
                               "labels are out of range, so the file is corrupt")


def data_root(root: str | os.PathLike | None = None) -> Path:
    """Where downloads go: explicit `root` > env GENLIB_DATA_DIR > ~/.cache/genlib/data."""
    if root is not None:
        return _expand(Path(root))
    env = os.environ.get("GENLIB_DATA_DIR")
    if env:
        return _expand(Path(env))
    return Path.home() / ".cache" / "genlib" / "data"


def _expand(path: Path) -> Path:
    try:
        return path.expanduser()
    except RuntimeError:     # '~someone' with no such user: take the path as written
        return path


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


@dataclass(frozen=True)
class SplitFiles:
    """How one file-based dataset lies on disk, and how to read it.

    A split is found in the first searched folder that holds all of its files; each file may
    carry one of `suffixes` (tried in order; messages name the first).
    """

    name: str                                    # the DATASETS key, also the download source
    label: str                                   # its name in messages
    folder: str                                  # under a data root, e.g. "MNIST/raw"
    files: Mapping[str, tuple[str, ...]]         # "train" / "test" -> its files (without suffix)
    read: Callable[[list[Path]], tuple[torch.Tensor, torch.Tensor]]  # one split's files -> (x, y)
    class_names: Callable[[Path], list[str]]     # the folder the data came from -> class names
    suffixes: tuple[str, ...] = ("",)
    archive: bool = False    # the download is one archive of `folder`, unpacked into the data root

    def listed(self, splits: Sequence[str]) -> list[str]:
        """The file names of `splits` as messages give them."""
        return [f + self.suffixes[0] for s in splits for f in self.files[s]]

    def find(self, folders: Sequence[Path], split: str) -> tuple[Path, list[Path]] | None:
        """(folder, its files of `split`) for the first folder that holds them all."""
        for folder in folders:
            paths = [_find_file(folder, f, self.suffixes) for f in self.files[split]]
            if all(paths):
                return folder, paths
        return None


def _find_file(folder: Path, stem: str, suffixes: Sequence[str]) -> Path | None:
    for suffix in suffixes:
        if _is_file(folder / (stem + suffix)):
            return folder / (stem + suffix)
    return None


def _is_file(path: Path) -> bool:
    """path.is_file(), False too when a folder on the way cannot be searched (EACCES, a name too
    long, ...): the folder is then reported by `_folder_problems` instead of crashing the search."""
    try:
        return path.is_file()
    except (OSError, ValueError):    # ValueError: a NUL byte in a configured path
        return False


def _folder_problems(folders: Sequence[Path]) -> list[str]:
    """Why each searched folder that exists in some form cannot hold the files, in words."""
    problems = []
    for folder in folders:
        for part in [*reversed(folder.parents), folder]:
            try:
                if part.is_symlink() and not part.exists():
                    problems.append(f"{part} is a broken symbolic link")
                elif part.exists() and not part.is_dir():
                    problems.append(f"{part} is a file, not a folder")
                elif part.is_dir() and not os.access(part, os.R_OK | os.X_OK):
                    problems.append(f"{part} cannot be read (permission denied)")
                else:
                    continue
            except (OSError, ValueError) as e:
                problems.append(f"{part} cannot be read ({e})")
            break
    return problems


def load_split_files(files: SplitFiles, split: str, root: str | os.PathLike | None,
                     download: bool | None, progress: Progress | None) -> Dataset:
    """Find `split` under the search roots, download what is missing if allowed, and fall back
    to the other split (with a note) when only that one is there; see `load_dataset`."""
    folders = [r / files.folder for r in search_roots(root)]
    put_in = data_root(root) / files.folder
    found = {s: files.find(folders, s) for s in ("train", "test")}
    missing = [s for s in _wanted_splits(split) if found[s] is None]
    if _should_download(download, found, missing):
        _download(files, missing, root, folders, progress)
        found = {s: files.find(folders, s) for s in ("train", "test")}
    if not any(found.values()):
        raise _not_found(files.label, files.listed(_wanted_splits(split)), folders, put_in,
                         sources_text(files.name), problems=_folder_problems(folders))
    used, used_split = _choose_splits(split, found)
    folder = found[used[0]][0]
    try:
        parts = [files.read(found[s][1]) for s in used]
        class_names = files.class_names(folder)
    except CorruptDataError:
        raise
    except OSError as e:    # a file that vanished or cannot be opened (a folder named like it, ...)
        raise CorruptDataError(f"cannot read {e.filename or folder}: {e.strerror or e}; replace the "
                               f"{files.label} files in {folder}") from e
    x, y = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= len(class_names)):   # readers check per file
        raise CorruptDataError(f"{folder}: labels run from {int(y.min())} to {int(y.max())} but there "
                               f"are {len(class_names)} classes; the files are corrupt")
    note = _fallback_note(files.label, split, used, len(x), folders)
    return Dataset(files.name, used_split, x, y, class_names, note, source=str(folder))


def _download(files: SplitFiles, missing: Sequence[str], root: str | os.PathLike | None,
              looked_in: Sequence[Path], progress: Progress | None) -> None:
    """Fetch the missing splits (an archive brings both) or raise DataNotFoundError saying why."""
    put_in = data_root(root) / files.folder
    if files.archive:
        dest, only, listed = data_root(root), None, files.listed(("train", "test"))
    else:
        dest, only = put_in, [f for s in missing for f in files.files[s]]
        listed = files.listed(missing)
    try:
        download(files.name, dest, progress, only=only, extract=files.archive)
    except (OSError, ImportError, EOFError, tarfile.TarError) as e:
        raise _not_found(files.label, listed, looked_in, put_in, sources_text(files.name), str(e)) from e


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
               sources: str, reason: str = "", problems: Sequence[str] = ()) -> DataNotFoundError:
    """The error every loader raises: what is missing, where we looked, where to put it, how."""
    msg = (f"{label} files not found: {', '.join(files)}.\n"
           f"Looked in: {', '.join(str(p) for p in looked_in)}.\n"
           + (f"Problems: {'; '.join(dict.fromkeys(problems))}.\n" if problems else "") +
           f"Put the files in {put_in}, or download them with download=True (needs internet)"
           f" or by hand from {sources}.")
    if reason:
        msg += f"\nDownload failed: {reason}"
    return DataNotFoundError(msg)
