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
"""
from __future__ import annotations

import collections
import dataclasses
import heapq
import io
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

from ..checkpoint import load_checkpoint, save_checkpoint
from ..data import Dataset, load_dataset
from .history import RecordedRun, Snapshot
from .trainer import Event, TrainConfig, Trainer

EVENT_QUEUE = 32          # messages a worker may have in flight to the parent; a full queue drops snapshots
PUBLISH_S = 0.25          # seconds between a worker's snapshots (and at once on pauses, errors, the end)
WORKER_BASE_MB = 60.0     # estimate_memory_mb: a run's own allocations beyond weights, data and activations
ACTIVATION_FACTOR = 40    # estimate_memory_mb: activation bytes per input byte of a float batch (see below)
METRIC_MB = 80.0          # estimate_memory_mb: a live metric (classifier, reference statistics): measured +59 MB
STATES_WAITING = ("queued", "starting")


class PoolLimitError(RuntimeError):
    """A run the pool refuses (too many runs for one owner, too much memory, a full queue); the
    message is one line a user can act on."""


def default_workers() -> int:
    """GPUs when there are any (one run per GPU), else the cores less one, which stays for the UI."""
    if torch.cuda.is_available():
        return torch.cuda.device_count()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores - 1)


def _rss_mb(pid: int | None = None, field: str = "RssAnon") -> float | None:
    """A process's resident anonymous memory in MB (its heap: tensors, Python objects; not the shared
    library pages every torch process maps, which 'VmRSS' would add); Linux /proc, None elsewhere."""
    try:
        with open(f"/proc/{pid or 'self'}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


# --- what a worker is sent ----------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class DataRef:
    """A dataset the worker loads itself (cached per worker) instead of receiving its tensors:
    ``load_dataset(name, split=split, root=root, **kwargs)``, then ``subset(n, seed)`` when n > 0."""

    name: str
    split: str = "train"
    root: str | None = None
    subset: int = 0
    subset_seed: int = 0
    kwargs: tuple[tuple[str, Any], ...] = ()

    def load(self) -> Dataset:
        ds = load_dataset(self.name, split=self.split, root=self.root, download=False, **dict(self.kwargs))
        return ds.subset(self.subset, self.subset_seed) if self.subset else ds


@dataclasses.dataclass(frozen=True)
class DataInfo:
    """What a model card says of a run's data (``RemoteRun.data``): the dataset stays in the worker."""

    name: str
    split: str
    note: str
    size: int
    num_classes: int

    @classmethod
    def of(cls, data: Dataset) -> DataInfo:
        return cls(data.name, data.split, data.note, len(data), data.num_classes)

    def __len__(self) -> int:
        return self.size


@dataclasses.dataclass
class RunSpec:
    """Everything a worker needs to train one run; picklable. Build one with ``RunSpec.new``.

    ``model``: a genlib checkpoint (bytes): the weights to start from, optimiser state, config.
    ``data``: a ``DataRef`` (loaded in the worker) or a ``Dataset`` (sent whole: an upload).
    ``metric``: a picklable factory called once in the worker, returning the Trainer's ``metric_fn``
    (e.g. ``functools.partial(genlib.metrics.live_metric_fn, 'mnist')``).
    ``label``: runs with the same label cost the same per step (the queue's wait estimates).
    """

    model: bytes
    data: DataRef | Dataset
    config: TrainConfig
    device: str | None = None                # None / 'auto': the worker's device
    metric: Callable[[], Callable[[Any], dict[str, float]]] | None = None
    memory_mb: float | None = None           # declared need; None: estimate_memory_mb's
    label: str = ""
    card: dict[str, Any] = dataclasses.field(default_factory=dict)   # extra model-card fields of the result
    resume: bytes | None = None              # the trainer's state from an earlier part of this run
    learning_rates: dict[str, float] = dataclasses.field(default_factory=dict)
    start_paused: bool = False
    start_steps: int = 0                     # step_once budget when it starts paused
    data_info: DataInfo | None = None        # for model cards (RunSpec.new fills it)

    @classmethod
    def new(cls, model, data: Dataset, config: TrainConfig, *, ref: DataRef | None = None, **kw: Any) -> RunSpec:
        """A spec for a new run of ``model`` on ``data``: the worker loads ``ref`` when given (the
        same dataset, by name: nothing large crosses), else receives ``data`` itself."""
        buf = io.BytesIO()
        save_checkpoint(buf, model)
        kw.setdefault("label", f"{model.family}:{model.num_parameters()}:{data.name}:{config.batch_size}")
        if kw.get("memory_mb") is None:
            kw["memory_mb"] = estimate_memory_mb(model, data, config) + (METRIC_MB if kw.get("metric") else 0.0)
        kw.setdefault("data_info", DataInfo.of(data))
        return cls(model=buf.getvalue(), data=ref if ref is not None else data, config=config, **kw)


