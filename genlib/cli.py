"""Command line: ``python -m genlib {train,sample,info,evaluate,compare} ...``.

Errors a user can cause (bad arguments, missing data, a bad checkpoint, an unwritable output) end
with a one-line reason and exit 2, never a traceback or exit 3 ('internal error' is kept for bugs).
Every count is bounded (``LIMITS``); every output path is checked before any work (a run is never
trained to be lost at the end); ``train`` saves on SIGTERM as on Ctrl-C and ignores further
interrupts while it saves; outputs are written to a temporary file and renamed, which is removed on
any failure, and stale temporary files of ``atomic_save`` beside the output are cleaned up.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import signal
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from .checkpoint import MAX_CLASSES, CheckpointError, load_checkpoint, network_problem, save_checkpoint
from .data import DATASETS, DataNotFoundError, load_dataset
from .device import pick_device
from .files import remove_quietly, stale_tmp_files, tmp_path_for
from .sampling import prior_draw, to_uint8
from .models import PRESETS, config_class, field_specs, preset_config, build_model
from .train import Event, TrainConfig, Trainer, distributed


class UsageError(ValueError):
    """A bad command-line value; reported as one line."""


class NonFiniteOutput(ValueError):
    """A model whose outputs hold NaN or Inf: nothing is written (an all-black grid would be silent)."""


# Bounds on every count the command line takes: (low, high) inclusive.
LIMITS: dict[str, tuple[float, float]] = {
    "steps": (1, 10_000_000), "epochs": (1e-6, 10_000), "batch_size": (1, 8192), "seed": (0, 2**63 - 1),
    "threads": (0, 256), "log_every": (1, 10_000_000), "sample_every": (1, 10_000_000),
    "sample_n": (1, 10_000), "evaluate_n": (1, 50_000),
}
MAX_SAMPLE_VALUES = 2**26   # sample --n x values per sample: 64 M floats (256 MB), e.g. 10k 3x64x64 images


def _bounded(name: str, value: float | None, key: str | None = None) -> None:
    if value is None:
        return
    lo, hi = LIMITS[key or name.lstrip("-").replace("-", "_")]
    if not (isinstance(value, (int, float)) and math.isfinite(value) and lo <= value <= hi):
        raise UsageError(f"{name} must be between {lo:g} and {hi:g}, got {value!r}")


def check_output(path: str | os.PathLike, suffixes: Sequence[str], what: str = "--out") -> Path:
    """``path`` as a Path once it is known to be writable as a file ending in one of ``suffixes``:
    not a folder, not under a file, in a folder that exists (or can be created under the nearest
    existing one) and accepts a file (probed by creating and removing the temporary file the write
    will use). Raises UsageError with one line. Creates nothing that stays."""
    out = Path(path).expanduser()
    if out.is_dir():
        raise UsageError(f"{what} {out} is a folder; give a file name ending in {' or '.join(suffixes)}")
    if out.suffix not in suffixes:
        raise UsageError(f"{what} must end in {' or '.join(suffixes)}, got {out.name!r}")
    if out.exists() and not out.is_file():
        raise UsageError(f"{what} {out} exists and is not a regular file")
    parent = out.parent
    while not parent.exists():
        if parent == parent.parent:
            break
        parent = parent.parent
    if not parent.is_dir():
        raise UsageError(f"{what} {out}: {parent} is a file, not a folder")
    if parent != out.parent:
        if not os.access(parent, os.W_OK | os.X_OK):
            raise UsageError(f"{what} {out}: cannot create folders in {parent} (permission denied)")
        return out
    probe = tmp_path_for(out)
    try:
        with open(probe, "xb"):
            pass
    except FileExistsError:
        pass
    except OSError as e:
        raise UsageError(f"{what} {out}: cannot write in {parent} ({e.strerror or type(e).__name__})") from None
    else:
        remove_quietly(probe)
    if out.exists() and not os.access(out, os.W_OK):
        raise UsageError(f"{what} {out}: the file is read-only")
    return out


def clean_stale(out: Path) -> None:
    """Remove temporary files that interrupted saves of ``out`` left (``<name>.<dead pid>.tmp``)."""
    stale = stale_tmp_files(out)
    for p in stale:
        remove_quietly(p)
    if stale:
        print(f"removed {len(stale)} stale temporary file(s) beside {out}", file=sys.stderr)


def _device(name: str) -> "torch.device":
    try:
        return pick_device(name)
    except RuntimeError:     # torch.device('bogus')
        raise UsageError(f"--device {name!r}: expected auto, cpu, cuda, cuda:N or mps") from None


def _write_atomically(out: Path, write) -> None:
    """``write(tmp)`` then rename to ``out``; the temporary file is removed on any failure."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path_for(out)
    try:
        write(tmp)
        os.replace(tmp, out)
    except BaseException:
        remove_quietly(tmp)
        raise


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line on stderr (exit 2), not usage plus error."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def parse_overrides(family: str, items: Sequence[str]) -> dict[str, Any]:
    """``['lr=1e-3', 'hidden=256,128', 'skip=true']`` -> typed values, by each field's spec (its kind
    and choices, ``genlib.models.field_specs``); ranges are left to the config's own validation."""
    specs = {s.name: s for s in field_specs(config_class(family))}
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep:
            raise UsageError(f"--set expects key=value, got {item!r}")
        if key not in specs:
            raise UsageError(f"--set {key}: not a {family} setting; known: {', '.join(sorted(specs))}")
        spec = specs[key]
        if spec.from_data:
            raise UsageError(f"--set {key}: set from the dataset (--dataset), not by hand")
        if len(raw) > 200:
            raise UsageError(f"--set {key}: a value of {len(raw)} characters is too long")
        if spec.choices is not None and raw not in spec.choices:
            raise UsageError(f"--set {key}={raw!r}: choose {spec.rule}")
        try:
            out[key] = _PARSE[spec.kind](raw)
        except ValueError:
            raise UsageError(f"--set {key}={raw!r}: expected a {spec.kind}") from None
        if spec.kind == "float" and not math.isfinite(out[key]):
            raise UsageError(f"--set {key}={raw!r}: expected a finite number")
    return out


