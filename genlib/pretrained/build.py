"""The pretrained models shipped in ``pretrained/``: the recipes that build them, and their loaders.

A class should never wait for training: the dashboard opens on these files offline. Every file is
built by this project's own code from the table ``RECIPES`` below, and one command rebuilds them:

    python -m genlib.pretrained build                        # everything, one model after another
    python -m genlib.pretrained build --dataset mnist        # one dataset's models
    python -m genlib.pretrained build --only mnist-dcgan     # one model
    python -m genlib.pretrained evaluate [--only NAME]       # re-measure a card's metrics, no training
    python -m genlib.pretrained list

Each file is a normal genlib checkpoint (read with ``torch.load(weights_only=True)``, so loading
never runs code) without optimiser state, holding fixed-noise sample grids taken along training and
a model card: data and split, images, steps, epochs, wall time, device, torch version, seed, the
exact command that rebuilt it, and its metrics from ``genlib.metrics.evaluate``.
"""
from __future__ import annotations

import dataclasses
import io
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch

from .checkpoint import Checkpoint, atomic_save, load_checkpoint, save_checkpoint
from .data import load_dataset
from .models import make_model
from .trainer import Event, TrainConfig, Trainer, to_uint8

PRETRAINED_DIR = Path(__file__).resolve().parents[1] / "pretrained"
SAMPLES_DIR = Path(__file__).resolve().parents[1] / "docs" / "samples"
BUILD_COMMAND = "python -m genlib.pretrained build"
MAX_SNAPSHOTS = 24    # fixed-noise grids kept per file: enough to scrub through training, ~1 MB at 28x28
EVAL_SAMPLES = 5000   # samples per evaluation on a card (capped at the held-out half of the reference)


@dataclasses.dataclass(frozen=True)
class Recipe:
    """Everything that decides a shipped model: train ``preset`` on ``dataset`` for ``steps``."""

    name: str                      # file stem: pretrained/<name>.pt
    dataset: str
    preset: str                    # a key of genlib.models.PRESETS
    steps: int
    batch_size: int = 64
    seed: int = 0
    overrides: tuple[tuple[str, Any], ...] = ()   # config fields over the preset's, as (key, value) pairs
    n_fixed: int = 64              # fixed-noise images per grid (100 for a 10-class conditional grid)
    why: str = ""                  # why these settings, in a line

    @property
    def config(self) -> dict[str, Any]:
        return dict(self.overrides)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["overrides"] = {k: list(v) if isinstance(v, tuple) else v for k, v in self.overrides}
        return d


def _o(**kw: Any) -> tuple[tuple[str, Any], ...]:
    return tuple(kw.items())


# The conditional GANs: each dataset's best GAN, held to the bars (all classes, precision and
# recall >= 0.8, classifier-FID <= 2x the floor, label accuracy >= 95 %). Test runs, classifier-FID
# (n = 5,000) and label accuracy by steps:
# - MNIST, MLP cGAN, batch 128: 11.7 / 90 % at 6k, 2.5 / 95 % at 10k, 1.10 / 97 % at 14k, 0.93 / 98 %
#   at 16k (the floor is 0.55). Linear learning-rate decay to 0 made it worse (4.5 at 14k); a conv
#   cGAN (projection D, hinge, spectral norm) stalled at 1.32 from 9k to 12k steps.
# - Fashion-MNIST: the MLP cGAN reached only 14.6 / 87 % at 14k. A conv cGAN with a projection D,
#   hinge loss and spectral norm (Miyato & Koyama 2018), batch 64: 18.0 / 85 % at 4k, 8.1 / 89 % at
#   8k, 4.8 / 91 % at 16k; adding an AC-GAN class head (aux_weight 1): 15.0 / 92 % at 4k, 8.0 / 96.5 %
#   at 8k, 4.9 / 97 % at 16k. Built at 16k: 4.98 (5.1x the floor 0.97); at 32k (20 min): 2.86 (2.9x),
#   recall 0.82, 97.7 %. Twice the floor needs more compute than this hour on two cores.
_PROJECTION_AC = _o(arch="conv", width=32, loss="hinge", spectral_norm=True, beta1=0.0, beta2=0.9,
                    aux_weight=1.0, ema=0.999)
