"""genlib's files on disk: where the shipped ones live, one safe writer and one safe reader.

Every file genlib writes (checkpoints, classifiers, cached statistics) is a ``torch.save``d dict with
a ``format`` name and a ``version``. ``read_versioned`` is the one reader: it caps the size, loads
with ``torch.load(weights_only=True)`` (which only rebuilds tensors and plain containers, so a file
crafted to run code on load is refused) and checks the header. Anything wrong with a file becomes a
``FileFormatError`` (or the caller's subclass) with a one-line reason.

Before ``torch.load`` runs, the bytes are checked as an archive (``check_archive``): the zip format
``torch.save`` writes, every member stored (a deflated member is a decompression bomb: 1 MB of
zeros became 1 GB in ``torch.load``), a bounded number of members and a bounded pickle (the
weights-only unpickler spent 3.3 s and 80 MB per MB of 1-byte container opcodes, measured). After
it, ``check_payload`` walks the result once, with a budget on nodes visited and depth (shared
references count each time they are reached, so a 2^60-path DAG of a few hundred bytes is refused,
not walked) and checks that no tensor declares more elements than its storage holds (a stride-0
tensor of 4 bytes can declare 2^56 elements). Callers then trust the sizes they see.
"""
from __future__ import annotations

import glob
import io
import math
import os
import pickle
import struct
import zipfile
from pathlib import Path
from typing import Any, BinaryIO

import torch

REPO = Path(__file__).resolve().parents[1]
PRETRAINED_DIR = REPO / "pretrained"                 # the shipped generative models (genlib.pretrained)
CLASSIFIER_DIR = PRETRAINED_DIR / "classifiers"      # the shipped metric classifiers (genlib.classifier)
MAX_BYTES = 200 * 2**20   # far above any model here (the largest is a few MB)
# The pickle inside a file (everything but the tensors' bytes). The shipped files' are 2-30 kB; a run
# recorded at RECORDED_POINTS (15 curves, 8 metrics, their axes) with a 10 kB card pickles to ~126 kB.
# The weights-only unpickler is pure Python: a crafted pickle of 1-byte container opcodes cost ~3.3 us
# and ~80 bytes per byte (4 MB: 13.6 s, 331 MB), so the cap bounds the worst one (see check_archive).
MAX_PICKLE_BYTES = 256 * 2**10
MAX_MEMBERS = 4096                      # zip members (one per tensor storage); the shipped files have <= 81
MAX_NODES = 200_000                     # containers and values visited walking a payload (shipped: < 3,000)
MAX_DEPTH = 32                          # nesting depth of a payload (shipped: 6)

Source = str | os.PathLike | bytes | BinaryIO


class FileFormatError(ValueError):
    """A file that is not a usable genlib file of the expected kind; the message says why in one line."""


def atomic_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file beside ``path`` (named by process, so two processes never
    share one), then rename: a reader never sees a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path_for(path)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:    # a full disk, a read-only folder, Ctrl-C mid-write: leave nothing behind
        remove_quietly(tmp)
        raise


def tmp_path_for(path: str | os.PathLike) -> Path:
    """The temporary file ``atomic_save`` writes beside ``path`` (one per process)."""
    path = Path(path)
    return path.with_name(f"{path.name}.{os.getpid()}.tmp")


def stale_tmp_files(path: str | os.PathLike) -> list[Path]:
    """Temporary files ``atomic_save`` left beside ``path`` (``<name>.<pid>.tmp``) by processes that
    no longer run: interrupted saves. Only that exact pattern, only dead pids, never this process."""
    path = Path(path)
    out = []
    try:
        candidates = list(path.parent.glob(f"{glob.escape(path.name)}.*.tmp"))
    except OSError:
        return []
    for p in candidates:
        pid = p.name[len(path.name) + 1:-len(".tmp")]
        if not pid.isdigit() or int(pid) == os.getpid() or not p.is_file():
            continue
        if not _pid_alive(int(pid)):
            out.append(p)
    return out


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True      # someone else's process: leave its file alone
    return True


def remove_quietly(path: str | os.PathLike) -> None:
    try:
        Path(path).unlink()
    except OSError:
        pass


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
    problem = check_archive(data)
    if problem:
        raise error(f"{name}: {problem}" if problem.startswith("refused")
                    else f"{name}: not a readable {kind} ({problem})")
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
    problem = check_payload(payload)
    if problem:
        raise error(f"{name}: refused: {problem}")
    return payload


