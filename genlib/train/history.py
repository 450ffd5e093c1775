"""What a training run keeps: loss curves in bounded memory (``History``), a consistent copy of the
run's state that another thread can draw (``Snapshot``), the run as a replayable record
(``RecordedRun``, also stored in every checkpoint a Trainer saves), and several runs' curves aligned
on one axis (``overlay``)."""
from __future__ import annotations

import bisect
import dataclasses
import math
from typing import Any, Mapping, Sequence

import numpy as np
import torch

# The gradient-norm series the models report beside their losses (L2 norm of each network's
# gradient before its optimiser step): a GAN's 'g_grad_norm' (at G's updates, repeated until the
# next like 'g_loss') and 'd_grad_norm', a VAE's 'grad_norm'. Draw them on their own axis.
GRAD_NORM_KEYS = ("g_grad_norm", "d_grad_norm", "grad_norm")
RECORDED_POINTS = 500        # points kept per curve in a saved run (older points averaged together)
RECORD_VERSION = 1


def is_grad_norm(key: str) -> bool:
    """True for a gradient-norm series ('g_grad_norm', 'd_grad_norm', 'grad_norm', ...)."""
    return key.endswith("grad_norm")


class History:
    """Loss curves in bounded memory: when a curve holds ``2 * max_points`` points, neighbouring
    points are averaged in pairs and new points are averaged over twice as many log intervals.
    Each point also keeps the training seconds at its last step (NaN when not given)."""

    def __init__(self, max_points: int = 1000):
        self.max_points = max_points
        self.stride = 1                     # log intervals per stored point
        self.steps: list[float] = []
        self.seconds: list[float] = []
        self.values: dict[str, list[float]] = {}
        self._pending: list[tuple[int, dict[str, float], float]] = []

    def append(self, step: int, values: dict[str, float], seconds: float = math.nan) -> None:
        self._pending.append((step, values, seconds))
        if len(self._pending) < self.stride:
            return
        pending, self._pending = self._pending, []
        self._add_point(self.steps, self.seconds, self.values, pending)
        if len(self.steps) >= 2 * self.max_points:
            self._halve()

    def _halve(self) -> None:
        self.steps = self.steps[1::2]
        self.seconds = self.seconds[1::2]
        self.values = {k: [(a + b) / 2 for a, b in zip(v[0::2], v[1::2])] for k, v in self.values.items()}
        self.stride *= 2

    @staticmethod
    def _add_point(steps: list[float], seconds: list[float], values: dict[str, list[float]],
                   group: list[tuple[int, dict[str, float], float]]) -> None:
        """Append the mean of ``group`` at its last step; a key new to ``values`` is NaN before it."""
        steps.append(group[-1][0])
        seconds.append(group[-1][2])
        for key in set(values) | {k for _, v, _ in group for k in v}:
            vals = [v[key] for _, v, _ in group if key in v]
            values.setdefault(key, [math.nan] * (len(steps) - 1)).append(sum(vals) / len(vals) if vals else math.nan)

    def to_dict(self, seconds: bool = False) -> dict[str, list[float]]:
        """The stored points, then the group still filling up averaged so far: curves reach the last
        step. ``seconds=True`` adds the 'seconds' axis (training seconds at each point)."""
        steps, secs, values = list(self.steps), list(self.seconds), {k: list(v) for k, v in self.values.items()}
        if self._pending:
            self._add_point(steps, secs, values, self._pending)
        return {"step": steps, **({"seconds": secs} if seconds else {}), **values}

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
    samples: list[tuple[int, torch.Tensor]]    # the trainer's sample_history: (step, fixed-noise grid)
    images_per_s: float
    elapsed: float
    eta: float
    message: str
    # training seconds (pauses and metric evaluations excluded) at each point of history, metrics, samples
    history_seconds: list[float] = dataclasses.field(default_factory=list)
    metric_seconds: list[float] = dataclasses.field(default_factory=list)
    sample_seconds: list[float] = dataclasses.field(default_factory=list)
    batch_size: int = 0
    metric_cost_s: float = 0.0                 # seconds spent in metric_fn (not in ``elapsed``)


# ------------------------------------------------------------------------------------------------
# A run as a record


