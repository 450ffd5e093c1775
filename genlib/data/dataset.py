"""The in-memory dataset: two tensors, what a UI needs to describe them, and a batch iterator.

Everything is loaded into memory as one tensor pair, because every dataset in a teaching lab
fits (Fashion-MNIST train is 47 MB as uint8) and a tensor-only batch iterator is far faster than
a DataLoader on the 2-core machines the lab runs on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from ..sampling import seeded_subset


class DataError(ValueError):
    """A data file or an uploaded archive is damaged, hostile or over one of the stated bounds.

    The message names the file and says why, in words a UI can show as they are; one class, so a
    dashboard widget catches every such failure with one ``except``.
    """


@dataclass(eq=False)
class Dataset:
    """A whole dataset as two tensors, plus what a UI needs to describe it.

    Images stay uint8 (N, C, H, W) so that CIFAR-10 on a GPU costs 150 MB rather than 600 MB;
    `get` and `batches` convert to float in [0, 1] per batch. Toys are float32 (N, 2).
    """

    name: str
    split: str
    x: torch.Tensor
    y: torch.Tensor
    class_names: list[str]
    note: str = ""                       # why the split differs from the one asked for ('' if it does not)
    source: str = ""                     # where it came from: a folder, a zip's name, a library call
    skipped: int = 0                     # image folders and zips: files that could not be read
    modes: torch.Tensor | None = None    # 2-D mixtures: the (K, 2) centres; None for curves and images
    mode_std: float | None = None        # 2-D toys: std of the noise around each mode (or the curve)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])

    @property
    def is_image(self) -> bool:
        return self.x.dim() == 4

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def device(self) -> torch.device:
        return self.x.device

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def __repr__(self) -> str:
        # The default repr would print both tensors in full.
        return (f"Dataset(name={self.name!r}, split={self.split!r}, n={len(self)}, "
                f"shape={self.shape}, classes={self.num_classes}, device={self.device})")

    def to(self, device: str | torch.device) -> Dataset:
        """A copy on `device`; toy `modes` move too so metrics can use them."""
        modes = None if self.modes is None else self.modes.to(device)
        return dataclasses.replace(self, x=self.x.to(device), y=self.y.to(device), modes=modes)

    def get(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Examples at `idx`: float images in [0, 1] (toys as stored) and int64 labels."""
        idx = idx.to(self.x.device)
        x = self.x[idx]
        if self.is_image:
            x = x.float().div_(255.0)  # (B, C, H, W) in [0, 1]
        return x, self.y[idx]

    def steps_per_epoch(self, batch_size: int) -> int:
        """Full batches per pass; the incomplete last batch is dropped so shapes never change."""
        return len(self) // self._batch_size(batch_size)

    def batches(self, batch_size: int,
                generator: torch.Generator | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Endless (x, y) batches, reshuffled every epoch.

        Each epoch's order is drawn on the CPU with ``generator`` (a CPU generator, as
        ``genlib.sampling.seeded_generator`` makes: genlib's one seeding rule) and moved to the data's
        device, so a seed gives the same batches on every device. Validated here, not inside the
        generator, so a wrong argument fails at the call.
        """
        bs = self._batch_size(batch_size)
        if generator is not None and generator.device.type != "cpu":
            raise ValueError(f"generator is on {generator.device}: batch orders are drawn on the CPU "
                             "(genlib.sampling.seeded_generator(seed)), whatever device the data is on")
        return self._batch_stream(bs, generator)

    def _batch_stream(self, bs: int, generator: torch.Generator | None
                      ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n, steps = len(self), len(self) // bs
        while True:
            perm = torch.randperm(n, generator=generator).to(self.x.device)
            for i in range(steps):
                yield self.get(perm[i * bs:(i + 1) * bs])

    def _batch_size(self, batch_size: int) -> int:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if len(self) == 0:
            raise ValueError(f"dataset {self.name!r} is empty")
        return min(batch_size, len(self))

    def subset(self, n: int, seed: int = 0) -> Dataset:
        """`n` random examples (all of them, shuffled, if n >= len), reproducible by `seed`."""
        idx = seeded_subset(len(self), n, seed).to(self.x.device)
        return dataclasses.replace(self, x=self.x[idx], y=self.y[idx])
