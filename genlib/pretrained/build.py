"""Building a shipped model: train its recipe, re-estimate sampling statistics, save it with half
weights, measure it for its card, and write a PNG of its samples for the README."""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable

import torch

from ..checkpoint import Checkpoint, load_checkpoint, read_payload, save_checkpoint
from ..data import load_dataset
from ..files import PRETRAINED_DIR, REPO, atomic_save
from ..models import ENCODER, STANDING_STATS, make_model
from ..sampling import to_uint8
from ..train import RECORDED_POINTS, Event, RecordedRun, TrainConfig, Trainer
from .recipes import BUILD_COMMAND, BY_NAME, Recipe, describe, rebuild_command

SAMPLES_DIR = REPO / "docs" / "samples"
MAX_SAMPLE_GRIDS = 24    # fixed-noise grids kept per file: enough to scrub through training, ~1 MB at 28x28
EVAL_SAMPLES = 5000   # samples per evaluation on a card (capped at the held-out half of the reference)
# The recorded run's live metric (genlib.metrics.live_metric_fn: classifier-FID, classes, confidence at
# n = LIVE_N): a candidate evaluation every steps / METRIC_CANDIDATES steps, and one is skipped while
# evaluating would take more than METRIC_SHARE of the training seconds so far (TrainConfig.metric_share),
# so evaluation stays under 10 % of a build. Measured on this CPU, one thread: 0.2-0.6 s per steady
# evaluation on MNIST models (1.3 s the first, which loads the classifier), against 90-240 s builds.
METRIC_SHARE = 0.08
METRIC_CANDIDATES = 100


def default_metric_fn(recipe: Recipe, root=None) -> Callable[[Any], dict[str, float]] | None:
    """The live metric a build records: ``genlib.metrics.live_metric_fn`` for image datasets with a
    shipped classifier, else None (nothing to judge the samples with)."""
    from ..classifier import has_classifier   # shipped for the image datasets only

    if not has_classifier(recipe.dataset):
        return None
    from ..metrics import live_metric_fn
    return live_metric_fn(recipe.dataset, root=root)


def measure(model, recipe: Recipe, root=None, n: int = EVAL_SAMPLES) -> dict[str, Any] | None:
    """``genlib.metrics.evaluate`` of ``model`` against its dataset's reference images (the dashboard's
    numbers), plus the real-vs-real floor measured the same way; None without a shipped classifier.

    n is capped at the held-out half of the reference split, so the model's samples and the floor's
    real images are equally many (classifier-FID is biased upward at small n).
    """
    from .. import metrics
    from ..classifier import has_classifier

    if not has_classifier(recipe.dataset):
        return None
    ref = metrics.reference_dataset(recipe.dataset, root)
    n = min(n, len(metrics.split_halves(len(ref))[1]))
    result = metrics.evaluate(model, recipe.dataset, n=n, root=root, seed=recipe.seed)
    floor = _floor(recipe.dataset, n, root)
    result.update(fid_floor=floor["classifier_fid"], precision_floor=floor["precision"],
                  recall_floor=floor["recall"], fid_over_floor=result["classifier_fid"] / floor["classifier_fid"])
    if model.supports(ENCODER) and model.config.latent_dim == 2:
        result.update(latent_separation(model, ref))
    return _plain(result)


def latent_separation(model, data, n: int = 2000, k: int = 5, seed: int = 0) -> dict[str, float]:
    """How well a 2-D latent separates the classes: accuracy of a k-nearest-neighbour vote on the
    posterior means of ``n`` images of ``data`` (5-fold cross-validated; ``measure`` passes the
    reference images, which on digits and MNIST include the training images), and their silhouette score
    (Rousseeuw 1987; 1 = tight separate clusters, 0 = overlapping). Chance level is about 0.1."""
    from sklearn.metrics import silhouette_score
    from sklearn.model_selection import cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    from ..latent import encode_dataset

    z, y, _ = encode_dataset(model, data, n=n, seed=seed)                         # (n, 2), (n,)
    z, y = z.numpy(), y.numpy()
    knn = cross_val_score(KNeighborsClassifier(k), z, y, cv=5).mean()
    return {"latent_knn_accuracy": float(knn), "latent_silhouette": float(silhouette_score(z, y)),
            "latent_points": len(z)}


_FLOORS: dict[tuple[str, int], dict[str, Any]] = {}


def _floor(dataset: str, n: int, root=None) -> dict[str, Any]:
    """Held-out real images scored like a model (``metrics.floor_metrics``), once per process."""
    from .. import metrics
    if (dataset, n) not in _FLOORS:
        _FLOORS[dataset, n] = metrics.floor_metrics(dataset, n, root=root)
    return _FLOORS[dataset, n]


