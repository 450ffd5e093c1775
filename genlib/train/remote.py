"""``RemoteRun``: the parent's handle on a run in a training pool (``genlib.train.pool``), with a
Trainer's controls and snapshots; its state comes from the worker's messages, read by the pool."""
from __future__ import annotations

import collections
import dataclasses
import math
import os
import threading
import time
from typing import TYPE_CHECKING, Any, Callable

import torch

from ..checkpoint import load_checkpoint
from .history import RecordedRun, Snapshot
from .runspec import DataInfo, RunSpec
from .trainer import Event, TrainConfig

if TYPE_CHECKING:
    from .pool import Pool

STATES_WAITING = ("queued", "starting")


@dataclasses.dataclass
class RemoteSnapshot(Snapshot):
    """A ``Snapshot`` of a run in the pool, plus where it stands in the queue."""

    queue_place: int | None = None     # 1 = starts next; None when not waiting
    wait_s: float | None = None        # estimated seconds until it starts; None: not waiting, or unknown
    worker_pid: int | None = None      # the process training it
    parked: bool = False               # paused, off any worker (it gave its worker to a waiting run)


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


class RemoteRun:
    """A run in a ``Pool``, with a Trainer's control surface: ``snapshot()``, ``pause()``,
    ``resume()``, ``step_once()``, ``stop()``, ``extend(n)``, ``set_learning_rates(**rates)``,
    ``start()`` (continue after an end), ``wait()`` / ``join()``, ``recorded_run()``.

    ``state``: 'queued', 'starting', then the Trainer's ('running', 'paused', 'done', 'stopped',
    'error'). ``model`` is a CPU copy for the UI: the config at first, the trained weights once the
    run ended (``checkpoint_bytes``: the run as a genlib checkpoint). ``events``: the latest Events
    (without sample grids: those are in the snapshot); ``callbacks`` are called with each, on the
    pool's reader thread.
    """

    def __init__(self, pool: Pool, run_id: int, spec: RunSpec, owner: str, name: str, model) -> None:
        self.pool, self.id, self.spec, self.owner, self.name = pool, run_id, spec, owner, name
        self.model = model
        self.state, self.message = "queued", ""
        self.events: collections.deque[Event] = collections.deque(maxlen=500)
        self.callbacks: list[Callable[[Event], Any]] = []
        self.checkpoint_bytes: bytes | None = None
        self.submitted_at = time.monotonic()
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self.worker_pid: int | None = None
        self.rss0_mb: float | None = None
        self.kill_reason = ""
        self.fixed_z: torch.Tensor | None = None        # the fixed noise and labels, once the run ended
        self.fixed_labels: torch.Tensor | None = None
        self.device = torch.device("cpu")               # the worker's, once started
        self._snap: Snapshot | None = None
        self._grids: dict[int, torch.Tensor] = {}
        self._panel: Any = None
        self._frozen: tuple[int, Any] | None = None
        self.held = False           # its owner's last word was pause or step (not resume): it may be parked
        self._lock = threading.Lock()
        self._ended = threading.Event()

    def __repr__(self) -> str:
        return f"RemoteRun({self.name!r}, owner={self.owner!r}, state={self.state!r})"

    # --- state ----------------------------------------------------------------------------------
    @property
    def config(self) -> TrainConfig:
        return self.spec.config

    @property
    def is_alive(self) -> bool:
        """Waiting for a worker or training in one (paused included): not ended."""
        return not self._ended.is_set()

    @property
    def step(self) -> int:
        return self._snap.step if self._snap is not None else 0

    @property
    def queue_place(self) -> int | None:
        return self.pool.place(self)

    # what save_checkpoint / model_card read of a trainer, so an ended RemoteRun saves like a Trainer
    @property
    def data(self) -> DataInfo | None:
        return self.spec.data_info

    @property
    def epoch(self) -> float:
        return self._snap.epoch if self._snap is not None else 0.0

    @property
    def elapsed(self) -> float:
        return self._snap.elapsed if self._snap is not None else 0.0

    @property
    def batch_size(self) -> int:
        return self._snap.batch_size if self._snap is not None else self.spec.config.batch_size

    def panel(self) -> Any:
        """The run's ``Trainer.panel()`` as its worker last sent it (with a new measurement), or None."""
        with self._lock:
            return self._panel

    def snapshot(self) -> RemoteSnapshot:
        with self._lock:
            snap, state, message = self._snap, self.state, self.message
            grids = dict(self._grids)
        place = self.pool.place(self) if state == "queued" else None
        parked = state == "paused" and self.pool.is_parked(self)
        wait = self.pool.wait_estimate(self) if place is not None else None
        if place is not None:
            message = (f"waiting for a free worker: {_ordinal(place)} in line, "
                       + (f"about {_duration(wait)}" if wait is not None else "no estimate yet"))
        elif state == "starting":
            message = "starting in a worker process"
        if snap is None:
            return RemoteSnapshot(state=state, step=0, total_steps=self.spec.config.steps, epoch=0.0, losses={},
                                  history={}, metrics={}, samples=[], images_per_s=0.0, elapsed=0.0, eta=math.nan,
                                  message=message, queue_place=place, wait_s=wait, worker_pid=self.worker_pid,
                                  parked=parked)
        fields = {f.name: getattr(snap, f.name) for f in dataclasses.fields(Snapshot)}
        fields.update(state=state, message=message, total_steps=max(snap.total_steps, self.spec.config.steps),
                      samples=[(s, grids[s]) for s, _ in snap.samples if s in grids])
        return RemoteSnapshot(**fields, queue_place=place, wait_s=wait, worker_pid=self.worker_pid, parked=parked)

    def recorded_run(self, max_points: int | None = None) -> RecordedRun:
        return RecordedRun.from_snapshot(self.snapshot(), max_points)

    def frozen_model(self):
        """The trained model on the CPU once the run ended (None while it waits or trains, or when
        the worker died before the first end)."""
        if self.is_alive or self.checkpoint_bytes is None:
            return None
        key = len(self.checkpoint_bytes), self.step
        if self._frozen is None or self._frozen[0] != key:
            self._frozen = (key, load_checkpoint(self.checkpoint_bytes).model)
        return self._frozen[1]

    def wait(self, timeout: float | None = None) -> str:
        """Block until the run ends (or ``timeout``); returns its state."""
        self._ended.wait(timeout)
        return self.state

    def join(self, timeout: float | None = None) -> None:
        self._ended.wait(timeout)

    # --- controls (any thread) ------------------------------------------------------------------
    # A run still in the queue takes a control into its spec (read when it starts); a run handed to a
    # worker ('starting' included) takes it through that worker's queue, after its "run" message.
    # A paused run may give its worker to a waiting run (``Pool._park_paused``): it stays 'paused'
    # with its checkpoint, and a resume or a step queues it again ('parked' below).
    # ``held`` (may it be parked) is set under the pool's lock with the control (``always``).
    def _hold(self, held: bool) -> Callable[[], None]:
        return lambda: setattr(self, "held", held)

    def pause(self) -> None:
        def queued():
            self.spec.start_paused = True

        def parked():
            queued()
            self.pool._unpark(self, "hold")
        self.pool._control(self, ("pause", self.id), queued=queued, parked=parked, always=self._hold(True))

    def resume(self) -> None:
        def queued():
            self.spec.start_paused, self.spec.start_steps = False, 0

        def parked():
            queued()
            self.pool._unpark(self, "go")
        self.pool._control(self, ("resume", self.id), queued=queued, parked=parked, always=self._hold(False))

    def step_once(self) -> None:
        """While paused, one more step; on an ended run, one step more than it had, where it ends again
        (a run that ended on its time budget drops the budget: ``TrainConfig.extended``)."""
        if not self.is_alive:
            if self.step >= self.spec.config.steps or self.spec.config.max_seconds:
                self.extend(1)
            self.spec.start_paused, self.spec.start_steps = True, 1
            self.held = True                  # (not in the pool yet: no lock needed)
            self.start()
            return

        def queued():
            self.spec.start_paused, self.spec.start_steps = True, self.spec.start_steps + 1

        def parked():
            queued()
            self.pool._unpark(self, "go")
        self.pool._control(self, ("step", self.id), queued=queued, parked=parked, always=self._hold(True))

    def stop(self) -> None:
        self.pool._control(self, ("stop", self.id), queued=lambda: self.pool._cancel(self),
                           parked=lambda: self.pool._unpark(self, "stop"), always=self._hold(False))

    def extend(self, steps: int) -> None:
        def always():
            self.spec.config = self.spec.config.extended(self.step, steps)     # as Trainer.extend
        self.pool._control(self, ("extend", self.id, steps), always=always)

    def set_learning_rates(self, **rates: float) -> None:
        """Validated on the UI's copy first (ValueError); applied in the worker now or at the next start."""
        self.model.set_learning_rates(**rates)
        self.pool._control(self, ("lr", self.id, rates), always=lambda: self.spec.learning_rates.update(rates))

    def start(self) -> None:
        """Continue an ended run (after ``extend``, a stop, an error): it queues again and goes on from
        where it ended, with its curves. After a worker died it goes on from its last end, or the start."""
        if self.is_alive:
            self.resume()
            return
        if self.checkpoint_bytes is not None:
            self.spec.model = self.checkpoint_bytes
        # rates changed on the UI's copy (``run.model.set_learning_rates``, as for a local Trainer) go too
        self.spec.learning_rates.update({f: getattr(self.model.config, f) for f in self.model.lr_fields.values()})
        self.pool._requeue(self)

    def save(self, path: str | os.PathLike) -> None:
        """Write the run as it last ended (``checkpoint_bytes``) to ``path``, atomically."""
        if self.checkpoint_bytes is None:
            raise ValueError(f"{self.name} has not ended yet: nothing to save")
        tmp_path = f"{os.fspath(path)}.tmp{os.getpid()}"
        with open(tmp_path, "wb") as f:
            f.write(self.checkpoint_bytes)
        os.replace(tmp_path, path)

    # --- from the pool's reader thread ----------------------------------------------------------
    def _started(self, info: dict[str, Any]) -> None:
        with self._lock:
            self.state, self.message = "running", ""
            self.worker_pid, self.rss0_mb, self.device = info["pid"], info["rss_mb"], torch.device(info["device"])
            self.started_at = time.monotonic()

    def _update(self, msg: dict[str, Any], parking: bool = False) -> None:
        """A worker's snapshot. ``parking``: the worker is ending the run to park it (``_park``), so
        the stop it makes is not the owner's: the run shows as paused, without a 'stopped' event."""
        if parking:
            snap = msg["snap"]
            if snap.state == "stopped":
                snap = dataclasses.replace(snap, state="paused", message=(
                    f"paused at step {snap.step}; its worker went to a waiting run: it queues again when resumed"))
            msg = {**msg, "snap": snap, "events": [e for e in msg["events"] if e.kind != "stopped"]}
        snap: Snapshot = msg["snap"]
        with self._lock:
            self._grids.update(msg["grids"])
            keep = {s for s, _ in snap.samples}
            self._grids = {s: g for s, g in self._grids.items() if s in keep}
            self._snap = snap
            if msg.get("panel") is not None:    # (a run that goes on in another worker keeps its last)
                self._panel = msg["panel"]
            if self.state not in ("error",) or snap.state == "error":
                self.state, self.message = snap.state, snap.message
        for ev in msg["events"]:
            self.events.append(ev)
            for cb in list(self.callbacks):
                try:
                    cb(ev)
                except Exception:   # a UI callback must not take the reader down
                    pass

    def _take_checkpoint(self, msg: dict[str, Any]) -> None:
        self.checkpoint_bytes = msg["checkpoint"]
        self.spec.resume = msg["resume"]
        ckpt = msg.get("loaded") or load_checkpoint(self.checkpoint_bytes)   # the pool decodes it first
        self.model, self.fixed_z, self.fixed_labels = ckpt.model, ckpt.fixed_z, ckpt.fixed_labels

    def _park(self, msg: dict[str, Any]) -> None:
        """Off its worker, still paused: the worker ended it with this checkpoint, which it goes on from."""
        self._update(msg, parking=True)
        self._take_checkpoint(msg)
        self.spec.model = self.checkpoint_bytes

    def _finish(self, state: str, message: str, msg: dict[str, Any] | None = None) -> None:
        if msg is not None:
            self._update(msg)
            if msg.get("checkpoint") is not None:
                self._take_checkpoint(msg)
                self.spec.learning_rates = {}
        with self._lock:
            self.state, self.message = state, message
            self.ended_at = time.monotonic()
            self.spec.start_paused, self.spec.start_steps = False, 0
        self._ended.set()
