"""The runs of a browser session, the watchdog that stops them when the browser goes, and the files
a session uploads (checkpoints, a .zip of images) or downloads (a checkpoint).

Each browser session owns a ``SessionRuns`` (kept in ``st.session_state``): its training runs and
the checkpoints it uploaded. Two sessions never share a trainer. A run trains on its own
``genlib.Trainer`` thread, which never calls ``st.*``; pages poll ``run.snapshot()`` and sample
from a frozen CPU copy of its model (``Run.frozen_model``), never from a model a thread is training.

When the tab closes, Streamlit disconnects the session, keeps it for a reconnect window and then
drops it. A per-process ``SessionWatchdog`` asks Streamlit's runtime every second whether each
session is still connected: after ``PAUSE_AFTER_S`` disconnected its running trainers are paused
(the CPU is free again; a reconnect resumes them), after ``STOP_AFTER_S`` they are stopped. A
``weakref.finalize`` on ``SessionRuns`` also stops them when the session's state is garbage
collected, which covers runtimes without a server (AppTest, ``python app.py``).
"""
from __future__ import annotations

import atexit
import copy
import dataclasses
import gc
import hashlib
import io
import os
import threading
import time
import weakref
from typing import Any, Callable

import streamlit as st
from streamlit.logger import get_logger

import genlib
from genlib.checkpoint import Checkpoint

UPLOAD_LIMIT_MB = 50                    # checkpoints here are a few MB; 50 leaves room for CIFAR models
PAUSE_AFTER_S = float(os.environ.get("GENLIB_DASHBOARD_PAUSE_AFTER_S", 5))   # a reload reconnects in ~1 s
STOP_AFTER_S = float(os.environ.get("GENLIB_DASHBOARD_STOP_AFTER_S", 120))   # Streamlit keeps a session 2 min

# Streamlit's logger factory: lines appear in the server console at Streamlit's log level.
log = get_logger(__name__)

# The ~300k objects torch, plotly and streamlit create at import never become garbage; a full
# collection scans them all with the GIL held (~150 ms here), stalling the trainer thread. Moving
# them to the permanent generation (once per process, when this module is first imported) keeps
# the collections Python runs on its own short. See also runner.postScriptGC in .streamlit/config.toml.
gc.collect()
gc.freeze()


# --- runs --------------------------------------------------------------------------------------
@dataclasses.dataclass(eq=False)
class Run:
    """One training run of this session: a model, its data and the Trainer thread that trains it."""

    name: str
    preset: str
    dataset: str
    trainer: genlib.Trainer
    page: str = "train"                 # which page started it ('train', 'toy')
    probe: Any = None                   # an optional object the metric_fn fills (toy heat-maps)
    _frozen: tuple[int, genlib.GenerativeModel] | None = None

    @property
    def model(self) -> genlib.GenerativeModel:
        return self.trainer.model

    @property
    def alive(self) -> bool:
        return self.trainer.is_alive

    def snapshot(self) -> genlib.Snapshot:
        return self.trainer.snapshot()

    @property
    def phase(self) -> str:
        """'running', 'paused' or 'ended' (done, stopped or diverged): what the controls offer."""
        if not self.alive:
            return "ended"
        return "paused" if self.trainer.state == "paused" else "running"

    def _settle(self, phases: tuple[str, ...], timeout: float = 1.0) -> None:
        """Wait (briefly) for the thread to reach a phase, so the page redrawn next shows it."""
        end = time.monotonic() + timeout
        while self.phase not in phases and time.monotonic() < end:
            time.sleep(0.01)

    def pause(self) -> None:
        self.trainer.pause()
        self._settle(("paused", "ended"))

    def stop(self) -> None:
        self.trainer.stop()
        self._settle(("ended",))

    def start(self) -> None:
        """Start or continue (after a stop, an error or the end: call ``trainer.extend`` first)."""
        self.trainer.resume()
        if not self.alive:
            self.trainer.start()
        self._settle(("running", "ended"))

    def step_once(self) -> None:
        if self.trainer.step >= self.trainer.config.steps:
            self.trainer.extend(1)
        self.trainer.step_once()
        if not self.alive:
            self.trainer.start()
        self._settle(("paused", "ended"))

    def frozen_model(self) -> genlib.GenerativeModel | None:
        """A CPU copy of the model for pages to sample from; None while a thread is training it."""
        if self.alive:
            return None
        model = self.trainer.model
        if self._frozen is None or self._frozen[0] != model.steps:
            frozen = copy.deepcopy(model).cpu().eval()
            self._frozen = (model.steps, frozen)
        return self._frozen[1]