CGAN = {
    "mnist": Recipe("mnist-cgan", "mnist", "cgan", 18000, batch_size=128, overrides=_o(ema=0.999), n_fixed=100),
    "fashion-mnist": Recipe("fashion-mnist-cgan", "fashion-mnist", "cgan", 32000, overrides=_PROJECTION_AC,
                            n_fixed=100, why="conditional conv GAN: projection D with an AC-GAN class head, "
                                             "hinge loss, spectral norm"),
}

# The table. Steps were chosen so the whole set trains in about an hour on a shared 2-core CPU
# (57 minutes of training, summed from the cards); the comments say what the short test runs behind them showed.
RECIPES: tuple[Recipe, ...] = (
    # --- digits (8x8, 1,437 training images): the offline default, 0.5-2.5 minutes per model -----
    # VAEs are cheap (~400 steps/s): 20k steps, where 3k left a 2-D latent with classes never drawn.
    Recipe("digits-vae-2d", "digits", "vae", 20000, overrides=_o(latent_dim=2),
           why="MLP VAE with a 2-D latent, for the cluster plots"),
    Recipe("digits-vae", "digits", "vae", 20000, overrides=_o(latent_dim=16), why="MLP VAE, 16-D latent"),
    # GANs: EMA of G (0.999), batch 128, 6k steps and standing BN statistics (see standing_batchnorm)
    # took the MLP GAN's classifier-FID on digits from ~20 (3k steps, batch 64) to ~5 in test runs.
    Recipe("digits-gan", "digits", "gan", 6000, batch_size=128, overrides=_o(ema=0.999)),
    Recipe("digits-dcgan", "digits", "dcgan", 3000, batch_size=128, overrides=_o(ema=0.999)),
    Recipe("digits-cgan", "digits", "cgan", 6000, batch_size=128, overrides=_o(ema=0.999), n_fixed=100),
    *(r for ds in ("mnist", "fashion-mnist") for r in (
        # --- 28x28 (MNIST: the 10k test split when that is all there is; Fashion: 60k train) -----
        # Conv nets cost ~4x an MLP per image on the CPU: width 32 keeps each to 2-4 minutes.
        # EMA decays leave < 1 % of the initial G in the average (decay ** steps).
        Recipe(f"{ds}-vae-2d", ds, "vae", 3000, batch_size=128, overrides=_o(latent_dim=2),
               why="MLP VAE with a 2-D latent, for the cluster plots"),
        Recipe(f"{ds}-conv-vae", ds, "conv-vae", 1500),
        Recipe(f"{ds}-gan", ds, "gan", 6000, overrides=_o(ema=0.999)),
        CGAN[ds],
        # DCGAN learns slowly here (blotchy strokes at 2.5k steps; spectral norm or TTUR did not
        # change that in 2.5k-step tests): 5k steps.
        Recipe(f"{ds}-dcgan", ds, "dcgan", 5000, overrides=_o(width=32, ema=0.999)),
        Recipe(f"{ds}-wgan-gp", ds, "wgan-gp", 2000, overrides=_o(width=32),
               why="WGAN-GP (conv critic), the paper's settings; 400 generator updates"),
    )),
)

BY_NAME: dict[str, Recipe] = {r.name: r for r in RECIPES}


# ------------------------------------------------------------------------------------------------
# What is shipped, for the dashboard


@dataclasses.dataclass(frozen=True)
class PretrainedEntry:
    name: str
    path: Path
    dataset: str
    preset: str
    description: str


def _describe(r: Recipe) -> str:
    from .models import PRESETS
    return r.why or PRESETS[r.preset][2]


def list_pretrained(dataset: str | None = None, root: str | os.PathLike | None = None) -> list[PretrainedEntry]:
    """Shipped models (their file exists), in the table's order; only ``dataset``'s when given."""
    folder = Path(root) if root is not None else PRETRAINED_DIR
    return [PretrainedEntry(r.name, folder / f"{r.name}.pt", r.dataset, r.preset, _describe(r))
            for r in RECIPES
            if (dataset is None or r.dataset == dataset) and (folder / f"{r.name}.pt").is_file()]


def load_pretrained(name: str, device: str | torch.device = "cpu",
                    root: str | os.PathLike | None = None) -> Checkpoint:
    """The shipped checkpoint ``name`` (e.g. 'mnist-dcgan'), model in eval mode on ``device``."""
    if name not in BY_NAME:
        raise ValueError(f"unknown pretrained model {name!r}; known: {', '.join(BY_NAME)}")
    path = (Path(root) if root is not None else PRETRAINED_DIR) / f"{name}.pt"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is not built; build it with `{BUILD_COMMAND} --only {name}`")
    return load_checkpoint(path, device=device)