def estimate_memory_mb(model, data: Dataset, config: TrainConfig) -> float:
    """What a run adds to a worker's memory, roughly: weights, gradients and two Adam moments
    (4 x the parameters), the dataset's tensors, activations (``ACTIVATION_FACTOR`` x the float
    batch) and ``WORKER_BASE_MB`` for the rest; ``RunSpec.new`` adds ``METRIC_MB`` for a live metric.
    The budget a server checks before queueing, not a measurement. Measured growth of a warmed-up
    worker's anonymous memory on this machine (declared in brackets), 200 steps, batch 64: digits
    vae 8 MB (62), digits dcgan 19 (65), MNIST dcgan 75 (83), MNIST vae 28 (85), MNIST dcgan with
    the live metric 134 (83 + 80)."""
    params = model.size_bytes() * 4
    data_bytes = data.x.element_size() * data.x.nelement() + data.y.element_size() * data.y.nelement()
    batch = min(config.batch_size, len(data)) * math.prod(data.shape) * 4
    return WORKER_BASE_MB + (params + data_bytes + ACTIVATION_FACTOR * batch) / 2**20


# --- the worker process ---------------------------------------------------------------------------
def _put(q, item, block: bool = False) -> bool:
    try:
        q.put(item, block=block, timeout=60 if block else None)
        return True
    except queue.Full:
        return False


def _capture(trainer: Trainer) -> bytes:
    """The Trainer's state beyond the model, so that a run continues in another worker with its
    curves, grids, step count and batch stream seed (pickled)."""
    with trainer._lock:
        state = {k: getattr(trainer, k) for k in
                 ("step", "elapsed", "history", "metric_history", "sample_history", "sample_seconds",
                  "metric_cost_s", "losses", "images_per_s", "fixed_z", "fixed_labels", "state", "message")}
    state["fixed_z"] = state["fixed_z"].cpu()
    state["fixed_labels"] = None if state["fixed_labels"] is None else state["fixed_labels"].cpu()
    state["batch_gen"] = trainer._batch_gen.get_state()
    return pickle.dumps(state)


def _restore(trainer: Trainer, blob: bytes) -> None:
    state = pickle.loads(blob)
    trainer._batch_gen.set_state(state.pop("batch_gen"))
    state["fixed_z"] = state["fixed_z"].to(trainer.device)
    if state["fixed_labels"] is not None:
        state["fixed_labels"] = state["fixed_labels"].to(trainer.device)
    for k, v in state.items():
        setattr(trainer, k, v)


class _DataCache:
    def __init__(self, size: int = 2) -> None:
        self.size, self.items = size, collections.OrderedDict()

    def get(self, ref: DataRef) -> Dataset:
        if ref not in self.items:
            self.items[ref] = ref.load()
            while len(self.items) > self.size:
                self.items.popitem(last=False)
        self.items.move_to_end(ref)
        return self.items[ref]


def _build(spec: RunSpec, cache: _DataCache, threads: int, device: str) -> Trainer:
    want = spec.device
    if want in (None, "auto") or (want == "cuda" and device.startswith("cuda")):
        want = device
    model = load_checkpoint(spec.model, device=want).model
    if spec.learning_rates:
        model.set_learning_rates(**spec.learning_rates)
    data = cache.get(spec.data) if isinstance(spec.data, DataRef) else spec.data
    config = dataclasses.replace(spec.config, threads=threads) if want == "cpu" else spec.config
    metric_fn = spec.metric() if spec.metric is not None else None
    trainer = Trainer(model, data, config, device=want, metric_fn=metric_fn)
    if spec.resume is not None:
        _restore(trainer, spec.resume)
    return trainer


