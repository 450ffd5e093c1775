"""Which models a page may use: the sidebar's choice (device, dataset, model, presentation mode) as
a ``Context``, the models that fit a dataset (pretrained, this session's finished or saved runs, its
uploads), and the one rule for the sidebar's model box: its widget key names the dataset
(``model_key``), so switching the dataset shows that dataset's choice, never the last one's text;
pages change the choice with ``use_model``."""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import streamlit as st
import torch

import genlib
from genlib.checkpoint import Checkpoint, fits_dataset, model_card

from . import resources, session


@dataclasses.dataclass(eq=False)
class ModelEntry:
    """A model a page may sample from (never one a thread is training), with what is known of it."""

    name: str
    source: str                                   # 'pretrained', 'session' or 'upload'
    model: genlib.GenerativeModel
    card: dict[str, Any]
    samples: list[tuple[int, torch.Tensor]] = dataclasses.field(default_factory=list)
    preset: str = ""
    warnings: list[str] = dataclasses.field(default_factory=list)   # what loading its file changed (cards)

    @property
    def label(self) -> str:
        return f"{self.name} ({self.source})"

    @classmethod
    def from_checkpoint(cls, name: str, source: str, ckpt: Checkpoint) -> "ModelEntry":
        return cls(name, source, ckpt.model, ckpt.card, ckpt.samples, preset=str(ckpt.card.get("preset", "")),
                   warnings=list(ckpt.warnings))

    @classmethod
    def from_run(cls, run: session.Run) -> "ModelEntry | None":
        """A session run's frozen CPU copy; None while its thread is training it."""
        model = run.frozen_model()
        if model is None:
            return None
        card = model_card(model, run.trainer, preset=run.preset)
        return cls(run.name, "session", model, card, run.snapshot().samples, preset=run.preset)


def fit_problem(ckpt: Checkpoint | genlib.GenerativeModel, name: str, data: genlib.Dataset | None) -> str | None:
    """Why a model cannot be used on dataset ``name`` (``genlib.checkpoint.fits_dataset``: shape,
    channels, classes, the dataset its card names), or None. Without the data on disk, a checkpoint
    fits when its card names the dataset: a page that needs no data still draws from it."""
    if data is not None:
        return fits_dataset(ckpt, data)
    trained_on = ckpt.card.get("dataset") if isinstance(ckpt, Checkpoint) else None
    return None if trained_on == name else f"it was not trained on {name}"


def available_models(name: str, data: genlib.Dataset | None,
                     unfit: list[tuple[str, str]] | None = None) -> list[ModelEntry]:
    """Pretrained models for dataset ``name``, then this session's finished runs (and runs saved by
    an earlier visit with the same URL), then its uploads: only those that fit (``fit_problem``).
    ``unfit`` collects (label, why) of the others that belong here (this dataset's pretrained files
    that failed to load, runs of this dataset, every upload), for the sidebar to list."""
    unfit = [] if unfit is None else unfit

    def take(entry_name: str, source: str, ckpt: Checkpoint, out: list[ModelEntry], always: bool) -> None:
        why = fit_problem(ckpt, name, data)
        if why is None:
            out.append(ModelEntry.from_checkpoint(entry_name, source, ckpt))
        elif always:
            unfit.append((f"{entry_name} ({source})", why))

    out: list[ModelEntry] = []
    for n, c in resources.pretrained_checkpoints(name).items():
        if isinstance(c, Checkpoint):
            take(n, "pretrained", c, out, always=False)
        else:
            unfit.append((f"{n} (pretrained)", str(c)))
    runs = session.session_runs()
    for run_name, ckpt in runs.restored.items():
        if run_name not in runs.runs:
            take(run_name, "session", ckpt, out, always=ckpt.card.get("dataset") == name)
    for run in runs.runs.values():
        entry = ModelEntry.from_run(run) if run.dataset == name else None
        why = None if entry is None or data is None else fits_dataset(entry.model, data, same_dataset=False)
        if why is not None:                 # the same name with other data (a zip in colour, then grey)
            unfit.append((entry.label, why))
        elif entry is not None:
            out.append(entry)
    for file_name, ckpt in runs.uploads.values():
        take(file_name, "upload", ckpt, out, always=True)
    return out


def model_key(dataset: str) -> str:
    """The sidebar model box's widget key: one per dataset (its options and text are that dataset's)."""
    return f"model@{dataset}"


def use_model(label: str) -> None:
    """Make ``label`` the sidebar's model (a page's "use this model" button; call as on_click)."""
    st.session_state[model_key(st.session_state.get("dataset", ""))] = label


def dataset_on_disk(name: str) -> bool:
    """True when a split of file dataset ``name`` is in a searched data root (no file is read)."""
    from genlib.data import formats, search_roots

    files = {"mnist": formats.MNIST, "fashion-mnist": formats.FASHION_MNIST, "cifar10": formats.CIFAR10}.get(name)
    if files is None:
        return name in genlib.DATASETS and name != "folder"
    try:
        folders = [root / files.folder for root in search_roots()]
        return any(files.find(folders, split) is not None for split in files.files)
    except (OSError, ValueError):            # a data root that is a file, unreadable, ...: not here
        return False


DEFAULT_ORDER = ("mnist", "fashion-mnist", "digits")


def default_dataset() -> str:
    """MNIST when its files are here, then Fashion-MNIST, then the bundled digits (always there)."""
    return next(n for n in DEFAULT_ORDER if n == "digits" or dataset_on_disk(n))


def dataset(name: str) -> genlib.Dataset | None:
    """What a page trains on for the sidebar's dataset ``name``: this session's upload for 'folder'
    (None before one), else the shared cached copy (``resources.load_data``)."""
    if name == "folder":
        held = session.folder_upload()
        return held[2] if held else None
    return resources.load_data(name)


@dataclasses.dataclass(eq=False)
class Context:
    """What the sidebar chose, for the pages."""

    device: str
    dataset: str
    data: genlib.Dataset | None              # None when the dataset is missing (the sidebar says why)
    models: list[ModelEntry]                 # every model usable on this dataset
    model: ModelEntry | None                 # the one picked in the sidebar
    present: bool = False                    # presentation mode: large grids and type (sidebar, ?present=1)

    def models_where(self, pred: Callable[[ModelEntry], bool]) -> list[ModelEntry]:
        return [m for m in self.models if pred(m)]


def set_context(ctx: Context) -> None:
    st.session_state["genlib_ctx"] = ctx


def context() -> Context:
    ctx = st.session_state.get("genlib_ctx")
    if ctx is None:
        raise RuntimeError("open the dashboard with `streamlit run dashboard/app.py`, not a page file")
    return ctx
