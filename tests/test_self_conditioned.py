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
    torch.manual_seed(2)                     # z_for draws within each slice from the global RNG
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
    # The cluster z picks is an input of G of its own: the same z told another cluster draws another image.
    c = m.data_clusters.of_z(z[:, 0])
    with torch.no_grad():
        g = m.sampler.eval()
        assert torch.allclose(m.to_data_range(g(z, c)), a)
        assert not torch.allclose(m.to_data_range(g(z, (c + 1) % 8)), a)
    assert m.discriminate(a).shape == (32,)


def test_training_pairs_each_image_with_its_cluster(digits, monkeypatch):
    """Real images are judged within their own cluster; each fake is drawn for the cluster of the real
    image beside it, with a z whose first coordinate picks that cluster, as sampling will."""
    m = make_model("scgan", digits, **SMALL)
    m.fit_data(digits)
    seen = {}
    g_forward, d_forward = m.generator.forward, m.discriminator.forward
    monkeypatch.setattr(m.generator, "forward", lambda z, labels=None: seen.setdefault("g", (z, labels)) and
                        g_forward(z, labels))
    monkeypatch.setattr(m.discriminator, "forward", lambda x, labels=None, classes=False:
                        seen.setdefault("d", []).append(labels) or d_forward(x, labels, classes))
    x, y = digits.get(torch.arange(64))
    m.training_step(x, y)
    z, g_labels = seen["g"]
    want = m.data_clusters.assign(x)
    assert torch.equal(g_labels, want) and torch.equal(m.data_clusters.of_z(z[:, 0]), want)
    assert all(torch.equal(labels, want) for labels in seen["d"])       # D on the reals and the fakes
    assert not torch.equal(want, y)                                     # the clusters, not the labels


def test_it_will_not_train_before_its_clusters_are_found(digits):
    m = make_model("scgan", digits, **SMALL)
    x, y = digits.get(torch.arange(16))
    with pytest.raises(RuntimeError, match="fit_data"):
        m.training_step(x, y)


def test_a_shipped_file_holds_only_the_averaged_generator(digits, tmp_path):
    """half_weights leaves the live G out (compact_state); load_checkpoint rebuilds it from the average
    (complete_state), so the file samples as before and trains on from the average."""
    from genlib.pretrained.build import half_weights

    m = make_model("scgan", digits, **SMALL)
    trainer = Trainer(m, digits, TrainConfig(steps=30, batch_size=32, threads=1))
    trainer.run()
    path = tmp_path / "shipped.pt"
    save_checkpoint(path, m, trainer, optimizer_state=False)
    full = load_checkpoint(path).model
    half_weights(path)
    stored = torch.load(path, weights_only=True)["model"]
    assert not any(k.startswith("generator.") for k in stored) and any(k.startswith("generator_ema.") for k in stored)
    shipped = load_checkpoint(path).model
    for (k, live), (_, avg) in zip(shipped.generator.state_dict().items(), shipped.generator_ema.state_dict().items()):
        assert torch.equal(live, avg), k
    z = torch.randn(16, m.config.latent_dim, generator=torch.Generator().manual_seed(0))
    assert (shipped.sample(16, z=z) - full.sample(16, z=z)).abs().max() < 2e-3     # float16 weights
    x, y = digits.get(torch.arange(32))
    assert torch.isfinite(torch.stack(list(shipped.training_step(x, y).values()))).all()


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
