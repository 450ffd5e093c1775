"""The sidebar: device, dataset (with its download button, or the user's .zip of images), checkpoint
uploads, the model picker and presentation mode. ``sidebar()`` stores the choice as the pages'
``context.Context``.

The view is in the URL: ``?dataset=…&model=…&present=1`` (and ``sid``, ``session.session_id``; the
page is the path). The first run of a browser session reads them (a link or a reload opens that
view); every run writes them back. Other parameters (``lesson``) are left as they are."""
from __future__ import annotations

from typing import Any

import streamlit as st

import genlib

from . import context, resources, session


def model_picker(entries: list[context.ModelEntry], key: str, where: Any = st.sidebar
                 ) -> tuple[str | None, context.ModelEntry | None]:
    """Choose one of ``entries``; returns (label, entry), or (None, None) when there are none.
    ``key`` names what the options belong to (``context.model_key(dataset)``)."""
    if not entries:
        where.caption("No model for this dataset yet: train one on the **Train live** page.")
        return None, None
    labels = [e.label for e in entries]
    if st.session_state.get(key) not in labels:
        st.session_state.pop(key, None)     # a model that went away (none of this dataset's): the first
    label = where.selectbox("Model", labels, key=key, help="Pretrained models, models trained in this "
                            "session (once finished or stopped) and uploaded checkpoints for this dataset.")
    return label, entries[labels.index(label)]


def _folder() -> genlib.Dataset | None:
    """The user's own images: a .zip uploaded in the sidebar, read into this session only."""
    sb = st.sidebar
    f = sb.file_uploader("Your images (.zip)", type=["zip"], key="folder_zip",
                         max_upload_size=session.FOLDER_LIMIT_MB,
                         help="A .zip with one subfolder per class (cats/…, dogs/…), or just images. "
                              f"Resized to {session.FOLDER_SIZE}×{session.FOLDER_SIZE}; read in memory, "
                              "never extracted. Kept for this browser session only.")
    rgb = sb.toggle("Colour (RGB)", False, key="folder_rgb",
                    help="Off: grey images (1 channel). On: RGB (3 channels, larger models).")
    held = session.folder_upload()
    name, raw = (f.name, f.getvalue()) if f is not None else (held[:2] if held else (None, None))
    if raw is None:
        sb.info(f"Upload a .zip of your images (up to {session.FOLDER_LIMIT_MB} MB): one subfolder per "
                "class, or all in one folder. PNG, JPEG, …; other files are skipped.")
        return None
    try:
        return session.add_folder_upload(name, raw, channels=3 if rgb else 1)
    except ValueError as e:
        sb.error(str(e))
        return None


def _dataset(name: str) -> genlib.Dataset | None:
    """Load through the shared cache; a missing dataset shows what to do, and a download button."""
    if name == "folder":
        return _folder()
    try:
        return context.dataset(name)
    except genlib.DataNotFoundError as e:          # its text names folders: the server log, not the sidebar
        session.log.info("dataset %s not loaded: %s", name, e)
        st.sidebar.error(f"The {name} files are not on this machine. Download them (below), or ask whoever "
                         "runs the lab to put them in the shared data folder (README, install).")
    if st.sidebar.button(f"Download {name} (needs internet)", key="download_data"):
        bar = st.sidebar.progress(0.0, text="Starting download…")

        def report(done: int, total: int | None, message: str) -> None:
            frac = min(1.0, done / total) if total else 0.0
            bar.progress(frac, text=f"{message.rsplit('/', 1)[-1]}: {done / 2**20:.1f} MB")

        try:
            data = resources.download_data(name, report)
            bar.empty()
            return data
        except (genlib.DataNotFoundError, OSError) as e:
            st.sidebar.error(f"Download failed: {e}")
    return None