def check_archive(data: bytes) -> str | None:
    """None when ``data`` is a zip archive as ``torch.save`` writes it, small enough to parse; else
    why not, naming 'corrupt' for damage. Reads only the archive's directory."""
    if data[:1] == b"\x80" and len(data) > 2:
        return ("refused: a raw pickle, not a zip-format torch file (objects in it could run code; "
                "nothing was unpickled)")
    if len(data) < 22 or not data.startswith(b"PK\x03\x04"):
        return "corrupt or truncated file: not a zip-format torch file"
    # the end-of-central-directory record says how big the directory is; refuse before parsing it
    end = data.rfind(b"PK\x05\x06", max(0, len(data) - 65_557))
    if end < 0 or end + 22 > len(data):
        return "corrupt or truncated file: no zip directory"
    entries, cd_size = struct.unpack("<HI", data[end + 10:end + 16])
    if entries != 0xFFFF and entries > MAX_MEMBERS or cd_size != 0xFFFFFFFF and cd_size > MAX_MEMBERS * 512:
        return f"{entries:,} archive members is over the {MAX_MEMBERS:,} limit"
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            infos = z.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError, struct.error,
            NotImplementedError, UnicodeDecodeError):
        return "corrupt or truncated file: a damaged zip directory"
    if len(infos) > MAX_MEMBERS:
        return f"{len(infos):,} archive members is over the {MAX_MEMBERS:,} limit"
    names = [i.filename for i in infos]
    if len(set(names)) != len(names):
        return "corrupt file: an archive member appears twice"
    total = 0
    for i in infos:
        if i.compress_type != zipfile.ZIP_STORED:
            return (f"member {i.filename[:60]!r} is compressed (torch.save stores members; a compressed one can "
                    f"expand without bound)")
        if i.file_size != i.compress_size or i.file_size > len(data):
            return f"corrupt file: member {i.filename[:60]!r} declares {i.file_size:,} bytes"
        if i.filename.endswith("/data.pkl") and i.file_size > MAX_PICKLE_BYTES:
            return (f"its data record is {i.file_size / 2**10:,.0f} kB, over the {MAX_PICKLE_BYTES // 2**10} kB "
                    f"limit (weights are stored apart from it; a genlib file's is a few kB)")
        total += i.file_size
    if total > len(data):
        return "corrupt file: members declare more bytes than the file holds"
    return None


def check_payload(obj: Any, *, max_nodes: int = MAX_NODES, max_depth: int = MAX_DEPTH) -> str | None:
    """None when ``obj`` (a loaded payload) can be walked in at most ``max_nodes`` visits and
    ``max_depth`` levels and every tensor in it is a plain CPU tensor whose declared size fits its
    storage, and all tensor references together declare no more bytes than their storages hold (views
    sharing a storage, or one tensor listed many times, cannot multiply it); else why not."""
    nodes = 0
    declared = 0
    storages: dict[tuple[int, int], int] = {}
    stack: list[Any] = [iter((obj,))]           # one iterator per open container: memory O(depth)
    while stack:
        x = next(stack[-1], _END)
        if x is _END:
            stack.pop()
            continue
        nodes += 1
        if nodes > max_nodes:
            return f"over {max_nodes:,} values to walk (nested or shared containers)"
        if isinstance(x, torch.Tensor):
            problem = tensor_problem(x)
            if problem:
                return problem
            declared += x.numel() * x.element_size()   # per reference: a tensor listed twice counts twice
            st = x.untyped_storage()
            storages[(st.data_ptr(), st.nbytes())] = st.nbytes()
        elif isinstance(x, (dict, list, tuple)):
            if len(stack) > max_depth:
                return f"nested deeper than {max_depth} levels"
            stack.append(iter(_flat_items(x)) if isinstance(x, dict) else iter(x))
    if declared > sum(storages.values()):
        return (f"its tensors declare {declared:,} bytes but their storage holds {sum(storages.values()):,} "
                f"(tensors sharing one storage, or listed more than once)")
    return None


_END = object()


def _flat_items(d: dict):
    for k, v in d.items():
        yield k
        yield v


def tensor_problem(t: torch.Tensor) -> str | None:
    """None for a plain (strided, CPU) tensor whose declared elements fit in its storage; else why not."""
    if t.layout != torch.strided or t.is_quantized or t.is_nested:
        return f"a {t.layout} tensor (only plain dense tensors are read)"
    if t.device.type not in ("cpu", "meta"):
        return f"a tensor on {t.device}"
    if t.dtype.is_complex:
        return "a complex tensor"
    need = t.numel() * t.element_size()
    have = t.untyped_storage().nbytes()
    if need > have:
        return (f"a tensor of shape {tuple(t.shape)[:8]} declares {need:,} bytes but its storage holds {have:,} "
                f"(crafted strides)")
    return None


