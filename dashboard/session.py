"""The runs of a browser session, the watchdog that stops them when the browser goes, and the files
a session uploads (checkpoints, a .zip of images) or downloads (a checkpoint).

Each browser session owns a ``SessionRuns``: its training runs and the checkpoints it uploaded. It
is found by a session id in the URL (``?sid=…``, ``session_id()``), not by Streamlit's session, so a
reload (F5) or a reconnect after a network drop finds the same runs, still running: a process-wide
``SessionStore`` maps the id to its ``SessionRuns``. Runs that ended are saved as checkpoints in a
folder per id (``state_root()``, bounded in size and age, ``SessionStore.cleanup``), so the models
come back even after the store let the session go or the server restarted. Two ids never share a
trainer; whoever has the URL with the id has the runs (the id is random, 96 bits). A run trains in the
server's pool of worker processes (``start_run``), or on its own ``genlib.Trainer`` thread with the
pool off, which never calls ``st.*``; pages poll ``run.snapshot()`` (and ``run.panel()``) and sample
from a frozen CPU copy of its model (``Run.frozen_model``), never from a model that is training.

When the tab closes, Streamlit disconnects the session, keeps it for a reconnect window and then
drops it. A per-process ``SessionWatchdog`` asks Streamlit's runtime every second whether any
Streamlit session attached to a ``SessionRuns`` is still connected: after ``PAUSE_AFTER_S`` with
none, its running trainers are paused (the CPU is free again; a reload or reconnect resumes them),
after ``STOP_AFTER_S`` they are stopped, saved and the store lets the session go. A
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
import re
import secrets
import shutil
import threading
import time
import weakref
from pathlib import Path
from typing import Any, Callable

import streamlit as st
from streamlit.logger import get_logger

import genlib
from genlib.checkpoint import Checkpoint
from genlib.train.pool import DataRef, PoolLimitError, RemoteRun, RunSpec, shared_pool  # noqa: F401 (pages catch it)

UPLOAD_LIMIT_MB = 50                    # checkpoints here are a few MB; 50 leaves room for CIFAR models
PAUSE_AFTER_S = float(os.environ.get("GENLIB_DASHBOARD_PAUSE_AFTER_S", 15))  # a reload reattaches in 1-3 s
STOP_AFTER_S = float(os.environ.get("GENLIB_DASHBOARD_STOP_AFTER_S", 120))   # Streamlit keeps a session 2 min
# Saved runs of every session id: at most this many MB in all (oldest sessions' folders go first)
# and none older than KEEP_DAYS. A small model is 1-5 MB; 500 MB holds a few hundred runs.
STATE_LIMIT_MB = float(os.environ.get("GENLIB_DASHBOARD_STATE_MB", 500))
KEEP_DAYS = float(os.environ.get("GENLIB_DASHBOARD_KEEP_DAYS", 7))
MAX_SESSIONS = 200                      # session ids held in memory (the rest come back from disk)
# Per-session limits (issue 16): one browser session cannot hold the server. Training runs going at
# once (running or paused), uploaded checkpoints kept (the oldest is let go for a new one), and the
# memory of the models and sample grids it holds (runs, saved runs, uploads).
MAX_RUNS_AT_ONCE = int(os.environ.get("GENLIB_DASHBOARD_RUNS", 2))
MAX_UPLOADS = 4
SESSION_MB = float(os.environ.get("GENLIB_DASHBOARD_SESSION_MB", 256))
SID_RE = re.compile(r"[A-Za-z0-9_-]{16,64}")

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
    """One training run of this session: a model, its data and what trains it (a run in the server's
    pool, or with the pool off a Trainer thread here)."""

    name: str
    preset: str
    dataset: str
    trainer: genlib.Trainer
    page: str = "train"                 # which page started it ('train', 'toy')
    _frozen: tuple[int, genlib.GenerativeModel] | None = None

    @property
    def model(self) -> genlib.GenerativeModel:
        return self.trainer.model

    @property
    def alive(self) -> bool:
        return self.trainer.is_alive

    def snapshot(self) -> genlib.Snapshot:
        return self.trainer.snapshot()

    def panel(self) -> Any:
        """The metric_fn's panel (the toy lab's discriminator map and mode shares), or None."""
        return self.trainer.panel()

    @property
    def remote(self) -> bool:
        """Trained in the server's pool of worker processes (``start_run``), not on a thread here."""
        return isinstance(self.trainer, RemoteRun)

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
        if self.trainer.step >= self.trainer.config.steps or (not self.alive and self.trainer.config.max_seconds):
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