def _stop_trainers(trainers: list[genlib.Trainer]) -> None:
    for t in trainers:
        t.stop()


class SessionRuns:
    """Everything one browser session owns. Stored in ``st.session_state``; not shared."""

    def __init__(self) -> None:
        self.runs: dict[str, Run] = {}
        self.uploads: dict[str, tuple[str, Checkpoint]] = {}   # content hash -> (file name, checkpoint)
        self._trainers: list[genlib.Trainer] = []             # shared with the finalizer, not self
        self.paused_by_watchdog: list[genlib.Trainer] = []
        self._counter = 0
        self._finalizer = weakref.finalize(self, _stop_trainers, self._trainers)

    def new_name(self, base: str) -> str:
        self._counter += 1
        return f"{base} #{self._counter}"

    def add(self, run: Run) -> Run:
        self.runs[run.name] = run
        self._trainers.append(run.trainer)
        return run

    def of_page(self, page: str) -> list[Run]:
        return [r for r in self.runs.values() if r.page == page]

    def stop_all(self) -> None:
        _stop_trainers(self._trainers)

    def running(self) -> list[genlib.Trainer]:
        return [t for t in self._trainers if t.is_alive and t.state == "running"]


# --- stopping the runs of sessions that went away ------------------------------------------------
def _runtime_says_active(session_id: str) -> bool:
    """True while Streamlit's server has this session connected (always True without a server)."""
    from streamlit.runtime import Runtime

    if not Runtime.exists():
        return True
    return Runtime.instance().is_active_session(session_id)


class SessionWatchdog:
    """Pauses, then stops, the trainers of sessions whose browser has gone.

    ``check()`` is one pass (tests call it with a fake ``is_active`` and clock); ``ensure_thread()``
    runs it every ``poll_s`` on one daemon thread per process.
    """

    def __init__(self, is_active: Callable[[str], bool] = _runtime_says_active,
                 pause_after: float = PAUSE_AFTER_S, stop_after: float = STOP_AFTER_S, poll_s: float = 1.0):
        self.is_active, self.pause_after, self.stop_after, self.poll_s = is_active, pause_after, stop_after, poll_s
        self._sessions: dict[str, weakref.ref[SessionRuns]] = {}
        self._gone_since: dict[str, float] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def watch(self, session_id: str, runs: SessionRuns) -> None:
        with self._lock:
            self._sessions[session_id] = weakref.ref(runs)

    def __len__(self) -> int:
        return len(self._sessions)

    def check(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            items = list(self._sessions.items())
        for sid, ref in items:
            runs = ref()
            if runs is None:
                self._forget(sid)
                continue
            if self.is_active(sid):
                self._gone_since.pop(sid, None)
                for t in runs.paused_by_watchdog:   # the browser came back: carry on
                    t.resume()
                runs.paused_by_watchdog.clear()
                continue
            gone = now - self._gone_since.setdefault(sid, now)
            if gone >= self.stop_after:
                runs.stop_all()
                log.info("session %s gone for %.0f s: stopped its %d run(s)", sid, gone, len(runs.runs))
                self._forget(sid)
            elif gone >= self.pause_after:
                for t in runs.running():
                    t.pause()
                    runs.paused_by_watchdog.append(t)
                    log.info("session %s disconnected: paused a run at step %d", sid, t.step)

    def _forget(self, sid: str) -> None:
        with self._lock:
            self._sessions.pop(sid, None)
        self._gone_since.pop(sid, None)

    def stop_everything(self, join_s: float = 2.0) -> None:
        """Stop every watched session's trainers (at server exit, so no thread dies mid-operation)."""
        with self._lock:
            sessions = [ref() for ref in self._sessions.values()]
        trainers = [t for runs in sessions if runs is not None for t in runs._trainers]
        for t in trainers:
            t.stop()
        for t in trainers:
            t.join(join_s)

    def _loop(self) -> None:
        while True:
            time.sleep(self.poll_s)
            try:
                self.check()
            except Exception:       # a watchdog that dies silently would leak every later run
                log.exception("session watchdog pass failed")

    def ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="genlib-session-watchdog", daemon=True)
                self._thread.start()