def _apply(trainer: Trainer, cmd: tuple) -> None:
    kind = cmd[0]
    if kind == "pause":
        trainer.pause()
    elif kind == "resume":
        trainer.resume()
    elif kind == "step":
        trainer.step_once()
    elif kind == "stop":
        trainer.stop()
    elif kind == "extend":
        trainer.extend(int(cmd[2]))
    elif kind == "lr":
        trainer.model.set_learning_rates(**cmd[2])


class _Publisher:
    """Sends the run's snapshot with the grids and events the parent lacks; a full queue drops it
    (the next one carries the rest)."""

    def __init__(self, evt_q, run_id: int) -> None:
        self.evt_q, self.run_id = evt_q, run_id
        self.sent: set[int] = set()
        self.events: collections.deque[Event] = collections.deque(maxlen=256)
        self.wake = threading.Event()

    def on_event(self, ev: Event) -> None:       # on the trainer's thread
        self.events.append(dataclasses.replace(ev, samples=None))
        if ev.kind not in ("progress", "samples", "metric"):
            self.wake.set()

    def message(self, trainer: Trainer) -> dict[str, Any]:
        snap = trainer.snapshot()
        grids = {s: x for s, x in snap.samples if s not in self.sent}
        events = list(self.events)
        return {"snap": dataclasses.replace(snap, samples=[(s, None) for s, _ in snap.samples]),
                "grids": grids, "events": events}

    def publish(self, trainer: Trainer, kind: str = "snap", block: bool = False, **extra: Any) -> bool:
        msg = {**self.message(trainer), **extra}
        if _put(self.evt_q, (kind, self.run_id, pickle.dumps(msg)), block=block):
            self.sent.update(msg["grids"])
            for _ in msg["events"]:
                self.events.popleft()
            return True
        return False


def _serve(run_id: int, payload: bytes, cmd_q, evt_q, cache: _DataCache, threads: int, device: str,
           publish_s: float) -> bool:
    """Train one run to its end; returns False when the worker was told to exit meanwhile."""
    rss0 = _rss_mb()
    try:
        spec: RunSpec = pickle.loads(payload)
        trainer = _build(spec, cache, threads, device)
    except Exception as e:
        _put(evt_q, ("failed", run_id, pickle.dumps(f"could not start the run: {type(e).__name__}: {e}")), block=True)
        return True
    _put(evt_q, ("started", run_id, pickle.dumps({"pid": os.getpid(), "rss_mb": rss0, "device": str(trainer.device)})),
         block=True)
    pub = _Publisher(evt_q, run_id)
    trainer.callbacks.append(pub.on_event)
    if spec.start_paused:
        trainer.pause()
    for _ in range(spec.start_steps):
        trainer.step_once()
    trainer.start()
    keep_going, last, last_key = True, 0.0, None
    while True:
        alive = trainer.is_alive
        try:
            cmd = cmd_q.get(timeout=0.05)
        except queue.Empty:
            cmd = None
        if cmd is not None:
            if cmd[0] == "exit":
                keep_going = False
                trainer.stop()
            elif cmd[1] == run_id:
                try:
                    _apply(trainer, cmd)
                except Exception as e:   # a bad learning rate: say so, keep training
                    _put(evt_q, ("note", run_id, pickle.dumps(f"{type(e).__name__}: {e}")))
        if not alive:
            break
        if _orphaned():                      # nobody to report to: stop training, leave
            trainer.stop()
            trainer.join()
            return False
        now = time.monotonic()
        key = (trainer.step, trainer.state, trainer.message, len(pub.events), len(trainer.metric_history))
        if pub.wake.is_set() or (now - last >= publish_s and key != last_key):
            pub.wake.clear()
            if pub.publish(trainer):
                last_key = key
            last = now
    trainer.join()
    try:
        buf = io.BytesIO()
        save_checkpoint(buf, trainer.model, trainer, **spec.card)
        ckpt, resume = buf.getvalue(), _capture(trainer)
    except Exception as e:
        ckpt, resume = None, None
        trainer.message = f"{trainer.message} (the model could not be saved: {type(e).__name__}: {e})"
    pub.publish(trainer, "ended", block=True, checkpoint=ckpt, resume=resume)
    return keep_going