class LimitError(ValueError):
    """A per-session limit (runs at once, memory) refuses something; the message says which and what to do."""


def _grid_bytes(samples: list[tuple[int, Any]]) -> int:
    return sum(x.numel() * x.element_size() for _, x in samples)


def checkpoint_bytes_held(ckpt: Checkpoint) -> int:
    """What a loaded checkpoint holds in memory: its weights and its sample grids."""
    return ckpt.model.size_bytes() + _grid_bytes(ckpt.samples)


# Issue 18: the app's runs (the Train page's, the Mode collapse lab's, lesson 13's) train in the server's pool of worker processes (genlib.train.pool:
# bounded, queued, per-session limits), not on threads of this process, so training and the UI do not
# share one interpreter. GENLIB_DASHBOARD_POOL=0 keeps them on threads here.
USE_POOL = os.environ.get("GENLIB_DASHBOARD_POOL", "1") != "0"


def start_run(runs: "SessionRuns", preset: str, dataset: str, model: genlib.GenerativeModel, data: genlib.Dataset,
              config: genlib.TrainConfig, device: str, metric: Callable[[], Any] | None = None,
              page: str = "train", label: str = "") -> Run:
    """Start a run of this session: queued in the server's pool (``PoolLimitError`` says why it is
    refused: too many runs of this session, too much memory, a full queue), or on a thread here
    when the pool is off. ``metric``: a picklable factory of the Trainer's metric_fn; ``label``: the
    run's name before its number (default 'preset · dataset')."""
    name = runs.new_name(label or f"{preset} · {dataset}")
    why = runs.start_problem(1, model.size_bytes())       # this session's limits first: nothing queued if refused
    if why:
        raise LimitError(f"Cannot start {name}: {why}")
    if USE_POOL:
        ref = None if dataset == "folder" else DataRef(dataset)   # named sets load in the worker; uploads travel
        spec = RunSpec.new(model, data, config, ref=ref, device=device, metric=metric,
                           card={"preset": preset, "run_name": name, "page": page})
        trainer = server_pool().submit(spec, owner=session_id(), name=name, model=model)
    else:
        trainer = genlib.Trainer(model, data, config, device=device, metric_fn=metric() if metric else None)
    try:
        run = runs.add(Run(name, preset, dataset, trainer, page=page))
    except LimitError:
        trainer.stop()                                    # (a queued run leaves the pool's queue)
        raise
    run.start()
    return run


def server_pool():
    """The server's pool of training workers (``genlib.train.pool.shared_pool``).

    Runs at once per session have one source of truth: ``MAX_RUNS_AT_ONCE`` ($GENLIB_DASHBOARD_RUNS),
    which ``SessionRuns.start_problem`` checks (queued runs count: they are alive) before anything is
    submitted, and which the pages' messages and disabled buttons follow. The pool's own per-owner limit
    ($GENLIB_POOL_RUNS_PER_SESSION) is only a server-wide backstop, for any client of the pool and for a
    session whose state was lost while its runs went on: it is raised here to at least
    ``MAX_RUNS_AT_ONCE``, so that it never refuses what the session's limit allows (0 leaves it off)."""
    pool = shared_pool()
    if pool.max_runs_per_owner and pool.max_runs_per_owner < MAX_RUNS_AT_ONCE:
        pool.max_runs_per_owner = MAX_RUNS_AT_ONCE
    return pool


def _stop_trainers(trainers: list[genlib.Trainer]) -> None:
    for t in trainers:
        t.stop()