def state_dict_problem(expected: torch.nn.Module, weights: Any) -> str | None:
    """None when ``weights`` fit ``expected`` (a module, typically built on the meta device): the same
    names, shapes and kinds (floating or integer), every value finite. Else one line starting
    'weights do not match the config' or 'refused: non-finite weights'."""
    head = "weights do not match the config"
    if not isinstance(weights, dict) or not all(isinstance(k, str) for k in weights):
        return f"{head} (not a dict of named tensors)"
    want = expected.state_dict()
    missing = [k for k in want if k not in weights]
    unexpected = [k for k in weights if k not in want]
    if missing or unexpected:
        parts = [f"{what} {', '.join(k[:60] for k in keys[:3])}{' ...' if len(keys) > 3 else ''}"
                 for what, keys in (("missing", missing), ("unexpected", unexpected)) if keys]
        return f"{head} ({'; '.join(parts)})"
    bad = []
    for k, w in want.items():
        got = weights[k]
        if not isinstance(got, torch.Tensor):
            return f"{head} ({k} is not a tensor)"
        if tuple(got.shape) != tuple(w.shape):
            return f"{head} ({k}: shape {tuple(got.shape)[:6]} where the config makes {tuple(w.shape)})"
        if got.dtype.is_floating_point != w.dtype.is_floating_point or got.dtype == torch.bool:
            return f"{head} ({k}: {got.dtype} where {w.dtype} is expected)"
        if count_nonfinite(got):
            bad.append(k)
    if bad:
        return (f"refused: non-finite weights (NaN or Inf) in {len(bad)} tensor(s), e.g. {bad[0]}; the run "
                f"diverged before it was saved, or the file was edited")
    return None


def count_nonfinite(t: torch.Tensor) -> int:
    """How many NaN / Inf values a floating tensor holds (0 for integer tensors)."""
    if not t.dtype.is_floating_point or t.numel() == 0:
        return 0
    lo, hi = torch.aminmax(t)           # NaN propagates, +-Inf lands here: one pass, no copy (isfinite
    if torch.isfinite(lo) and torch.isfinite(hi):   # over 24 M float16 weights cost 0.5 s, this 0.07 s)
        return 0
    return int(t.numel() - torch.isfinite(t).sum().item())


# --- plain, bounded data (cards) --------------------------------------------------------------------

class PlainDataError(ValueError):
    """Data that is not plain and bounded; the message names where (``card['metrics']['x']``)."""


def plain_data(obj: Any, *, what: str = "card", max_depth: int = 8, max_nodes: int = 20_000,
               max_chars: int = 64 * 2**10, max_int: int = 2**63) -> Any:
    """A fresh copy of ``obj`` holding only str, int, float, bool, None, lists (tuples become lists)
    and dicts with str keys; depth, values visited (shared references count each time) and text
    (keys and strings together) bounded. O(size): it stops at the first bound it passes. Raises
    ``PlainDataError`` naming the path of the first offending value."""
    budget = {"nodes": max_nodes, "chars": max_chars}

    def walk(x: Any, path: str, depth: int) -> Any:
        budget["nodes"] -= 1
        if budget["nodes"] < 0:
            raise PlainDataError(f"{what} has over {max_nodes:,} values (nested or shared containers)")
        if depth > max_depth:
            raise PlainDataError(f"{what} is nested deeper than {max_depth} levels at {path}")
        if x is None or isinstance(x, bool):
            return x
        if isinstance(x, int):
            if not -max_int <= x <= max_int:
                raise PlainDataError(f"{path} is an integer of {x.bit_length():,} bits (at most 64)")
            return int(x)
        if isinstance(x, float):
            return float(x)
        if isinstance(x, str):
            budget["chars"] -= len(x)
            if budget["chars"] < 0:
                raise PlainDataError(f"{what} holds over {max_chars:,} characters of text (at {path})")
            return str(x)
        if isinstance(x, (list, tuple)):
            return [walk(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(x)]
        if isinstance(x, dict):
            out = {}
            for k, v in x.items():
                if not isinstance(k, str):
                    raise PlainDataError(f"{path} has a key of type {type(k).__name__} (keys are text)")
                budget["chars"] -= len(k)
                if budget["chars"] < 0:
                    raise PlainDataError(f"{what} holds over {max_chars:,} characters of text (at {path})")
                out[str(k)] = walk(v, f"{path}[{k[:40]!r}]", depth + 1)
            return out
        raise PlainDataError(f"{path} is a {type(x).__name__} ({what}s hold only text, numbers, lists and dicts)")

    return walk(obj, what, 0)


def is_finite_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
