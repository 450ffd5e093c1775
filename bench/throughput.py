"""Throughput: images/s of genlib's presets, and of a baseline written the way the well-known
PyTorch examples are (a DataLoader over a torchvision dataset with ToTensor, `.item()` logging every
batch) with the identical MLP VAE (784-400-20) and the identical DCGAN.

    python bench/throughput.py [--seconds 8] [--device auto] [--threads 0] [--presets vae,dcgan]

Uses Fashion-MNIST (28x28, the only set with both splits on the lab machines; pixels do not change
speed). Each measurement warms up, then counts images over --seconds of wall time. genlib runs as
the dashboard runs it: a Trainer thread with the default TrainConfig (log every 25 steps, a sample
grid every 250) and --threads torch threads (0 = genlib.device.default_threads()).
bench/threads.py compares thread counts, with and without a busy UI thread.
"""
from __future__ import annotations

import argparse
import gzip
import shutil
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from common import machine, measure_rate

import genlib
from genlib.models import PRESETS, make_model


def torchvision_fashion(root: Path):
    """torchvision's FashionMNIST over uncompressed copies of the files genlib found."""
    from torchvision import datasets, transforms
    src = None
    for r in genlib.data.search_roots():
        if (r / "FashionMNIST" / "raw").is_dir():
            src = r / "FashionMNIST" / "raw"
            break
    if src is None:
        raise SystemExit("Fashion-MNIST not found; see README 'Data'")
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        out = raw / f.name.removesuffix(".gz")
        if not out.exists():
            with (gzip.open(f) if f.suffix == ".gz" else open(f, "rb")) as fin, open(out, "wb") as fout:
                shutil.copyfileobj(fin, fout)
    return datasets.FashionMNIST(str(root), train=True, download=False, transform=transforms.ToTensor())


# --- the baseline, pytorch/examples style ---------------------------------------------------------

