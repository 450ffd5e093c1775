"""One checkpoint format for every family: config, weights, optimiser state, history, samples, card.

Files are written with ``files.atomic_save`` and read with ``files.read_versioned``
(``torch.load(weights_only=True)``, which only rebuilds tensors and plain containers: a file crafted
to run code on load is refused; the archive and the loaded payload are bounded there). Everything
else that can be wrong with a file (size, truncation, another format, a config or weights that do not
fit) becomes a ``CheckpointError`` with a one-line reason.

Loading validates before it allocates, in this order: the config (types, ranges, and the ceilings
below on the data shape, classes, latent size and layers); the declared network, built on the
``meta`` device (no memory, no initialisation) and counted against ``MAX_PARAMETERS`` per network;
every stored weight against that network's names, shapes and kinds, and for NaN / Inf; the
optimiser state against the parameters' shapes. Only then is the real model built, so its size is
bounded by the weights the file really holds. The card is read as plain bounded data with its known
fields type-checked (``read_card``), and the sample grids, fixed noise and labels against the
config. ``fits_dataset`` says whether a model can be used on a dataset; ``card_text`` renders a
card as plain bounded text (never markdown).
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import math
import os
import platform
import unicodedata
from typing import Any, BinaryIO

import torch

from .files import (MAX_BYTES, FileFormatError, PlainDataError, Source, atomic_save, count_nonfinite, plain_data,
                    read_versioned, source_name, state_dict_problem)
from .models import FAMILIES, BaseConfig, GenerativeModel, build_model, config_class
from .train.history import RECORDED_POINTS, RecordedRun

FORMAT = "genlib-checkpoint"
VERSION = 1

# Ceilings on what a checkpoint may declare, checked before anything is built. The lab's data are at
# most 3 x 128 x 128 (image folders, genlib.data.folder) and 2-D points; the largest shipped network
# has 0.55 M parameters; the MLP GAN preset on 3 x 128 x 128 folders has 25.4 M in its generator. A
# network over MAX_PARAMETERS (200 MB of float32) is refused even when the file holds its weights.
MAX_PARAMETERS = 50_000_000   # per network (generator, discriminator, encoder, decoder)
MAX_CHANNELS = 4
MAX_SIDE = 256                # image height and width
MAX_POINT_DIM = 1024          # (D,) data
MAX_CLASSES = 1000            # genlib.data.folder's class-folder limit
MAX_LATENT = 4096             # or the data's size, where larger (flow models: z has the data's shape)
MAX_LAYERS = 16               # entries of 'hidden'
MAX_GRID = 1024               # images in one stored sample grid / fixed noise batch
MAX_GRIDS = 1000              # stored sample grids
MAX_CURVE_POINTS = 10_000     # points per stored loss / metric curve


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
    # notes on what loading had to change (e.g. a card field of the wrong type dropped); shown beside the card
    warnings: list[str] = dataclasses.field(default_factory=list)


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


# --- what a config may declare ------------------------------------------------------------------

def config_problem(config: BaseConfig) -> str | None:
    """None when ``config`` stays under this module's ceilings on data shape, classes, latent size
    and layers (cheap: no module is built); else the first rule it breaks."""
    shape = tuple(config.data_shape)
    if len(shape) == 3:
        c, h, w = shape
        if c > MAX_CHANNELS or h > MAX_SIDE or w > MAX_SIDE:
            return f"data_shape {shape} is over the ceiling ({MAX_CHANNELS} channels, {MAX_SIDE} pixels a side)"
    elif shape[0] > MAX_POINT_DIM:
        return f"data_shape {shape} is over the ceiling of {MAX_POINT_DIM} dimensions"
    if config.num_classes > MAX_CLASSES:
        return f"num_classes={config.num_classes} is over the ceiling of {MAX_CLASSES}"
    latent_max = max(MAX_LATENT, math.prod(shape))     # a flow's latent is the data itself
    if config.latent_dim > latent_max:
        return f"latent_dim={config.latent_dim} is over the ceiling of {latent_max} for data of {shape}"
    if len(config.hidden) > MAX_LAYERS:
        return f"hidden has {len(config.hidden)} layers, over the ceiling of {MAX_LAYERS}"
    return None


def meta_model(family: str, config: BaseConfig) -> GenerativeModel:
    """The model ``config`` declares, built on the meta device: shapes and counts, no memory and no
    initialisation (milliseconds whatever the sizes). Raises ValueError naming the ceiling broken."""
    problem = config_problem(config)
    if problem:
        raise ValueError(problem)
    try:
        with torch.device("meta"):
            model = FAMILIES[family](config)
    except (RuntimeError, ValueError, TypeError, OverflowError, MemoryError) as e:
        raise ValueError(f"the declared network cannot be built ({type(e).__name__}: {str(e)[:100]})") from None
    sizes = model.network_sizes()
    big = {k: v for k, v in sizes.items() if v > MAX_PARAMETERS}
    if big:
        k, v = next(iter(big.items()))
        raise ValueError(f"the declared {k} has {v:,} parameters, over the ceiling of {MAX_PARAMETERS:,} per network")
    return model


def network_problem(family: str, config: BaseConfig) -> str | None:
    """None when ``config``'s networks stay under the ceilings (checked on the meta device); else why.
    The CLI and the dashboard ask before training, so nothing is trained that could not be loaded."""
    try:
        meta_model(family, config)
    except ValueError as e:
        return str(e)
    return None


def _check_weights(name: str, meta: GenerativeModel, weights: Any) -> None:
    """Stored weights against the declared network (``files.state_dict_problem``); nothing is
    allocated beyond what the file already holds."""
    problem = state_dict_problem(meta, weights)
    if problem:
        raise CheckpointError(f"{name}: {problem}")


def _check_optimizers(name: str, meta: GenerativeModel, saved: Any) -> None:
    """Optimiser state: per parameter, tensors that are scalars or of that parameter's shape, finite."""
    if not isinstance(saved, dict):
        raise CheckpointError(f"{name}: weights do not match the config (optimiser state is not a dict)")
    for key, opt in meta.optimizers().items():
        state = saved.get(key)
        if state is None:
            continue
        if not isinstance(state, dict) or not isinstance(state.get("state", {}), dict) \
                or not isinstance(state.get("param_groups"), list):
            raise CheckpointError(f"{name}: weights do not match the config (optimiser {key} state is malformed)")
        shapes = [tuple(p.shape) for g in opt.param_groups for p in g["params"]]
        for idx, entry in state.get("state", {}).items():
            if not isinstance(idx, int) or not 0 <= idx < len(shapes) or not isinstance(entry, dict):
                raise CheckpointError(f"{name}: weights do not match the config "
                                      f"(optimiser {key}: bad entry {str(idx)[:40]!r})")
            for field, t in entry.items():
                if isinstance(t, torch.Tensor):
                    if t.numel() > 1 and tuple(t.shape) != shapes[idx]:
                        raise CheckpointError(f"{name}: weights do not match the config (optimiser {key} {field} "
                                              f"of shape {tuple(t.shape)[:6]} for a parameter of {shapes[idx]})"[:250])
                    if count_nonfinite(t):
                        raise CheckpointError(f"{name}: refused: non-finite optimiser state ({key} {field})")


