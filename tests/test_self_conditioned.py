"""The self-conditioned GAN (GANConfig.clusters): clusters found without labels, a cluster picked by z,
and a model that is unconditional from the outside (genlib/models/clusters.py)."""
from __future__ import annotations

import pytest
import torch

import genlib
from genlib.checkpoint import load_checkpoint, save_checkpoint
from genlib.models import make_model
from genlib.models.clusters import DataClusters
from genlib.train import TrainConfig, Trainer

SMALL = {"hidden": (64,), "clusters": 8}


def fitted(digits, k: int = 8) -> DataClusters:
    c = DataClusters(k, 64)
    c.fit(digits.x)
    return c


def test_clusters_split_the_data_by_its_shares_and_are_seeded(digits):
    c = fitted(digits)
    assert int(c.fitted) == 1
    assert torch.isclose(c.share.sum(), torch.tensor(1.0)) and (c.share > 0).all()
    x, _ = digits.get(torch.arange(len(digits)))
    counts = torch.bincount(c.assign(x), minlength=8).float() / len(digits)
    assert torch.allclose(counts, c.share, atol=0.02)     # the training images fall where k-means put them
    again = fitted(digits)
    assert torch.equal(again.centres, c.centres)          # genlib's seeding rule: same data, same clusters


def test_clusters_put_like_with_like(digits):
    """Found without labels, yet purer than chance: the majority label of each cluster covers well over
    the largest class's share (~0.1 on digits). Measured: 0.80 with 10 clusters (random clusters 0.15)."""
    c = fitted(digits, 10)
    x, y = digits.get(torch.arange(len(digits)))
    a = c.assign(x)
    purity = sum(torch.bincount(y[a == k]).max().item() for k in range(10) if (a == k).any()) / len(y)
    assert purity > 0.5, purity


def test_z_picks_each_cluster_with_its_share_and_back(digits):
    c = fitted(digits)
    z0 = torch.randn(200_000, generator=torch.Generator().manual_seed(0))
    picked = torch.bincount(c.of_z(z0), minlength=8).float() / len(z0)
    assert torch.allclose(picked, c.share, atol=0.005)
    labels = torch.randint(8, (10_000,), generator=torch.Generator().manual_seed(1))
    z = c.z_for(labels)
    assert torch.equal(c.of_z(z), labels)
    # Drawn over all labels by their shares, the slices add up to N(0, 1).
    mixed = c.z_for(torch.multinomial(c.share, 200_000, replacement=True))
    assert abs(mixed.mean()) < 0.02 and abs(mixed.std() - 1) < 0.02


def test_the_trainer_fits_the_clusters_once_and_a_loaded_model_keeps_them(digits, tmp_path):
    m = make_model("scgan", digits, **SMALL)
    assert int(m.data_clusters.fitted) == 0
    trainer = Trainer(m, digits, TrainConfig(steps=20, batch_size=32, threads=1))
    assert int(m.data_clusters.fitted) == 1
    trainer.run()
    path = tmp_path / "sc.pt"
    save_checkpoint(path, m, trainer)
    loaded = load_checkpoint(path).model
    assert torch.equal(loaded.data_clusters.centres, m.data_clusters.centres)
    z = torch.randn(16, m.config.latent_dim, generator=torch.Generator().manual_seed(3))
    assert torch.allclose(loaded.sample(16, z=z), m.sample(16, z=z), atol=1e-6)
    other = genlib.load_dataset("digits", split="test")       # other data: the loaded clusters stay
    Trainer(loaded, other, TrainConfig(steps=1, batch_size=32, threads=1))
    assert torch.equal(loaded.data_clusters.centres, m.data_clusters.centres)


def test_it_is_unconditional_outside(digits):
    """z alone decides the image (the latent tools rely on it); no labels are asked for or taken; D
    judges each image within its own cluster."""
    m = make_model("scgan", digits, **SMALL)
    m.fit_data(digits)
    assert not m.config.conditional and m.default_labels(4) is None
    z = torch.randn(32, m.config.latent_dim, generator=torch.Generator().manual_seed(0))
    a, b = m.sample(32, z=z), m.sample(32, z=z)
    assert torch.equal(a, b) and a.shape == (32, 1, 8, 8)
    assert torch.equal(m.sample(32, z=z, labels=torch.zeros(32, dtype=torch.long)), a)
    # Moving only z's first coordinate across a cluster boundary changes the cluster, so the image.
    z2 = z.clone()
    z2[:, 0] = m.data_clusters.z_for((m.data_clusters.of_z(z[:, 0]) + 1) % 8)
    assert not torch.allclose(m.sample(32, z=z2), a)
    assert m.discriminate(a).shape == (32,)


@pytest.mark.parametrize("overrides", [{"conditional": True}])
def test_clusters_and_labels_do_not_mix(digits, overrides):
    with pytest.raises(ValueError, match=r"^clusters=8 is invalid: must be 0 for a conditional model"):
        make_model("scgan", digits, **SMALL, **overrides)


def test_points_cluster_too(ring):
    m = make_model("scgan", ring, hidden=(32,), clusters=8)
    Trainer(m, ring, TrainConfig(steps=5, batch_size=64, threads=1)).run()
    assert m.sample(10).shape == (10, 2)


@pytest.fixture(scope="module")
def ring():
    return genlib.load_dataset("ring")
