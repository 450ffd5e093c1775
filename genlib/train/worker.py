"""The worker process of a training pool (``genlib.train.pool``): one long-lived process per pool
slot that trains one run after another. A run is an ordinary ``Trainer`` on its thread; beside it a
loop applies the parent's commands (pause, step, resume, stop, extend, learning rates) and publishes
snapshots, grids and events a few times a second; at the end the trained run goes back as a genlib
checkpoint. A worker whose parent is gone stops training and leaves."""
from __future__ import annotations

import collections
import dataclasses
import io
import os
import pickle
import queue
import signal
import threading
import time
from typing import Any

import torch

from ..checkpoint import load_checkpoint, save_checkpoint
from ..data import Dataset, load_dataset
from .runspec import DataRef, RunSpec, _rss_mb
from .trainer import Event, Trainer

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


def _apply(trainer: Trainer, cmd: tuple) -> int:
    """Apply a control; returns the Step clicks a stop dropped (see ``RunControl.stop``), else 0."""
    kind = cmd[0]
    if kind == "pause":
        trainer.pause()
    elif kind == "resume":
        trainer.resume()
    elif kind == "step":
        trainer.step_once()
    elif kind == "stop":
        return trainer.stop()
    elif kind == "extend":
        trainer.extend(int(cmd[2]))
    elif kind == "lr":
        trainer.model.set_learning_rates(**cmd[2])
    return 0


class _Publisher:
    """Sends the run's snapshot with the grids and events the parent lacks; a full queue drops it
    (the next one carries the rest)."""

    def __init__(self, evt_q, run_id: int) -> None:
        self.evt_q, self.run_id = evt_q, run_id
        self.sent: set[int] = set()
        self.events: collections.deque[Event] = collections.deque(maxlen=256)
        self.wake = threading.Event()
        self.panel_of = -1           # the metric count when the metric_fn's panel was last sent

    def on_event(self, ev: Event) -> None:       # on the trainer's thread
        self.events.append(dataclasses.replace(ev, samples=None))
        if ev.kind not in ("progress", "samples", "metric"):
            self.wake.set()

    def message(self, trainer: Trainer) -> dict[str, Any]:
        snap = trainer.snapshot()
        grids = {s: x for s, x in snap.samples if s not in self.sent}
        events = list(self.events)
        msg = {"snap": dataclasses.replace(snap, samples=[(s, None) for s, _ in snap.samples]),
               "grids": grids, "events": events}
        measured = len(snap.metrics.get("step", []))
        if measured != self.panel_of:          # a new measurement: its panel too (Trainer.panel)
            msg["panel"], msg["panel_of"] = trainer.panel(), measured
        return msg

    def publish(self, trainer: Trainer, kind: str = "snap", block: bool = False, **extra: Any) -> bool:
        msg = {**self.message(trainer), **extra}
        if _put(self.evt_q, (kind, self.run_id, pickle.dumps(msg)), block=block):
            self.sent.update(msg["grids"])
            self.panel_of = msg.get("panel_of", self.panel_of)
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
    steps_owed = 0          # Step clicks a stop overtook (a park's): the parent queues the run for them
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
                    steps_owed += _apply(trainer, cmd)
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
    pub.publish(trainer, "ended", block=True, checkpoint=ckpt, resume=resume, steps_owed=steps_owed)
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
