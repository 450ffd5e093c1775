"""GAN recipes by training steps on ONE torch thread: classifier-FID over the floor, precision, recall,
confidence and the class shares of the samples, at checkpoints along one run per recipe (how the
28x28 MLP GAN's build recipe was chosen; genlib/pretrained/recipes.py).

    OMP_NUM_THREADS=1 python bench/gan_recipes.py [--recipes base,ema999,...] [--at 5000,10000,20000]
                                                  [--dataset mnist] [--n 2000] [--jsonl FILE]

Recipes (each the `gan` preset, or where named `wgan-gp`, `dcgan` or `conv-vae`, with one change):
  base      the preset (Adam 1e-3, EMA of G 0.995)
  ema999    EMA 0.999
  translate D sees its inputs, real and fake, shifted by up to 1/8 of the side (DiffAugment's
            translation, Zhao et al. 2020; differentiable, so G learns through it)
  pack2     PacGAN (Lin et al. 2018): D scores packs of 2 samples, an MLP of the same hidden sizes
  mbstd     EMA 0.999 and minibatch_std: D's last hidden features get one more, their standard deviation
            over the batch, averaged (ProGAN's minibatch standard deviation, Karras et al. 2018): D can
            see a batch without variety
  lr5e-4    Adam 5e-4 (the preset's 1e-3 won at 60 s; a build runs 10x longer), EMA 0.999 (not run to the end)
  sngan     the `gan` preset with D trained as SNGAN's (SNGAN_D below: hinge, spectral norm, betas
            (0, 0.9), EMA 0.999); sngan-mbstd: and minibatch_std
  wgan-gp   the `wgan-gp` preset with EMA 0.999 (mnist-wgan-gp's build recipe); wgan-gp-mbstd: and
            minibatch_std
  dcgan     the `dcgan` preset as it was, with a cross-entropy D, and EMA 0.999 (mnist-dcgan's first
            16k-step build); dcgan-mbstd: and minibatch_std
  dcgan-sngan  the `dcgan` preset as SNGAN trains (Miyato et al. 2018): hinge loss, spectral norm on every
            D layer, Adam betas (0, 0.9), EMA 0.999 (the recipe of the Fashion cGAN, unconditional; then
            mnist-dcgan's build recipe, SNGAN_D); dcgan-sngan-mbstd: and minibatch_std
  conv-vae  the `conv-vae` preset (the shipped conv VAEs' recipe, 8k steps); conv-vae-w64: width 64 (32);
            conv-vae-z32: a 32-D latent (16); conv-vae-b05: the KL weighted 0.5 (a beta-VAE below 1:
            sharper reconstructions, a latent further from the prior the samples are drawn from)
Any recipe takes a batch size and EMA from `--batch` / the recipe; the clock is the training
thread's CPU seconds (time.thread_time), evaluation excluded. classifier-FID is in genlib's
classifier features, NOT the Inception FID; 'tv' is the total-variation distance of the samples'
predicted-class shares from uniform (0 = balanced; real MNIST test images: 0.02).
"""
from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

from common import machine  # noqa: E402  (puts the repo on sys.path)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

import genlib  # noqa: E402
from genlib import metrics  # noqa: E402
from genlib.pretrained.recipes import BCE_D, SNGAN_D  # noqa: E402
from genlib.sampling import eval_mode  # noqa: E402

WHICH = ("classifier_fid", "classes_covered", "mean_confidence", "class_histogram", "precision", "recall")


def translate(x: torch.Tensor, ratio: float = 0.125, fill: float = -1.0) -> torch.Tensor:
    """Each image shifted by up to ``ratio`` of its side, in x and y, background (-1) filled in
    (DiffAugment's rand_translation, with the GAN's background instead of zeros)."""
    b, _, h, w = x.shape
    sx, sy = int(h * ratio + 0.5), int(w * ratio + 0.5)
    tx = torch.randint(-sx, sx + 1, (b, 1, 1), device=x.device)
    ty = torch.randint(-sy, sy + 1, (b, 1, 1), device=x.device)
    gb, gx, gy = torch.meshgrid(torch.arange(b, device=x.device), torch.arange(h, device=x.device),
                                torch.arange(w, device=x.device), indexing="ij")
    gx, gy = torch.clamp(gx + tx + 1, 0, h + 1), torch.clamp(gy + ty + 1, 0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1], value=fill)
    return padded.permute(0, 2, 3, 1)[gb, gx, gy].permute(0, 3, 1, 2)


class Translated(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x, labels=None):
        return self.inner(translate(x), labels)


