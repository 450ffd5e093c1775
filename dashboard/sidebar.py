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

from genlib.checkpoint import card_text

from . import context, resources, session, ui


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
    f = sb.file_uploader("Your images (.zip)", type=["zip"], key=_uploader_key("folder_zip"),
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
    drop = _remover("folder_zip", lambda: session.session_runs().state.pop("folder", None))
    with ui.boundary(f"Reading {name}", sb, remove=drop, remove_key="folder_zip_remove"):
        try:
            return session.add_folder_upload(name, raw, channels=3 if rgb else 1)
        except ValueError as e:                     # genlib's guards: why, in one line
            sb.error(ui.plain(e, 400))
            sb.button("Remove", key="folder_zip_remove", on_click=drop, help="Let this upload go.")
    return None


def _uploader_key(base: str) -> str:
    """A file box's key: a new one after its Remove (Streamlit cannot empty a file box otherwise)."""
    n = st.session_state.get(f"genlib_gen_{base}", 0)
    return base if not n else f"{base}#{n}"


def _remover(base: str, forget: Any = None):
    """The on_click of an upload's Remove: a fresh, empty file box, and ``forget()`` what it held."""
    def remove() -> None:
        st.session_state[f"genlib_gen_{base}"] = st.session_state.get(f"genlib_gen_{base}", 0) + 1
        if forget is not None:
            forget()
    return remove


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
    f = st.sidebar.file_uploader("Upload a checkpoint (.pt)", type=["pt"], key=_uploader_key("upload"),
                                 max_upload_size=session.UPLOAD_LIMIT_MB,
                                 help="A file saved by genlib (the Train page's download, or "
                                      "`python -m genlib train --out`). Loaded with weights_only=True: "
                                      "nothing in it can run code.")
    if f is None:
        return
    sb, drop = st.sidebar, _remover("upload")
    with ui.boundary(f"Loading {f.name}", sb, remove=drop, remove_key="upload_remove"):
        try:
            ckpt, note = session.add_upload(f.name, f.getvalue())
        except (genlib.CheckpointError, session.LimitError) as e:
            sb.error(ui.plain(e, 400))
            sb.button("Remove", key="upload_remove", on_click=drop, help="Empty the file box.")
            return
        if note:
            sb.info(ui.plain(note, 400))
        data_name = ckpt.card.get("dataset")
        if isinstance(data_name, str) and data_name and data_name != st.session_state.get("dataset"):
            sb.warning(f"{ui.plain(f.name)} was trained on {ui.plain(data_name, 40)}; pick that dataset to use it.")


def _uploads_kept() -> None:
    """This session's uploaded checkpoints, each with a Remove (they count against its limits)."""
    uploads = session.session_runs().uploads
    if not uploads:
        return
    with st.sidebar.expander(f"Uploaded checkpoints ({len(uploads)} of at most {session.MAX_UPLOADS})"):
        for key, (file_name, ckpt) in list(uploads.items()):
            c = st.columns([3, 1])
            c[0].text(f"{file_name[:60]} · {session.checkpoint_bytes_held(ckpt) / 2**20:,.1f} MB")
            c[1].button("Remove", key=f"upload_drop_{key[:16]}", on_click=session.remove_upload, args=(key,))


DATASET_LABELS = {n: n for n in genlib.DATASETS} | {"folder": "your images (.zip)"}


def sidebar() -> context.Context:
    """Device, dataset, uploads and the model picker; stores the choice for the pages."""
    sb = st.sidebar
    devices = genlib.available_devices()
    device = sb.selectbox("Device", devices, key="device",
                          help="Where training runs (only devices this machine has). Pages sample on the CPU.")
    names = list(genlib.DATASETS)
    dataset = st.session_state.get("dataset") if st.session_state.get("dataset") in names else "digits"
    data, models, entry = None, [], None
    # one error boundary per widget (ui.boundary): a failure is a line on that widget, the rest works
    with ui.boundary("The dataset picker", sb):
        _read_url()
        dataset = sb.selectbox("Dataset", names, key="dataset", format_func=DATASET_LABELS.get, help="\n\n".join(
            f"**{DATASET_LABELS[n]}**: {genlib.DATASETS[n]}" for n in names))
    with ui.boundary(f"Loading {dataset}", sb):
        data = _dataset(dataset)
        if data is not None and dataset == "folder":
            skipped = data.skipped
            shown = ", ".join(ui.plain(c, 30) for c in data.class_names[:10])      # folder names from the zip
            sb.caption(f"{len(data):,} images in {data.num_classes} classes ({shown}"
                       f"{', …' if data.num_classes > 10 else ''}), resized to {tuple(data.shape)}."
                       + (f" {skipped:,} files skipped: not images or unsafe paths." if skipped else ""))
        elif data is not None:
            kind = "images" if data.is_image else "points"
            sb.caption(f"{len(data):,} {kind} of shape {tuple(data.shape)}, {data.num_classes} classes "
                       f"({data.split} split).")
    with ui.boundary("The checkpoint upload", sb):
        _upload()
    unfit: list[tuple[str, str]] = []
    uploads = session.session_runs().uploads
    with ui.boundary("The model list", sb, remove=uploads.clear if uploads else None, remove_key="models_remove"):
        models = context.available_models(dataset, data, unfit)
        if data is None and models:
            sb.caption("Its pretrained models still draw samples here; pages that need the images say so.")
        key = context.model_key(dataset)
        asked = st.session_state.pop("genlib_url_model", None)          # from the URL, once
        if asked:
            st.session_state[key] = next((e.label for e in models if e.name == asked or e.label == asked),
                                         st.session_state.get(key))
        _, entry = model_picker(models, key)
        if unfit:
            with sb.expander(f"Not offered here ({len(unfit)})"):
                st.text("\n".join(f"{label[:60]}: {why[:200]}" for label, why in unfit))
        if entry is not None:
            for w in entry.warnings:
                sb.warning(ui.plain(w, 300))
            with sb.expander("Model card"):
                st.code(card_text(entry.card), language=None)
        _uploads_kept()
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