def _plain(v: Any) -> Any:
    """Card values must survive torch.load(weights_only=True): numbers, strings, lists, dicts."""
    if isinstance(v, torch.Tensor):
        return v.item() if v.numel() == 1 else v.tolist()
    if hasattr(v, "item") and not isinstance(v, (list, dict, str)):
        return v.item()
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def build(recipe: Recipe, *, out_dir: str | os.PathLike | None = None, root=None, device=None,
          threads: int = 0, evaluate: bool = True, samples_dir: str | os.PathLike | None = None,
          callbacks: list[Callable[[Event], Any]] | None = None,
          metric_fn: Callable[[Any], dict[str, float]] | None | str = "auto",
          metric_share: float = METRIC_SHARE) -> Path:
    """Train ``recipe`` from scratch and save ``<out_dir>/<name>.pt`` (and a PNG of its samples).

    The file holds the recorded run (``Checkpoint.recorded_run``): loss curves and gradient norms
    (at most ``RECORDED_POINTS`` points each), the fixed-noise grids, and ``metric_fn`` along
    training ("auto": ``default_metric_fn``; None: no metric), from step 0, its evaluations held to
    ``metric_share`` of the training seconds. The card's 'recorded_metric' says what was measured
    and what it cost."""
    data = load_dataset(recipe.dataset, split="train", root=root, download=False)
    torch.manual_seed(recipe.seed)
    model = make_model(recipe.preset, data, **recipe.config)
    # step 0, every sample_every steps, and the last: at most MAX_SAMPLE_GRIDS grids, none thinned away
    sample_every = -(-recipe.steps // (MAX_SAMPLE_GRIDS - 1))
    what = "given"
    if metric_fn == "auto":
        from ..metrics import LIVE_N
        metric_fn = default_metric_fn(recipe, root)
        what = f"genlib.metrics.live_metric_fn({recipe.dataset!r}, n={LIVE_N})"
    cfg = TrainConfig(steps=recipe.steps, batch_size=recipe.batch_size, seed=recipe.seed,
                      log_every=max(1, min(100, recipe.steps // 400)), sample_every=sample_every,  # ~400 points
                      n_fixed=recipe.n_fixed, max_sample_grids=MAX_SAMPLE_GRIDS, threads=threads,
                      history_points=RECORDED_POINTS // 2,      # 250-500 points per curve, none thinned at save
                      metric_every=max(1, recipe.steps // METRIC_CANDIDATES) if metric_fn is not None else 0,
                      metric_at_start=True, metric_share=metric_share)
    metric_cpu = [0.0]                   # process CPU seconds spent in the live metric, kept out of training's
    if metric_fn is not None:
        metric_fn = _cpu_counted(metric_fn, metric_cpu)
    cpu0 = time.process_time()           # from before the Trainer, which fits what the model takes from the data
    trainer = Trainer(model, data, cfg, device=device, callbacks=callbacks, metric_fn=metric_fn)
    if trainer.run() != "done":
        raise RuntimeError(f"{recipe.name}: training ended in state {trainer.state!r}: {trainer.message}")
    # CPU seconds of training (all of this process's threads, the live metric's excluded, as wall_time_s
    # excludes its wall time): on a shared machine wall time measures the other jobs too
    cpu_s = time.process_time() - cpu0 - metric_cpu[0]
    standing_batchnorm(model, seed=recipe.seed)
    # the last grid shows the model as shipped, after the re-estimate
    final = model.sample(cfg.n_fixed, labels=trainer.fixed_labels, z=trainer.fixed_z)      # (n, C, H, W)
    trainer.sample_history[-1] = (trainer.step, to_uint8(final))
    path = Path(out_dir or PRETRAINED_DIR) / f"{recipe.name}.pt"
    recorded = None
    if metric_fn is not None:
        run = trainer.recorded_run()
        recorded = dict(metric_fn=what, keys=list(run.metrics), evaluations=len(run.metric_steps),
                        metric_every=cfg.metric_every, metric_share=metric_share,
                        eval_seconds=round(trainer.metric_cost_s, 2),
                        share_of_training=round(trainer.metric_cost_s / max(trainer.elapsed, 1e-9), 4))
    card = dict(name=recipe.name, preset=recipe.preset, description=describe(recipe),
                command=rebuild_command(recipe), recipe=recipe.to_dict(), threads=torch.get_num_threads(),
                cpu_time_s=round(cpu_s, 1),
                weights_dtype="float16", metrics=None, recorded_metric=recorded)
    save_checkpoint(path, model, trainer, optimizer_state=False, **card)
    half_weights(path, model)
    shipped = load_checkpoint(path)          # measured as shipped: float16 weights, read back
    if evaluate:
        update_card(path, metrics=measure(shipped.model, recipe, root))
    save_sample_png(shipped, Path(samples_dir or SAMPLES_DIR) / f"{recipe.name}.png")
    return path


def _cpu_counted(fn: Callable[[Any], dict[str, float]], total: list[float]) -> Callable[[Any], dict[str, float]]:
    """``fn`` that adds the process CPU seconds of each call to ``total[0]``."""
    def counted(model):
        t0 = time.process_time()
        try:
            return fn(model)
        finally:
            total[0] += time.process_time() - t0
    return counted


def recorded_run(name: str, root: str | os.PathLike | None = None) -> RecordedRun | None:
    """The recorded training run of the shipped model ``name`` (None when its file was built before
    recorded runs), read without rebuilding the model."""
    from ..checkpoint import CheckpointError

    if name not in BY_NAME:
        raise ValueError(f"unknown pretrained model {name!r}; known: {', '.join(BY_NAME)}")
    path = Path(root or PRETRAINED_DIR) / f"{name}.pt"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is not built; build it with `{BUILD_COMMAND} --only {name}`")
    payload = read_payload(path)
    try:
        return RecordedRun.from_payload(payload)
    except (KeyError, ValueError, TypeError, AttributeError) as e:
        raise CheckpointError(f"{path}: malformed recorded run ({type(e).__name__}: {str(e)[:120]})") from None


def standing_batchnorm(model, batches: int = 50, batch_size: int = 256, seed: int = 0) -> None:
    """A GAN's sampling generator (the EMA average, or G itself without EMA) gets its batch-norm
    statistics from 50 x 256 of its own samples, more than the 16 batches ``sample`` uses while
    training (see ``GAN.standing_statistics``); VAEs have none."""
    if model.supports(STANDING_STATS):
        model.standing_statistics(batches=batches, batch_size=batch_size, seed=seed)


def save_sample_png(ckpt: Checkpoint, path: Path) -> None:
    """The last fixed-noise grid of a checkpoint as a PNG (for the README)."""
    from torchvision.utils import save_image

    images = ckpt.samples[-1][1].float() / 255                                # (n, C, H, W)
    scale = max(1, 24 // images.shape[-1])       # 8x8 digits drawn 3x larger, 28x28 as they are
    images = torch.nn.functional.interpolate(images, scale_factor=scale, mode="nearest")
    nrow = 10 if ckpt.model.config.conditional else int(len(images) ** 0.5)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(images, path, nrow=nrow, padding=1, pad_value=0.5)


def _rewrite(path: str | os.PathLike, change: Callable[[dict[str, Any]], None]) -> None:
    path = Path(path)
    payload = read_payload(path)
    change(payload)
    atomic_save(payload, path)


def update_card(path: str | os.PathLike, **fields: Any) -> None:
    """Rewrite a checkpoint's card fields in place (weights untouched), e.g. metrics measured later."""
    _rewrite(path, lambda p: p.update(card={**p.get("card", {}), **{k: _plain(v) for k, v in fields.items()}}))


def half_weights(path: str | os.PathLike, model=None) -> None:
    """Store a checkpoint's weights as shipped: only what sampling uses (``compact_state``: a GAN with
    an averaged G drops the live G, ~1.1 MB of an MLP GAN's file), and float32 as float16: half the
    bytes. ``load_checkpoint`` puts back what was left out and copies the weights into float32
    parameters; on digits-gan the samples moved by at most 0.0009 (of 1), under a quarter of one grey
    level. ``model``: the file's model if at hand (else the file is loaded to learn what it can leave out)."""
    model = model if model is not None else load_checkpoint(path).model

    def change(p: dict[str, Any]) -> None:
        state = model.compact_state(p["model"])
        p["model"] = {k: v.half() if v.dtype == torch.float32 else v for k, v in state.items()}
    _rewrite(path, change)


def reevaluate(recipe: Recipe, *, root=None, folder: str | os.PathLike | None = None) -> dict[str, Any] | None:
    """Measure a shipped file's metrics again and write them on its card (no training)."""
    path = Path(folder or PRETRAINED_DIR) / f"{recipe.name}.pt"
    ckpt = load_checkpoint(path)
    result = measure(ckpt.model, recipe, root)
    if result is not None:
        update_card(path, metrics=result)
    return result
