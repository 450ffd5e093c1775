"""What every page starts with: the "what am I looking at" note, the guards that stop a page with a
pointer when its data or model is missing, a model's samples (``draw``), the training-history slider,
progress bars with a smoothed ETA, presentation-mode sizes, ``wkey`` (a widget key that names what
the widget describes) and ``memo``, which keeps a live view from rebuilding what did not change."""
from __future__ import annotations

import contextlib
import math
import re
import time
from typing import Any, Callable, Iterator

import streamlit as st
import torch

import genlib
from genlib.checkpoint import _plain_line
from genlib.sampling import prior_draw, to_uint8

from . import context, figures


# --- text from files and users, and the error boundary ----------------------------------------------
# Seconds between redraws of a live run (Train, Lessons, Mode collapse). Each redraw costs the
# browser a plotly chart and a grid image; at 1 s, on a 2-core laptop the browser's ~0.8 of a core
# left the training run 82-94 % of its headless speed, at 2 s 82-99 % over two runs, the browser
# 0.3-0.6 of a core (bench/app_overhead.py; the fast MLP models lose the most).
LIVE_REFRESH_S = 2.0

_MD_PUNCT = re.compile(r"([!-,/:-@\[-`{-~])")    # every ASCII punctuation mark but - and . (inline: plain)
_MD_LEAD = re.compile(r"^(\d*)([-.)])")               # - or 1. or 1) at the start would begin a list


def plain(text: Any, limit: int = 80) -> str:
    """``text`` from a file or a user (a card field, a file name, a run name) for a markdown string:
    one line of at most ``limit`` characters, every ASCII punctuation mark backslash-escaped, so
    ``![x](http://…)``, ``**``, ``:material/…:`` or ``$…$`` show as typed and never become an image,
    a link, styling or an icon. Card blocks go to ``st.code(card_text(card))`` instead."""
    return _MD_LEAD.sub(r"\1\\\2", _MD_PUNCT.sub(r"\\\1", _plain_line(str(text), limit)))


@contextlib.contextmanager
def boundary(label: str, where: Any = None, remove: Callable[[], None] | None = None,
             remove_key: str | None = None) -> Iterator[None]:
    """One page or sidebar widget: any exception inside becomes a one-line ``st.error`` in its place
    (the traceback goes to the server log) and the rest of the app keeps working. ``remove``: the
    culprit is something the user gave (an upload); a "Remove" button calls it. Streamlit's own
    control flow (st.stop, st.rerun, switch_page) is a BaseException and passes through."""
    try:
        yield
    except Exception as e:                                   # noqa: BLE001 (the boundary's whole point)
        from . import session

        session.log.warning("%s failed", label, exc_info=True)
        where = where if where is not None else st
        first = (str(e).strip().splitlines() or [""])[0]
        where.error(f"{plain(label, 60)} failed: {type(e).__name__}" + (f": {plain(first, 200)}" if first else ""))
        if remove is not None:
            where.button("Remove", key=remove_key or wkey("remove", label), on_click=remove,
                         help="Let this upload go; the rest of the app keeps working.")


def explain(markdown: str, title: str = "What am I looking at?") -> None:
    with st.expander(title):
        st.markdown(markdown)


def wkey(name: str, *about: Any) -> str:
    """A widget key that names what the widget describes (a model, a dataset): when that changes the
    widget is a new one, with its own options and text, never the previous one's."""
    return "@".join([name, *(str(a) for a in about)])


# --- presentation mode ---------------------------------------------------------------------------
def present() -> bool:
    ctx = st.session_state.get("genlib_ctx")
    return bool(ctx is not None and ctx.present)


def grid_px(normal: int = 320, big: int = 640) -> int:
    """The minimum width of an image grid: ``big`` in presentation mode."""
    return big if present() else normal


PRESENT_CSS = """<style>
[data-testid="stMain"] { font-size: 20px; }
[data-testid="stMain"] .block-container { max-width: 100%; padding-left: 2rem; padding-right: 2rem; }
[data-testid="stMain"] h1 { font-size: 2.6rem; }
[data-testid="stMain"] h2, [data-testid="stMain"] h3 { font-size: 1.8rem; }
[data-testid="stMain"] [data-testid="stMarkdownContainer"] p, [data-testid="stMain"] [data-testid="stCaptionContainer"],
[data-testid="stMain"] [data-testid="stTable"] td, [data-testid="stMain"] [data-testid="stTable"] th,
[data-testid="stMain"] label { font-size: 20px !important; }
[data-testid="stImage"] img { image-rendering: pixelated; }
</style>"""


def presentation_css() -> None:
    """Large type and a full-width page (the sidebar's presentation mode)."""
    st.html(PRESENT_CSS)