def thin(x: Sequence[float], columns: Mapping[str, Sequence[float]], max_points: int,
         keep_last: Sequence[str] = ()) -> tuple[list[float], dict[str, list[float]]]:
    """At most ``max_points`` points: consecutive groups of ``ceil(n / max_points)`` points become one,
    at the group's last x; a column is averaged over the group (NaNs skipped), except those named in
    ``keep_last`` (time axes), which take the group's last value."""
    n = len(x)
    if n <= max_points:
        return list(x), {k: list(v) for k, v in columns.items()}
    k = math.ceil(n / max_points)
    starts = range(0, n, k)
    out = {}
    for name, col in columns.items():
        if name in keep_last:
            out[name] = [col[min(i + k, n) - 1] for i in starts]
        else:
            groups = [[v for v in col[i:i + k] if not math.isnan(v)] for i in starts]
            out[name] = [sum(g) / len(g) if g else math.nan for g in groups]
    return [x[min(i + k, n) - 1] for i in starts], out


def _floats(name: str, v: Any) -> list[float]:
    if isinstance(v, torch.Tensor):
        v = v.tolist()
    if not isinstance(v, (list, tuple)) or not all(isinstance(a, (int, float)) and not isinstance(a, bool)
                                                    for a in v):
        raise TypeError(f"recorded run: {name} is not a list of numbers")
    return [float(a) for a in v]


def _series(name: str, d: Any, n: int) -> dict[str, list[float]]:
    if not isinstance(d, dict):
        raise TypeError(f"recorded run: {name} is not a dict")
    out = {str(k): _floats(f"{name}[{k!r}]", v) for k, v in d.items()}
    bad = [k for k, v in out.items() if len(v) != n]
    if bad:
        raise ValueError(f"recorded run: {name} {bad[0]!r} has another length than its steps")
    return out