class ExampleVAE(nn.Module):
    """pytorch/examples vae/main.py, unchanged: 784-400-20."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc21, self.fc22 = nn.Linear(784, 400), nn.Linear(400, 20), nn.Linear(400, 20)
        self.fc3, self.fc4 = nn.Linear(20, 400), nn.Linear(400, 784)

    def forward(self, x):
        h1 = F.relu(self.fc1(x.view(-1, 784)))
        mu, logvar = self.fc21(h1), self.fc22(h1)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z)))), mu, logvar


def baseline_vae(loader, device, seconds):
    model = ExampleVAE().to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step(data, _):
        data = data.to(device)
        recon, mu, logvar = model(data)
        bce = F.binary_cross_entropy(recon, data.view(-1, 784), reduction="sum")
        kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        loss = bce + kld
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()                      # logged every batch, as in the example

    return _time_loader(loader, step, seconds)


def example_dcgan(latent=64, width=64):
    """The same layers as genlib's 'dcgan-paper' preset on 28x28 (width 64, cross-entropy D, no spectral
    norm, no EMA), as plain Sequentials."""
    g = nn.Sequential(
        nn.Linear(latent, 2 * width * 49), nn.BatchNorm1d(2 * width * 49), nn.ReLU(),
        nn.Unflatten(1, (2 * width, 7, 7)),
        nn.ConvTranspose2d(2 * width, width, 4, 2, 1), nn.BatchNorm2d(width), nn.ReLU(),
        nn.ConvTranspose2d(width, 1, 4, 2, 1), nn.Tanh())
    d = nn.Sequential(
        nn.Conv2d(1, width, 4, 2, 1), nn.LeakyReLU(0.2),
        nn.Conv2d(width, 2 * width, 4, 2, 1), nn.LeakyReLU(0.2),
        nn.Flatten(), nn.Linear(2 * width * 49, 1), nn.Sigmoid())
    return g, d


def baseline_dcgan(loader, device, seconds):
    g, d = (m.to(device) for m in example_dcgan())
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bce = nn.BCELoss()

    def step(data, _):
        real = data.to(device) * 2 - 1
        b = real.size(0)
        # (1) update D: maximize log(D(x)) + log(1 - D(G(z)))
        d.zero_grad()
        out = d(real).view(-1)
        err_real = bce(out, torch.ones(b, device=device))
        err_real.backward()
        d_x = out.mean().item()
        fake = g(torch.randn(b, 64, device=device))
        out = d(fake.detach()).view(-1)
        err_fake = bce(out, torch.zeros(b, device=device))
        err_fake.backward()
        d_g_z1 = out.mean().item()
        opt_d.step()
        # (2) update G: maximize log(D(G(z)))
        g.zero_grad()
        out = d(fake).view(-1)
        err_g = bce(out, torch.ones(b, device=device))
        err_g.backward()
        opt_g.step()
        return (err_real + err_fake).item(), err_g.item(), d_x, d_g_z1, out.mean().item()

    return _time_loader(loader, step, seconds)


def _time_loader(loader, step, seconds):
    warm = 0
    images, t0 = 0, None
    while True:
        for data, target in loader:
            step(data, target)
            warm += 1
            if warm == 5:
                t0, images = time.perf_counter(), 0
            elif t0 is not None:
                images += data.shape[0]
                if time.perf_counter() - t0 > seconds:
                    return images / (time.perf_counter() - t0)


# --- genlib ------------------------------------------------------------------------------------------

def genlib_rate(preset, data, device, seconds, batch_size, threads=0):
    """A genlib.Trainer with the default TrainConfig (log every 25 steps, a sample grid every 250) on
    its own thread, as the dashboard runs it; steps counted over ``seconds`` after a warm-up."""
    torch.manual_seed(0)
    model = make_model(preset, data)
    trainer = genlib.Trainer(model, data, genlib.TrainConfig(steps=10**9, batch_size=batch_size, threads=threads),
                             device=device)
    return measure_rate(trainer, seconds)["images_per_s"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=0, help="0 = genlib's default for genlib AND baseline")
    ap.add_argument("--presets", default=",".join(PRESETS))
    ap.add_argument("--workers", type=int, default=0, help="DataLoader workers for the baseline")
    args = ap.parse_args()
    device = genlib.pick_device(args.device)
    threads = genlib.configure_threads(args.threads or None)
    data = genlib.load_dataset("fashion-mnist", device=device)
    print(machine(device, f"{threads} torch thread(s) for genlib and the baseline; {args.seconds:g} s per "
                          "measurement after a warm-up; Fashion-MNIST 28x28"))

    print(f"{'model':<10} {'batch':>5} {'genlib img/s':>13}")
    rates = {}
    for preset in args.presets.split(","):
        rates[preset] = genlib_rate(preset, data, device, args.seconds, 64, threads)
        print(f"{preset:<10} {64:>5} {rates[preset]:>13,.0f}", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        ds = torchvision_fashion(Path(tmp))
        print(f"\nbaseline: torch DataLoader(torchvision FashionMNIST, ToTensor, workers={args.workers}), "
              ".item() every batch")
        print(f"{'model':<10} {'batch':>5} {'baseline img/s':>15} {'genlib img/s':>13} {'ratio':>6}")
        for name, fn, preset, bs in [("vae", baseline_vae, "vae", 128), ("dcgan", baseline_dcgan, "dcgan-paper", 64)]:
            loader = torch.utils.data.DataLoader(ds, batch_size=bs, shuffle=True, num_workers=args.workers,
                                                 drop_last=True)
            base = fn(loader, device, args.seconds)
            ours = genlib_rate(preset, data, device, args.seconds, bs, threads)
            print(f"{name:<10} {bs:>5} {base:>15,.0f} {ours:>13,.0f} {ours / base:>5.1f}x", flush=True)


if __name__ == "__main__":
    main()
