"""Downloads: mirrors, fetching with progress, md5 checks, unpacking archives.

Sources are injectable so an offline mirror (or a test's file:// URL) can stand in for the
internet. An entry here overrides torchvision's own list for that dataset; a file's URL is
mirror + file name. MIRRORS: name -> [base URL, ...]; RESOURCES: name -> [(file name, md5|None)].
"""

from __future__ import annotations

import http.client
import os
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

Progress = Callable[[int, int | None, str], None]
"""progress(done_bytes, total_bytes | None, message), called while downloading."""

MIRRORS: dict[str, list[str]] = {}
RESOURCES: dict[str, list[tuple[str, str | None]]] = {}

_DOWNLOAD_TIMEOUT_S = 30  # long enough for a slow mirror, short enough to fail fast when offline
_CHUNK = 1 << 20


def sources(name: str) -> tuple[list[str], list[tuple[str, str | None]]]:
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


def sources_text(name: str) -> str:
    """Where to get `name` by hand, for error messages."""
    try:
        return " or ".join(sources(name)[0])
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


def download(name: str, dest_dir: Path, progress: Progress | None, *,
             only: Sequence[str] | None = None, extract: bool = False) -> None:
    """Fetch `name`'s resources (those whose file names start with one of `only`, if given) into
    `dest_dir`, unpacking each there when `extract` (an archive that holds the dataset's folder).

    Raises OSError, ImportError, EOFError or tarfile.TarError; the caller words the error.
    """
    mirrors, resources = sources(name)
    for fname, md5 in resources:
        if only is not None and not any(fname.startswith(s) for s in only):
            continue
        path = _download_file(mirrors, fname, md5, dest_dir, progress)
        if extract:
            from torchvision.datasets.utils import extract_archive

            if progress:
                progress(0, None, f"Extracting {fname}")
            extract_archive(path, dest_dir)