class SessionRuns:
    """Everything one session id owns (``SessionStore``); never shared between ids.

    ``folder``: where its ended runs are saved (None: kept in memory only, as in unit tests).
    ``restored``: models of runs saved by an earlier life of this id (name -> checkpoint).
    ``state``: small things a page keeps beyond a Streamlit session (the lab's pair of runs, the
    uploaded .zip of images)."""

    def __init__(self, folder: Path | None = None) -> None:
        self.runs: dict[str, Run] = {}
        self.uploads: dict[str, tuple[str, Checkpoint]] = {}   # content hash -> (file name, checkpoint)
        self.restored: dict[str, Checkpoint] = {}
        self.state: dict[str, Any] = {}
        self.folder = folder
        self._saved: dict[str, int] = {}                      # run name -> model step saved
        self._trainers: list[genlib.Trainer] = []             # shared with the finalizer, not self
        self.paused_by_watchdog: list[genlib.Trainer] = []
        self._counter = 0
        self._lock = threading.Lock()
        self._finalizer = weakref.finalize(self, _stop_trainers, self._trainers)
        if folder is not None and folder.is_dir():
            self._restore()

    def new_name(self, base: str) -> str:
        self._counter += 1
        return f"{base} #{self._counter}"

    # --- on disk ----------------------------------------------------------------------------------
    @staticmethod
    def _file(name: str) -> str:
        return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") + ".pt"

    def _restore(self) -> None:
        """Load the runs an earlier life of this id saved (a file that fails to load is skipped)."""
        for path in sorted(self.folder.glob("*.pt"), key=lambda p: p.stat().st_mtime):
            try:
                ckpt = genlib.load_checkpoint(path)
            except (genlib.CheckpointError, OSError) as e:
                log.warning("saved run %s unreadable, skipped: %s", path, e)
                continue
            name = str(ckpt.card.get("run_name") or path.stem)
            self.restored[name] = ckpt
            self._saved[name] = ckpt.model.steps
            if m := re.search(r"#(\d+)$", name):
                self._counter = max(self._counter, int(m.group(1)))

    def persist(self) -> list[Path]:
        """Save every ended run not saved at its current step; returns the files written. Called by
        the watchdog's thread each pass, and when a session is let go."""
        if self.folder is None:
            return []
        written = []
        with self._lock:
            for run in list(self.runs.values()):
                model = run.frozen_model()              # None while training: never read a live model
                if model is None or self._saved.get(run.name) == model.steps or not run.snapshot().samples:
                    continue
                self.folder.mkdir(parents=True, exist_ok=True)
                path = self.folder / self._file(run.name)
                tmp = path.with_suffix(".tmp")
                genlib.save_checkpoint(tmp, model, run.trainer, preset=run.preset, run_name=run.name, page=run.page)
                os.replace(tmp, path)
                self._saved[run.name] = model.steps
                written.append(path)
            if written:
                os.utime(self.folder)                     # the folder's age is the session's last save
        return written

    def memory_bytes(self) -> int:
        """Weights and sample grids this session holds: its runs, its saved runs and its uploads."""
        held = [checkpoint_bytes_held(c) for c in self.restored.values()]
        held += [checkpoint_bytes_held(c) for _, c in self.uploads.values()]
        held += [r.model.size_bytes() + _grid_bytes(r.snapshot().samples) for r in self.runs.values()]
        folder = self.state.get("folder")                     # the uploaded .zip and its decoded images
        if folder is not None:
            x = getattr(folder["data"], "x", None)
            held.append(len(folder["raw"]) + (x.numel() * x.element_size() if x is not None else 0))
        return sum(held)

    def going(self) -> int:
        """Runs whose thread is alive (running or paused)."""
        return sum(t.is_alive for t in self._trainers)

    def start_problem(self, n: int = 1, extra_bytes: int = 0) -> str | None:
        """Why ``n`` more runs (``extra_bytes`` more memory) may not start now, in one line; None when they may."""
        going = self.going()
        if going + n > MAX_RUNS_AT_ONCE:
            return (f"{going} run(s) of this session are going (running or paused) and at most {MAX_RUNS_AT_ONCE} "
                    f"may go at once{f'; this starts {n}' if n > 1 else ''}: stop one first.")
        mb = (self.memory_bytes() + extra_bytes) / 2**20
        if mb > SESSION_MB:
            return (f"this would hold {mb:,.0f} MB of models and sample grids in this session, over its "
                    f"{SESSION_MB:,.0f} MB: remove an uploaded checkpoint in the sidebar first.")
        return None

    def add(self, run: Run) -> Run:
        """Register a new run (before its start); LimitError when the session's limits refuse it."""
        why = self.start_problem(1, run.model.size_bytes())
        if why:
            raise LimitError(f"Cannot start {run.name}: {why}")
        self.runs[run.name] = run
        self._trainers.append(run.trainer)
        return run

    def of_page(self, page: str) -> list[Run]:
        return [r for r in self.runs.values() if r.page == page]

    def stop_all(self) -> None:
        _stop_trainers(self._trainers)

    def running(self) -> list[genlib.Trainer]:
        return [t for t in self._trainers if t.is_alive and t.state == "running"]


