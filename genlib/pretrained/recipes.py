"""The table of shipped models: one ``Recipe`` per file in ``pretrained/``, and what of it is built."""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import torch

from ..checkpoint import Checkpoint, load_checkpoint
from ..files import PRETRAINED_DIR
from ..models import presets
from ..models.presets import PAPER_WGAN_GP

BUILD_COMMAND = "python -m genlib.pretrained build"


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


# The conditional GANs: each dataset's best GAN, held to the issue's bars (all classes, precision and
# recall >= 0.8, classifier-FID <= 2x the floor, label accuracy >= 95 %). Test runs, classifier-FID
# (n = 5,000) and label accuracy by steps:
# - MNIST, MLP cGAN, batch 128: 11.7 / 90 % at 6k, 2.5 / 95 % at 10k, 1.10 / 97 % at 14k, 0.93 / 98 %
#   at 16k (the floor is 0.55). Linear learning-rate decay to 0 made it worse (4.5 at 14k); a conv
#   cGAN (projection D, hinge, spectral norm) stalled at 1.32 from 9k to 12k steps.
# - Fashion-MNIST: the MLP cGAN reached only 14.6 / 87 % at 14k. A conv cGAN with a projection D,
#   hinge loss and spectral norm (Miyato & Koyama 2018), batch 64: 18.0 / 85 % at 4k, 8.1 / 89 % at
#   8k, 4.8 / 91 % at 16k; adding an AC-GAN class head (aux_weight 1): 15.0 / 92 % at 4k, 8.0 / 96.5 %
#   at 8k, 4.9 / 97 % at 16k. Built at 16k: 4.98 (5.1x the floor 0.97); at 32k (20 min): 2.86 (2.9x),
#   recall 0.82, 97.7 %. At 64k (2026-12-03, 83 CPU-minutes, with a recorded run):
#   2.25 (2.3x), recall 0.84, 97.5 %.
_PROJECTION_AC = _o(arch="conv", width=32, loss="hinge", spectral_norm=True, beta1=0.0, beta2=0.9,
                    aux_weight=1.0, ema=0.999)
CGAN = {
    "mnist": Recipe("mnist-cgan", "mnist", "cgan", 18000, batch_size=128, overrides=_o(ema=0.999), n_fixed=100),
    "fashion-mnist": Recipe("fashion-mnist-cgan", "fashion-mnist", "cgan", 64000, overrides=_PROJECTION_AC,
                            n_fixed=100, why="conditional conv GAN: projection D with an AC-GAN class head, "
                                             "hinge loss, spectral norm"),
}

# The best unconditional GANs (issue 13): the scgan preset, mnist-gan's recipe (20k steps, EMA 0.999)
# with G and D conditioned on 100 k-means clusters of the images instead of labels (GANConfig.clusters;
# no labels used). Cards (n = 5,000): MNIST 1.35x the floor, precision / recall 0.94 / 0.91 (mnist-gan
# 11.0x); Fashion 8.3x, 0.92 / 0.73 (fashion-mnist-gan 10.7x). With cgan's recipe instead (lr 2e-4,
# batch 128, 18k steps): MNIST 2.4x, Fashion 14.1x with recall 0.41. Their samples are no nearer the
# training images than mnist-gan's (median nearest-image distance 4.5 against 4.9; real images' to
# their nearest other image 2.2).
SCGAN = {ds: Recipe(f"{ds}-scgan", ds, "scgan", 20000, overrides=_o(ema=0.999),
                    why="self-conditioned MLP GAN: G and D conditioned on 100 k-means clusters of the images "
                        "(no labels used), minibatch std in D, EMA of G 0.999")
         for ds in ("mnist", "fashion-mnist")}

SNGAN_D = _o(**presets.SNGAN_D, ema=0.999)
# The cross-entropy D the dcgan preset had before it took SNGAN_D, pinned for the files built with it.
BCE_D = _o(loss="nonsaturating", spectral_norm=False, beta1=0.5, beta2=0.999)
# The velocity-predicting flow the flow presets were before they took FLOW_IMAGES, pinned likewise.
V_FLOW = _o(predict="v", time_sampling="uniform", clip_x1=False)

