"""The live probe of a GAN on a 2-D mixture (the Toy lab): mode coverage as the Trainer's metric, and
beside it a *panel* for the page to draw: the discriminator's values over the plane and where the
generated points go."""
from __future__ import annotations

import threading
from typing import Any

import torch

from ..data import Dataset, load_dataset
from ..models import CRITIC
from .scores import class_shares, nearest_mode, toy_mode_metrics
from .sources import draw_samples


class ToyProbe:
    """A Trainer ``metric_fn`` for 2-D mixtures (``ring``, ``grid``): modes covered and high-quality
    share of ``n`` seeded samples (``toy_mode_metrics``), and ``panel()``, the last measurement's
    discriminator map and mode shares. It runs where the Trainer runs (a thread, or a pool worker,
    which sends the panel with its snapshots): only that thread touches the model while it trains.

    ``data``: a Dataset or a dataset name (a name pickles small, for a worker process to load).
    """

    def __init__(self, data: Dataset | str, n: int = 1000, grid: int = 60, lim: float = 1.6, seed: int = 0):
        data = load_dataset(data) if isinstance(data, str) else data
        if data.modes is None:
            raise ValueError(f"{data.name} has no modes to cover (use ring or grid)")
        self.modes, self.mode_std, self.n, self.seed = data.modes.cpu(), float(data.mode_std), n, seed
        self.ticks = torch.linspace(-lim, lim, grid)
        gy, gx = torch.meshgrid(self.ticks, self.ticks, indexing="ij")
        self.plane = torch.stack([gx.flatten(), gy.flatten()], 1)     # (grid*grid, 2), row-major in y
        self._lock = threading.Lock()
        self._panel: dict[str, Any] | None = None

    def __call__(self, model) -> dict[str, float]:
        points = draw_samples(model, self.n, seed=self.seed)[0].cpu()        # (n, 2)
        m = toy_mode_metrics(points, self.modes, self.mode_std)
        _, nearest = nearest_mode(points, self.modes)                         # (n,)
        share = torch.from_numpy(class_shares(nearest, len(self.modes))).float()
        heat = None
        if model.supports(CRITIC):
            heat = model.discriminate(self.plane.to(model.device)).cpu().view(len(self.ticks), len(self.ticks))
        with self._lock:
            self._panel = {"step": model.steps, "ticks": self.ticks, "heat": heat, "mode_share": share}
        return {"toy_modes_covered": float(m["toy_modes_covered"]), "toy_high_quality": float(m["toy_high_quality"])}

    def panel(self) -> dict[str, Any] | None:
        """The last measurement's {'step', 'ticks' (G,), 'heat' ((G, G) D values, rows = y; None for a
        model without a critic), 'mode_share' ((K,) share of samples nearest each mode)}, or None."""
        with self._lock:
            return self._panel
