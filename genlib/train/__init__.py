"""Training: the generic loop and its events (``trainer``), control across threads (``control``),
and what a run keeps (``history``: bounded curves, snapshots, the ``RecordedRun`` a checkpoint
stores, and ``overlay`` of several runs' curves on one axis)."""
from .control import RunControl
from .history import (GRAD_NORM_KEYS, RECORDED_POINTS, History, Overlay, RecordedRun, Snapshot, as_recorded_run,
                      is_grad_norm, overlay, thin)
from .trainer import Event, TrainConfig, Trainer

__all__ = ["Event", "GRAD_NORM_KEYS", "History", "Overlay", "RECORDED_POINTS", "RecordedRun", "RunControl",
           "Snapshot", "TrainConfig", "Trainer", "as_recorded_run", "is_grad_norm", "overlay", "thin"]
