"""What a model costs: parameters and bytes per network, training time from its card, peak memory."""
from __future__ import annotations

import os
import threading
from typing import Any

import torch


def cost_metrics(model, card: dict[str, Any] | None = None) -> dict[str, Any]:
    """Parameters and bytes per network; training time and speed from a checkpoint card."""
    out: dict[str, Any] = {}
    if hasattr(model, "network_sizes"):
        sizes = model.network_sizes()
        out["parameters"] = int(sum(sizes.values()))
        out.update({f"parameters_{k}": int(v) for k, v in sizes.items()})
        for name in sizes:
            net = getattr(model, name, None)
            if isinstance(net, torch.nn.Module):
                out[f"size_bytes_{name}"] = sum(p.numel() * p.element_size() for p in net.parameters())
    if hasattr(model, "size_bytes"):
        out["size_bytes"] = int(model.size_bytes())
    card = card or {}
    if card.get("wall_time_s"):
        out["train_time_s"] = float(card["wall_time_s"])
        if card.get("steps") and card.get("batch_size"):
            out["train_images_per_s"] = round(card["steps"] * card["batch_size"] / card["wall_time_s"], 1)
    if card.get("steps") is not None:
        out["train_steps"] = int(card["steps"])
    if card.get("device"):
        out["train_device"] = str(card["device"])
    return out


class PeakMemory:
    """Peak memory while the block runs. CUDA: torch.cuda.max_memory_allocated above the start.
    CPU: growth of the process's resident set (RSS), read from /proc/self/statm every 2 ms by a
    thread: an approximation that includes allocator caching and misses spikes under 2 ms."""

    def __init__(self, device: torch.device):
        self.device, self.peak_mb, self.method = device, float("nan"), ""

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.start = torch.cuda.memory_allocated(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.method = "cuda max_memory_allocated"
        elif os.path.exists("/proc/self/statm"):
            self.method = "cpu RSS growth (sampled every 2 ms)"
            self.start = self.peak = self._rss()
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._poll, daemon=True)
            self._thread.start()
        return self

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _poll(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, self._rss())

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak_mb = (torch.cuda.max_memory_allocated(self.device) - self.start) / 2**20
        elif self.method:
            self._stop.set()
            self._thread.join()
            self.peak = max(self.peak, self._rss())
            self.peak_mb = (self.peak - self.start) / 2**20
