"""Where to compute, and with how many CPU threads."""
from __future__ import annotations

import os

import torch


def available_devices() -> list[str]:
    """Devices that exist on this machine, best first."""
    devices = []
    if torch.cuda.is_available():
        devices.append("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        devices.append("mps")
    devices.append("cpu")
    return devices


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """``None`` or 'auto' picks CUDA, then Apple MPS, then CPU; anything else is checked to exist."""
    if device is None or device == "auto":
        return torch.device(available_devices()[0])
    device = torch.device(device)
    if device.type not in available_devices():
        raise ValueError(f"device {device.type!r} is not available here; available: {', '.join(available_devices())}")
    return device


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one, else all)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def default_threads() -> int:
    """Intra-op threads for training on the CPU.

    The small models here gain little from many threads, and oversubscription hurts badly: with a
    UI thread also busy on a 2-core laptop, torch's default (one thread per core) can stall. One core
    is left free for the UI and the OS; bench/throughput.py measures the choice.
    """
    cores = usable_cores()
    return max(1, cores - 1) if cores <= 8 else cores // 2


def configure_threads(n: int | None = None) -> int:
    """Set torch's intra-op thread count (process-wide) and return it."""
    n = n or int(os.environ.get("GENLIB_THREADS", 0)) or default_threads()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n