# ------------------------------------------------------------------------------------------------
# Building


def rebuild_command(recipe: Recipe) -> str:
    return f"{BUILD_COMMAND} --only {recipe.name}"


def measure(model, recipe: Recipe, root=None, n: int = EVAL_SAMPLES) -> dict[str, Any] | None:
    """``genlib.metrics.evaluate`` of ``model`` against its dataset's reference images (the dashboard's
    numbers), plus the real-vs-real floor measured the same way; None without a shipped classifier.

    n is capped at the held-out half of the reference split, so the model's samples and the floor's
    real images are equally many (classifier-FID is biased upward at small n).
    """
    from . import metrics
    from .classifier import has_classifier

    if not has_classifier(recipe.dataset):
        return None
    ref = metrics.reference_dataset(recipe.dataset, root)
    n = min(n, len(metrics.split_halves(len(ref))[1]))
    result = metrics.evaluate(model, recipe.dataset, n=n, root=root, seed=recipe.seed)
    floor = _floor(recipe.dataset, n, root)
    result.update(fid_floor=floor["classifier_fid"], precision_floor=floor["precision"],
                  recall_floor=floor["recall"], fid_over_floor=result["classifier_fid"] / floor["classifier_fid"])
    if model.has_encoder and model.config.latent_dim == 2:
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

    from .latent import encode_dataset

    z, y = encode_dataset(model, data, n=n, seed=seed)                          # (n, 2), (n,)
    z, y = z.numpy(), y.numpy()
    knn = cross_val_score(KNeighborsClassifier(k), z, y, cv=5).mean()
    return {"latent_knn_accuracy": float(knn), "latent_silhouette": float(silhouette_score(z, y)),
            "latent_points": len(z)}


_FLOORS: dict[tuple[str, int], dict[str, Any]] = {}