@dataclasses.dataclass
class RecordedRun:
    """A training run as recorded for replay: every curve with its step and training-seconds axes.

    ``curves``: the losses and gradient norms (``GRAD_NORM_KEYS``) at ``steps``, each point the mean
    over its log intervals; ``metrics``: the live quality metric (the Trainer's ``metric_fn``) at
    ``metric_steps``; ``samples``: the fixed-noise grids (step, uint8 (n, C, H, W)) at
    ``sample_seconds``. Seconds are training seconds: pauses and metric evaluations excluded
    (``metric_cost_s`` is the time the evaluations took). Read one with ``Checkpoint.recorded_run``,
    ``Trainer.recorded_run()`` or ``genlib.pretrained.recorded_run(name)``.
    """

    steps: list[int]
    seconds: list[float]
    curves: dict[str, list[float]]
    metric_steps: list[int] = dataclasses.field(default_factory=list)
    metric_seconds: list[float] = dataclasses.field(default_factory=list)
    metrics: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    samples: list[tuple[int, torch.Tensor]] = dataclasses.field(default_factory=list)
    sample_seconds: list[float] = dataclasses.field(default_factory=list)
    batch_size: int = 0
    total_steps: int = 0
    total_seconds: float = 0.0
    metric_cost_s: float = 0.0

    # --- reading --------------------------------------------------------------------------------
    @property
    def keys(self) -> list[str]:
        """Every series ``series`` can draw: curves, then metrics."""
        return list(self.curves) + [k for k in self.metrics if k not in self.curves]

    def grad_norms(self) -> dict[str, list[float]]:
        """The gradient-norm curves (at ``steps``)."""
        return {k: v for k, v in self.curves.items() if is_grad_norm(k)}

    def history(self) -> dict[str, list[float]]:
        """Loss curves in the Trainer's history form {'step': [...], key: [...]} (for loss figures)."""
        return {"step": list(self.steps), **{k: list(v) for k, v in self.curves.items()}}

    def metric_history(self) -> dict[str, list[float]]:
        """Metric curves in the Trainer's form {'step': [...], key: [...]} ({} when none)."""
        if not self.metric_steps and not self.metrics:
            return {}
        return {"step": list(self.metric_steps), **{k: list(v) for k, v in self.metrics.items()}}

    def series(self, key: str, x: str = "step") -> tuple[list[float], list[float]]:
        """(x, y) of one curve or metric, NaN points dropped; x is 'step', 'seconds' or 'images'
        (step times batch size)."""
        if key in self.curves:
            steps, secs, ys = self.steps, self.seconds, self.curves[key]
        elif key in self.metrics:
            steps, secs, ys = self.metric_steps, self.metric_seconds, self.metrics[key]
        else:
            raise KeyError(f"no series {key!r} in this run; it has {', '.join(self.keys) or 'none'}")
        if x == "step":
            xs = list(steps)
        elif x == "seconds":
            xs = list(secs)
        elif x == "images":
            if not self.batch_size:
                raise ValueError("this run does not know its batch size: use x='step' or 'seconds'")
            xs = [s * self.batch_size for s in steps]
        else:
            raise ValueError(f"x must be 'step', 'seconds' or 'images', got {x!r}")
        keep = [i for i, (a, b) in enumerate(zip(xs, ys)) if not (math.isnan(a) or math.isnan(b))]
        return [xs[i] for i in keep], [ys[i] for i in keep]

    def at_measurements(self, key: str, metric: str = "classifier_fid") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A curve set beside a metric, point for point: (the metric's steps, its values, curve ``key``
        averaged over the steps since the previous measurement), for every measurement with curve
        points before it (the step-0 one has none). Lesson 4 and the README's WGAN-GP line read it."""
        ms, mv = self.series(metric)
        xs, ys = (np.asarray(a, dtype=float) for a in self.series(key))
        steps, vals, curve = [], [], []
        prev = -math.inf
        for s, v in zip(ms, mv):
            sel = (xs > prev) & (xs <= s)
            if sel.any():
                steps.append(s)
                vals.append(v)
                curve.append(float(ys[sel].mean()))
            prev = s
        return np.array(steps), np.array(vals), np.array(curve)

    # --- making one -----------------------------------------------------------------------------
    @classmethod
    def from_snapshot(cls, snap: Snapshot, max_points: int | None = None) -> RecordedRun:
        """The run so far of a trainer's snapshot; ``max_points`` thins each curve (see ``thin``)."""
        def split(d: dict[str, list[float]], secs: list[float]):
            d = dict(d)
            steps = d.pop("step", [])
            secs = list(secs) if len(secs) == len(steps) else [math.nan] * len(steps)
            if max_points is not None:
                steps, cols = thin(steps, {"seconds": secs, **d}, max_points, keep_last=("seconds",))
                secs = cols.pop("seconds")
                d = cols
            return steps, secs, d

        steps, secs, curves = split(snap.history, snap.history_seconds)
        msteps, msecs, metrics = split(snap.metrics, snap.metric_seconds)
        ssecs = list(snap.sample_seconds)
        if len(ssecs) != len(snap.samples):
            ssecs = [math.nan] * len(snap.samples)
        return cls(steps=steps, seconds=secs, curves=curves, metric_steps=msteps, metric_seconds=msecs,
                   metrics=metrics, samples=list(snap.samples), sample_seconds=ssecs, batch_size=snap.batch_size,
                   total_steps=snap.step, total_seconds=snap.elapsed, metric_cost_s=snap.metric_cost_s)

    # --- in a checkpoint --------------------------------------------------------------------------
    def to_payload(self) -> dict[str, Any]:
        """Plain data for a checkpoint (``torch.load(weights_only=True)`` reads it back). The curves,
        metrics and grids go under the checkpoint's own 'history', 'metrics' and 'samples' keys; this
        dict (the checkpoint's 'recorded_run') holds the time axes and totals that mark them a record."""
        r3 = lambda v: [round(a, 3) if math.isfinite(a) else a for a in v]   # ms is plenty, and smaller
        return {"version": RECORD_VERSION, "seconds": r3(self.seconds), "metric_seconds": r3(self.metric_seconds),
                "sample_seconds": r3(self.sample_seconds), "batch_size": int(self.batch_size),
                "total_steps": int(self.total_steps), "total_seconds": round(float(self.total_seconds), 3),
                "metric_cost_s": round(float(self.metric_cost_s), 3)}

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> RecordedRun | None:
        """The recorded run of a raw checkpoint payload; None when it has none (checkpoints saved
        before recorded runs, or without a trainer). Malformed data raises TypeError / ValueError."""
        rec = payload.get("recorded_run")
        if rec is None:
            return None
        if not isinstance(rec, dict):
            raise TypeError("recorded run: not a dict")
        if rec.get("version") != RECORD_VERSION:
            raise ValueError(f"recorded run: version {rec.get('version')!r} is not supported")
        history, metrics = dict(payload.get("history") or {}), dict(payload.get("metrics") or {})
        steps = [int(a) for a in _floats("history['step']", history.pop("step", []))]
        msteps = [int(a) for a in _floats("metrics['step']", metrics.pop("step", []))]
        seconds = _floats("seconds", rec.get("seconds", []))
        msecs = _floats("metric_seconds", rec.get("metric_seconds", []))
        samples = []
        for s in payload.get("samples") or []:
            if not isinstance(s, dict) or not isinstance(s.get("images"), torch.Tensor):
                raise TypeError("recorded run: a sample grid is not a tensor")
            samples.append((int(s["step"]), s["images"]))
        ssecs = _floats("sample_seconds", rec.get("sample_seconds", []))
        for name, axis, n in (("seconds", seconds, len(steps)), ("metric_seconds", msecs, len(msteps)),
                              ("sample_seconds", ssecs, len(samples))):
            if len(axis) != n:
                raise ValueError(f"recorded run: {name} has {len(axis)} points for {n} steps")
        return cls(steps=steps, seconds=seconds, curves=_series("history", history, len(steps)),
                   metric_steps=msteps, metric_seconds=msecs, metrics=_series("metrics", metrics, len(msteps)),
                   samples=samples, sample_seconds=ssecs, batch_size=int(rec.get("batch_size", 0)),
                   total_steps=int(rec.get("total_steps", 0)), total_seconds=float(rec.get("total_seconds", 0.0)),
                   metric_cost_s=float(rec.get("metric_cost_s", 0.0)))