# --- the card, and the other plain data ---------------------------------------------------------

# Known card fields and their kinds. Anything else on a card is free plain data (bounded).
CARD_FIELDS: dict[str, str] = {
    "family": "text", "steps": "int", "parameters": "dict", "torch": "text", "python": "text", "created": "text",
    "dataset": "text", "split": "text", "images": "int", "data_note": "text", "epochs": "number",
    "wall_time_s": "number", "device": "text", "seed": "int", "batch_size": "int", "preset": "text",
    "command": "text", "name": "text", "description": "text", "run_name": "text", "page": "text",
    "recipe": "dict", "threads": "int", "metrics": "dict", "weights_dtype": "text",
}
_KIND_OK = {
    "text": lambda v: isinstance(v, str),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "dict": lambda v: isinstance(v, dict),
}
_KIND_NAME = {"text": "text", "int": "an integer", "number": "a number", "dict": "a dict"}
MAX_CARD_CHARS = 64 * 2**10
MAX_CARD_DEPTH = 8
MAX_CARD_VALUES = 20_000


def read_card(raw: Any) -> tuple[dict[str, Any], list[str]]:
    """(card, notes): ``raw`` as plain bounded data (``files.plain_data``: text, numbers, lists,
    dicts with text keys; depth <= 8, <= 20,000 values, <= 64 kB of text), with each known field
    (``CARD_FIELDS``) of its kind. A known field of the wrong kind is dropped, with a note saying so;
    anything that is not plain or bounded raises ``PlainDataError``."""
    if raw is None:
        return {}, []
    if not isinstance(raw, dict):
        raise PlainDataError(f"the card is a {type(raw).__name__}, not a dict")
    card = plain_data(raw, what="card", max_depth=MAX_CARD_DEPTH, max_nodes=MAX_CARD_VALUES, max_chars=MAX_CARD_CHARS)
    notes = []
    for key, kind in CARD_FIELDS.items():
        if key in card and not _KIND_OK[kind](card[key]):
            notes.append(f"card field {key!r} was {type(card.pop(key)).__name__}, not {_KIND_NAME[kind]}: dropped")
    params = card.get("parameters")
    if isinstance(params, dict) and not all(_KIND_OK["int"](v) for v in params.values()):
        card.pop("parameters")
        notes.append("card field 'parameters' held values that are not integers: dropped")
    return card, notes


