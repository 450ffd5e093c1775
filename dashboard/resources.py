"""Everything the dashboard caches per process (``st.cache_resource``): datasets, their test splits
and the pretrained checkpoints. Shared read-only between sessions: training never touches them; a
session trains its own model (``dashboard.session``)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import streamlit as st

import genlib
from genlib.checkpoint import Checkpoint
from genlib.models import PRESETS
from genlib.pretrained import list_pretrained

PRETRAINED_ROOT: Path | None = None     # None: genlib's pretrained/ folder (tests point it elsewhere)


@st.cache_resource(show_spinner="Loading dataset…", max_entries=16)
def load_data(name: str) -> genlib.Dataset:
    """A dataset on the CPU, loaded once per process; never downloads (see ``download_data``)."""
    return genlib.load_dataset(name, download=False)


def download_data(name: str, progress: Callable[[int, int | None, str], None]) -> genlib.Dataset:
    """Fetch a missing dataset (needs internet), then load it through the cache."""
    genlib.load_dataset(name, download=True, progress=progress)
    load_data.clear()
    return load_data(name)


@st.cache_resource(show_spinner="Loading the test split…", max_entries=16)
def _test_split(name: str) -> genlib.Dataset | None:
    try:
        return genlib.load_dataset(name, split="test", download=False)
    except (genlib.DataNotFoundError, ValueError):
        return None


def held_out(data: genlib.Dataset) -> genlib.Dataset:
    """The test split of ``data``'s dataset when it is on disk (images no model trained on), else
    ``data`` itself; ``.split`` says which one a page got."""
    if data.split == "test" or not data.is_image:
        return data
    return _test_split(data.name) or data


@st.cache_resource(show_spinner="Loading pretrained model…", max_entries=64)
def _load_pretrained(path: str, mtime: float) -> Checkpoint:
    return genlib.load_checkpoint(path)


def pretrained_checkpoints(dataset: str) -> dict[str, Checkpoint | genlib.CheckpointError]:
    """The shipped models of ``dataset`` (``genlib.pretrained.list_pretrained``), by name, loaded
    once per file version; a file that fails to load maps to its error."""
    out: dict[str, Checkpoint | genlib.CheckpointError] = {}
    # By name, the flows last: the first is the sidebar's default model, and a flow samples with ~40
    # network calls per image (20 guided ODE steps), which made the Out-of-distribution page take 23 s
    # and Interpolate 12 s on MNIST when mnist-cflow came first (bench/latency.py); the cGAN: < 2 s.
    for entry in sorted(list_pretrained(dataset, root=PRETRAINED_ROOT),
                        key=lambda e: (PRESETS[e.preset].family == "flow" if e.preset in PRESETS else False, e.name)):
        try:
            out[entry.name] = _load_pretrained(str(entry.path), entry.path.stat().st_mtime)
        except genlib.CheckpointError as e:
            out[entry.name] = e
    return out