def _warm_up() -> None:
    """One tiny step end to end before the first run, so that the libraries a run loads on first use
    (scikit-learn's digits, the model and optimiser code: ~170 MB measured) are not counted as that
    run's memory, and the first run starts as fast as the rest."""
    from ..models import make_model
    data = load_dataset("digits").subset(64)
    model = make_model("vae", data)
    x, y = data.get(torch.arange(len(data)))
    model.training_step(x, y)
    buf = io.BytesIO()
    save_checkpoint(buf, model)
    load_checkpoint(buf.getvalue())


_PARENT = os.getppid()


def _orphaned() -> bool:
    """The server process that started this worker is gone (killed without closing its pool)."""
    return os.getppid() != _PARENT


def _worker_main(index: int, cmd_q, evt_q, threads: int, device: str, publish_s: float) -> None:
    """A pool slot's process: one run after another until told to exit, or until the server is gone."""
    global _PARENT
    _PARENT = os.getppid()
    signal.signal(signal.SIGINT, signal.SIG_IGN)     # Ctrl-C at the server reaches the parent, which closes us
    os.environ["GENLIB_THREADS"] = str(threads)
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(threads)
    except RuntimeError:
        pass
    if device.startswith("cuda"):
        torch.cuda.set_device(torch.device(device))
    _warm_up()
    _put(evt_q, ("ready", None, pickle.dumps({"pid": os.getpid(), "rss_mb": _rss_mb()})), block=True)
    cache = _DataCache()
    while True:
        try:
            cmd = cmd_q.get(timeout=1.0)
        except queue.Empty:
            if _orphaned():
                return
            continue
        if cmd[0] == "exit":
            return
        if cmd[0] == "run" and not _serve(cmd[1], cmd[2], cmd_q, evt_q, cache, threads, device, publish_s):
            return
        # anything else: a control for a run that already ended