# Issue 13's recipes for the 28x28 unconditional GANs: the presets, which won a search by quality per
# CPU-second (see genlib.models.presets), trained for ~5-20 CPU-minutes each on one thread (the cards
# record each). Throughputs on the first VM, one thread: MLP GAN ~70 steps per CPU-second, MLP WGAN-GP
# ~45, DCGAN (width 32) ~20; on the later, slower VM the DCGAN ~15 (~13 with SNGAN_D).
ISSUE13 = {
    # MLP GAN: lr 1e-3. MNIST: the 20k-step build's recorded live classifier-FID (n = 1,000) was best
    # at 11.8k (10.2), then rose to 26 at 20k (the 10k images overfit, the classes drifted: 20 % 1s).
    # A longer EMA (0.999) held it better, n = 2,000 against the floor 1.17 (bench/gan-recipes-2core-cpu.txt):
    # 16.4x / 10.0x / 8.4x / 9.1x at 5k / 8k / 10k / 12k steps, against the preset's EMA 0.995 at
    # 16.0x / - / 11.1x / - (13.7x at 15k, 27.2x at 20k). DiffAugment-style translation of D's inputs
    # (11.5x at 10k) and PacGAN's packs of 2 (25.1x at 10k, classes balanced better) did not help.
    # Fashion-MNIST: 12k steps, EMA 0.999 too (with the preset's 0.995 the live classifier-FID was flat
    # from 8k to 12k steps, 25-28). The old builds' recorded runs: bench/gan-recipes-2core-cpu.txt.
    # Then ProGAN's minibatch standard deviation in D (Karras et al. 2018): the class drift stopped and
    # quality kept rising (MNIST, n = 2,000: 12.6x / 4.9x / 4.1x the floor at 5k / 10k / 15k steps, class
    # shares' distance from uniform 0.064 / 0.027 / 0.017, against EMA 0.999 alone 16.4x / 8.4x / 10.8x and
    # 0.087 / 0.088 / 0.119).
    "gan": lambda ds: Recipe(f"{ds}-gan", ds, "gan", 20000, overrides=_o(ema=0.999, minibatch_std=True),
                             why="vanilla MLP GAN, non-saturating loss, Adam 1e-3, EMA of G 0.999; D reads the "
                                 "batch's spread (minibatch standard deviation, Karras et al. 2018), which "
                                 "stopped the classes drifting late in training"),
    # DCGAN: width 32, lr 5e-4, EMA 0.995: 8k steps in ~7 CPU-minutes. MNIST: 16k steps, EMA 0.999 (the
    # 8k-step build's live classifier-FID still fell at its end: 36.6 at 6.6k, 33.1 at 8k): 59.0x the
    # floor on its card, precision 0.68 (strokes off the data), recall 0.96.
    # Then D trained as SNGAN's (Miyato et al. 2018): hinge loss, spectral norm on every D layer, Adam
    # betas (0, 0.9), EMA 0.999 (the Fashion cGAN's recipe, unconditional; lr 5e-4 and the nets kept);
    # ~13 steps per CPU-second against ~15. MNIST, n = 2,000 (floor 1.17): 39.0x / 24.3x / 15.2x the
    # floor at 2.5k / 5k / 10k steps, precision 0.60-0.63, recall 0.95-0.97 (bench/gan-recipes-2core-cpu.txt).
    # Built for 16k steps (cards, n = 5,000): MNIST 28.7x the floor (was 59.0x), precision / recall
    # 0.68 / 0.97, 1,141 CPU-s; Fashion-MNIST 18.6x (was 39.1x at 8k plain steps), 0.79 / 0.88, 982 CPU-s.
    # Then self-conditioned (GANConfig.clusters = 100, as scgan): bench/time_to_quality.py, MNIST, n = 2,000,
    # the dcgan preset with 100 clusters: 23.7x the floor at 60 CPU-s, 1.9x at 300 s (3.7k steps), against
    # 65x / 25x without. Cards (n = 5,000): MNIST, 8k steps, 2.4x the floor, precision / recall 0.94 /
    # 0.90, 640 CPU-s; Fashion-MNIST 3.9x at 8k steps (0.93 / 0.82, 654 CPU-s; its recorded classifier-FID
    # still falling), 2.4x at 16k (0.93 / 0.86, 1,389 CPU-s).
    "dcgan": lambda ds: Recipe(f"{ds}-dcgan", ds, "dcgan", 8000 if ds == "mnist" else 16000,
                               overrides=SNGAN_D + _o(clusters=100),
                               why="DCGAN with an SNGAN-style D (hinge loss, spectral norm on every D layer, "
                                   "Adam betas (0, 0.9)), EMA of G 0.999, self-conditioned on 100 k-means "
                                   "clusters of the images (no labels used)"),
    # WGAN-GP: MLP nets, 2 critic steps, lr 5e-4, betas (0.5, 0.9), EMA 0.995: 12k steps (6k G
    # updates) in ~4.5 CPU-minutes; Fashion-MNIST 5k (~2 CPU-minutes), what fit the session's time.
    # Then 20k (MNIST) and 15k (Fashion) steps with EMA 0.999: the 12k / 5k-step builds' live
    # classifier-FID still fell at their ends (MNIST 34.0 at 9.2k, 30.7 at 12k; Fashion 42.6 at 4.55k, 39.4 at 5k).
    # MNIST then with minibatch std in D too (n = 2,000, at 5k / 10k steps: 43.3x / 19.8x the floor,
    # against 45.1x / 23.9x without; bench/gan-recipes-2core-cpu.txt): 37.3x -> 19.8x on the card.
    # Fashion-MNIST's 15k-step build with it did not gain (card: 21.8x against 21.7x, recall 0.61
    # against 0.63; 515 CPU-s): kept without.
    "wgan-gp": lambda ds: Recipe(f"{ds}-wgan-gp", ds, "wgan-gp", 20000 if ds == "mnist" else 15000,
                                 overrides=_o(ema=0.999, **({"minibatch_std": True} if ds == "mnist" else {}))),
}
# The first set's recipes (an hour for the whole set), kept for the files not rebuilt yet: their
# overrides pin the settings the presets had then, so each still rebuilds the file it describes.
# Then: MNIST / Fashion MLP GAN 106x / 56x the floor, DCGAN 118x / 77x, WGAN-GP 298x / 106x (noise).
FIRST_SET = {
    "gan": lambda ds: Recipe(f"{ds}-gan", ds, "gan", 6000, overrides=_o(lr_g=2e-4, lr_d=2e-4, ema=0.999)),
    # DCGAN learned slowly (blotchy strokes at 2.5k steps; spectral norm or TTUR did not change that
    # in 2.5k-step tests): 5k steps.
    "dcgan": lambda ds: Recipe(f"{ds}-dcgan", ds, "dcgan", 5000,
                               overrides=_o(width=32, lr_g=2e-4, lr_d=2e-4, ema=0.999) + BCE_D),
    "wgan-gp": lambda ds: Recipe(f"{ds}-wgan-gp", ds, "wgan-gp", 2000,
                                 overrides=_o(**PAPER_WGAN_GP, width=32, ema=0.0),
                                 why="WGAN-GP (conv critic), the paper's settings; 400 generator updates"),
}
# The files rebuilt with ISSUE13's recipes so far (the others keep FIRST_SET's until they are).
REBUILT = frozenset({"mnist-wgan-gp", "mnist-gan", "mnist-dcgan", "fashion-mnist-wgan-gp", "fashion-mnist-gan",
                     "fashion-mnist-dcgan"})