def _upload() -> None:
    f = st.sidebar.file_uploader("Upload a checkpoint (.pt)", type=["pt"], key="upload",
                                 max_upload_size=session.UPLOAD_LIMIT_MB,
                                 help="A file saved by genlib (the Train page's download, or "
                                      "`python -m genlib train --out`). Loaded with weights_only=True: "
                                      "nothing in it can run code.")
    if f is None:
        return
    try:
        ckpt = session.add_upload(f.name, f.getvalue())
    except genlib.CheckpointError as e:
        st.sidebar.error(str(e))
        return
    data_name = ckpt.card.get("dataset", "?")
    if ckpt.card.get("dataset") != st.session_state.get("dataset") and data_name != "?":
        st.sidebar.warning(f"{f.name} was trained on **{data_name}**; pick that dataset to use it.")


DATASET_LABELS = {n: n for n in genlib.DATASETS} | {"folder": "your images (.zip)"}


def sidebar() -> context.Context:
    """Device, dataset, uploads and the model picker; stores the choice for the pages."""
    sb = st.sidebar
    devices = genlib.available_devices()
    device = sb.selectbox("Device", devices, key="device",
                          help="Where training runs (only devices this machine has). Pages sample on the CPU.")
    names = list(genlib.DATASETS)
    _read_url()
    dataset = sb.selectbox("Dataset", names, key="dataset", format_func=DATASET_LABELS.get, help="\n\n".join(
        f"**{DATASET_LABELS[n]}**: {genlib.DATASETS[n]}" for n in names))
    data = _dataset(dataset)
    if data is not None and dataset == "folder":
        skipped = data.skipped
        sb.caption(f"{len(data):,} images in {data.num_classes} classes ({', '.join(data.class_names[:10])}"
                   f"{', …' if data.num_classes > 10 else ''}), resized to {tuple(data.shape)}."
                   + (f" {skipped:,} files skipped: not images or unsafe paths." if skipped else ""))
    elif data is not None:
        kind = "images" if data.is_image else "points"
        sb.caption(f"{len(data):,} {kind} of shape {tuple(data.shape)}, {data.num_classes} classes "
                   f"({data.split} split).")
    _upload()
    models = context.available_models(dataset, data)
    if data is None and models:
        sb.caption("Its pretrained models still draw samples here; pages that need the images say so.")
    key = context.model_key(dataset)
    asked = st.session_state.pop("genlib_url_model", None)          # from the URL, once
    if asked:
        st.session_state[key] = next((e.label for e in models if e.name == asked or e.label == asked),
                                     st.session_state.get(key))
    _, entry = model_picker(models, key)
    present = sb.toggle("Presentation mode", key="present", help="For a projector: large image grids and type, "
                        "tables that fit the width. Also `?present=1` in the URL.")
    _write_url(dataset, entry, present)
    ctx = context.Context(device=device, dataset=dataset, data=data, models=models, model=entry, present=present)
    context.set_context(ctx)
    return ctx


TRUE = ("1", "true", "yes", "on")


def _read_url() -> None:
    """Once per browser session: dataset, model and presentation mode from the URL, else defaults
    (MNIST when its files are here, ``context.default_dataset``)."""
    if st.session_state.get("genlib_url_read"):
        return
    st.session_state["genlib_url_read"] = True
    q = st.query_params
    asked = q.get("dataset", "")
    st.session_state["dataset"] = asked if asked in genlib.DATASETS else context.default_dataset()
    if q.get("model"):
        st.session_state["genlib_url_model"] = q["model"]
    st.session_state["present"] = q.get("present", "").lower() in TRUE


def _write_url(dataset: str, entry: context.ModelEntry | None, present: bool) -> None:
    """The view into the URL (only what changed: each write is a message to the browser)."""
    q = st.query_params
    want = {"dataset": dataset, "model": entry.name if entry is not None else None, "present": "1" if present else None}
    for k, v in want.items():
        if v is None and k in q:
            del q[k]
        elif v is not None and q.get(k) != v:
            q[k] = v
