"""Training runs in worker processes: a bounded pool, a first-come queue, and ``RemoteRun`` handles
with a Trainer's controls, for a server that many learners share (the dashboard hosting a class).

    pool = Pool(workers=2)                                   # default: cores - 1 (one left for the UI), or GPUs
    spec = RunSpec.new(model, data, TrainConfig(steps=500), ref=DataRef("digits"))
    run = pool.submit(spec, owner=session_id)                # PoolLimitError says why a run is refused
    run.snapshot()                                           # the latest state; never blocks
    run.pause(); run.step_once(); run.resume(); run.stop()
    run.wait(); run.checkpoint_bytes                         # the trained run as a genlib checkpoint

The mechanism is the standard library's, through ``torch.multiprocessing``: each pool slot is one
long-lived 'spawn' process (it imports torch once, then trains one run after another, with one torch
thread), a command queue into it and a bounded event queue out of it. Inside a worker the run is an
ordinary ``Trainer`` on its thread, exactly as in-process; a loop beside it applies the commands and
publishes a snapshot a few times a second (and at once on a pause, an error, the end). Payloads cross
as pickled bytes (tensors copied, no shared-memory handles that a dying process could leave
dangling); a model travels as a genlib checkpoint. When a publication finds the event queue full it
is dropped and the next one carries what it lacked (grids the parent has not seen, events), so a slow
parent never slows training and the UI only ever reads the newest snapshot.

A worker that dies (killed, out of memory, a crash in native code) turns its run into state 'error'
with a message saying what happened; the slot gets a fresh process and the queue moves on. A
per-slot reader thread in the parent notices within ``poll_s``. Each run's memory is watched too:
the worker's resident memory above what it held before the run started, against the pool's
``run_memory_mb``; a run over it is killed with a message saying so.

Limits, each refused with a one-line ``PoolLimitError``: runs per owner at once (queued, running or
paused), the memory a run declares or is estimated to need (``estimate_memory_mb``), the queue's length.

Where the parts live: ``runspec`` (what a worker is sent: ``RunSpec``, ``DataRef``, the memory
estimate), ``worker`` (the worker process), ``remote`` (``RemoteRun``, the parent's handle), and
here the slots, the queue, dispatching and the readers that watch the workers.
"""
from __future__ import annotations

import collections
import dataclasses
import heapq
import itertools
import math
import os
import pickle
import queue
import signal
import sys
import threading
import types
import time
from typing import Any, Callable

import torch
import torch.multiprocessing as tmp

from ..checkpoint import load_checkpoint
from .history import Snapshot
from .remote import STATES_WAITING, RemoteRun, RemoteSnapshot
from .runspec import DataInfo, DataRef, RunSpec, _rss_mb, estimate_memory_mb
from .worker import _worker_main

__all__ = ["Pool", "PoolLimitError", "RemoteRun", "RemoteSnapshot", "RunSpec", "DataRef", "DataInfo",
           "estimate_memory_mb", "default_workers", "shared_pool"]

EVENT_QUEUE = 32          # messages a worker may have in flight to the parent; a full queue drops snapshots
PUBLISH_S = 0.25          # seconds between a worker's snapshots (and at once on pauses, errors, the end)


class PoolLimitError(RuntimeError):
    """A run the pool refuses (too many runs for one owner, too much memory, a full queue); the
    message is one line a user can act on."""


def default_workers() -> int:
    """GPUs when there are any (one run per GPU), else the cores less one, which stays for the UI."""
    if torch.cuda.is_available():
        return torch.cuda.device_count()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores - 1)


_MAIN_LOCK = threading.Lock()


def _start_without_main(process) -> None:
    """``process.start()`` with a bare ``__main__``: the spawn start method re-runs the parent's main
    script in the child, and inside a Streamlit server (or after AppTest ran the app) ``__main__`` is
    the dashboard's app.py, which cannot run there (the worker died with exit code 1 before its first
    run). Workers need only this module, imported by name."""
    with _MAIN_LOCK:
        main = sys.modules.get("__main__")
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            process.start()
        finally:
            if main is not None:
                sys.modules["__main__"] = main