def _numbers_dict(name: str, what: str, raw: Any) -> dict[str, list[float]]:
    """A {name: [numbers]} dict (loss and metric curves), each list bounded."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise CheckpointError(f"{name}: malformed checkpoint ({what} is a {type(raw).__name__}, not a dict)")
    out = {}
    for k, v in raw.items():
        if not isinstance(k, str) or not isinstance(v, (list, tuple)) or len(v) > MAX_CURVE_POINTS \
                or not all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in v):
            raise CheckpointError(f"{name}: malformed checkpoint ({what}[{str(k)[:40]!r}] is not a list of at most "
                                  f"{MAX_CURVE_POINTS:,} numbers)")
        out[k] = list(v)
    return out


def _grid_shape_ok(x: torch.Tensor, config: BaseConfig) -> bool:
    if x.dim() < 1 or not 0 < x.shape[0] <= MAX_GRID or tuple(x.shape[1:]) != tuple(config.data_shape):
        return False
    return x.dtype == torch.uint8 if config.is_image else x.dtype.is_floating_point and not count_nonfinite(x)


def _check_samples(name: str, payload: dict[str, Any], config: BaseConfig) -> list[tuple[int, torch.Tensor]]:
    raw = payload.get("samples") or []
    if not isinstance(raw, list) or len(raw) > MAX_GRIDS:
        raise CheckpointError(f"{name}: malformed checkpoint (samples: not a list of at most {MAX_GRIDS} grids)")
    want = "uint8 images" if config.is_image else "finite points"
    out = []
    for s in raw:
        if not isinstance(s, dict) or not isinstance(s.get("images"), torch.Tensor):
            raise CheckpointError(f"{name}: malformed checkpoint (samples are not tensors)")
        step = s.get("step")
        if not isinstance(step, int) or isinstance(step, bool) or step < 0:
            raise CheckpointError(f"{name}: malformed checkpoint (a sample grid's step is not a count)")
        x = s["images"]
        if not _grid_shape_ok(x, config):
            raise CheckpointError(f"{name}: malformed checkpoint (a sample grid of {tuple(x.shape)[:6]} {x.dtype}; "
                                  f"expected 1-{MAX_GRID} {want} of shape {tuple(config.data_shape)})")
        out.append((step, x))
    return out


def _check_fixed(name: str, payload: dict[str, Any], config: BaseConfig) -> tuple[Any, Any]:
    z, y = payload.get("fixed_z"), payload.get("fixed_labels")
    if z is not None:
        if not isinstance(z, torch.Tensor) or z.dim() != 2 or not 0 < z.shape[0] <= MAX_GRID \
                or z.shape[1] != config.latent_dim or not z.dtype.is_floating_point or count_nonfinite(z):
            raise CheckpointError(f"{name}: malformed checkpoint (fixed_z is not 1-{MAX_GRID} finite latent codes of "
                                  f"size {config.latent_dim})")
    if y is not None:
        n = None if z is None else z.shape[0]
        if not isinstance(y, torch.Tensor) or y.dim() != 1 or y.dtype.is_floating_point or y.dtype == torch.bool \
                or (n is not None and y.shape[0] != n) or y.numel() > MAX_GRID \
                or (y.numel() and (int(y.min()) < 0 or int(y.max()) >= max(1, config.num_classes))):
            raise CheckpointError(f"{name}: malformed checkpoint (fixed_labels are not one class in "
                                  f"0..{config.num_classes - 1} per fixed code)")
    return z, y


def load_checkpoint(source: Source, *, device: str | torch.device = "cpu", max_bytes: int = MAX_BYTES) -> Checkpoint:
    """Load a checkpoint without executing anything it contains, validating everything it declares
    before allocating for it (see the module docstring); rebuild its model on ``device``."""
    payload = read_payload(source, max_bytes)
    name = source_name(source)
    family = payload.get("family")
    if not isinstance(family, str) or family not in FAMILIES:
        raise CheckpointError(f"{name}: unknown model family {str(family)[:40]!r}")
    raw_config = payload.get("config")
    if not isinstance(raw_config, dict) or not all(isinstance(k, str) for k in raw_config):
        raise CheckpointError(f"{name}: invalid {family} config: not a dict of settings")
    try:
        config = config_class(family).from_dict(dict(raw_config), require_all=True)
        meta = meta_model(family, config)
    except (TypeError, ValueError, OverflowError) as e:
        raise CheckpointError(f"{name}: invalid {family} config: {str(e)[:200]}") from None
    weights = meta.complete_state(payload.get("model"))      # e.g. a shipped GAN's live G, from its average
    _check_weights(name, meta, weights)
    _check_optimizers(name, meta, payload.get("optimizers") or {})
    samples = _check_samples(name, payload, config)
    fixed_z, fixed_labels = _check_fixed(name, payload, config)
    try:
        card, notes = read_card(payload.get("card"))
        train_config = plain_data(payload.get("train_config") or {}, what="train_config", max_depth=4,
                                  max_nodes=1000, max_chars=4096)
    except PlainDataError as e:
        raise CheckpointError(f"{name}: malformed checkpoint ({e})") from None
    if not isinstance(train_config, dict):
        raise CheckpointError(f"{name}: malformed checkpoint (train_config is not a dict)")
    history = _numbers_dict(name, "history", payload.get("history"))
    metrics = _numbers_dict(name, "metrics", payload.get("metrics"))
    steps = payload.get("steps", 0)
    if not isinstance(steps, int) or isinstance(steps, bool) or not 0 <= steps < 2**62:
        raise CheckpointError(f"{name}: malformed checkpoint (steps {str(steps)[:40]!r} is not a count)")
    if card.get("family", family) != family:
        notes.append(f"card field 'family' said {card['family'][:20]!r} for a {family}: replaced")
        card["family"] = family

    # everything checked: the real model's size is now bounded by the weights the file holds
    model = build_model(family, config)
    model.to(device)   # before the optimisers load, so their state lands on the same device
    try:
        model.load_state_dict(weights)
        optimizers = payload.get("optimizers") or {}
        for k, opt in model.optimizers().items():
            if k in optimizers:
                opt.load_state_dict(optimizers[k])
    except (KeyError, RuntimeError, ValueError, TypeError, AttributeError, IndexError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{name}: weights do not match the config ({first[:200]})") from None
    try:   # the rest is plain data, but a crafted file can still hold the wrong types
        model.steps = steps
        ckpt = Checkpoint(
            model=model, card=card, train_config=train_config, history=history, metrics=metrics,
            samples=samples, fixed_z=fixed_z, fixed_labels=fixed_labels,
            recorded_run=RecordedRun.from_payload(payload), warnings=notes)
    except (KeyError, ValueError, TypeError, AttributeError, OverflowError) as e:
        raise CheckpointError(f"{name}: malformed checkpoint ({type(e).__name__}: {str(e)[:120]})") from None
    model.eval()
    return ckpt


# --- for the pages that use a loaded model --------------------------------------------------------

def fits_dataset(ckpt: "Checkpoint | GenerativeModel", data, *, same_dataset: bool = True) -> str | None:
    """None when the model can be used on ``data`` (a genlib Dataset): the same sample shape, and for
    a conditional model the same number of classes; with ``same_dataset`` (a checkpoint) also the
    dataset its card names. Else one line saying why not, for the page to show instead of the model."""
    model = ckpt.model if isinstance(ckpt, Checkpoint) else ckpt
    card = ckpt.card if isinstance(ckpt, Checkpoint) else {}
    shape, want = tuple(model.config.data_shape), tuple(data.shape)
    if shape != want:
        what = "images" if len(shape) == 3 else "points"
        return f"it makes {what} of shape {shape}; {data.name} has {want}"
    if model.config.conditional and model.config.num_classes != data.num_classes:
        return f"it is conditional on {model.config.num_classes} classes; {data.name} has {data.num_classes}"
    trained_on = card.get("dataset")
    if same_dataset and isinstance(trained_on, str) and trained_on and trained_on != data.name:
        return f"it was trained on {trained_on[:40]}, not {data.name}"
    return None


def _plain_line(text: str, limit: int) -> str:
    """``text`` on one line: control and format characters (newlines, escapes, bidi overrides) shown
    as '?' (tabs as a space), cut at ``limit`` characters with an ellipsis."""
    out = []
    for ch in text[:limit + 1]:
        cat = unicodedata.category(ch)
        out.append(" " if ch == "\t" else "?" if cat in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp") else ch)
    s = "".join(out)
    return s if len(s) <= limit else s[:limit - 1] + "\u2026"


def card_text(card: dict[str, Any], *, max_chars: int = 8000, max_value: int = 300, indent: str = "  ") -> str:
    """A card as plain text, one 'key: value' line per field (nested dicts indented, lists inline),
    each value at most ``max_value`` characters and the whole at most ``max_chars``. Meant for
    ``st.text`` / ``st.code`` (never markdown: a card is written by whoever made the file)."""
    lines: list[str] = []
    budget = [max_chars]

    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.6g}" if math.isfinite(v) else str(v)
        if isinstance(v, (list, tuple)):
            parts, used = [], 0
            for a in v:
                if used > max_value:
                    parts.append("...")
                    break
                p = "{...}" if isinstance(a, dict) else "[...]" if isinstance(a, (list, tuple)) else fmt(a)
                parts.append(p)
                used += len(p) + 2
            return "[" + ", ".join(parts) + "]"
        if isinstance(v, dict):
            return "{...}"
        return str(v) if isinstance(v, (int, bool)) or v is None else str(v)

    def add(key: str, v: Any, depth: int) -> bool:
        pad = indent * depth
        if isinstance(v, dict) and depth < 3:
            line = f"{pad}{_plain_line(key, 60)}:"
        else:
            line = f"{pad}{_plain_line(key, 60)}: {_plain_line(fmt(v), max_value)}"
        budget[0] -= len(line) + 1
        if budget[0] < 0:
            lines.append("...")
            return False
        lines.append(line)
        if isinstance(v, dict) and depth < 3:
            for k, w in v.items():
                if not add(str(k), w, depth + 1):
                    return False
        return True

    for k, v in card.items():
        if not add(str(k), v, 0):
            break
    return "\n".join(lines)