class Packed(nn.Module):
    """D of PacGAN: one score per pack of ``m`` consecutive samples."""

    def __init__(self, in_dim: int, hidden: tuple[int, ...], m: int) -> None:
        super().__init__()
        self.m = m
        sizes, layers = [in_dim * m, *hidden], []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), nn.LeakyReLU(0.2)]
        self.net = nn.Sequential(*layers, nn.Linear(sizes[-1], 1))

    def forward(self, x, labels=None):
        return self.net(x.reshape(x.shape[0] // self.m, -1)).squeeze(1)


SNGAN = dict(SNGAN_D)     # hinge loss, spectral norm in D, Adam betas (0, 0.9), EMA 0.999
RECIPES = {"base": {}, "ema999": {"ema": 0.999}, "translate": {}, "pack2": {},
           "mbstd": {"ema": 0.999, "minibatch_std": True}, "lr5e-4": {"ema": 0.999, "lr_g": 5e-4, "lr_d": 5e-4},
           "wgan-gp": {"ema": 0.999}, "wgan-gp-mbstd": {"ema": 0.999, "minibatch_std": True},
           # dcgan: the preset as it was before it took SNGAN's D (the cross-entropy D pinned)
           "dcgan": {"ema": 0.999, **dict(BCE_D)}, "dcgan-mbstd": {"ema": 0.999, "minibatch_std": True, **dict(BCE_D)},
           "sngan": SNGAN, "sngan-mbstd": {**SNGAN, "minibatch_std": True},
           "dcgan-sngan": SNGAN, "dcgan-sngan-mbstd": {**SNGAN, "minibatch_std": True},
           "conv-vae": {}, "conv-vae-w64": {"width": 64}, "conv-vae-z32": {"latent_dim": 32},
           "conv-vae-b05": {"beta": 0.5}}


def build(recipe: str, data) -> genlib.GenerativeModel:
    torch.manual_seed(0)
    preset = next((p for p in ("wgan-gp", "dcgan", "conv-vae") if recipe.startswith(p)), "gan")
    model = genlib.make_model(preset, data, **RECIPES[recipe])
    c = model.config
    if recipe == "translate":
        model.discriminator = Translated(model.discriminator)
    elif recipe == "pack2":
        model.discriminator = Packed(int(torch.tensor(c.data_shape).prod()), c.hidden, 2)
        model.opt_d = torch.optim.Adam(model.discriminator.parameters(), lr=c.lr_d, betas=(c.beta1, c.beta2))
    return model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipes", default="base,ema999,translate,pack2")
    ap.add_argument("--at", default="5000,10000,15000,20000", help="checkpoints, training steps")
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--jsonl", default="")
    args = ap.parse_args()
    torch.set_num_threads(1)
    data = genlib.load_dataset(args.dataset, download=False)
    floor = metrics.floor_fid(args.dataset, n=args.n)
    print(machine("cpu", f"one torch thread, batch {args.batch}, metrics of n={args.n}"), flush=True)
    print(f"# {args.dataset}: {data.split} split ({len(data):,} images); {metrics.FID_LABEL}; floor {floor:.3f}",
          flush=True)
    print(f"{'recipe':<17} {'steps':>6} {'CPU s':>6} {'cls-FID':>8} {'x floor':>7} {'prec':>5} {'rec':>5} "
          f"{'conf':>5} {'tv':>5}  class shares 0-9", flush=True)
    for recipe in args.recipes.split(","):
        model = build(recipe, data)
        model.train()
        batches = data.batches(args.batch, generator=torch.Generator().manual_seed(1))
        step, cpu = 0, 0.0
        for target in sorted(int(s) for s in args.at.split(",")):
            t0 = time.thread_time()
            while step < target:
                model.training_step(*next(batches))
                step += 1
            cpu += time.thread_time() - t0
            with eval_mode(model):
                m = metrics.evaluate(model, args.dataset, args.n, WHICH)
            model.train()
            shares = torch.tensor(m["class_histogram"])
            tv = 0.5 * (shares - 1 / len(shares)).abs().sum().item()
            print(f"{recipe:<17} {step:>6} {cpu:>6.0f} {m['classifier_fid']:>8.2f} {m['classifier_fid'] / floor:>7.1f} "
                  f"{m['precision']:>5.2f} {m['recall']:>5.2f} {m['mean_confidence']:>5.3f} {tv:>5.3f}  "
                  + " ".join(f"{v:.3f}" for v in shares.tolist()), flush=True)
            if args.jsonl:
                with open(args.jsonl, "a") as f:
                    f.write(json.dumps({"recipe": recipe, "steps": step, "cpu_s": cpu, "floor": floor, **m}) + "\n")


if __name__ == "__main__":
    main()
