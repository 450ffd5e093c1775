"""A small CNN classifier per dataset: the feature extractor and judge behind ``genlib.metrics``.

The published FID and Inception Score use an ImageNet Inception network, which neither fits these
28x28 grey images nor can be downloaded on the lab's offline machines. The metrics here use a small
CNN trained by this module on the dataset itself instead: its penultimate features (128-D) feed the
*classifier*-FID, KID and precision/recall, its softmax the classifier Inception Score, mode coverage
and label accuracy. Numbers are comparable between models judged by the same classifier file, never
with published Inception FIDs.

Shipped weights live in ``pretrained/classifiers/{digits,mnist,fashion-mnist}.pt`` and are rebuilt by

    python -m genlib.classifier build [--dataset NAME]

A file is a dict ``{format: 'genlib-classifier', version, config, state_dict, card}`` written with
``torch.save`` and read with ``torch.load(weights_only=True)``; the card says what the network was
trained on, how long, and its measured test accuracy.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from .files import CLASSIFIER_DIR, PlainDataError, atomic_save, plain_data, read_versioned, state_dict_problem
from .models.nets import count_parameters
from .sampling import classify_batched, seeded_generator

FORMAT = "genlib-classifier"
VERSION = 1
BUILD_COMMAND = "python -m genlib.classifier build"

# The datasets a classifier is shipped for, and how each is trained (see build_classifier).
SHIPPED = ("digits", "mnist", "fashion-mnist")
MNIST_TRAIN_IMAGES = 8000   # with only the 10k MNIST test split on disk: train on 0..7999, test on the rest


@dataclasses.dataclass
class ClassifierConfig:
    data_shape: tuple[int, ...] = (1, 28, 28)   # (C, H, W)
    num_classes: int = 10
    widths: tuple[int, ...] = (16, 32, 64)      # channels per conv stage; each stage halves the side
    feature_dim: int = 128                      # penultimate features, the space classifier-FID lives in
    dropout: float = 0.3                        # before the last layer only; 8k MNIST images overfit without

    def __post_init__(self) -> None:
        self.data_shape = tuple(int(s) for s in self.data_shape)
        self.widths = tuple(int(w) for w in self.widths)
        if len(self.data_shape) != 3 or any(s < 1 for s in self.data_shape):
            raise ValueError(f"data_shape must be (C, H, W), got {self.data_shape}")
        if not self.widths or any(w < 1 for w in self.widths):
            raise ValueError(f"widths must be one or more positive sizes, got {self.widths}")
        if min(self.data_shape[1:]) < 2 ** len(self.widths):
            raise ValueError(f"{len(self.widths)} conv stages need images of side >= {2 ** len(self.widths)}, "
                             f"got {self.data_shape}")
        if self.num_classes < 2 or self.feature_dim < 1 or not 0 <= self.dropout < 1:
            raise ValueError("num_classes must be >= 2, feature_dim >= 1 and dropout in [0, 1)")

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


def default_config(data_shape: tuple[int, ...], num_classes: int) -> ClassifierConfig:
    """Two stages for 8x8 digits (8 -> 4 -> 2), four for 28x28 and 32x32 (28 -> 14 -> 7 -> 4 -> 2).

    Narrow on purpose, so a build takes a minute or two on a shared CPU: (16, 32, 64, 64) trained at
    0.023-0.030 s per batch of 128 on one core here (the shipped cards: MNIST 1,860 steps in 43 s,
    Fashion-MNIST 3,744 in 113 s). The fourth stage keeps the flattened map at 256 values, so the
    file stays under 400 kB.
    """
    widths = (32, 64) if min(data_shape[1:]) < 16 else (16, 32, 64, 64)
    return ClassifierConfig(data_shape=tuple(data_shape), num_classes=num_classes, widths=widths)


class Classifier(nn.Module):
    """[0, 1] images (B, C, H, W) -> logits (B, K); ``features`` gives the penultimate (B, feature_dim)."""

    def __init__(self, config: ClassifierConfig):
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        c_in = config.data_shape[0]
        h, w = config.data_shape[1:]
        for width in config.widths:   # strided conv-BN-ReLU: (B, width, ceil(h/2), ceil(w/2)) per stage
            # a stride-2 convolution, not conv + max-pool: CPU max-pooling cost 3x the whole conv net
            layers += [nn.Conv2d(c_in, width, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
            c_in, h, w = width, (h + 1) // 2, (w + 1) // 2
        self.body = nn.Sequential(*layers, nn.Flatten())                          # (B, widths[-1] * h * w)
        self.embed = nn.Sequential(nn.Linear(c_in * h * w, config.feature_dim), nn.ReLU())  # (B, feature_dim)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.feature_dim, config.num_classes)              # (B, K)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate activations (after the ReLU), shape (B, feature_dim)."""
        return self.embed(self.body(x * 2 - 1))   # [0, 1] -> [-1, 1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(x)))   # (B, K) logits

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device


