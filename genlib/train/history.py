"""What a training run keeps for a UI: loss curves in bounded memory, and a consistent copy of the
run's state (``Snapshot``) that another thread can draw."""
from __future__ import annotations

import dataclasses
import math

import torch


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
    samples: list[tuple[int, torch.Tensor]]    # the trainer's sample_history: (step, fixed-noise grid)
    images_per_s: float
    elapsed: float
    eta: float
    message: str
