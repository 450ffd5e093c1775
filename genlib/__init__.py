"""genlib: a small PyTorch core for teaching generative image models.

    from genlib import load_dataset, make_model, Trainer, TrainConfig
    data = load_dataset("digits")
    model = make_model("dcgan", data)
    Trainer(model, data, TrainConfig(steps=500)).run()
"""
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .data import DATASETS, DataNotFoundError, Dataset, load_dataset
from .device import available_devices, configure_threads, pick_device
from .models import FAMILIES, PRESETS, GenerativeModel, build_model, make_model
from .train import Event, Snapshot, TrainConfig, Trainer

__version__ = "0.1.0"

__all__ = [
    "CheckpointError", "load_checkpoint", "save_checkpoint",
    "DATASETS", "DataNotFoundError", "Dataset", "load_dataset",
    "available_devices", "configure_threads", "pick_device",
    "FAMILIES", "PRESETS", "GenerativeModel", "build_model", "make_model",
    "Event", "Snapshot", "TrainConfig", "Trainer",
]
