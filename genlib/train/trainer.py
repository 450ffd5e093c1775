"""A generic training loop and its events. Nothing in this file knows what a VAE or a GAN is.

It calls ``model.training_step(x, y)`` on shuffled batches and reports progress as ``Event``s to
callbacks, plus a lock-protected ``snapshot()`` that another thread (a UI) can poll. It can be
paused, resumed, stepped once and stopped from another thread (``control.RunControl``).

Named losses (and the models' gradient norms, ``history.GRAD_NORM_KEYS``) come back from the model
as device tensors; they are read on the host only once per ``log_every`` steps, so the hot loop
never waits for the device.

Every curve point, metric evaluation and sample grid also keeps its training seconds (pauses and
metric evaluations excluded), so a run can be replayed or overlaid by time: ``recorded_run()`` is
the run so far as a ``history.RecordedRun``, the record ``save_checkpoint`` stores.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import threading
import time
from typing import Any, Callable

import torch

from ..device import configure_threads, pick_device
from ..models.config import check_fields, setting
from ..sampling import eval_mode, prior_draw, seeded_generator, to_uint8
from .control import RunControl
from .history import History, RecordedRun, Snapshot


@dataclasses.dataclass
class TrainConfig:
    """How a run trains (the model's own settings are its config). Each field carries its help and
    valid range (``genlib.models.setting``), read back by ``field_specs(TrainConfig)`` and checked
    when the config is made, as the model configs are."""

    steps: int = setting(2000, "optimisation steps in total (a GAN step = one D update)", ge=1)
    # 64 balances gradient noise and speed for 28x28 models on a CPU
    batch_size: int = setting(64, "examples per optimisation step", ge=1)
    seed: int = setting(0, "seeds weights' updates, batch order and the fixed noise")
    log_every: int = setting(25, "steps between progress events (one host sync each)", ge=1)
    sample_every: int = setting(250, "steps between fixed-noise sample grids", ge=1)
    n_fixed: int = setting(64, "size of the fixed noise batch (64: an 8x8 grid)", ge=1)
    history_points: int = setting(1000, "loss points kept per curve; older points get averaged together", ge=1)
    max_sample_grids: int = setting(40, "fixed-noise grids kept (sample_history) for scrubbing through training",
                                    ge=1)
    metric_every: int = setting(0, "steps between metric events (0 = off); needs a metric_fn", ge=0)
    metric_at_start: bool = setting(False, "also evaluate at step 0 (the untrained model: where the curve starts)")
    metric_share: float = setting(0.0, "> 0: skip a scheduled evaluation while evaluating would take more than this "
                                  "share of the training seconds so far (room is kept for the last step's, always made)",
                                  ge=0, lt=1)
    threads: int = setting(0, "CPU threads; 0 = genlib.device.default_threads()", ge=0)
    max_seconds: float = setting(0.0, "> 0: also done once it has trained this many seconds (pauses and "
                                 "measurements excluded), with the last step's grid and measurement", ge=0)

    def __post_init__(self) -> None:
        check_fields(self)

    def extended(self, step: int, more: int) -> "TrainConfig":
        """The config for ``more`` steps after an ended run's ``step``: ``steps`` grows by ``more``; a
        timed run (``max_seconds``, whose ``steps`` is only a ceiling) trains ``more`` from ``step``
        and drops its budget (spent, or the caller now asks for steps, not seconds)."""
        if self.max_seconds:
            return dataclasses.replace(self, steps=step + more, max_seconds=0.0)
        return dataclasses.replace(self, steps=self.steps + more)


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
        self.model.fit_data(self.data)
        self.callbacks = list(callbacks or [])
        self.metric_fn = metric_fn
        self.step = 0
        self.elapsed = 0.0
        self.history = History(self.config.history_points)
        self.metric_history = History(self.config.history_points)
        self.sample_history: list[tuple[int, torch.Tensor]] = []   # (step, fixed-noise grid)
        self.sample_seconds: list[float] = []    # training seconds at each grid of sample_history
        self.metric_cost_s = 0.0                 # seconds spent in metric_fn (excluded from elapsed)
        self._metric_last_cost = 0.0             # the last evaluation's seconds (metric_share's estimate)
        self._t_last = time.perf_counter()       # when elapsed was last brought up to date
        self.state = "idle"
        self.message = ""
        self.losses: dict[str, float] = {}
        self.images_per_s = 0.0
        self._lock = threading.Lock()
        self.control = RunControl()
        self._last_good: dict[str, Any] | None = None
        self.fixed_z = prior_draw(model, self.config.n_fixed, self.config.seed)   # genlib's one seeding rule
        self.fixed_labels = model.default_labels(self.config.n_fixed)
        self._batch_gen = seeded_generator(self.config.seed + 1)     # batch order: the same on every device
        self._batches = None

    # --- control, from any thread (see control.RunControl) ---------------------------------------
    def start(self) -> threading.Thread:
        return self.control.start(self._run_quietly)

    def pause(self) -> None:
        self.control.pause()

    def resume(self) -> None:
        self.control.resume()

    def step_once(self) -> None:
        """While paused, run exactly one more step."""
        self.control.step_once()

    def stop(self) -> int:
        """Stop after the current step. It also ends a pause, so a later run() or start() trains.
        Returns the steps allowed by ``step_once`` and not taken yet (dropped)."""
        return self.control.stop()

    def join(self, timeout: float | None = None) -> None:
        self.control.join(timeout)

    def extend(self, steps: int) -> None:
        """Allow ``steps`` more steps (for continuing a finished run; ``TrainConfig.extended``)."""
        self.config = self.config.extended(self.step, steps)

    @property
    def is_alive(self) -> bool:
        return self.control.is_alive

    def panel(self) -> Any:
        """What the ``metric_fn`` keeps beside its numbers for a page to draw (its ``panel()``, e.g.
        ``genlib.metrics.ToyProbe``'s discriminator map), or None. A pool's worker sends it along."""
        panel = getattr(self.metric_fn, "panel", None)
        return panel() if callable(panel) else None

    def snapshot(self) -> Snapshot:
        with self._lock:
            history, metrics = self.history.to_dict(seconds=True), self.metric_history.to_dict(seconds=True)
            return Snapshot(
                state=self.state, step=self.step, total_steps=self.config.steps, epoch=self.epoch,
                losses=dict(self.losses), history=history,
                metrics=metrics, samples=list(self.sample_history),
                images_per_s=self.images_per_s, elapsed=self.elapsed, eta=self._eta(), message=self.message,
                history_seconds=history.pop("seconds"), metric_seconds=metrics.pop("seconds"),
                sample_seconds=list(self.sample_seconds), batch_size=self.batch_size,
                metric_cost_s=self.metric_cost_s)

    def recorded_run(self, max_points: int | None = None) -> RecordedRun:
        """The run so far as a ``RecordedRun`` (what ``save_checkpoint`` stores; ``overlay`` reads it),
        each curve thinned to at most ``max_points`` points when given."""
        return RecordedRun.from_snapshot(self.snapshot(), max_points)

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
        eta = (self.config.steps - self.step) * self.batch_size / self.images_per_s
        if self.config.max_seconds:
            eta = min(eta, max(0.0, self.config.max_seconds - self.elapsed))
        return eta

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

    def _on_pause(self) -> None:
        self._set(state="paused")
        self._emit("paused")

    def _on_resume(self) -> None:
        self._set(state="running")
        self._emit("resumed")

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
        self.control.begin()
        if self._batches is None:
            self._batches = self.data.batches(cfg.batch_size, generator=self._batch_gen)
        self.model.train()
        self._set(state="running", message="")
        self._remember_good()
        self._emit("start")
        if self.step == 0:
            self._take_samples()
            if cfg.metric_at_start and cfg.metric_every and self.metric_fn is not None and not len(self.metric_history):
                self._evaluate()

        acc: dict[str, list[torch.Tensor]] = {}
        self._t_last, step_last = time.perf_counter(), self.step
        last = self.step >= self.config.steps
        while not last:
            waited = self.control.wait_turn(self._on_pause, self._on_resume)
            if waited is None:
                break
            if waited:  # the pause is not training time
                self._t_last, step_last = time.perf_counter(), self.step
            x, y = next(self._batches)
            for k, v in self.model.training_step(x, y).items():
                acc.setdefault(k, []).append(v)
            self.step += 1

            step = self.step
            last = step == self.config.steps or bool(cfg.max_seconds) and self._training_seconds() >= cfg.max_seconds
            if step % cfg.log_every == 0 or last or self.control.interrupted:
                now = time.perf_counter()
                keys = list(acc)
                means = torch.stack([torch.stack(acc[k]).float().mean() for k in keys]).tolist()  # one sync
                acc = {}
                losses = dict(zip(keys, means))
                dt = now - self._t_last
                ips = (step - step_last) * self.batch_size / dt if dt > 0 else 0.0
                self._set(losses=losses, images_per_s=ips, elapsed=self.elapsed + dt)
                self._t_last, step_last = now, step
                bad = [k for k, v in losses.items() if not math.isfinite(v)]
                if bad:
                    return self._diverged(bad)
                with self._lock:
                    self.history.append(step, losses, self.elapsed)
                self._remember_good()
                self._emit("progress", losses=losses)
            if step % cfg.sample_every == 0 or last:
                self._take_samples()
            if cfg.metric_every and self.metric_fn is not None and (step % cfg.metric_every == 0 or last) \
                    and (last or self._metric_affordable()):
                self._evaluate()
            if last:   # the final grid counts as training time, as grids between log points do
                now = time.perf_counter()
                self._set(elapsed=self._training_seconds(now))
                self._t_last = now

        final = "done" if last else "stopped"
        budget = f" ({cfg.max_seconds:g} s of training)" if last and self.step < self.config.steps else ""
        self._set(state=final, message=f"{final} at step {self.step}{budget}")
        self._emit(final, losses=self.losses, message=self.message)
        return final

    def _evaluate(self) -> None:
        t0 = time.perf_counter()
        at = self._training_seconds(t0) if self.step else 0.0
        with eval_mode(self.model):          # measuring, not training; train mode comes back after
            metrics = self.metric_fn(self.model)
        cost = time.perf_counter() - t0
        self._t_last += cost                     # metric time is not training time
        self._metric_last_cost = cost
        with self._lock:
            self.metric_cost_s += cost
            self.metric_history.append(self.step, metrics, at)
        self._emit("metric", metrics=metrics)

    def _training_seconds(self, now: float | None = None) -> float:
        """Training seconds at ``now`` (between log points elapsed lags behind by the time since the last)."""
        return self.elapsed + ((time.perf_counter() if now is None else now) - self._t_last)

    def _metric_affordable(self) -> bool:
        """metric_share's rule: evaluate when the time spent on metrics, plus this evaluation and the
        final one (always made) at the last one's cost, stays within metric_share of the training
        seconds so far. Reserving the final evaluation keeps a slow metric (a guided flow's, ~26 CPU-s
        on MNIST) within its share instead of over it by one evaluation."""
        share = self.config.metric_share
        return share <= 0 or self.metric_cost_s + 2 * self._metric_last_cost <= share * self._training_seconds()

    def _take_samples(self) -> None:
        at = self._training_seconds() if self.step else 0.0
        with eval_mode(self.model):
            samples = to_uint8(self.model.sample(self.config.n_fixed, labels=self.fixed_labels, z=self.fixed_z))
        with self._lock:
            self.sample_history.append((self.step, samples))
            self.sample_seconds.append(at)
            if len(self.sample_history) > self.config.max_sample_grids:  # thin out, keep first and newest
                self.sample_history = self.sample_history[:-1:2] + [self.sample_history[-1]]
                self.sample_seconds = self.sample_seconds[:-1:2] + [self.sample_seconds[-1]]
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