# ------------------------------------------------------------------------------------------------
# Several runs on one chart


@dataclasses.dataclass
class Overlay:
    """One key of several runs on a shared x axis: ``series[name] = (xs, ys)``, each run's own points."""

    key: str
    x: str
    series: dict[str, tuple[list[float], list[float]]]

    def on_grid(self, points: int = 100) -> tuple[list[float], dict[str, list[float]]]:
        """Every run linearly interpolated onto one grid of ``points`` x values spanning all runs
        (NaN outside a run's own range): for means over seeds or differences between runs."""
        xs_all = [x for xs, _ in self.series.values() for x in xs]
        if not xs_all:
            return [], {name: [] for name in self.series}
        lo, hi = min(xs_all), max(xs_all)
        grid = [lo + (hi - lo) * i / max(1, points - 1) for i in range(points)] if hi > lo else [lo]
        return grid, {name: [_interp(g, xs, ys) for g in grid] for name, (xs, ys) in self.series.items()}


def _interp(g: float, xs: list[float], ys: list[float]) -> float:
    if not xs or g < xs[0] or g > xs[-1]:
        return math.nan
    i = bisect.bisect_left(xs, g)
    if xs[i] == g:
        return ys[i]
    x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
    return y0 + (y1 - y0) * (g - x0) / (x1 - x0)


def as_recorded_run(run: Any) -> RecordedRun:
    """A RecordedRun from what a caller holds: a RecordedRun, a Trainer ``Snapshot``, a Trainer, a
    Checkpoint (one saved before recorded runs gives its curves by step only), anything with a
    ``snapshot()`` method (the dashboard's session runs), or a history dict
    {'step': [...], ('seconds': [...],) key: [...]}."""
    if isinstance(run, RecordedRun):
        return run
    if isinstance(run, Snapshot):
        return RecordedRun.from_snapshot(run)
    if callable(getattr(run, "snapshot", None)) and not hasattr(run, "recorded_run"):
        return as_recorded_run(run.snapshot())
    if hasattr(run, "recorded_run"):          # a Checkpoint (attribute) or a Trainer (method)
        rec = run.recorded_run() if callable(run.recorded_run) else run.recorded_run
        if rec is None:
            return as_recorded_run(run.history)  # an old checkpoint: steps only
        return rec
    if isinstance(run, dict):
        d = dict(run)
        steps = d.pop("step", [])
        secs = d.pop("seconds", [math.nan] * len(steps))
        return RecordedRun(steps=list(steps), seconds=list(secs), curves={k: list(v) for k, v in d.items()})
    raise TypeError(f"cannot read a run from {type(run).__name__}")


def overlay(runs: Mapping[str, Any] | Sequence[Any], key: str, x: str = "step") -> Overlay:
    """``key``'s curve of several runs (session runs and recorded ones: anything ``as_recorded_run``
    reads) on one x axis: 'step', 'seconds' (training seconds) or 'images' (examples seen).

    ``runs`` maps a name to a run (a list is named 'run 0', 'run 1', ...). A run without ``key``
    is left out; one without the asked axis (an old checkpoint has no seconds) raises ValueError.
    """
    named = dict(runs) if isinstance(runs, Mapping) else {f"run {i}": r for i, r in enumerate(runs)}
    series = {}
    for name, run in named.items():
        rec = as_recorded_run(run)
        if key not in rec.curves and key not in rec.metrics:
            continue
        xs, ys = rec.series(key, x)
        if x == "seconds" and len(xs) == 0 and len(rec.series(key, "step")[0]) > 0:
            raise ValueError(f"run {name!r} has no training-seconds axis (saved before recorded runs): "
                             "use x='step'")
        series[name] = (xs, ys)
    return Overlay(key=key, x=x, series=series)