# --- the parent's side ------------------------------------------------------------------------------
@dataclasses.dataclass
class RemoteSnapshot(Snapshot):
    """A ``Snapshot`` of a run in the pool, plus where it stands in the queue."""

    queue_place: int | None = None     # 1 = starts next; None when not waiting
    wait_s: float | None = None        # estimated seconds until it starts; None: not waiting, or unknown
    worker_pid: int | None = None      # the process training it


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
        self._frozen: tuple[int, Any] | None = None
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

    def snapshot(self) -> RemoteSnapshot:
        with self._lock:
            snap, state, message = self._snap, self.state, self.message
            grids = dict(self._grids)
        place = self.pool.place(self) if state == "queued" else None
        wait = self.pool.wait_estimate(self) if place is not None else None
        if place is not None:
            message = (f"waiting for a free worker: {_ordinal(place)} in line, "
                       + (f"about {_duration(wait)}" if wait is not None else "no estimate yet"))
        elif state == "starting":
            message = "starting in a worker process"
        if snap is None:
            return RemoteSnapshot(state=state, step=0, total_steps=self.spec.config.steps, epoch=0.0, losses={},
                                  history={}, metrics={}, samples=[], images_per_s=0.0, elapsed=0.0, eta=math.nan,
                                  message=message, queue_place=place, wait_s=wait, worker_pid=self.worker_pid)
        fields = {f.name: getattr(snap, f.name) for f in dataclasses.fields(Snapshot)}
        fields.update(state=state, message=message, total_steps=max(snap.total_steps, self.spec.config.steps),
                      samples=[(s, grids[s]) for s, _ in snap.samples if s in grids])
        return RemoteSnapshot(**fields, queue_place=place, wait_s=wait, worker_pid=self.worker_pid)

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
    def pause(self) -> None:
        self.pool._control(self, ("pause", self.id), queued=lambda: setattr(self.spec, "start_paused", True))

    def resume(self) -> None:
        def queued():
            self.spec.start_paused, self.spec.start_steps = False, 0
        self.pool._control(self, ("resume", self.id), queued=queued)

    def step_once(self) -> None:
        """While paused, one more step; on an ended run, one step more than it had (it then stays paused)."""
        if not self.is_alive:
            if self.step >= self.spec.config.steps:
                self.extend(1)
            self.spec.start_paused, self.spec.start_steps = True, 1
            self.start()
            return

        def queued():
            self.spec.start_paused, self.spec.start_steps = True, self.spec.start_steps + 1
        self.pool._control(self, ("step", self.id), queued=queued)

    def stop(self) -> None:
        self.pool._control(self, ("stop", self.id), queued=lambda: self.pool._cancel(self))

    def extend(self, steps: int) -> None:
        def always():
            self.spec.config = dataclasses.replace(self.spec.config, steps=self.spec.config.steps + steps)
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

    def _update(self, msg: dict[str, Any]) -> None:
        snap: Snapshot = msg["snap"]
        with self._lock:
            self._grids.update(msg["grids"])
            keep = {s for s, _ in snap.samples}
            self._grids = {s: g for s, g in self._grids.items() if s in keep}
            self._snap = snap
            if self.state not in ("error",) or snap.state == "error":
                self.state, self.message = snap.state, snap.message
        for ev in msg["events"]:
            self.events.append(ev)
            for cb in list(self.callbacks):
                try:
                    cb(ev)
                except Exception:   # a UI callback must not take the reader down
                    pass

    def _finish(self, state: str, message: str, msg: dict[str, Any] | None = None) -> None:
        if msg is not None:
            self._update(msg)
            if msg.get("checkpoint") is not None:
                self.checkpoint_bytes = msg["checkpoint"]
                self.spec.resume = msg["resume"]
                self.spec.learning_rates = {}
                ckpt = load_checkpoint(self.checkpoint_bytes)
                self.model, self.fixed_z, self.fixed_labels = ckpt.model, ckpt.fixed_z, ckpt.fixed_labels
        with self._lock:
            self.state, self.message = state, message
            self.ended_at = time.monotonic()
            self.spec.start_paused, self.spec.start_steps = False, 0
        self._ended.set()


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
                 always: Callable[[], Any] | None = None) -> None:
        """``always()`` (a change to the run's spec), then: a run in the queue gets ``queued()``, a run
        in a worker gets ``cmd`` through the worker's queue (an ended run nothing more). Decided under
        the lock that dispatching takes, so a run being handed to a worker gets the control exactly once."""
        with self._lock:
            if always is not None:
                always()
            if run in self._queue:
                if queued is not None:
                    queued()
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
                if slot.run is None and not slot.retired:
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
        return per_step * max(0, run.spec.config.steps - run.step) + 2.0   # + starting in a worker

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

    def forget(self, run: RemoteRun) -> None:
        """Drop an ended run from the pool's list (its handle keeps working as a record)."""
        with self._lock:
            if not run.is_alive:
                self._runs.pop(run.id, None)

    def status(self) -> dict[str, Any]:
        """Workers, what they train, the queue: for a server page or a load test."""
        with self._lock:
            return {"workers": self.size, "busy": sum(s.run is not None for s in self._slots),
                    "queued": len(self._queue), "replaced": self.replaced,
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
            run._update(data)
            self._learn_speed(run, data["snap"])
        elif kind == "note":
            with run._lock:
                run.message = data
        elif kind in ("ended", "failed"):
            if kind == "ended":
                snap = data["snap"]
                self._learn_speed(run, snap)
                run._finish(snap.state, snap.message, data)
            else:
                run._finish("error", data)
            with self._lock:
                slot.run = None
                slot.served += 1
                recycle = self.recycle_after and slot.served >= self.recycle_after
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
        for run in waiting:
            self._cancel(run)
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
