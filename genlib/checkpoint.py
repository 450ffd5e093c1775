"""One checkpoint format for every family: config, weights, optimiser state, history, samples, card.

Files are written with ``files.atomic_save`` and read with ``files.read_versioned``
(``torch.load(weights_only=True)``, which only rebuilds tensors and plain containers: a file crafted
to run code on load is refused). Everything else that can be wrong with a file (size, truncation,
another format, a config or weights that do not fit) becomes a ``CheckpointError`` with a one-line
reason.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import os
import platform
from typing import Any, BinaryIO

import torch

from .files import MAX_BYTES, FileFormatError, Source, atomic_save, read_versioned, source_name
from .models import FAMILIES, GenerativeModel, build_model
from .train.history import RECORDED_POINTS, RecordedRun

FORMAT = "genlib-checkpoint"
VERSION = 1


class CheckpointError(FileFormatError):
    """A file that is not a usable genlib checkpoint; the message says why in one line."""


@dataclasses.dataclass
class Checkpoint:
    model: GenerativeModel
    card: dict[str, Any]
    train_config: dict[str, Any]
    history: dict[str, list[float]]
    metrics: dict[str, list[float]]
    samples: list[tuple[int, torch.Tensor]]   # (step, uint8 fixed-noise grid) along training
    fixed_z: torch.Tensor | None = None
    fixed_labels: torch.Tensor | None = None
    # the training run as recorded (curves with step and seconds axes, gradient norms, live metric,
    # grids); None for checkpoints saved without a trainer or before recorded runs existed
    recorded_run: RecordedRun | None = None


def model_card(model: GenerativeModel, trainer=None, **extra: Any) -> dict[str, Any]:
    """What a reader needs to trust a checkpoint: data, steps, time, device, versions, sizes."""
    card: dict[str, Any] = {
        "family": model.family,
        "steps": model.steps,
        "parameters": model.network_sizes(),
        "torch": str(torch.__version__),
        "python": platform.python_version(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    if trainer is not None:
        d = trainer.data
        card.update(dataset=d.name, split=d.split, images=len(d), data_note=d.note,
                    epochs=round(trainer.epoch, 3), wall_time_s=round(trainer.elapsed, 2),
                    device=str(trainer.device), seed=trainer.config.seed,
                    batch_size=trainer.config.batch_size)
    card.update(extra)
    return card


def save_checkpoint(path: str | os.PathLike | BinaryIO, model: GenerativeModel, trainer=None, *,
                    optimizer_state: bool = True, **card: Any) -> None:
    """Save ``model`` (and, when given, the trainer's run: ``Trainer.recorded_run`` with at most
    ``RECORDED_POINTS`` points per curve, stored as the 'history', 'metrics' and 'samples' it has
    always had, plus a 'recorded_run' dict of time axes and totals; see ``RecordedRun.to_payload``).

    ``optimizer_state=False`` leaves out the optimisers' moments (Adam doubles a file's size): the
    model then samples the same but resumes training with fresh optimisers (shipped pretrained files).
    """
    model.prepare_sampling()   # save what sampling will use
    payload: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "family": model.family,
        "config": model.config.to_dict(),
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizers": {k: o.state_dict() for k, o in model.optimizers().items()} if optimizer_state else {},
        "steps": model.steps,
        "card": model_card(model, trainer, **card),
        "train_config": {}, "history": {}, "metrics": {}, "samples": [],
    }
    if trainer is not None:
        run = trainer.recorded_run(max_points=RECORDED_POINTS)
        payload.update(
            train_config=dataclasses.asdict(trainer.config), history=run.history(), metrics=run.metric_history(),
            samples=[{"step": s, "images": x} for s, x in run.samples], recorded_run=run.to_payload(),
            fixed_z=trainer.fixed_z.detach().cpu(),
            fixed_labels=None if trainer.fixed_labels is None else trainer.fixed_labels.cpu())
    if isinstance(path, (str, os.PathLike)):
        atomic_save(payload, path)
    else:
        torch.save(payload, path)


def read_payload(source: Source, max_bytes: int = MAX_BYTES) -> dict[str, Any]:
    """A checkpoint file's raw dict (weights as stored), read safely; for rewriting a card in place."""
    return read_versioned(source, FORMAT, VERSION, kind="checkpoint", max_bytes=max_bytes, error=CheckpointError)


def load_checkpoint(source: Source, *, device: str | torch.device = "cpu", max_bytes: int = MAX_BYTES) -> Checkpoint:
    """Load a checkpoint without executing anything it contains; rebuild its model on ``device``."""
    payload = read_payload(source, max_bytes)
    name = source_name(source)
    family = payload.get("family")
    if family not in FAMILIES:
        raise CheckpointError(f"{name}: unknown model family {family!r}")
    try:
        model = build_model(family, dict(payload.get("config") or {}), require_all=True)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{name}: invalid {family} config: {e}") from None
    model.to(device)   # before the optimisers load, so their state lands on the same device
    try:
        model.load_state_dict(payload["model"])
        optimizers = payload.get("optimizers") or {}
        for k, opt in model.optimizers().items():
            if k in optimizers:
                opt.load_state_dict(optimizers[k])
    except (KeyError, RuntimeError, ValueError, TypeError, AttributeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{name}: weights do not match the config ({first[:200]})") from None
    try:   # the rest is plain data, but a crafted file can still hold the wrong types
        model.steps = int(payload.get("steps", 0))
        ckpt = Checkpoint(
            model=model, card=dict(payload.get("card") or {}),
            train_config=dict(payload.get("train_config") or {}),
            history=dict(payload.get("history") or {}), metrics=dict(payload.get("metrics") or {}),
            samples=[(int(s["step"]), s["images"]) for s in payload.get("samples") or []],
            fixed_z=payload.get("fixed_z"), fixed_labels=payload.get("fixed_labels"),
            recorded_run=RecordedRun.from_payload(payload))
    except (KeyError, ValueError, TypeError, AttributeError) as e:
        raise CheckpointError(f"{name}: malformed checkpoint ({type(e).__name__}: {str(e)[:120]})") from None
    if not all(isinstance(x, torch.Tensor) for _, x in ckpt.samples):
        raise CheckpointError(f"{name}: malformed checkpoint (samples are not tensors)")
    model.eval()
    return ckpt