_WATCHDOG = SessionWatchdog()
atexit.register(_WATCHDOG.stop_everything)


def session_runs() -> SessionRuns:
    """This session's runs (created on first use and registered with the watchdog)."""
    runs = st.session_state.get("genlib_runs")
    if runs is None:
        runs = st.session_state["genlib_runs"] = SessionRuns()
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        ctx = get_script_run_ctx()
        if ctx is not None:
            _WATCHDOG.watch(ctx.session_id, runs)
            _WATCHDOG.ensure_thread()
    return runs


def add_upload(file_name: str, data: bytes) -> Checkpoint:
    """Load an uploaded checkpoint once per session (CheckpointError says why a file is refused)."""
    runs = session_runs()
    key = hashlib.sha256(data).hexdigest()
    if key not in runs.uploads:
        ckpt = genlib.load_checkpoint(data, max_bytes=UPLOAD_LIMIT_MB * 2**20)
        runs.uploads[key] = (file_name, ckpt)
    return runs.uploads[key][1]


# --- the user's own images (dataset 'folder'), one upload per session ------------------------------
FOLDER_LIMIT_MB = 50                    # a zip of a few thousand small images; genlib guards what it expands to
FOLDER_SIZE = 28                        # pixels per side: divisible by 4, so the conv presets (dcgan) fit


def add_folder_upload(file_name: str, data: bytes, channels: int) -> genlib.Dataset:
    """Read an uploaded .zip of images into this session's 'folder' dataset (decoded once per
    content and channel count). ValueError (from genlib's zip guards) says why a file is refused;
    the session's previous upload is kept then."""
    if len(data) > FOLDER_LIMIT_MB * 2**20:
        raise ValueError(f"{file_name} is {len(data) / 2**20:,.1f} MB, over the {FOLDER_LIMIT_MB} MB limit")
    key = (hashlib.sha256(data).hexdigest(), channels)
    held = st.session_state.get("genlib_folder")
    if held is None or held["key"] != key:
        ds = genlib.load_dataset("folder", path=data, size=FOLDER_SIZE, channels=channels, source=file_name)
        held = {"key": key, "file": file_name, "raw": data, "data": ds}
        st.session_state["genlib_folder"] = held
    return held["data"]


def folder_upload() -> tuple[str, bytes, genlib.Dataset] | None:
    """(file name, zip bytes, dataset) of this session's last good upload, or None."""
    held = st.session_state.get("genlib_folder")
    return (held["file"], held["raw"], held["data"]) if held else None


def checkpoint_bytes(model: genlib.GenerativeModel, trainer: genlib.Trainer | None = None, **card: Any) -> bytes:
    """A checkpoint as the bytes of a download (the Train page's "Checkpoint (.pt)")."""
    buf = io.BytesIO()
    genlib.save_checkpoint(buf, model, trainer, **card)
    return buf.getvalue()
