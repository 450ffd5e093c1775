"""Lesson 6: a VAE's latent space clusters by class, though it never saw a label. In 2-D (the shipped
2-D VAE), in 3-D (a 3-D latent VAE trained live for ``train_steps`` steps, about 20 s on one thread
of a loaded 2-core CPU for MNIST: the course report's rotatable 3-D scatter; a step count, not a time,
so a seed gives the same model on any machine) and, for a larger latent, in a t-SNE map of the shipped 16-D VAE's codes.

Measured by how well a point's 5 nearest neighbours predict its class (5-fold cross-validated; chance
is about 1/10) and the silhouette score (1 = tight separate clusters, 0 = overlapping), on the
posterior means of ``n`` test images.
"""
from __future__ import annotations

import time

import numpy as np
import torch

from ..latent.encode import encode_dataset
from ..latent.projection import project_2d
from . import Check, Lesson, Outcome
from . import _common as C


def models_for(dataset: str) -> tuple[str, ...]:
    return (f"{dataset}-vae-2d", "digits-vae" if dataset == "digits" else f"{dataset}-conv-vae")


def train_for(data, steps: int, seed: int, latent_dim: int = 3, batch_size: int = 128):
    """A fresh MLP VAE with a ``latent_dim`` latent trained on ``data`` for ``steps`` steps (one thread,
    seeded); returns (model, steps taken, seconds of training)."""
    from ..models import make_model
    from ..train import TrainConfig, Trainer
    torch.manual_seed(seed)
    model = make_model("vae", data, latent_dim=latent_dim)
    trainer = Trainer(model, data, TrainConfig(steps=steps, batch_size=batch_size, seed=seed, threads=1,
                                               log_every=50, sample_every=10 ** 7))
    trainer.run()
    model.eval()
    return model, trainer.step, trainer.elapsed


def separation(z: np.ndarray, y: np.ndarray, seed: int) -> tuple[float, float]:
    from sklearn.metrics import silhouette_score
    return C.knn_accuracy(z, y, seed=seed), float(silhouette_score(z, y))


def verdict(knn2: float, knn3: float, knnt: float, sil2: float, sil3: float, silt: float, chance: float) -> str:
    """The closing sentence, from the numbers."""
    views = {"2-D": (knn2, sil2), "3-D": (knn3, sil3), "t-SNE": (knnt, silt)}
    far = [v for v, (a, _) in views.items() if a >= 3 * chance]
    near = [v for v, (a, _) in views.items() if a < 3 * chance]
    out = (f"The neighbours predict the class at least 3x better than chance in {', '.join(far)}"
           if far else "No view predicts the class at 3x chance")
    out += f" (not in {', '.join(near)})." if near and far else "."
    touching = [v for v, (_, s) in views.items() if s < 0.1]
    if touching:
        out += f" Silhouettes under 0.1 ({', '.join(touching)}) say those clusters touch and overlap."
    return out


def run(seed: int = 0, dataset: str = "mnist", n: int = 2000, train_steps: int = 800, tsne_n: int = 1000) -> Outcome:
    if train_steps < 1:
        raise ValueError(f"train_steps must be >= 1, got {train_steps}")
    name = C.pick_dataset(dataset, models_for)
    data = C.dataset(name)
    vae2, vae_big = (C.pretrained(x).model for x in models_for(name))
    z2, y2, _ = encode_dataset(vae2, data, n=n, seed=seed)
    knn2, sil2 = separation(z2.numpy(), y2.numpy(), seed)
    t0 = time.perf_counter()
    vae3, steps3, trained_s = train_for(data, train_steps, seed)
    z3, y3, _ = encode_dataset(vae3, data, n=n, seed=seed)
    knn3, sil3 = separation(z3.numpy(), y3.numpy(), seed)
    t3 = time.perf_counter() - t0
    zb, yb, _ = encode_dataset(vae_big, data, n=tsne_n, seed=seed)
    xy = project_2d(zb, "tsne", seed=seed, cache=None, threads=1)
    knnt, silt = separation(xy, yb.numpy(), seed)
    knn_raw = C.knn_accuracy(zb.numpy(), yb.numpy(), seed=seed)
    k = data.num_classes
    note = (f"{name}, {n} test images (seed {seed}); 5-nearest-neighbour accuracy of the class from the latent "
            f"code (chance about {1 / k:.2f}) and silhouette. 2-D ({models_for(name)[0]}): {knn2:.2f}, silhouette "
            f"{sil2:.2f}. 3-D, a VAE trained here for {trained_s:.0f} s ({steps3} steps): {knn3:.2f}, silhouette "
            f"{sil3:.2f}. t-SNE of {tsne_n} {vae_big.config.latent_dim}-D codes ({models_for(name)[1]}): "
            f"{knnt:.2f} on the map (in the {vae_big.config.latent_dim}-D space itself {knn_raw:.2f}), silhouette "
            f"{silt:.2f}. " + verdict(knn2, knn3, knnt, sil2, sil3, silt, 1 / k))
    return Outcome(knn2, note,
                   data={"z2": z2.numpy(), "y2": y2.numpy(), "z3": z3.numpy(), "y3": y3.numpy(), "tsne": xy,
                         "y_tsne": yb.numpy(), "dataset": name},
                   figures={"knn_2d": knn2, "silhouette_2d": sil2, "knn_3d": knn3, "silhouette_3d": sil3,
                            "knn_tsne": knnt, "silhouette_tsne": silt, "knn_raw_big": knn_raw,
                            "train_3d_s": trained_s, "train_3d_steps": steps3, "seconds_3d": t3},
                   checks=(Check("3-D VAE trained live: 5-NN accuracy", knn3, 0.5),
                           Check("t-SNE map: 5-NN accuracy", knnt, 0.5)))


LESSON = Lesson(
    6, "latent-clusters", "The latent space clusters by class",
    "Encoded test images coloured by class form clusters in a 2-D latent, in a 3-D latent (a rotatable "
    "scatter of a VAE trained live) and in a t-SNE map of a 16-D latent.",
    page="latent.py", effect="2-D latent: 5-NN class accuracy (chance 0.1)", unit="", threshold=0.5,
    settings={"dataset": "mnist", "n": 2000, "train_steps": 800, "tsne_n": 1000}, runner=run)
