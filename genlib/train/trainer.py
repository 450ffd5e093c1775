"""A generic training loop. Nothing in this file knows what a VAE or a GAN is.

It calls ``model.training_step(x, y)`` on shuffled batches and reports progress as ``Event``s to
callbacks, plus a lock-protected ``snapshot()`` that another thread (a UI) can poll. It can be
paused, resumed, stepped once and stopped from another thread.

Named losses come back from the model as device tensors; they are read on the host only once per
``log_every`` steps, so the hot loop never waits for the device.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import threading
import time
from typing import Any, Callable

import torch

from .device import configure_threads, pick_device


@dataclasses.dataclass
class TrainConfig:
    steps: int = 2000            # optimisation steps in total (a GAN step = one D update)
    batch_size: int = 64         # 64 balances gradient noise and speed for 28x28 models on a CPU
    seed: int = 0                # seeds weights' updates, batch order and the fixed noise
    log_every: int = 25          # steps between progress events (one host sync each)
    sample_every: int = 250      # steps between fixed-noise sample grids
    n_fixed: int = 64            # size of the fixed noise batch (an 8x8 grid)
    history_points: int = 1000   # loss points kept per curve; older points get averaged together
    max_snapshots: int = 40      # fixed-noise grids kept for scrubbing through training
    metric_every: int = 0        # steps between metric events (0 = off); needs a metric_fn
    threads: int = 0             # CPU threads; 0 = genlib.device.default_threads()

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "log_every", "sample_every", "n_fixed", "history_points",
                     "max_snapshots"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)!r} is invalid: must be >= 1")
        for name in ("metric_every", "threads"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}={getattr(self, name)!r} is invalid: must be >= 0")


@dataclasses.dataclass
class Event:
    kind: str                     # start, progress, samples, metric, paused, resumed, done, stopped, error
    step: int
    epoch: float
    losses: dict[str, float] = dataclasses.field(default_factory=dict)
    images_per_s: float = 0.0
    elapsed: float = 0.0          # seconds spent training (pauses excluded)
    eta: float = math.nan         # seconds left at the current speed
    samples: torch.Tensor | None = None   # uint8 (n, C, H, W) images, or float (n, 2) points
    metrics: dict[str, float] = dataclasses.field(default_factory=dict)
    message: str = ""


class History:
    """Loss curves in bounded memory: when a curve holds ``2 * max_points`` points, neighbouring
    points are averaged in pairs and new points are averaged over twice as many log intervals."""

    def __init__(self, max_points: int = 1000):
        self.max_points = max_points
        self.stride = 1                     # log intervals per stored point
        self.steps: list[float] = []
        self.values: dict[str, list[float]] = {}
        self._pending: list[tuple[int, dict[str, float]]] = []

    def append(self, step: int, values: dict[str, float]) -> None:
        self._pending.append((step, values))
        if len(self._pending) < self.stride:
            return
        pending, self._pending = self._pending, []
        self._add_point(self.steps, self.values, pending)
        if len(self.steps) >= 2 * self.max_points:
            self._halve()

    def _halve(self) -> None:
        self.steps = self.steps[1::2]
        self.values = {k: [(a + b) / 2 for a, b in zip(v[0::2], v[1::2])] for k, v in self.values.items()}
        self.stride *= 2

    @staticmethod
    def _add_point(steps: list[float], values: dict[str, list[float]],
                   group: list[tuple[int, dict[str, float]]]) -> None:
        """Append the mean of ``group`` at its last step; a key new to ``values`` is NaN before it."""
        steps.append(group[-1][0])
        for key in set(values) | {k for _, v in group for k in v}:
            vals = [v[key] for _, v in group if key in v]
            values.setdefault(key, [math.nan] * (len(steps) - 1)).append(sum(vals) / len(vals) if vals else math.nan)

    def to_dict(self) -> dict[str, list[float]]:
        """The stored points, then the group still filling up averaged so far: curves reach the last step."""
        steps, values = list(self.steps), {k: list(v) for k, v in self.values.items()}
        if self._pending:
            self._add_point(steps, values, self._pending)
        return {"step": steps, **values}

    def __len__(self) -> int:
        return len(self.steps)


@dataclasses.dataclass
class Snapshot:
    """A consistent copy of the trainer's state for a UI to draw."""

    state: str
    step: int
    total_steps: int
    epoch: float
    losses: dict[str, float]
    history: dict[str, list[float]]
    metrics: dict[str, list[float]]
    samples: list[tuple[int, torch.Tensor]]
    images_per_s: float
    elapsed: float
    eta: float
    message: str


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] floats -> uint8 on the CPU (points stay float)."""
    x = x.detach().float().cpu()
    return x if x.dim() == 2 else (x * 255).round_().clamp_(0, 255).to(torch.uint8)


class Trainer:
    """Trains ``model`` on ``data`` (a ``genlib.data.Dataset``) for ``config.steps`` steps.

    ``run()`` blocks; ``start()`` runs it on a background thread. ``pause()``, ``resume()``,
    ``step_once()`` and ``stop()`` may be called from any thread. After a stop, ``run()`` or
    ``start()`` continues from the same step; ``extend(n)`` adds steps to a finished run.
    """

    def __init__(self, model, data, config: TrainConfig | None = None, *, device=None,
                 callbacks: list[Callable[[Event], Any]] | None = None,
                 metric_fn: Callable[[Any], dict[str, float]] | None = None):
        self.config = config or TrainConfig()
        self.device = pick_device(device)
        self.model = model.to(self.device)
        for opt in model.optimizers().values():   # re-cast optimiser state onto the new device
            opt.load_state_dict(opt.state_dict())
        self.data = data.to(self.device)
        self.callbacks = list(callbacks or [])
        self.metric_fn = metric_fn
        self.step = 0
        self.elapsed = 0.0
        self.history = History(self.config.history_points)
        self.metric_history = History(self.config.history_points)
        self.snapshots: list[tuple[int, torch.Tensor]] = []
        self.state = "idle"
        self.message = ""
        self.losses: dict[str, float] = {}
        self.images_per_s = 0.0
        self._lock = threading.Lock()
        self._cond = threading.Condition()
        self._paused = False
        self._stop = False
        self._budget = 0            # steps allowed while paused (step_once)
        self._thread: threading.Thread | None = None
        self._last_good: dict[str, Any] | None = None
        gen = torch.Generator(device=self.device).manual_seed(self.config.seed)
        self.fixed_z = model.prior(self.config.n_fixed, generator=gen)
        self.fixed_labels = model.default_labels(self.config.n_fixed)
        self._batch_gen = torch.Generator(device=self.device).manual_seed(self.config.seed + 1)
        self._batches = None

    # --- control, from any thread ----------------------------------------------------------------
    def start(self) -> threading.Thread:
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError("this trainer is already running")
        self._thread = threading.Thread(target=self._run_quietly, name="genlib-trainer", daemon=True)
        self._thread.start()
        return self._thread

    def pause(self) -> None:
        with self._cond:
            self._paused = True
            self._cond.notify_all()

    def resume(self) -> None:
        with self._cond:
            self._paused = False
            self._cond.notify_all()

    def step_once(self) -> None:
        """While paused, run exactly one more step."""
        with self._cond:
            self._paused = True
            self._budget += 1
            self._cond.notify_all()

    def stop(self) -> None:
        """Stop after the current step. It also ends a pause, so a later run() or start() trains."""
        with self._cond:
            self._stop = True
            self._paused = False
            self._budget = 0
            self._cond.notify_all()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def extend(self, steps: int) -> None:
        """Allow ``steps`` more steps (for continuing a finished run)."""
        self.config = dataclasses.replace(self.config, steps=self.config.steps + steps)

    @property
    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def snapshot(self) -> Snapshot:
        with self._lock:
            return Snapshot(
                state=self.state, step=self.step, total_steps=self.config.steps, epoch=self.epoch,
                losses=dict(self.losses), history=self.history.to_dict(),
                metrics=self.metric_history.to_dict(), samples=list(self.snapshots),
                images_per_s=self.images_per_s, elapsed=self.elapsed, eta=self._eta(), message=self.message)

    # --- the loop ----------------------------------------------------------------------------------
    @property
    def batch_size(self) -> int:
        """The batch actually drawn: a dataset smaller than the configured batch gives all of it."""
        return min(self.config.batch_size, len(self.data))

    @property
    def epoch(self) -> float:
        return self.step / self.data.steps_per_epoch(self.config.batch_size)

    def _eta(self) -> float:
        if self.images_per_s <= 0:
            return math.nan
        return (self.config.steps - self.step) * self.batch_size / self.images_per_s

    def _emit(self, kind: str, **kw: Any) -> Event:
        ev = Event(kind=kind, step=self.step, epoch=self.epoch, images_per_s=self.images_per_s,
                   elapsed=self.elapsed, eta=self._eta(), **kw)
        for cb in self.callbacks:
            cb(ev)
        return ev

    def _set(self, **kw: Any) -> None:
        with self._lock:
            for k, v in kw.items():
                setattr(self, k, v)

    def _wait_if_paused(self) -> bool | None:
        """Block while paused. Returns None when the run should stop, else whether it waited."""
        waited = False
        with self._cond:
            if self._paused and self._budget == 0 and not self._stop:
                waited = True
                self._set(state="paused")
                self._emit("paused")
                while self._paused and self._budget == 0 and not self._stop:
                    self._cond.wait()
                if not self._stop:
                    self._set(state="running")
                    self._emit("resumed")
            if self._stop:
                return None
            if self._paused:
                self._budget -= 1
            return waited

    def _run_quietly(self) -> None:
        try:
            self.run()
        except Exception:   # already recorded in state and message by run()
            pass

    def run(self) -> str:
        """Train until done, stopped or diverged. Returns the final state."""
        try:
            return self._loop()
        except Exception as e:
            msg = f"Training failed at step {self.step}: {type(e).__name__}: {e}"
            self._set(state="error", message=msg)
            self._emit("error", message=msg)
            raise

    def _loop(self) -> str:
        cfg = self.config
        if cfg.threads or self.device.type == "cpu":
            configure_threads(cfg.threads or None)
        torch.manual_seed(cfg.seed + self.step)
        with self._cond:
            self._stop = False
        if self._batches is None:
            self._batches = self.data.batches(cfg.batch_size, generator=self._batch_gen)
        self.model.train()
        self._set(state="running", message="")
        self._remember_good()
        self._emit("start")
        if self.step == 0:
            self._take_samples()

        acc: dict[str, list[torch.Tensor]] = {}
        t_last, step_last = time.perf_counter(), self.step
        while self.step < self.config.steps:
            waited = self._wait_if_paused()
            if waited is None:
                break
            if waited:  # the pause is not training time
                t_last, step_last = time.perf_counter(), self.step
            x, y = next(self._batches)
            for k, v in self.model.training_step(x, y).items():
                acc.setdefault(k, []).append(v)
            self.step += 1

            step = self.step
            last = step == self.config.steps
            if step % cfg.log_every == 0 or last or self._paused or self._stop:
                now = time.perf_counter()
                keys = list(acc)
                means = torch.stack([torch.stack(acc[k]).float().mean() for k in keys]).tolist()  # one sync
                acc = {}
                losses = dict(zip(keys, means))
                dt = now - t_last
                ips = (step - step_last) * self.batch_size / dt if dt > 0 else 0.0
                self._set(losses=losses, images_per_s=ips, elapsed=self.elapsed + dt)
                t_last, step_last = now, step
                bad = [k for k, v in losses.items() if not math.isfinite(v)]
                if bad:
                    return self._diverged(bad)
                with self._lock:
                    self.history.append(step, losses)
                self._remember_good()
                self._emit("progress", losses=losses)
            if step % cfg.sample_every == 0 or last:
                self._take_samples()
            if cfg.metric_every and self.metric_fn is not None and (step % cfg.metric_every == 0 or last):
                t0 = time.perf_counter()
                metrics = self.metric_fn(self.model)
                self.model.train()
                t_last += time.perf_counter() - t0       # metric time is not training time
                with self._lock:
                    self.metric_history.append(step, metrics)
                self._emit("metric", metrics=metrics)

        final = "done" if self.step >= self.config.steps else "stopped"
        self._set(state=final, message=f"{final} at step {self.step}")
        self._emit(final, losses=self.losses, message=self.message)
        return final

    def _take_samples(self) -> None:
        samples = to_uint8(self.model.sample(self.config.n_fixed, labels=self.fixed_labels, z=self.fixed_z))
        self.model.train()
        with self._lock:
            self.snapshots.append((self.step, samples))
            if len(self.snapshots) > self.config.max_snapshots:  # thin out, keep first and newest
                self.snapshots = self.snapshots[:-1:2] + [self.snapshots[-1]]
        self._emit("samples", samples=samples)

    # --- divergence ------------------------------------------------------------------------------
    def _remember_good(self) -> None:
        self._last_good = {
            "step": self.step,
            "model_steps": self.model.steps,
            "model": {k: v.detach().clone() for k, v in self.model.state_dict().items()},
            "optimizers": {k: copy.deepcopy(o.state_dict()) for k, o in self.model.optimizers().items()},
        }

    def _diverged(self, bad: list[str]) -> str:
        good = self._last_good
        self.model.load_state_dict(good["model"])
        for k, o in self.model.optimizers().items():
            o.load_state_dict(good["optimizers"][k])
        self.model.steps = good["model_steps"]
        failed_at = self.step
        msg = (f"Training diverged at step {failed_at}: {', '.join(bad)} became non-finite. "
               f"Weights restored from step {good['step']}; lower the learning rate and resume.")
        self._set(step=good["step"], state="error", message=msg)
        self._emit("error", message=msg)
        return "error"