def _parse_bool(raw: str) -> bool:
    if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
        raise ValueError(raw)
    return raw.lower() in ("true", "1", "yes")


_PARSE = {"bool": _parse_bool, "int": int, "float": float, "str": str,
          "tuple": lambda raw: tuple(int(v) for v in raw.split(",") if v.strip())}


def _print_event(ev: Event, total: int) -> None:
    if ev.kind == "progress":
        losses = "  ".join(f"{k} {v:.4g}" for k, v in ev.losses.items())
        eta = f"{ev.eta:.0f}s" if ev.eta == ev.eta else "?"
        print(f"step {ev.step:>6}/{total}  epoch {ev.epoch:6.2f}  {losses}  |  "
              f"{ev.images_per_s:,.0f} img/s  ETA {eta}", file=sys.stderr, flush=True)
    elif ev.kind in ("error", "done", "stopped"):
        print(ev.message, file=sys.stderr, flush=True)


def cmd_train(args: argparse.Namespace) -> int:
    out = check_output(args.out or f"runs/{args.model}-{args.dataset}.pt", (".pt",))   # before any work
    _device(args.device)
    dist = distributed.from_env(args.device)     # under torchrun: this process's rank (DDP), else None
    with distributed.main_first(dist):
        data = load_dataset(args.dataset, split=args.split, root=args.data_dir, download=args.download)
    if data.note:
        print(f"note: {data.note}", file=sys.stderr)
    family = PRESETS[args.model].family
    overrides = parse_overrides(family, args.set)
    torch.manual_seed(args.seed)
    _, config = preset_config(args.model, data.shape, data.num_classes, **overrides)
    problem = network_problem(family, config)     # nothing is trained that load_checkpoint would refuse
    if problem:
        raise UsageError(problem)
    model = build_model(family, config)
    steps = args.steps or max(1, round(args.epochs * data.steps_per_epoch(args.batch_size)))
    _bounded("--epochs (in steps)", steps, "steps")
    tcfg = TrainConfig(steps=steps, batch_size=args.batch_size, seed=args.seed, log_every=args.log_every,
                       sample_every=args.sample_every, threads=args.threads)
    model.fit_data(data)       # on the whole dataset, before any sharding: every rank finds the same clusters
    if dist:                                     # this rank's shard and share of the global batch; DDP
        data, tcfg = dist.prepare(model, data, tcfg)
    quiet = args.quiet or (dist is not None and not dist.is_main)
    trainer = Trainer(model, data, tcfg, device=dist.device if dist else args.device,
                      callbacks=[] if quiet else [lambda ev: _print_event(ev, steps)])
    sizes = ", ".join(f"{k} {v:,}" for k, v in model.network_sizes().items())
    if dist is None or dist.is_main:
        print(f"training {args.model} on {data.name} ({data.split}, {len(data):,} images"
              f"{f' per process, {dist.world_size} processes' if dist else ''}) for {steps} steps "
              f"on {trainer.device}; parameters: {sizes}", file=sys.stderr)

    # Ctrl-C and SIGTERM stop the run and save what was trained. The handlers only note the signal and
    # the loop below stops the run: an exception raised inside Thread.join (as KeyboardInterrupt is) can
    # mark a running thread as ended (CPython 3.11's _wait_for_tstate_lock), and the save then raced the
    # still-training loop and the process could abort at exit (seen in CI: "terminate called without an
    # active exception").
    stopped_by: list[str] = []

    def on_interrupt(signum, frame):
        _ignore_interrupts()                 # a second Ctrl-C / SIGTERM must not abort the save
        stopped_by.append("terminated" if signum == signal.SIGTERM else "interrupted")

    previous = _handle_interrupts(on_interrupt)
    try:
        trainer.start()
        while trainer.is_alive:
            if stopped_by:
                trainer.stop()               # each time round: a stop before the loop began is not lost
            trainer.join(0.2)
        if stopped_by:
            print(f"{stopped_by[0]}: saving what was trained (further interrupts are ignored until it is saved)",
                  file=sys.stderr)
        _ignore_interrupts()
        clean_stale(out)
        command = "python -m genlib " + " ".join(shlex.quote(a) for a in args.argv)
        if dist:
            dist.finish(model, trainer)          # plain networks back, global batch; rank 0 alone saves
            if not dist.is_main:
                return 1 if trainer.state == "error" else 0
        save_checkpoint(out, model, trainer, preset=args.model, command=command, **(dist.card() if dist else {}))
    finally:
        _restore_interrupts(previous)
        if dist:
            dist.close()     # each rank leaves the group itself: gloo aborted at exit without it (seen in CI)
    print(f"saved {out}", file=sys.stderr)
    return 1 if trainer.state == "error" else 0