def _floor(dataset: str, n: int, root=None) -> dict[str, Any]:
    """Held-out real images scored like a model (``metrics.floor_metrics``), once per process."""
    from . import metrics
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
          callbacks: list[Callable[[Event], Any]] | None = None) -> Path:
    """Train ``recipe`` from scratch and save ``<out_dir>/<name>.pt`` (and a PNG of its samples)."""
    data = load_dataset(recipe.dataset, split="train", root=root, download=False)
    torch.manual_seed(recipe.seed)
    model = make_model(recipe.preset, data, **recipe.config)
    # step 0, every sample_every steps, and the last: at most MAX_SNAPSHOTS grids, none thinned away
    sample_every = -(-recipe.steps // (MAX_SNAPSHOTS - 1))
    cfg = TrainConfig(steps=recipe.steps, batch_size=recipe.batch_size, seed=recipe.seed,
                      log_every=max(1, min(100, recipe.steps // 50)), sample_every=sample_every,
                      n_fixed=recipe.n_fixed, max_snapshots=MAX_SNAPSHOTS, threads=threads)
    trainer = Trainer(model, data, cfg, device=device, callbacks=callbacks)
    if trainer.run() != "done":
        raise RuntimeError(f"{recipe.name}: training ended in state {trainer.state!r}: {trainer.message}")
    standing_batchnorm(model, seed=recipe.seed)
    # the last grid shows the model as shipped, after the re-estimate
    final = model.sample(cfg.n_fixed, labels=trainer.fixed_labels, z=trainer.fixed_z)      # (n, C, H, W)
    trainer.snapshots[-1] = (trainer.step, to_uint8(final))
    model.eval()
    path = Path(out_dir or PRETRAINED_DIR) / f"{recipe.name}.pt"
    card = dict(name=recipe.name, preset=recipe.preset, description=_describe(recipe),
                command=rebuild_command(recipe), recipe=recipe.to_dict(), threads=torch.get_num_threads(),
                weights_dtype="float16", metrics=None)
    save_checkpoint(path, model, trainer, optimizer_state=False, **card)
    half_weights(path)
    shipped = load_checkpoint(path)          # measured as shipped: float16 weights, read back
    if evaluate:
        update_card(path, metrics=measure(shipped.model, recipe, root))
    save_sample_png(shipped, Path(samples_dir or SAMPLES_DIR) / f"{recipe.name}.png")
    return path


def standing_batchnorm(model, batches: int = 50, batch_size: int = 256, seed: int = 0) -> None:
    """A GAN's sampling generator (the EMA average, or G itself without EMA) gets its batch-norm
    statistics from 50 x 256 of its own samples, more than the 16 batches ``sample`` uses while
    training (see ``GAN.standing_statistics``); VAEs have none."""
    if hasattr(model, "standing_statistics"):
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
    payload = torch.load(io.BytesIO(path.read_bytes()), map_location="cpu", weights_only=True)
    change(payload)
    atomic_save(payload, path)


def update_card(path: str | os.PathLike, **fields: Any) -> None:
    """Rewrite a checkpoint's card fields in place (weights untouched), e.g. metrics measured later."""
    _rewrite(path, lambda p: p.update(card={**p.get("card", {}), **{k: _plain(v) for k, v in fields.items()}}))


def half_weights(path: str | os.PathLike) -> None:
    """Store a checkpoint's float32 weights as float16: half the bytes. ``load_checkpoint`` copies
    them back into float32 parameters; on digits-gan the samples moved by at most 0.0009 (of 1),
    under a quarter of one grey level."""
    def change(p: dict[str, Any]) -> None:
        p["model"] = {k: v.half() if v.dtype == torch.float32 else v for k, v in p["model"].items()}
    _rewrite(path, change)


def reevaluate(recipe: Recipe, *, root=None, folder: str | os.PathLike | None = None) -> dict[str, Any] | None:
    """Measure a shipped file's metrics again and write them on its card (no training)."""
    path = Path(folder or PRETRAINED_DIR) / f"{recipe.name}.pt"
    ckpt = load_checkpoint(path)
    result = measure(ckpt.model, recipe, root)
    if result is not None:
        update_card(path, metrics=result)
    return result


# ------------------------------------------------------------------------------------------------
# The README's table and quality bars, written from the cards (so the two cannot disagree)


def _met(ok: bool) -> str:
    return "met" if ok else "**not met**"


def report(folder: str | os.PathLike | None = None) -> str:
    """Markdown: one row per shipped model from its card, then each quality bar of the issue with
    the value measured and whether it is met. ``python -m genlib.pretrained table`` prints it."""
    entries = list_pretrained(root=folder)
    cards = {e.name: load_checkpoint(e.path).card for e in entries}
    megabytes = {e.name: e.path.stat().st_size / 2**20 for e in entries}
    rows = ["| model | steps | batch | epochs | wall time | classifier-FID (floor) | precision / recall "
            "| classes | label acc. | confidence | MB |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, c in cards.items():
        m = c.get("metrics") or {}
        label = f"`{name}`" + (f" (2-D latent 5-NN acc. {m['latent_knn_accuracy']:.2f})"
                               if "latent_knn_accuracy" in m else "")
        acc = f"{m['label_accuracy']:.1%}" if "label_accuracy" in m else ""
        rows.append(f"| {label} | {c['steps']:,} | {c['batch_size']} | {c['epochs']:,.0f} | {c['wall_time_s']:.0f} s "
                    f"| {m.get('classifier_fid', float('nan')):.2f} ({m.get('fid_floor', float('nan')):.2f}) "
                    f"| {m.get('precision', float('nan')):.2f} / {m.get('recall', float('nan')):.2f} "
                    f"| {m.get('classes_covered', '?')}/{m.get('num_classes', 10)} | {acc} "
                    f"| {m.get('mean_confidence', float('nan')):.2f} | {megabytes[name]:.1f} |")
    total = sum(c["wall_time_s"] for c in cards.values())
    rows += ["", f"Training time of the set, summed from the cards: {total / 60:.1f} minutes.", "",
             "Quality bars, as measured:", ""]
    for ds in dict.fromkeys(r.dataset for r in RECIPES):
        mine = {n: c for n, c in cards.items() if c["dataset"] == ds and c.get("metrics")}
        gans = {n: c for n, c in mine.items() if c.get("family") == "gan"}
        if gans:
            best, c = min(gans.items(), key=lambda kv: kv[1]["metrics"]["classifier_fid"])
            m = c["metrics"]
            rows.append(f"- {ds}, best GAN `{best}`: classes covered {m['classes_covered']}/{m['num_classes']} "
                        f"({_met(m['classes_covered'] == m['num_classes'])}); precision {m['precision']:.2f}, "
                        f"recall {m['recall']:.2f} ({_met(min(m['precision'], m['recall']) >= 0.8)}); "
                        f"classifier-FID {m['classifier_fid']:.2f} = {m['fid_over_floor']:.2f}x the floor "
                        f"{m['fid_floor']:.2f} ({_met(m['fid_over_floor'] <= 2)}).")
            plain = {n: c for n, c in gans.items() if "label_accuracy" not in c["metrics"]}
            if plain:
                n, c = min(plain.items(), key=lambda kv: kv[1]["metrics"]["classifier_fid"])
                m = c["metrics"]
                rows.append(f"  Best unconditional GAN `{n}`: classes {m['classes_covered']}/{m['num_classes']}, "
                            f"precision {m['precision']:.2f}, recall {m['recall']:.2f}, classifier-FID "
                            f"{m['classifier_fid']:.2f} = {m['fid_over_floor']:.1f}x the floor.")
        for n, c in mine.items():
            m = c["metrics"]
            if "label_accuracy" in m:
                rows.append(f"- {ds}, `{n}` label accuracy {m['label_accuracy']:.1%} "
                            f"({_met(m['label_accuracy'] >= 0.95)}).")
            if c.get("family") == "vae":
                line = (f"- {ds}, `{n}`: mean classifier confidence {m['mean_confidence']:.2f}, classes covered "
                        f"{m['classes_covered']}/{m['num_classes']}")
                if "latent_knn_accuracy" in m:
                    line += (f"; 2-D latent: 5-NN accuracy {m['latent_knn_accuracy']:.2f}, "
                             f"silhouette {m['latent_silhouette']:.2f}")
                rows.append(line + ".")
    return "\n".join(rows) + "\n"


# ------------------------------------------------------------------------------------------------
# Command line (the one place this module prints)


def _select(only: list[str] | None, dataset: str | None) -> list[Recipe]:
    unknown = [n for n in only or [] if n not in BY_NAME]
    if unknown:
        raise SystemExit(f"error: unknown model(s) {', '.join(unknown)}; known: {', '.join(BY_NAME)}")
    return [r for r in RECIPES if (not only or r.name in only) and (dataset is None or r.dataset == dataset)]


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json

    p = argparse.ArgumentParser(prog="python -m genlib.pretrained",
                                description="Rebuild, re-measure or list the shipped pretrained models.")
    sub = p.add_subparsers(dest="command", required=True)
    for cmd in ("build", "evaluate", "list", "table"):
        s = sub.add_parser(cmd)
        s.add_argument("--only", action="append", default=None, metavar="NAME", help="this model (repeatable)")
        s.add_argument("--dataset", default=None, help="only this dataset's models")
        s.add_argument("--data-dir", default=None)
        if cmd == "build":
            s.add_argument("--threads", type=int, default=0, help="CPU threads (0 = genlib's default)")
            s.add_argument("--device", default="cpu", help="cpu (default), cuda, mps or auto")
            s.add_argument("--out-dir", default=None, help=f"default {PRETRAINED_DIR}")
            s.add_argument("--no-eval", action="store_true", help="skip the metrics on the card")
    args = p.parse_args(argv)
    recipes = _select(args.only, args.dataset)
    if args.command == "table":
        print(report(), end="")
        return 0
    if args.command == "list":
        for r in recipes:
            path = PRETRAINED_DIR / f"{r.name}.pt"
            size = f"{path.stat().st_size / 2**20:6.2f} MB" if path.is_file() else "   (not built)"
            print(f"{r.name:28s} {r.preset:9s} {r.steps:>6} steps  {size}")
        return 0
    for r in recipes:
        if args.command == "evaluate":
            print(json.dumps({r.name: reevaluate(r, root=args.data_dir)}, indent=2))
            continue
        def show(ev: Event, r: Recipe = r) -> None:
            if ev.kind == "progress":
                losses = "  ".join(f"{k} {v:.4g}" for k, v in ev.losses.items())
                print(f"{r.name}: step {ev.step}/{r.steps}  {losses}  {ev.images_per_s:,.0f} img/s",
                      file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        path = build(r, out_dir=args.out_dir, root=args.data_dir, device=args.device, threads=args.threads,
                     evaluate=not args.no_eval, callbacks=[show])
        card = load_checkpoint(path).card
        print(json.dumps({"path": str(path), "bytes": path.stat().st_size,
                          "total_s": round(time.perf_counter() - t0, 1), **card}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