class _Slot:
    """One worker process of the pool, its queues and the parent's reader thread for it."""

    def __init__(self, pool: Pool, index: int) -> None:
        ctx = pool._ctx
        self.index, self.device = index, pool.devices[index % len(pool.devices)]
        self.cmd_q, self.evt_q = ctx.Queue(), ctx.Queue(maxsize=EVENT_QUEUE)
        self.process = ctx.Process(target=_worker_main, name=f"genlib-pool-{index}", daemon=True,
                                   args=(index, self.cmd_q, self.evt_q, pool.threads, self.device, pool.publish_s))
        _start_without_main(self.process)
        self.run: RemoteRun | None = None
        self.send_lock = threading.Lock()   # a run's controls go after its "run" message, never before
        self.served = 0
        self.retired = False
        self.draining = False               # its run ended and it is about to be replaced: take no run
        self.reader = threading.Thread(target=pool._read, args=(self,), name=f"genlib-pool-reader-{index}",
                                       daemon=True)
        self.reader.start()

    def retire(self) -> None:
        self.retired = True
        for q in (self.cmd_q, self.evt_q):
            q.cancel_join_thread()
            q.close()


class Pool:
    """A bounded pool of training worker processes with a first-come queue (see the module doc).

    ``workers``: processes (default ``default_workers()``); ``threads``: torch threads each (1);
    ``devices``: per worker, cycled (default: each GPU, else 'cpu'); ``max_runs_per_owner``: runs one
    owner (a session) may have queued, running or paused at once; ``run_memory_mb``: the most memory
    one run may declare and use (None: unlimited); ``max_queue``: runs waiting at most;
    ``recycle_after``: a worker serves this many runs and is then replaced by a fresh process, which
    gives back the memory a large run left in its allocator (0 = never).
    """

    def __init__(self, workers: int | None = None, *, threads: int = 1, devices: list[str] | None = None,
                 max_runs_per_owner: int = 2, run_memory_mb: float | None = None, max_queue: int = 200,
                 recycle_after: int = 0, start_method: str = "spawn", publish_s: float = PUBLISH_S,
                 poll_s: float = 0.5) -> None:
        self.size = workers or default_workers()
        if self.size < 1:
            raise ValueError(f"workers={workers!r}: a pool needs at least one worker")
        if devices is None:
            devices = [f"cuda:{i}" for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else ["cpu"]
        self.devices, self.threads = list(devices), threads
        self.max_runs_per_owner, self.run_memory_mb, self.max_queue = max_runs_per_owner, run_memory_mb, max_queue
        self.recycle_after, self.publish_s, self.poll_s = recycle_after, publish_s, poll_s
        self._ctx = tmp.get_context(start_method)
        self._lock = threading.RLock()
        self._queue: collections.deque[RemoteRun] = collections.deque()
        self._runs: dict[int, RemoteRun] = {}
        self._parking: dict[int, str] = {}         # run id -> what its owner asked meanwhile ('', 'go', 'stop')
        self._parked: dict[int, RemoteRun] = {}    # paused runs off any worker (see _park_paused)
        self._ids = itertools.count(1)
        self._speed: dict[str, float] = {}        # label -> seconds per step, from runs that reported
        self.replaced = 0                          # workers replaced after dying (or recycled)
        self._closed = False
        self._slots = [_Slot(self, i) for i in range(self.size)]

    # --- submitting ---------------------------------------------------------------------------------
    def submit(self, spec: RunSpec, *, owner: str = "", name: str = "", model=None) -> RemoteRun:
        """Queue a run (it starts by itself when a worker is free). ``model``: the UI's CPU copy
        (default: read from ``spec.model``). Raises PoolLimitError with the reason when refused."""
        if model is None:
            model = load_checkpoint(spec.model).model
        with self._lock:
            run = RemoteRun(self, next(self._ids), spec, owner, name or f"run {len(self._runs) + 1}", model)
            self._admit(run)
            self._runs[run.id] = run
            self._queue.append(run)
        self._dispatch()
        return run

    def _admit(self, run: RemoteRun) -> None:
        if self._closed:
            raise PoolLimitError("the training pool is shut down")
        mine = [r for r in self._runs.values() if r.owner == run.owner and r.is_alive and r is not run]
        if self.max_runs_per_owner and len(mine) >= self.max_runs_per_owner:
            raise PoolLimitError(f"you already have {len(mine)} run(s) training or waiting, the most one session "
                                 f"may have at once on this server is {self.max_runs_per_owner}: stop one or let it "
                                 "finish first")
        need = run.spec.memory_mb
        if self.run_memory_mb and need is not None and need > self.run_memory_mb:
            raise PoolLimitError(f"this run needs about {need:,.0f} MB (weights, optimiser, data, activations), over "
                                 f"the {self.run_memory_mb:,.0f} MB per run this server allows: use a smaller "
                                 "model or batch")
        if len(self._queue) >= self.max_queue:
            raise PoolLimitError(f"the server's queue is full ({len(self._queue)} runs waiting): try again in a "
                                 "few minutes")

    def _requeue(self, run: RemoteRun) -> None:
        with self._lock:
            self._admit(run)
            run._ended.clear()
            run.state, run.message, run.kill_reason = "queued", "", ""
            run.submitted_at, run.started_at, run.ended_at = time.monotonic(), None, None
            self._queue.append(run)
        self._dispatch()

    def _cancel(self, run: RemoteRun) -> None:
        with self._lock:
            if run in self._queue:
                self._queue.remove(run)
                run._finish("stopped", f"stopped before it started, at step {run.step}")

    def _control(self, run: RemoteRun, cmd: tuple, *, queued: Callable[[], Any] | None = None,
                 always: Callable[[], Any] | None = None, parked: Callable[[], Any] | None = None) -> None:
        """``always()`` (a change to the run's spec), then: a run in the queue gets ``queued()``, a paused
        run off its worker (parked, or being parked) ``parked()``, a run in a worker ``cmd`` through the
        worker's queue (an ended run nothing more). Decided under the lock that dispatching and parking
        take, so a run being handed to a worker or parked gets the control exactly once."""
        with self._lock:
            if always is not None:
                always()
            if run in self._queue:
                if queued is not None:
                    queued()
                return
            if run.id in self._parking or run.id in self._parked:
                if parked is not None:
                    parked()
                return
            slot = next((s for s in self._slots if s.run is run), None)
            if slot is None:
                return
            with slot.send_lock:                # after the run's own "run" message
                try:
                    slot.cmd_q.put(cmd)
                except (OSError, ValueError):   # the worker is going away; its reader reports the run
                    pass

    def _dispatch(self) -> None:
        sends = []
        with self._lock:
            if self._closed:
                return
            for slot in self._slots:
                if not self._queue:
                    break
                if slot.run is None and not slot.retired and not slot.draining:
                    run = self._queue.popleft()
                    slot.run = run
                    run.state = "starting"
                    slot.send_lock.acquire()      # released once "run" is in the worker's queue
                    sends.append((slot, run, dataclasses.replace(run.spec)))
        for slot, run, spec in sends:     # pickling a spec with its data can take a while: not under the lock
            try:
                slot.cmd_q.put(("run", run.id, pickle.dumps(spec)))
            except (OSError, ValueError):  # the worker is going away; its reader reports the run
                pass
            finally:
                slot.send_lock.release()
        self._park_paused()

    # --- paused runs give their worker to waiting ones ------------------------------------------------
    def _park_paused(self) -> None:
        """While runs wait and no worker is free, each run its owner paused gives up its worker: the
        worker ends it with its checkpoint (as a stop does) and the run stays 'paused', on no worker,
        until resumed or stepped; then it queues again and goes on from where it was, curves and all.
        A paused run (a student who paused, or left: the dashboard pauses a gone session's runs) must
        not hold a worker that a class is waiting for."""
        with self._lock:
            if self._closed:
                return
            free = sum(s.run is None and not s.retired and not s.draining for s in self._slots)
            need = len(self._queue) - free - len(self._parking)
            for slot in self._slots:
                if need <= 0:
                    return
                run = slot.run
                if run is None or not run.held or run.state != "paused" or run.id in self._parking:
                    continue
                self._parking[run.id] = ""
                run.spec.start_paused, run.spec.start_steps = True, 0     # as it was, until its owner says
                with slot.send_lock:
                    try:
                        slot.cmd_q.put(("stop", run.id))
                    except (OSError, ValueError):
                        pass
                need -= 1

    def _unpark(self, run: RemoteRun, wish: str) -> None:
        """A control of a parked run, under the lock: 'go' (resume or step; the spec says which) queues
        it again, 'stop' ends it where it was, 'hold' (a pause) leaves it parked. Of a run being
        parked: remembered for its end (a stop wins; a pause cancels a resume)."""
        if run.id in self._parking:
            if self._parking[run.id] != "stop":
                self._parking[run.id] = "" if wish == "hold" else wish
            return
        if wish == "hold":
            return
        del self._parked[run.id]
        if wish == "stop":
            run._finish("stopped", f"stopped at step {run.step}")
            return
        try:
            self._requeue(run)
        except PoolLimitError as e:
            self._parked[run.id] = run
            with run._lock:
                run.message = f"paused, and could not queue again: {e}"

    def _parked_end(self, run: RemoteRun, wish: str, data: Any) -> bool:
        """Under the lock (so no control falls between being parked and parked): the end of a run that
        was being parked. It stays paused off the worker (or goes on, or ends, as its owner asked
        meanwhile). False when it ended otherwise (an error; a stop asked)."""
        snap = data["snap"]
        if wish == "stop" or snap.state != "stopped" or data.get("checkpoint") is None:
            return False
        run._park(data)
        self._parked[run.id] = run
        owed = data.get("steps_owed", 0)           # Step clicks the park's stop overtook in the worker
        if owed and run.spec.start_paused:         # (not after a resume asked meanwhile: it trains on)
            run.spec.start_steps, wish = run.spec.start_steps + owed, "go"
        if wish == "go":
            self._unpark(run, "go")
        return True

    # --- the queue ------------------------------------------------------------------------------------
    def place(self, run: RemoteRun) -> int | None:
        """1-based place of a waiting run in the queue, None when it is not waiting."""
        with self._lock:
            try:
                return self._queue.index(run) + 1
            except ValueError:
                return None

    def _seconds_left(self, run: RemoteRun) -> float | None:
        """A running run's seconds to its end (None: paused, or no speed yet)."""
        snap = run._snap
        if run.state in STATES_WAITING:
            return self._expected(run)
        if snap is None or run.state == "paused" or not math.isfinite(snap.eta):
            return None
        return snap.eta

    def _expected(self, run: RemoteRun) -> float | None:
        """A waiting run's seconds once started: its steps at the speed runs of its label had (else the
        mean of all labels seen)."""
        per_step = self._speed.get(run.spec.label)
        if per_step is None and self._speed:
            per_step = sum(self._speed.values()) / len(self._speed)
        if per_step is None:
            return None
        left = per_step * max(0, run.spec.config.steps - run.step)
        if run.spec.config.max_seconds:                     # a timed run (lesson 13) ends on its budget
            left = min(left, max(0.0, run.spec.config.max_seconds - run.elapsed))
        return left + 2.0                                   # + starting in a worker

    def wait_estimate(self, run: RemoteRun) -> float | None:
        """Seconds until a waiting run starts: the workers' runs' time left, then the runs ahead of it,
        each on the first worker to free. None when a run it waits on has no estimate (paused, or no
        speed measured yet for its kind)."""
        with self._lock:
            if run not in self._queue:
                return None
            free = []
            for slot in self._slots:
                left = 0.0 if slot.run is None else self._seconds_left(slot.run)
                free.append(math.inf if left is None else left)
            heapq.heapify(free)
            for r in self._queue:
                t = heapq.heappop(free)
                if r is run:
                    return t if math.isfinite(t) else None
                d = self._expected(r)
                heapq.heappush(free, t + d if d is not None else math.inf)
        return None

    def runs(self, owner: str | None = None) -> list[RemoteRun]:
        with self._lock:
            return [r for r in self._runs.values() if owner is None or r.owner == owner]

    def is_parked(self, run: RemoteRun) -> bool:
        """Paused off any worker, or being put there (``_park_paused``)."""
        with self._lock:
            return run.id in self._parked or run.id in self._parking

    def forget(self, run: RemoteRun) -> None:
        """Drop an ended run from the pool's list (its handle keeps working as a record)."""
        with self._lock:
            if not run.is_alive:
                self._runs.pop(run.id, None)

    def status(self) -> dict[str, Any]:
        """Workers, what they train, the queue: for a server page or a load test."""
        with self._lock:
            return {"workers": self.size, "busy": sum(s.run is not None for s in self._slots),
                    "queued": len(self._queue), "parked": len(self._parked), "replaced": self.replaced,
                    "pids": [s.process.pid for s in self._slots],
                    "worker_rss_mb": [_rss_mb(s.process.pid) for s in self._slots]}

    # --- the reader threads ---------------------------------------------------------------------------
    def _read(self, slot: _Slot) -> None:
        next_check = 0.0
        while not slot.retired:
            try:
                kind, run_id, payload = slot.evt_q.get(timeout=self.poll_s)
                data = pickle.loads(payload)
            except queue.Empty:
                kind = None
            except (EOFError, OSError, ValueError, pickle.UnpicklingError):   # a queue broken by a death
                kind = None
            if slot.retired:
                return
            if kind is not None:
                self._handle(slot, kind, run_id, data)
            now = time.monotonic()
            if now >= next_check or kind is None:
                next_check = now + self.poll_s
                if not slot.process.is_alive():
                    self._worker_died(slot)
                    return
                self._check_memory(slot)

    def _handle(self, slot: _Slot, kind: str, run_id: int | None, data: Any) -> None:
        run = slot.run
        if run is None or run.id != run_id:
            return                                 # 'ready', or a late message of a run already settled
        if kind == "started":
            run._started(data)
        elif kind == "snap":
            with self._lock:
                parking = run.id in self._parking
            run._update(data, parking=parking)
            self._learn_speed(run, data["snap"])
            if run.state == "paused" and self._queue:
                self._park_paused()
        elif kind == "note":
            with run._lock:
                run.message = data
        elif kind in ("ended", "failed"):
            if kind == "ended" and data.get("checkpoint") is not None:
                # decoded here, not under the lock: building a model from bytes takes a while
                try:
                    data = {**data, "loaded": load_checkpoint(data["checkpoint"])}
                except Exception as e:    # the run ends as an error; its slot is freed all the same
                    kind, data = "failed", f"its checkpoint could not be read back: {type(e).__name__}: {e}"
            # The slot is free and its recycling decided before anyone waiting on the run wakes up, so
            # what they see next (the pool's status, a new run's dispatch) already follows this end.
            with self._lock:
                slot.run = None
                slot.served += 1
                recycle = self.recycle_after and slot.served >= self.recycle_after
                slot.draining = bool(recycle)
                wish = self._parking.pop(run.id, None)          # None: not being parked
                parked = kind == "ended" and wish is not None and self._parked_end(run, wish, data)
            if not parked and kind == "ended":
                snap = data["snap"]
                self._learn_speed(run, snap)
                run._finish(snap.state, snap.message, data)
            elif not parked:
                run._finish("error", data)
            if recycle:
                self._replace(slot, exit_first=True)
            self._dispatch()

    def _learn_speed(self, run: RemoteRun, snap: Snapshot) -> None:
        if snap.images_per_s > 0 and snap.batch_size:
            self._speed[run.spec.label] = snap.batch_size / snap.images_per_s

    def _check_memory(self, slot: _Slot) -> None:
        run = slot.run
        if run is None or not self.run_memory_mb or run.rss0_mb is None or run.state in STATES_WAITING:
            return
        rss = _rss_mb(slot.process.pid)
        if rss is not None and rss - run.rss0_mb > self.run_memory_mb:
            run.kill_reason = (f"it used {rss - run.rss0_mb:,.0f} MB, over the {self.run_memory_mb:,.0f} MB per run "
                               "this server allows, and was stopped")
            try:
                os.kill(slot.process.pid, signal.SIGKILL)
            except OSError:
                pass

    def _worker_died(self, slot: _Slot) -> None:
        code = slot.process.exitcode
        run = slot.run
        if run is not None:
            if run.kill_reason:
                why = run.kill_reason
            elif code is not None and code < 0:
                try:
                    name = signal.Signals(-code).name
                except ValueError:
                    name = f"signal {-code}"
                why = (f"its worker process was killed ({name}"
                       + (": out of memory, or ended from outside" if -code == signal.SIGKILL else "") + ")")
            else:
                why = f"its worker process exited unexpectedly (exit code {code})"
            at = run.checkpoint_bytes is not None and "from where it last ended" or "from its start"
            run._finish("error", f"Training failed at step {run.step}: {why}. The app and other runs carry on; "
                                 f"start it again to train {at}.")
        with self._lock:
            slot.run = None
            slot.draining = True
            if run is not None:
                self._parking.pop(run.id, None)
        self._replace(slot)
        self._dispatch()

    def _replace(self, slot: _Slot, exit_first: bool = False) -> None:
        with self._lock:
            if self._closed or slot.retired:
                return
            if exit_first:
                try:
                    slot.cmd_q.put(("exit", None))
                except (OSError, ValueError):
                    pass
            slot.retire()
            self._slots[slot.index] = _Slot(self, slot.index)
            self.replaced += 1
        if exit_first:
            slot.process.join(5)
        if slot.process.is_alive():
            slot.process.kill()
        slot.process.join(1)

    # --- shutting down --------------------------------------------------------------------------------
    def close(self, timeout: float = 10.0) -> None:
        """Stop every run (each ends with its checkpoint, as a stop does), then the workers."""
        with self._lock:
            if self._closed:
                return
            waiting = list(self._queue)
            active = [s.run for s in self._slots if s.run is not None]
            parked = list(self._parked.values())
            self._parked.clear()
        for run in waiting:
            self._cancel(run)
        for run in parked:
            run._finish("stopped", f"stopped at step {run.step}: the server shut down")
        for run in active:
            run.stop()
        end = time.monotonic() + timeout
        for run in active:
            run.wait(max(0.0, end - time.monotonic()))
        with self._lock:
            self._closed = True
            slots = list(self._slots)
        for slot in slots:
            try:
                slot.cmd_q.put(("exit", None))
            except (OSError, ValueError):
                pass
        for slot in slots:
            slot.process.join(max(0.5, end - time.monotonic()))
            if slot.process.is_alive():
                slot.process.kill()
                slot.process.join(1)
            slot.retire()
        for run in active:
            if run.is_alive:
                run._finish("stopped", "stopped: the server shut down")

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# --- one pool per server process --------------------------------------------------------------------
_SHARED: Pool | None = None
_SHARED_LOCK = threading.Lock()


def _env_number(name: str, default: float | None) -> float | None:
    raw = os.environ.get(name, "")
    try:
        return float(raw) if raw.strip() else default
    except ValueError:
        raise ValueError(f"${name}={raw!r} is not a number") from None


def shared_pool() -> Pool:
    """This process's pool (created on first use, closed at exit), sized by the server's settings:
    $GENLIB_POOL_WORKERS (default ``default_workers()``), $GENLIB_POOL_RUNS_PER_SESSION (2),
    $GENLIB_POOL_RUN_MB (per run; default 2048), $GENLIB_POOL_QUEUE (200), $GENLIB_POOL_RECYCLE (20 runs)."""
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is None or _SHARED._closed:
            import atexit
            _SHARED = Pool(int(_env_number("GENLIB_POOL_WORKERS", 0) or 0) or None,
                           max_runs_per_owner=int(_env_number("GENLIB_POOL_RUNS_PER_SESSION", 2)),
                           run_memory_mb=_env_number("GENLIB_POOL_RUN_MB", 2048),
                           max_queue=int(_env_number("GENLIB_POOL_QUEUE", 200)),
                           recycle_after=int(_env_number("GENLIB_POOL_RECYCLE", 20)))
            atexit.register(_SHARED.close)
        return _SHARED