def _main_thread() -> bool:
    import threading
    return threading.current_thread() is threading.main_thread()


def _handle_interrupts(handler) -> dict[int, Any]:
    """Install ``handler`` for SIGINT and SIGTERM (main thread only); the handlers it replaced."""
    if not _main_thread():
        return {}
    return {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}


def _ignore_interrupts() -> None:
    if _main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)


def _restore_interrupts(before: dict[int, Any]) -> None:
    for sig, handler in before.items():
        if handler is not None:              # None: installed outside Python; cannot be put back
            signal.signal(sig, handler)


def _parse_labels(text: str | None, n: int) -> torch.Tensor | None:
    if text is None:
        return None
    try:
        classes = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"--labels expects class numbers like 8 or 2,5, got {text[:40]!r}") from None
    if not classes:
        raise UsageError("--labels is empty")
    if not all(0 <= c < MAX_CLASSES for c in classes) or len(classes) > n:
        raise UsageError(f"--labels: give at most --n classes, each in 0..{MAX_CLASSES - 1}")
    return torch.tensor(classes).repeat(n // len(classes) + 1)[:n]


def cmd_sample(args: argparse.Namespace) -> int:
    _bounded("--n", args.n, "sample_n")
    _bounded("--seed", args.seed)
    out = check_output(args.out, (".npz", ".png"))
    ckpt = load_checkpoint(args.checkpoint, device=_device(args.device))
    model = ckpt.model
    for note in ckpt.warnings:
        print(f"note: {note}", file=sys.stderr)
    if out.suffix == ".png" and not model.config.is_image:
        raise UsageError("a .png grid needs an image model; use .npz for 2-D points")
    per = math.prod(model.config.data_shape)
    if args.n * per > MAX_SAMPLE_VALUES:
        raise UsageError(f"--n {args.n} of {tuple(model.config.data_shape)} is {args.n * per:,} values, over the "
                         f"{MAX_SAMPLE_VALUES:,} limit; draw at most {MAX_SAMPLE_VALUES // per:,}")
    labels = _parse_labels(args.labels, args.n)
    if labels is not None and not model.config.conditional:
        raise UsageError("--labels needs a conditional model (cgan, cvae)")
    if labels is None:
        labels = model.default_labels(args.n)
    torch.manual_seed(args.seed)   # for any randomness a family draws beyond z
    z = prior_draw(model, args.n, args.seed)   # genlib's one seeding rule: the same samples on any device
    x = model.sample(args.n, labels=labels, z=z).cpu()
    bad = int(x.numel() - torch.isfinite(x).sum())
    if bad:
        raise NonFiniteOutput(f"{args.checkpoint}: {bad:,} of {x.numel():,} output values are NaN or Inf "
                              f"(the weights overflow); nothing written")
    if out.suffix == ".npz":
        arrays: dict[str, np.ndarray] = {}
        if model.config.is_image:
            img = to_uint8(x).numpy()
            arrays["x"] = img[:, 0] if img.shape[1] == 1 else img    # N x H x W for grey, N x C x H x W for colour
        else:
            arrays["x"] = x.numpy().astype(np.float32)
        if labels is not None:
            arrays["y"] = labels.cpu().numpy().astype(np.int64)

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as f:           # a file object: numpy would add .npz to the temporary name
                np.savez_compressed(f, **arrays)
    else:
        from torchvision.utils import save_image

        def write(tmp: Path) -> None:
            save_image(x, tmp, format="png", nrow=max(1, int(args.n ** 0.5)), padding=1)
    _write_atomically(out, write)
    print(f"wrote {args.n} samples to {out}", file=sys.stderr)
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    ckpt = load_checkpoint(args.checkpoint)
    for note in ckpt.warnings:
        print(f"note: {note}", file=sys.stderr)
    info = {"card": ckpt.card, "config": ckpt.model.config.to_dict(), "train_config": ckpt.train_config,
            "steps": ckpt.model.steps, "samples_along_training": [s for s, _ in ckpt.samples],
            "final_losses": {k: v[-1] for k, v in ckpt.history.items() if k != "step" and v}}
    print(json.dumps(info, indent=2, default=str))
    return 0


def _evaluate(path: str, args: argparse.Namespace) -> dict[str, Any]:
    """``evaluate_checkpoint`` with the command's options, plus the seconds it took."""
    from .metrics import default_cache_dir, evaluate_checkpoint   # lazy: metrics loads the classifiers
    _check_outputs_finite(path)
    t0 = time.perf_counter()
    result = evaluate_checkpoint(path, args.n, dataset=args.dataset, root=args.data_dir,
                                 cache_dir=default_cache_dir())
    result["seconds"] = round(time.perf_counter() - t0, 2)
    return result


def _check_outputs_finite(path: str, n: int = 64) -> None:
    """Refuse a checkpoint whose model draws NaN / Inf (its metrics would be NaN, silently)."""
    model = load_checkpoint(path).model
    x = model.sample(n, z=prior_draw(model, n, 0))
    bad = int(x.numel() - torch.isfinite(x).sum())
    if bad:
        raise NonFiniteOutput(f"{path}: {bad:,} of {x.numel():,} output values of {n} samples are NaN or Inf; "
                              f"not evaluated")


def cmd_evaluate(args: argparse.Namespace) -> int:
    _bounded("--n", args.n, "evaluate_n")
    print(json.dumps(_evaluate(args.checkpoint, args), indent=2))   # classifier_fid: not the Inception FID
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from .metrics import write_table
    _bounded("--n", args.n, "evaluate_n")
    out = check_output(args.out, (".csv", ".json"))
    if len(args.checkpoints) > 100:
        raise UsageError(f"compare takes at most 100 checkpoints, got {len(args.checkpoints)}")
    rows = []
    for path in args.checkpoints:
        rows.append(_evaluate(path, args))
        print(f"evaluated {path} in {rows[-1]['seconds']:.1f}s", file=sys.stderr)
    keys = ["classifier_fid", "kid", "classifier_is", "classes_covered", "precision", "recall", "label_accuracy",
            "neg_elbo", "toy_modes_covered", "parameters"]
    keys = [k for k in keys if any(k in r for r in rows)]
    print("\t".join(["checkpoint"] + keys))   # classifier_fid is NOT the Inception FID
    for r in rows:
        print("\t".join([r["checkpoint"]] + [f"{r[k]:.4g}" if isinstance(r.get(k), float) else str(r.get(k, ""))
                                             for k in keys]))
    def write(tmp: Path) -> None:
        staged = tmp.with_name(tmp.name + out.suffix)      # write_table picks the format by suffix
        try:
            write_table(rows, staged)
            os.replace(staged, tmp)
        finally:
            remove_quietly(staged)
    _write_atomically(out, write)
    print(f"wrote {out}", file=sys.stderr)
    return 0


# The TrainConfig fields `train` takes as flags; type, default and help come from the fields'
# metadata (``field_specs(TrainConfig)``), like the dashboard's training form. The CLI prints a line
# per progress event, so it logs less often than the library's default.
RUN_FLAGS = ("batch_size", "seed", "threads", "log_every", "sample_every")
CLI_DEFAULTS = {"log_every": 50}


def _run_settings(parser: argparse.ArgumentParser) -> None:
    specs = {s.name: s for s in field_specs(TrainConfig)}
    for name in RUN_FLAGS:
        spec = specs[name]
        default = CLI_DEFAULTS.get(name, spec.default)
        parser.add_argument("--" + name.replace("_", "-"), type=int, default=default,
                            help=f"{spec.help} (default {default})")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m genlib", description="Train and sample generative image models.")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model and save a checkpoint")
    t.add_argument("--model", default="vae", choices=list(PRESETS),
                   help="; ".join(f"{k}: {v.description}" for k, v in PRESETS.items()))
    t.add_argument("--dataset", default="digits", choices=list(DATASETS))
    t.add_argument("--split", default="train", choices=["train", "test"])
    t.add_argument("--data-dir", default=None, help="data root (default: $GENLIB_DATA_DIR or ~/.cache/genlib/data)")
    t.add_argument("--download", action=argparse.BooleanOptionalAction, default=None,
                   help="download missing data (default: try when missing)")
    length = t.add_mutually_exclusive_group()
    length.add_argument("--steps", type=int, default=None)
    length.add_argument("--epochs", type=float, default=None)
    _run_settings(t)
    t.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a model setting, e.g. --set latent_dim=2 --set beta=4")
    t.add_argument("--out", default=None, help="checkpoint path (default runs/MODEL-DATASET.pt)")
    t.add_argument("--quiet", action="store_true")
    t.set_defaults(func=cmd_train)

    s = sub.add_parser("sample", help="draw samples from a checkpoint into .npz or a .png grid")
    s.add_argument("--checkpoint", required=True)
    s.add_argument("--n", type=int, default=64)
    s.add_argument("--out", required=True, help="file ending in .npz (x uint8, y labels) or .png (grid)")
    s.add_argument("--labels", default=None, help="conditional models: class(es) to draw, e.g. 8 or 2,5")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    s.set_defaults(func=cmd_sample)

    i = sub.add_parser("info", help="print a checkpoint's model card and config as JSON")
    i.add_argument("checkpoint")
    i.set_defaults(func=cmd_info)

    e = sub.add_parser("evaluate", help="print a checkpoint's sample-quality metrics as JSON "
                                        "(classifier-FID, KID, IS, coverage, precision/recall, ELBO...)")
    e.add_argument("checkpoint")
    e.add_argument("--n", type=int, default=5000, help="samples to draw (default 5000)")
    e.add_argument("--dataset", default=None, choices=list(DATASETS), help="default: the checkpoint card's")
    e.add_argument("--data-dir", default=None)
    e.set_defaults(func=cmd_evaluate)

    c = sub.add_parser("compare", help="evaluate several checkpoints into one table (.csv or .json)")
    c.add_argument("checkpoints", nargs="+")
    c.add_argument("--n", type=int, default=5000)
    c.add_argument("--dataset", default=None, choices=list(DATASETS), help="default: each card's")
    c.add_argument("--data-dir", default=None)
    c.add_argument("--out", required=True, help="table.csv or table.json")
    c.set_defaults(func=cmd_compare)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)   # bad syntax: _Parser.error prints one line and exits 2
    args.argv = argv
    if args.command == "train":
        if args.steps is None and args.epochs is None:
            args.steps = 1000
        if (args.steps is not None and args.steps < 1) or (args.epochs is not None and not args.epochs > 0):
            parser.error("--steps / --epochs must be positive")
        if args.batch_size < 1:
            parser.error("--batch-size must be >= 1")
    try:
        if args.command == "train":
            for flag in ("--steps", "--epochs", "--batch-size", "--seed", "--threads", "--log-every",
                         "--sample-every"):
                _bounded(flag, getattr(args, flag[2:].replace("-", "_")))
        return args.func(args)
    except (UsageError, ValueError, DataNotFoundError, CheckpointError, OSError) as e:
        print(f"error: {_one_line(e)}", file=sys.stderr)
        return 2
    except MemoryError:
        print("error: out of memory (try a smaller --n or --batch-size)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a bug, not a user error: still one line unless debugging
        if os.environ.get("GENLIB_DEBUG"):
            raise
        print(f"error: internal {type(e).__name__}: {_one_line(e)} (set GENLIB_DEBUG=1 for the traceback)",
              file=sys.stderr)
        return 3


def _one_line(e: BaseException) -> str:
    """An exception's message on one line, at most 400 characters (the missing-data message keeps its
    lines on where to put the files)."""
    text = str(e) if not isinstance(e, OSError) or not e.strerror else \
        f"{e.filename + ': ' if e.filename else ''}{e.strerror}"
    if isinstance(e, DataNotFoundError):
        return text
    text = " ".join(text.split()) or type(e).__name__
    return text if len(text) <= 400 else text[:399] + "\u2026"