# ------------------------------------------------------------------------------------------------
# Training and accuracy


def train_classifier(model: Classifier, data, *, epochs: float = 5, batch_size: int = 128, lr: float = 2e-3,
                     weight_decay: float = 1e-4, seed: int = 0,
                     progress: Callable[[int, int, float], None] | None = None) -> dict[str, float]:
    """Adam with a one-cycle learning rate over ``epochs`` passes of ``data`` (a genlib Dataset).

    Batches come from ``Dataset.batches`` (tensor indexing, no DataLoader). ``progress(step, total,
    loss)`` is called every 50 steps. Returns {'steps', 'epochs', 'wall_time_s', 'final_loss'}.
    """
    torch.manual_seed(seed)
    steps = max(1, round(epochs * data.steps_per_epoch(batch_size)))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    # One-cycle (Smith & Topin 2019): warm up then anneal; converges in few epochs without tuning.
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    batches = data.batches(batch_size, generator=seeded_generator(seed))
    model.train()
    t0, loss = time.perf_counter(), torch.tensor(math.nan)
    for step in range(1, steps + 1):
        x, y = next(batches)
        loss = F.cross_entropy(model(x.to(model.device)), y.to(model.device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if progress is not None and (step % 50 == 0 or step == steps):
            progress(step, steps, loss.item())
    model.eval()
    return {"steps": steps, "epochs": round(steps / data.steps_per_epoch(batch_size), 3),
            "wall_time_s": round(time.perf_counter() - t0, 2), "final_loss": loss.item()}


def accuracy(model: Classifier, data) -> float:
    """Fraction of a Dataset's images classified as their label."""
    _, probs = classify_batched(model, data.x)                                 # (N, K)
    return float((probs.argmax(1) == data.y.cpu().numpy()).mean())


# ------------------------------------------------------------------------------------------------
# Files


def save_classifier(path: str | os.PathLike, model: Classifier, card: dict[str, Any]) -> None:
    payload = {"format": FORMAT, "version": VERSION, "config": model.config.to_dict(),
               "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}, "card": dict(card)}
    atomic_save(payload, path)


MAX_CLASSIFIER_PARAMETERS = 5_000_000   # the shipped ones have 53-95 k


def read_classifier(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[Classifier, dict[str, Any]]:
    """(model in eval mode, card). Loaded with weights_only=True: nothing in the file can run. The
    config is bounded and the network built on the meta device and counted before anything real is
    built; the weights must fit it exactly and be finite; the card is plain bounded data."""
    from .checkpoint import MAX_CHANNELS, MAX_CLASSES, MAX_SIDE

    payload = read_versioned(path, FORMAT, VERSION, kind="classifier")   # a ValueError names what is wrong
    fix = f"rebuild it with `{BUILD_COMMAND}`"
    raw = payload.get("config")
    try:
        if not isinstance(raw, dict) or not all(isinstance(k, str) for k in raw):
            raise TypeError("config is not a dict of settings")
        config = ClassifierConfig(**raw)
        c, h, w = config.data_shape
        if c > MAX_CHANNELS or h > MAX_SIDE or w > MAX_SIDE or config.num_classes > MAX_CLASSES \
                or len(config.widths) > 8 or max(config.widths) > 4096 or config.feature_dim > 4096:
            raise ValueError(f"config over the ceilings ({MAX_CHANNELS} channels, side {MAX_SIDE}, "
                             f"{MAX_CLASSES} classes, 8 stages, widths and features <= 4096)")
        with torch.device("meta"):
            meta = Classifier(config)
        if count_parameters(meta) > MAX_CLASSIFIER_PARAMETERS:
            raise ValueError(f"{count_parameters(meta):,} parameters, over the {MAX_CLASSIFIER_PARAMETERS:,} ceiling")
    except (TypeError, ValueError, RuntimeError, OverflowError) as e:
        raise ValueError(f"{path}: invalid classifier config ({str(e)[:160]}); {fix}") from None
    problem = state_dict_problem(meta, payload.get("state_dict"))
    if problem:
        head = "weights do not match the config"
        problem = "weights do not fit its config" + problem[len(head):] if problem.startswith(head) else problem
        raise ValueError(f"{path}: classifier {problem}; {fix}")
    try:
        card = plain_data(payload.get("card") or {}, what="card", max_depth=8, max_nodes=20_000,
                          max_chars=64 * 2**10)
    except PlainDataError as e:
        raise ValueError(f"{path}: malformed classifier card ({e}); {fix}") from None
    if not isinstance(card, dict):
        raise ValueError(f"{path}: malformed classifier card (not a dict); {fix}")
    model = Classifier(config)
    try:
        model.load_state_dict(payload["state_dict"])
    except (TypeError, KeyError, RuntimeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"{path}: classifier weights do not fit its config ({first[:200]}); {fix}") from None
    return model.to(device).eval().requires_grad_(False), card


def classifier_path(dataset_name: str) -> Path:
    from .data import canonical_name
    return CLASSIFIER_DIR / f"{canonical_name(dataset_name)}.pt"


def has_classifier(dataset_name: str) -> bool:
    try:
        return classifier_path(dataset_name).is_file()
    except ValueError:
        return False


@functools.lru_cache(maxsize=16)
def _load_cached(path: str, mtime: float, device: str) -> tuple[Classifier, dict[str, Any]]:
    return read_classifier(path, device)


def load_classifier(dataset_name: str, device: str | torch.device = "cpu") -> Classifier:
    """The shipped classifier for ``dataset_name`` (digits, mnist, fashion-mnist), cached per device.

    The card is at ``.card``. Raises FileNotFoundError naming the build command when none is shipped.
    """
    path = classifier_path(dataset_name)
    if not path.is_file():
        raise FileNotFoundError(f"no classifier for {dataset_name!r} at {path}; build one with "
                                f"`{BUILD_COMMAND} --dataset {dataset_name}`")
    model, card = _load_cached(str(path), path.stat().st_mtime, str(torch.device(device)))
    model.card = card
    return model


# ------------------------------------------------------------------------------------------------
# Building the shipped classifiers

# Epochs per dataset: the accuracy targets (MNIST >= 98 %, Fashion-MNIST >= 90 %) with a margin, in
# at most a few minutes on one or two CPU cores. Measured here: MNIST (8,000 images) at 20 epochs
# gave 98.7-99.2 % over three seeds, too close to 98 %, at 30 epochs 99.1 %; Fashion-MNIST at 4
# epochs 90.6 %, at 8 epochs 91.7 %.
EPOCHS = {"digits": 30, "mnist": 30, "fashion-mnist": 8}


def classifier_splits(name: str, root=None):
    """(train Dataset, test Dataset, train description, test description) for a shipped classifier.

    MNIST: when the training split is not on disk (the lab's machines hold only the 10k test split),
    train on test images 0..7999 and measure on the other 2,000; otherwise train on train, test on test.
    """
    from .data import load_dataset

    train = load_dataset(name, split="train", root=root, download=False)
    if name == "mnist" and train.split != "train":
        full = load_dataset(name, split="test", root=root, download=False)
        cut = MNIST_TRAIN_IMAGES
        train = dataclasses.replace(full, x=full.x[:cut], y=full.y[:cut], note="")
        test = dataclasses.replace(full, x=full.x[cut:], y=full.y[cut:], note="")
        return (train, test, f"MNIST test images 0..{cut - 1} (training split unavailable)",
                f"MNIST test images {cut}..{len(full) - 1} (the other {len(full) - cut:,})")
    test = load_dataset(name, split="test", root=root, download=False)
    what = "80/20 split of genlib.data" if name == "digits" else "official split"
    return train, test, f"{name} train ({what}, {len(train):,} images)", f"{name} test ({len(test):,} images)"


def build_classifier(name: str, *, root=None, out_dir: str | os.PathLike | None = None, epochs: float | None = None,
                     seed: int = 0, threads: int = 2, command: str | None = None,
                     progress: Callable[[int, int, float], None] | None = None) -> tuple[Path, dict[str, Any]]:
    """Train the classifier for ``name`` on the CPU, measure its test accuracy, save it; (path, card)."""
    torch.set_num_threads(threads)   # the lab's CPUs are shared: keep builds to a couple of cores
    train, test, train_desc, test_desc = classifier_splits(name, root)
    torch.manual_seed(seed)          # the initial weights
    model = Classifier(default_config(train.shape, train.num_classes))
    epochs = EPOCHS.get(name, 5) if epochs is None else epochs
    stats = train_classifier(model, train, epochs=epochs, seed=seed, progress=progress)
    card = {
        "dataset": name, "split": train_desc, "images": len(train),
        "test_accuracy": round(accuracy(model, test), 4), "test_split": test_desc, "test_images": len(test),
        "epochs": stats["epochs"], "steps": stats["steps"], "wall_time_s": stats["wall_time_s"],
        "threads": threads, "seed": seed, "parameters": count_parameters(model),
        "torch": str(torch.__version__), "python": platform.python_version(),
        "command": command or f"{BUILD_COMMAND} --dataset {name}",
    }
    path = Path(out_dir or CLASSIFIER_DIR) / f"{name}.pt"
    save_classifier(path, model, card)
    _load_cached.cache_clear()
    return path, card


def main(argv: list[str] | None = None) -> int:
    """``python -m genlib.classifier build [--dataset NAME]``: rebuild shipped classifiers, one at a time."""
    import argparse
    import json

    p = argparse.ArgumentParser(prog="python -m genlib.classifier",
                                description="Train the small CNN classifiers behind genlib.metrics.")
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="train and save pretrained/classifiers/NAME.pt")
    b.add_argument("--dataset", choices=SHIPPED, default=None, help="default: all, one after another")
    b.add_argument("--epochs", type=float, default=None)
    b.add_argument("--threads", type=int, default=2)
    b.add_argument("--data-dir", default=None)
    b.add_argument("--out-dir", default=None, help=f"default {CLASSIFIER_DIR}")
    args = p.parse_args(argv)
    for name in [args.dataset] if args.dataset else SHIPPED:
        def report(step: int, total: int, loss: float, name: str = name) -> None:
            print(f"{name}: step {step}/{total}  loss {loss:.4f}", file=sys.stderr, flush=True)
        cmd = (f"{BUILD_COMMAND} --dataset {name}" + (f" --epochs {args.epochs:g}" if args.epochs else "")
               + (f" --threads {args.threads}" if args.threads != 2 else ""))
        path, card = build_classifier(name, root=args.data_dir, out_dir=args.out_dir, epochs=args.epochs,
                                      threads=args.threads, command=cmd, progress=report)
        print(json.dumps({"path": str(path), "bytes": path.stat().st_size, **card}, indent=2))
    return 0


if __name__ == "__main__":   # the command line is the one place this module prints
    sys.exit(main())
