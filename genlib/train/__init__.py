"""Training: the generic loop and its events (``trainer``), control across threads (``control``),
and what a run keeps for a UI (``history``)."""
from .control import RunControl
from .history import History, Snapshot
from .trainer import Event, TrainConfig, Trainer

__all__ = ["Event", "History", "RunControl", "Snapshot", "TrainConfig", "Trainer"]
