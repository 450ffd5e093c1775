"""Which models a page may use: the sidebar's choice (device, dataset, model) as a ``Context``, and
the models that fit a dataset (pretrained, this session's finished runs, its uploads)."""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import streamlit as st
import torch

import genlib
from genlib.checkpoint import Checkpoint, model_card

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

    @property
    def label(self) -> str:
        return f"{self.name} ({self.source})"

    @classmethod
    def from_checkpoint(cls, name: str, source: str, ckpt: Checkpoint) -> "ModelEntry":
        return cls(name, source, ckpt.model, ckpt.card, ckpt.samples, preset=str(ckpt.card.get("preset", "")))

    @classmethod
    def from_run(cls, run: session.Run) -> "ModelEntry | None":
        """A session run's frozen CPU copy; None while its thread is training it."""
        model = run.frozen_model()
        if model is None:
            return None
        card = model_card(model, run.trainer, preset=run.preset)
        return cls(run.name, "session", model, card, run.snapshot().samples, preset=run.preset)


def matches_dataset(card: dict[str, Any], model: genlib.GenerativeModel, data: genlib.Dataset) -> bool:
    """A model fits a dataset when its card names it, or (no name) when the shapes agree."""
    if card.get("dataset"):
        return card["dataset"] == data.name and tuple(model.config.data_shape) == data.shape
    return tuple(model.config.data_shape) == data.shape


def available_models(data: genlib.Dataset) -> list[ModelEntry]:
    """Pretrained models for ``data``, then this session's finished runs, then its uploads."""
    out = [ModelEntry.from_checkpoint(name, "pretrained", c)
           for name, c in resources.pretrained_checkpoints(data.name).items()
           if isinstance(c, Checkpoint) and matches_dataset(c.card, c.model, data)]
    runs = session.session_runs()
    for run in runs.runs.values():
        entry = ModelEntry.from_run(run) if run.dataset == data.name else None
        if entry is not None:
            out.append(entry)
    for name, ckpt in runs.uploads.values():
        if matches_dataset(ckpt.card, ckpt.model, data):
            out.append(ModelEntry.from_checkpoint(name, "upload", ckpt))
    return out


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

    def models_where(self, pred: Callable[[ModelEntry], bool]) -> list[ModelEntry]:
        return [m for m in self.models if pred(m)]


def set_context(ctx: Context) -> None:
    st.session_state["genlib_ctx"] = ctx


def context() -> Context:
    ctx = st.session_state.get("genlib_ctx")
    if ctx is None:
        raise RuntimeError("open the dashboard with `streamlit run dashboard/app.py`, not a page file")
    return ctx