# --- progress ------------------------------------------------------------------------------------
class Eta:
    """Seconds left, smoothed: the rate over the last ``window`` seconds of work (the whole run's
    before that), and the estimate itself followed with weight ``alpha`` per update, counting down
    between updates. A measurement or a busy CPU moves it gently instead of 5 min -> 53 s -> 3 min."""

    def __init__(self, window: float = 30.0, alpha: float = 0.25):
        self.window, self.alpha = window, alpha
        self._points: list[tuple[float, float]] = []         # (seconds of work, units done)
        self._eta: float | None = None
        self._at: float | None = None                        # seconds of work at the last estimate

    def update(self, done: float, total: float, seconds: float) -> float:
        if done >= total:
            self._eta = 0.0
            return 0.0
        pts = self._points
        if pts and (done < pts[-1][1] or seconds < pts[-1][0]):
            pts.clear()                                      # restarted or extended: start over
            self._eta = None
        pts.append((seconds, done))
        while len(pts) > 2 and pts[1][0] <= seconds - self.window:
            pts.pop(0)
        t0, d0 = pts[0] if len(pts) > 1 and seconds - pts[0][0] >= min(self.window / 3, 5.0) else (0.0, 0.0)
        if done <= d0 or seconds <= t0:
            return math.nan if self._eta is None else self._eta
        raw = (total - done) * (seconds - t0) / (done - d0)
        if self._eta is None or self._at is None or not math.isfinite(self._eta):
            self._eta = raw
        else:
            self._eta = (1 - self.alpha) * max(0.0, self._eta - (seconds - self._at)) + self.alpha * raw
        self._at = seconds
        return self._eta


def _eta_of(key: str) -> Eta:
    return st.session_state.setdefault("genlib_eta", {}).setdefault(key, Eta())


def fmt_eta(seconds: float) -> str:
    """Rounded so it does not flicker: to 5 s under a minute, to 10 s under ten minutes, else minutes."""
    if seconds is None or not math.isfinite(seconds):
        return "estimating…"
    step = 5 if seconds < 60 else 10 if seconds < 600 else 60
    return "about " + figures.fmt_duration(max(step, round(seconds / step) * step))


def progress_text(snap: genlib.Snapshot, key: str = "") -> str:
    """A run's progress line; ``key`` (the run's name) keeps its smoothed ETA (``Eta``)."""
    if snap.state in ("queued", "starting"):          # waiting in the server's pool: its place and estimate
        return f"{snap.state} · {snap.message}"
    eta = ""
    if snap.state == "running":
        eta = f" · {fmt_eta(_eta_of('run:' + key).update(snap.step, snap.total_steps, snap.elapsed))} left"
    if getattr(snap, "parked", False):                 # a paused run of the pool that gave its worker away
        eta = " · its worker went to a waiting run: Resume queues it again"
    return (f"{snap.state} · step {snap.step:,} / {snap.total_steps:,} · epoch {snap.epoch:.1f} · "
            f"{snap.images_per_s:,.0f} examples/s{eta}")


def run_progress(snap: genlib.Snapshot, key: str, where: Any = st) -> None:
    """The progress bar of a training run, with its smoothed ETA."""
    where.progress(min(1.0, snap.step / max(1, snap.total_steps)), text=progress_text(snap, key))


def each_with_progress(items: list, work: Callable[[Any], Any], label: Callable[[Any], str]) -> list:
    """``work(item)`` for each item under a progress bar with a smoothed ETA (a long action)."""
    bar = st.progress(0.0, text=f"{label(items[0])}…" if items else "")
    eta, t0, out = Eta(window=1e9, alpha=0.5), time.perf_counter(), []
    for i, item in enumerate(items):
        left = eta.update(i, len(items), time.perf_counter() - t0) if i else math.nan
        bar.progress(i / len(items), text=f"{label(item)} ({i + 1} of {len(items)}) · {fmt_eta(left)} left")
        out.append(work(item))
    bar.empty()
    return out


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
    the user drags it back, and keeps the chosen step while new grids arrive. Returns (step, samples).

    The user's choice is kept apart from the widget, in ``key + "_pin"`` (None: follow the newest),
    and written there only by the slider's own change callback. The widget's key names the newest
    step (``wkey``): each arriving grid makes a new slider, created at the pinned step or the newest.
    (One slider whose value the script overwrote kept the browser's copy of its old value, which the
    browser sent back on the next poll: the grid froze at that step until the run ended.)"""
    if len(samples) < 2:
        return samples[-1]
    steps = [s for s, _ in samples]
    pin_key = key + "_pin"
    pinned = st.session_state.get(pin_key)
    value = steps[-1] if pinned is None else max([s for s in steps if s <= pinned] or steps[:1])
    widget = wkey(key, steps[-1])

    def chosen(widget: str = widget, newest: int = steps[-1]) -> None:
        v = st.session_state.get(widget)
        st.session_state[pin_key] = None if v is None or v >= newest else v

    step = st.select_slider("Training history: fixed-noise grid at step", steps, value=value, key=widget,
                            on_change=chosen,
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