def _gan(kind: str, ds: str) -> Recipe:
    r = ISSUE13[kind](ds)
    return r if r.name in REBUILT else FIRST_SET[kind](ds)


# The table; the comments say what the short test runs behind the steps showed.
RECIPES: tuple[Recipe, ...] = (
    # --- digits (8x8, 1,437 training images): the offline default, 0.5-2.5 minutes per model -----
    # VAEs are cheap (~400 steps/s): 20k steps, where 3k left a 2-D latent with classes never drawn.
    Recipe("digits-vae-2d", "digits", "vae", 20000, overrides=_o(latent_dim=2),
           why="MLP VAE with a 2-D latent, for the cluster plots"),
    Recipe("digits-vae", "digits", "vae", 20000, overrides=_o(latent_dim=16), why="MLP VAE, 16-D latent"),
    # GANs: EMA of G (0.999), batch 128, 6k steps and standing BN statistics (see standing_batchnorm)
    # took the MLP GAN's classifier-FID on digits from ~20 (3k steps, batch 64) to ~5 in test runs.
    # Built with the presets of the first set (lr 2e-4; DCGAN width 64), pinned here.
    Recipe("digits-gan", "digits", "gan", 6000, batch_size=128, overrides=_o(lr_g=2e-4, lr_d=2e-4, ema=0.999)),
    Recipe("digits-dcgan", "digits", "dcgan", 3000, batch_size=128,
           overrides=_o(width=64, lr_g=2e-4, lr_d=2e-4, ema=0.999) + BCE_D),
    Recipe("digits-cgan", "digits", "cgan", 6000, batch_size=128, overrides=_o(ema=0.999), n_fixed=100),
    *(r for ds in ("mnist", "fashion-mnist") for r in (
        # --- 28x28 (MNIST: the 10k test split when that is all there is; Fashion: 60k train) -----
        # EMA decays leave < 1 % of the initial G in the average (decay ** steps).
        # 2-D latent: hidden (512, 256) and 10k steps took the 5-NN accuracy from 0.67 (400 hidden, 3k
        # steps) to 0.83 on MNIST and from 0.65 to 0.72 on Fashion (its tops and coats overlap in 2-D).
        Recipe(f"{ds}-vae-2d", ds, "vae", 10000, batch_size=128, overrides=_o(latent_dim=2, hidden=(512, 256)),
               why="MLP VAE (hidden 512-256) with a 2-D latent, for the cluster plots"),
        # conv VAE: Fashion at n = 2,000, 1,500 -> 4,000 -> 8,000 steps: confidence 0.77 -> 0.78 -> 0.80,
        # recall 0.69 -> 0.78 -> 0.79, classifier-FID 69.7 -> 59.4 -> 53.8 (172 CPU-s for 8,000).
        Recipe(f"{ds}-conv-vae", ds, "conv-vae", 8000),
        _gan("gan", ds),
        SCGAN[ds],
        CGAN[ds],
        _gan("dcgan", ds),
        _gan("wgan-gp", ds),
    )),
    # --- flow matching (issue 17; bench/flow-results-2core-cpu.txt). digits: the MLP preset, batch 256,
    # EMA 0.999 (confidence 0.89, 10/10 classes after 15 s live). 28x28: the U-Net at width 32 on 2x2
    # patches (0.85 s for 64 samples at 20 Euler steps), lr 1e-3 (the U-Net's; 2e-3 is the MLP's), batch
    # 128, EMA 0.999; ~4.8 steps per CPU-second on one thread. Guidance (sampling only: training is the
    # same for every w) chosen per dataset on the 5,000-step builds, n = 2,000: MNIST (floor 1.17)
    # classifier-FID 1.6x the floor at w = 1 (label accuracy 95.7 %), 1.1x at 1.2 (99.0 %, precision /
    # recall 0.95 / 0.92), 1.8x at 1.3, 4.2x at 1.5, 11.6x at 2 (100 %, recall 0.80); Fashion (floor
    # 1.31) 5.7x at 1 (86.2 %), 3.4x at 1.2 (90.3 %), 2.4x at 1.5 (94.5 %), 3.4x at 2 (97.2 %, recall
    # 0.76). Stronger guidance trades diversity for labels (lesson 16).
    Recipe("digits-cflow", "digits", "cflow", 4000, batch_size=256, overrides=_o(ema=0.999) + V_FLOW, n_fixed=100,
           why="class-conditional flow matching, MLP velocity net, classifier-free guidance (w = 2), 20 Euler steps"),
    *(Recipe(f"{ds}-cflow", ds, "cflow", 5000, batch_size=128, n_fixed=100,
             overrides=_o(arch="conv", width=32, patch=2, lr=1e-3, ema=0.999, guidance=w) + V_FLOW,
             why=f"class-conditional flow matching, small U-Net (width 32, 2x2 patches), guidance w = {w:g}, "
                 "20 Euler steps") for ds, w in (("mnist", 1.2), ("fashion-mnist", 1.5))),
)


BY_NAME: dict[str, Recipe] = {r.name: r for r in RECIPES}


def rebuild_command(recipe: Recipe) -> str:
    return f"{BUILD_COMMAND} --only {recipe.name}"


# ------------------------------------------------------------------------------------------------
# What is shipped, for the dashboard


@dataclasses.dataclass(frozen=True)
class PretrainedEntry:
    name: str
    path: Path
    dataset: str
    preset: str
    description: str


def describe(r: Recipe) -> str:
    from ..models import PRESETS
    return r.why or PRESETS[r.preset].description


def list_pretrained(dataset: str | None = None, root: str | os.PathLike | None = None) -> list[PretrainedEntry]:
    """Shipped models (their file exists), in the table's order; only ``dataset``'s when given."""
    folder = Path(root) if root is not None else PRETRAINED_DIR
    return [PretrainedEntry(r.name, folder / f"{r.name}.pt", r.dataset, r.preset, describe(r))
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
