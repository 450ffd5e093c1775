"""Data-parallel training with PyTorch's own engine, for the command line:

    torchrun --standalone --nproc_per_node K -m genlib train --model dcgan --dataset mnist --batch-size 256 ...

``torchrun`` starts K processes with RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT in
their environment; ``from_env`` sees them and joins the process group (gloo on the CPU, NCCL on
GPUs, one GPU per process: cuda:LOCAL_RANK). Then ``prepare``:

- each process keeps its own shard of the data (a seeded permutation dealt out in turn, the same on
  every rank, so the shards are disjoint and together the whole set);
- ``--batch-size`` is the global batch: each process draws batch / K (it must divide);
- the model's networks are wrapped in ``DistributedDataParallel`` through the one model-interface
  method ``GenerativeModel.distribute(wrap)``: every backward averages the gradients over the
  processes, so each optimiser step sees the gradient of the global batch, and the replicas stay
  equal (DDP broadcasts rank 0's weights when it wraps them);
- the randomness of each step (a VAE's noise, a GAN's z) gets a per-rank seed, so the K shards of a
  batch do not share their noise; rank 0 keeps the run's own seed and so its fixed-noise grid.

``finish`` puts the plain networks back, records the global batch, the world size and the whole
data set's size in the run, and waits for every rank; rank 0 alone prints and writes the checkpoint,
in the format of a single-process run (``genlib.checkpoint``).

Each rank logs the losses of its own shard; rank 0's are what the command prints (of the same
scale as a single process's at the same global batch: tests/test_distributed.py measures it).
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime
import gc
import os
from typing import Iterator

import torch
import torch.distributed as td
from torch.nn.parallel import DistributedDataParallel

from ..data import Dataset
from .trainer import TrainConfig, Trainer

RANK_SEED_STRIDE = 7919      # rank r draws its per-step noise from seed + r * this (rank 0: the run's seed)


def _env_int(name: str) -> int | None:
    v = os.environ.get(name)
    return int(v) if v not in (None, "") else None


@dataclasses.dataclass
class Distributed:
    """This process's place in a torchrun job (``from_env``)."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    backend: str
    global_batch: int = 0
    data_size: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def wrap(self, net: torch.nn.Module) -> torch.nn.Module:
        """``DistributedDataParallel(net)``; a network without trainable weights stays as it is."""
        if not any(p.requires_grad for p in net.parameters()):
            return net
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(net, device_ids=ids)

    def shard(self, data: Dataset, seed: int = 0) -> Dataset:
        """This rank's share of ``data``: a seeded permutation (the same on every rank) dealt out in turn."""
        if len(data) < self.world_size:
            raise ValueError(f"{data.name} has {len(data)} examples, fewer than the {self.world_size} processes")
        perm = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))
        idx = perm[self.rank::self.world_size][:len(data) // self.world_size].to(data.x.device)
        return dataclasses.replace(data, x=data.x[idx], y=data.y[idx])

    def prepare(self, model, data: Dataset, config: TrainConfig) -> tuple[Dataset, TrainConfig]:
        """Shard the data, split the global batch, move and wrap the model. Returns this rank's data and
        config (its per-rank batch and seed) for the Trainer."""
        k = self.world_size
        if config.batch_size % k:
            raise ValueError(f"--batch-size {config.batch_size} is the global batch and must split evenly across "
                             f"the {k} processes: use a multiple of {k}")
        if config.max_seconds:           # each rank's own clock would end it at another step: a hang
            raise ValueError("max_seconds cannot end a data-parallel run: its processes would stop at different steps")
        self.global_batch, self.data_size = config.batch_size, len(data)
        model.to(self.device)
        model.distribute(self.wrap)
        local = self.shard(data, config.seed)
        return local, dataclasses.replace(config, batch_size=config.batch_size // k,
                                          seed=config.seed + RANK_SEED_STRIDE * self.rank)

    def finish(self, model, trainer: Trainer) -> None:
        """After training: the plain networks back (a checkpoint never holds a wrapper), the run's
        config as the whole job's (global batch, the run's seed), then wait for every rank."""
        model.distribute(None)
        trainer.config = dataclasses.replace(trainer.config, batch_size=self.global_batch,
                                             seed=trainer.config.seed - RANK_SEED_STRIDE * self.rank)
        spread = self.replica_spread(model)
        if spread > 1e-4:
            raise RuntimeError(f"the {self.world_size} processes' weights differ (relative spread {spread:.2g}): "
                               "their gradients were not averaged; the checkpoint would be one process's model")

    def replica_spread(self, model) -> float:
        """Largest relative difference between the ranks' weights (0 when DDP kept the replicas equal):
        each network's parameter sum and norm, reduced with MAX and MIN over the processes."""
        stats = torch.stack([torch.stack([p.detach().double().sum(), p.detach().double().norm()])
                             for p in model.parameters()]).flatten().to(self.device)
        hi, lo = stats.clone(), stats.clone()
        td.all_reduce(hi, op=td.ReduceOp.MAX)
        td.all_reduce(lo, op=td.ReduceOp.MIN)
        return float(((hi - lo).abs() / (stats.abs() + 1e-12)).max())

    def card(self) -> dict[str, int]:
        """Model-card fields of a data-parallel run (they replace the shard's own)."""
        return {"world_size": self.world_size, "images": self.data_size, "batch_size": self.global_batch}

    def close(self) -> None:
        """Leave the process group. The DDP wrappers (dropped by ``finish``) are collected first: a
        process whose reducer outlived the group at exit aborted ("terminate called without an active
        exception") in about 1 run in 10, and one that left without destroying the group in 4 in 10."""
        gc.collect()
        if td.is_initialized():
            td.destroy_process_group()


def from_env(device: str | None = "auto", timeout_s: float = 600.0) -> Distributed | None:
    """Join the process group when started by torchrun with more than one process (WORLD_SIZE > 1),
    else None: a plain single-process run. GPUs when there are any and ``device`` allows (one per
    process, by LOCAL_RANK), else the CPU with gloo."""
    world = _env_int("WORLD_SIZE")
    if not world or world < 2:
        return None
    rank, local = _env_int("RANK") or 0, _env_int("LOCAL_RANK") or 0
    use_cuda = torch.cuda.is_available() and device in (None, "auto", "cuda") or str(device).startswith("cuda")
    if use_cuda:
        if local >= torch.cuda.device_count():
            raise ValueError(f"local rank {local} has no GPU ({torch.cuda.device_count()} here): start at most "
                             f"{torch.cuda.device_count()} processes per node")
        dev, backend = torch.device("cuda", local), "nccl"
        torch.cuda.set_device(dev)
    else:
        dev, backend = torch.device("cpu"), "gloo"
    if not td.is_initialized():
        td.init_process_group(backend, rank=rank, world_size=world, timeout=datetime.timedelta(seconds=timeout_s),
                              **({"device_id": dev} if backend == "nccl" else {}))
    return Distributed(rank=rank, world_size=world, local_rank=local, device=dev, backend=backend)


@contextlib.contextmanager
def main_first(dist: Distributed | None) -> Iterator[None]:
    """Rank 0 runs the block first (a download, a cache it fills), the other ranks after it."""
    if dist is not None and not dist.is_main:
        td.barrier()
    try:
        yield
    finally:
        if dist is not None and dist.is_main:
            td.barrier()
