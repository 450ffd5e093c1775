"""What a pool worker is sent to train one run (``genlib.train.pool``): the run's ``RunSpec`` (a
checkpoint of the model, its data or a ``DataRef`` the worker loads itself, the TrainConfig), and
``estimate_memory_mb``, the budget a server checks before it queues a run."""
from __future__ import annotations

import dataclasses
import io
import math
from typing import Any, Callable

from ..checkpoint import save_checkpoint
from ..data import Dataset, load_dataset
from .trainer import TrainConfig

WORKER_BASE_MB = 60.0     # estimate_memory_mb: a run's own allocations beyond weights, data and activations
ACTIVATION_FACTOR = 40    # estimate_memory_mb: activation bytes per input byte of a float batch (see below)
METRIC_MB = 80.0          # estimate_memory_mb: a live metric (classifier, reference statistics): measured +59 MB


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