def state_root() -> Path:
    """Where sessions' runs are saved: $GENLIB_DASHBOARD_STATE_DIR, else ~/.cache/genlib/dashboard."""
    env = os.environ.get("GENLIB_DASHBOARD_STATE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "genlib" / "dashboard"


def _folder_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


class SessionStore:
    """Session id -> ``SessionRuns``, per process. Ids held in memory are bounded (``max_sessions``;
    the least recently used one without a running trainer is saved and let go); their saved runs on
    disk are bounded by ``cleanup``."""

    def __init__(self, root: Callable[[], Path] = state_root, max_sessions: int = MAX_SESSIONS) -> None:
        self._root, self.max_sessions = root, max_sessions
        self._sessions: dict[str, SessionRuns] = {}
        self._lock = threading.Lock()
        self._cleaned = False

    @property
    def root(self) -> Path:
        return self._root()

    def get(self, sid: str) -> SessionRuns:
        if not SID_RE.fullmatch(sid):
            raise ValueError(f"not a session id: {sid[:80]!r}")
        with self._lock:
            runs = self._sessions.pop(sid, None)
            if runs is None:
                if not self._cleaned:
                    self._cleaned = True
                    self.cleanup()
                runs = SessionRuns(self.root / sid)
            self._sessions[sid] = runs                          # most recently used last
            for old in [k for k, r in self._sessions.items() if k != sid and not r.running()]:
                if len(self._sessions) <= self.max_sessions:
                    break
                self._sessions.pop(old).persist()
        return runs

    def release(self, runs: SessionRuns) -> None:
        """Save and let go (the watchdog, when a session's browser has been gone STOP_AFTER_S)."""
        runs.persist()
        with self._lock:
            for k in [k for k, r in self._sessions.items() if r is runs]:
                del self._sessions[k]
        self.cleanup()

    def __contains__(self, sid: str) -> bool:
        return sid in self._sessions

    def cleanup(self, limit_mb: float = STATE_LIMIT_MB, keep_days: float = KEEP_DAYS) -> list[Path]:
        """Delete session folders older than ``keep_days``, then the oldest until the rest fit in
        ``limit_mb``; folders of sessions held in memory are kept. Returns what was deleted."""
        root = self.root
        if not root.is_dir():
            return []
        held = {r.folder for r in self._sessions.values()}
        folders = sorted((p for p in root.iterdir() if p.is_dir() and SID_RE.fullmatch(p.name)),
                         key=lambda p: p.stat().st_mtime)
        sizes = {p: _folder_mb(p) for p in folders}
        total, now, gone = sum(sizes.values()), time.time(), []
        for p in folders:
            if p in held:
                continue
            if now - p.stat().st_mtime > keep_days * 86400 or total > limit_mb:
                shutil.rmtree(p, ignore_errors=True)
                total -= sizes[p]
                gone.append(p)
        if gone:
            log.info("removed %d saved session folder(s) under %s (%.0f MB left)", len(gone), root, total)
        return gone


STORE = SessionStore()


# --- stopping the runs of sessions that went away ------------------------------------------------
def _runtime_says_active(session_id: str) -> bool:
    """True while Streamlit's server has this session connected (always True without a server)."""
    from streamlit.runtime import Runtime

    if not Runtime.exists():
        return True
    return Runtime.instance().is_active_session(session_id)


class SessionWatchdog:
    """Pauses, then stops, the trainers of sessions whose browser has gone.

    ``watch(streamlit_session_id, runs)``: one ``SessionRuns`` may be watched by several Streamlit
    sessions (a reload opens a new one with the same URL id); it counts as gone when none of them is
    connected. ``check()`` is one pass (tests call it with a fake ``is_active`` and clock); it also
    saves runs that ended (``SessionRuns.persist``). ``ensure_thread()`` runs it every ``poll_s``
    on one daemon thread per process. ``on_stop(runs)`` is called after a gone session's runs were
    stopped (the store saves and lets it go).
    """

    def __init__(self, is_active: Callable[[str], bool] = _runtime_says_active,
                 pause_after: float = PAUSE_AFTER_S, stop_after: float = STOP_AFTER_S, poll_s: float = 1.0,
                 on_stop: Callable[[SessionRuns], None] | None = None):
        self.is_active, self.pause_after, self.stop_after, self.poll_s = is_active, pause_after, stop_after, poll_s
        self.on_stop = on_stop
        self._groups: dict[int, tuple[weakref.ref[SessionRuns], set[str]]] = {}
        self._gone_since: dict[int, float] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def watch(self, session_id: str, runs: SessionRuns) -> None:
        with self._lock:
            ref, sids = self._groups.get(id(runs), (None, set()))
            if ref is None or ref() is not runs:
                ref, sids = weakref.ref(runs), set()
            sids.add(session_id)
            self._groups[id(runs)] = (ref, sids)

    def __len__(self) -> int:
        return len(self._groups)

    def check(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            items = [(k, ref, set(sids)) for k, (ref, sids) in self._groups.items()]
        for key, ref, sids in items:
            runs = ref()
            if runs is None:
                self._forget(key)
                continue
            try:
                runs.persist()
            except Exception:                          # a full disk must not stop the watchdog
                log.exception("saving the runs of a session failed")
            active = {sid for sid in sids if self.is_active(sid)}
            if active:
                with self._lock:                       # closed tabs of the same session: forget them
                    if key in self._groups:
                        self._groups[key][1].difference_update(sids - active)
                self._gone_since.pop(key, None)
                for t in runs.paused_by_watchdog:   # the browser came back: carry on
                    t.resume()
                runs.paused_by_watchdog.clear()
                continue
            gone = now - self._gone_since.setdefault(key, now)
            if gone >= self.stop_after:
                runs.stop_all()
                log.info("session %s gone for %.0f s: stopped its %d run(s)", ",".join(sorted(sids)), gone,
                         len(runs.runs))
                self._forget(key)
                if self.on_stop is not None:
                    for t in runs._trainers:
                        t.join(2.0)
                    self.on_stop(runs)
            elif gone >= self.pause_after:
                for t in runs.running():
                    t.pause()
                    runs.paused_by_watchdog.append(t)
                    log.info("session %s disconnected: paused a run at step %d", ",".join(sorted(sids)), t.step)

    def _forget(self, key: int) -> None:
        with self._lock:
            self._groups.pop(key, None)
        self._gone_since.pop(key, None)

    def stop_everything(self, join_s: float = 2.0) -> None:
        """Stop every watched session's trainers (at server exit, so no thread dies mid-operation)."""
        with self._lock:
            sessions = [ref() for ref, _ in self._groups.values()]
        trainers = [t for runs in sessions if runs is not None for t in runs._trainers]
        for t in trainers:
            t.stop()
        for t in trainers:
            t.join(join_s)
        for runs in sessions:
            if runs is not None:
                try:
                    runs.persist()
                except Exception:
                    log.exception("saving the runs of a session at exit failed")

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


_WATCHDOG = SessionWatchdog(on_stop=STORE.release)
atexit.register(_WATCHDOG.stop_everything)


def session_id() -> str:
    """This browser session's id: ``?sid=`` from the URL when it is one (a reload, a bookmark), else
    a new random one. Kept in the URL on every run (a page switch may drop the query string)."""
    sid = st.session_state.get("genlib_sid")
    if sid is None:
        asked = st.query_params.get("sid", "")
        sid = asked if SID_RE.fullmatch(asked) else secrets.token_urlsafe(12)
        st.session_state["genlib_sid"] = sid
    if st.query_params.get("sid") != sid:
        st.query_params["sid"] = sid
    return sid


def session_runs() -> SessionRuns:
    """This session id's runs (from the store: a reload finds them; registered with the watchdog
    once per Streamlit session)."""
    runs = STORE.get(session_id())
    if st.session_state.get("genlib_runs") is not runs:
        st.session_state["genlib_runs"] = runs                  # tests read it; the store owns it
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        ctx = get_script_run_ctx()
        if ctx is not None:
            _WATCHDOG.watch(ctx.session_id, runs)
            _WATCHDOG.ensure_thread()
    return runs


def add_upload(file_name: str, data: bytes) -> tuple[Checkpoint, str | None]:
    """Load an uploaded checkpoint once per session: (checkpoint, a note when keeping it let the
    oldest upload go). Only the loaded checkpoint is kept, never the file's bytes. CheckpointError
    says why a file is refused (remembered by content: a refused file is not parsed again on every
    rerun); LimitError when it would take the session over its memory."""
    runs = session_runs()
    key = hashlib.sha256(data).hexdigest()
    refused = runs.state.setdefault("refused_uploads", {})
    if key in refused:
        raise genlib.CheckpointError(refused[key])
    note = None
    if key not in runs.uploads:
        try:
            ckpt = genlib.load_checkpoint(data, max_bytes=UPLOAD_LIMIT_MB * 2**20)
        except genlib.CheckpointError as e:
            while len(refused) >= 16:
                refused.pop(next(iter(refused)))
            refused[key] = str(e)
            raise
        go = list(runs.uploads)[:max(0, len(runs.uploads) - MAX_UPLOADS + 1)]     # the oldest first
        freed = sum(checkpoint_bytes_held(runs.uploads[k][1]) for k in go)
        mb = (runs.memory_bytes() - freed + checkpoint_bytes_held(ckpt)) / 2**20
        if mb > SESSION_MB:
            raise LimitError(f"{file_name} is not kept: with it this session would hold {mb:,.0f} MB of models "
                             f"and sample grids, over its {SESSION_MB:,.0f} MB (remove an upload first).")
        dropped = [runs.uploads.pop(k)[0] for k in go]
        if dropped:
            note = (f"At most {MAX_UPLOADS} uploaded checkpoints are kept per session: "
                    f"{', '.join(dropped)} let go for {file_name}.")
        runs.uploads[key] = (file_name, ckpt)
    return runs.uploads[key][1], note


def remove_upload(key: str) -> None:
    """Let an uploaded checkpoint go (the sidebar's Remove)."""
    session_runs().uploads.pop(key, None)


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
    state = session_runs().state
    held = state.get("folder")
    if held is None or held["key"] != key:
        ds = genlib.load_dataset("folder", path=data, size=FOLDER_SIZE, channels=channels, source=file_name)
        runs = session_runs()
        before = runs.state.pop("folder", None)               # the new one replaces it: count only the new one
        mb = (runs.memory_bytes() + len(data) + ds.x.numel() * ds.x.element_size()) / 2**20
        if before is not None:
            runs.state["folder"] = before
        if mb > SESSION_MB:
            raise LimitError(f"{file_name} is not kept: with its images this session would hold {mb:,.0f} MB, "
                             f"over its {SESSION_MB:,.0f} MB.")
        held = {"key": key, "file": file_name, "raw": data, "data": ds}
        state["folder"] = held
    return held["data"]


def folder_upload() -> tuple[str, bytes, genlib.Dataset] | None:
    """(file name, zip bytes, dataset) of this session's last good upload, or None."""
    held = session_runs().state.get("folder")
    return (held["file"], held["raw"], held["data"]) if held else None


def checkpoint_bytes(model: genlib.GenerativeModel, trainer: genlib.Trainer | None = None, **card: Any) -> bytes:
    """A checkpoint as the bytes of a download (the Train page's "Checkpoint (.pt)")."""
    buf = io.BytesIO()
    genlib.save_checkpoint(buf, model, trainer, **card)
    return buf.getvalue()
