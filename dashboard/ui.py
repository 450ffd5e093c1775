"""What every page starts with: the "what am I looking at" note, the guards that stop a page with a
pointer when its data or model is missing, a model's samples (``draw``), the training-history slider
and ``memo``, which keeps a live view from rebuilding what did not change."""
from __future__ import annotations

from typing import Any

import streamlit as st
import torch

import genlib
from genlib.sampling import prior_draw, to_uint8

from . import context, figures


def explain(markdown: str, title: str = "What am I looking at?") -> None:
    with st.expander(title):
        st.markdown(markdown)


def progress_text(snap: genlib.Snapshot) -> str:
    eta = f" · ETA {figures.fmt_duration(snap.eta)}" if snap.state == "running" else ""
    return (f"{snap.state} · step {snap.step:,} / {snap.total_steps:,} · epoch {snap.epoch:.1f} · "
            f"{snap.images_per_s:,.0f} examples/s{eta}")


def need_data(ctx: context.Context) -> genlib.Dataset:
    """The sidebar's dataset, or stop the page with a pointer to the sidebar."""
    if ctx.data is None and ctx.dataset == "folder":
        st.info("Upload a .zip of your images in the sidebar (one subfolder per class, or flat) to use them here.")
        st.stop()
    if ctx.data is None:
        st.info(f"The dataset **{ctx.dataset}** is not available here (the sidebar says why and what "
                "to do). Pick **digits** to continue offline.")
        st.stop()
    return ctx.data


def no_model_note(ctx: context.Context, what: str = "model") -> None:
    st.info(f"There is no {what} for **{ctx.dataset}** yet: train one on the **Train live** page (it "
            "joins the model picker when it finishes or is stopped), or upload a checkpoint in the sidebar.")
    st.page_link("app_pages/train.py", label="Go to Train live", icon=":material/model_training:")


def conditional_hint(ctx: context.Context) -> str:
    """Where to find a conditional model: the ones in the sidebar's picker, else the Train page."""
    others = [m.label for m in ctx.models_where(lambda m: m.model.config.conditional)]
    return (f"Pick a conditional model in the sidebar: {', '.join(others)}." if others
            else "Train a **cgan** or **cvae** on the Train page.")


def require_image_model(ctx: context.Context):
    """The picked model's entry, or a note and the end of the page when the data are not images or
    there is no model: the image pages' common preamble."""
    if ctx.data is None or not ctx.data.is_image:
        st.info("This page shows images: pick an image dataset in the sidebar (**digits** works offline).")
        st.stop()
    if ctx.model is None:
        no_model_note(ctx, "model")
        st.stop()
    return ctx.model


@torch.no_grad()
def draw(model: genlib.GenerativeModel, n: int, seed: int = 0, labels: torch.Tensor | None = None,
         z: torch.Tensor | None = None) -> torch.Tensor:
    """n samples on the CPU, uint8 images or float (n, 2) points, from ``z`` (n, D) or else from
    z ~ N(0, I) drawn with ``seed`` (``genlib.sampling.prior_draw``: the same z on any device)."""
    z = prior_draw(model, n, seed) if z is None else z                  # (n, D)
    return to_uint8(model.sample(n, labels=labels, z=z))


def history_picker(samples: list[tuple[int, torch.Tensor]], key: str) -> tuple[int, torch.Tensor]:
    """A slider over the saved fixed-noise grids, by training step. It follows the newest grid until
    the user drags it back, and keeps the chosen step while new grids arrive. Returns (step, samples)."""
    if len(samples) < 2:
        return samples[-1]
    steps = [s for s, _ in samples]
    current = st.session_state.get(key)                    # the slider's value, as the user left it
    follow = current is None or current == st.session_state.get(key + "_newest")
    # set before the widget: its options change as grids arrive (and old ones are thinned out)
    st.session_state[key] = steps[-1] if follow else max([s for s in steps if s <= current] or steps[:1])
    st.session_state[key + "_newest"] = steps[-1]
    step = st.select_slider("Training history: fixed-noise grid at step", steps, key=key,
                            help="Drag back to see how the same noise vectors looked earlier in training; "
                                 "at the right end it follows the newest grid.")
    return samples[steps.index(step)]


def memo(key: str, version: Any, build):
    """``build()``, kept in this session under ``key`` until ``version`` changes. A live view that
    polls redraws a figure or re-encodes an image only when its data changed."""
    box = st.session_state.setdefault("genlib_memo", {})
    if key not in box or box[key][0] != version:
        box[key] = (version, build())
    return box[key][1]
