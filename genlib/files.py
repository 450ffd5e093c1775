"""genlib's files on disk: where the shipped ones live, one safe writer and one safe reader.

Every file genlib writes (checkpoints, classifiers, cached statistics) is a ``torch.save``d dict with
a ``format`` name and a ``version``. ``read_versioned`` is the one reader: it caps the size, loads
with ``torch.load(weights_only=True)`` (which only rebuilds tensors and plain containers, so a file
crafted to run code on load is refused) and checks the header. Anything wrong with a file becomes a
``FileFormatError`` (or the caller's subclass) with a one-line reason.
"""
from __future__ import annotations

import io
import os
import pickle
from pathlib import Path
from typing import Any, BinaryIO

import torch

REPO = Path(__file__).resolve().parents[1]
PRETRAINED_DIR = REPO / "pretrained"                 # the shipped generative models (genlib.pretrained)
CLASSIFIER_DIR = PRETRAINED_DIR / "classifiers"      # the shipped metric classifiers (genlib.classifier)
MAX_BYTES = 200 * 2**20   # far above any model here (the largest is a few MB)

Source = str | os.PathLike | bytes | BinaryIO


class FileFormatError(ValueError):
    """A file that is not a usable genlib file of the expected kind; the message says why in one line."""


def atomic_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file beside ``path`` (named by process, so two processes never
    share one), then rename: a reader never sees a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def source_name(source: Source) -> str:
    """How messages name a source: its path, or 'upload' for bytes and open files."""
    return str(source) if isinstance(source, (str, os.PathLike)) else "upload"


def read_versioned(source: Source, fmt: str, version: int, *, kind: str = "file",
                   max_bytes: int = MAX_BYTES, error: type[FileFormatError] = FileFormatError) -> dict[str, Any]:
    """The payload dict of a genlib file of format ``fmt`` and ``version``, on the CPU, read without
    executing anything it contains. ``kind`` names it in messages ('checkpoint', 'classifier');
    every problem raises ``error``."""
    name = source_name(source)
    if isinstance(source, (str, os.PathLike)):
        if not Path(source).is_file():
            raise error(f"{name}: no such file")
        size = Path(source).stat().st_size
        if size > max_bytes:
            raise error(f"{name}: {size / 2**20:.1f} MB is over the {max_bytes / 2**20:.0f} MB limit")
        data = Path(source).read_bytes()
    else:
        data = source if isinstance(source, bytes) else source.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise error(f"{name}: over the {max_bytes / 2**20:.0f} MB limit")
    try:
        payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        # weights_only cannot tell garbage from a hostile pickle: both use opcodes or globals
        # outside its allow-list. Say both, and quote torch's reason.
        reason = next((ln.strip() for ln in str(e).splitlines() if ln.strip().startswith("Unsupported")),
                      type(e).__name__)
        raise error(f"{name}: refused: not loadable as plain tensors and data (a corrupt file, "
                    f"or objects that could run code; {reason[:160]})") from None
    except Exception as e:   # torch's parsers raise many types on bad bytes (struct.error on 4 bytes...)
        raise error(f"{name}: not a readable {kind} (corrupt or truncated file: {type(e).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != fmt:
        raise error(f"{name}: not a genlib {kind} (no '{fmt}' header)")
    if payload.get("version") != version:
        raise error(f"{name}: {kind} version {payload.get('version')!r} is not supported "
                    f"(this genlib reads version {version})")
    return payload
