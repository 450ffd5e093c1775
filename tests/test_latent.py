"""Latent-space tools (genlib.latent) and out-of-distribution latents (genlib.latent.ood)."""
import math

import numpy as np
import pytest
import torch
from torch import nn

import genlib
from genlib import latent as L
from genlib import metrics
from genlib.latent import ood as O
from genlib.models.losses import kl_normal_per_dim
from genlib.sampling import prior_draw


def tiny(preset, data, **kw):
    torch.manual_seed(0)
    fields = {"hidden": (32,), "latent_dim": 6, "width": 8, **kw}
    return genlib.make_model(preset, data, **fields).eval()


def train(model, data, steps, seed=0):
    it = data.batches(64, torch.Generator().manual_seed(seed))
    for _ in range(steps):
        model.training_step(*next(it))
    return model.eval()


class Probe(nn.Module):
    """A stand-in for genlib's Classifier with the interface genlib.sampling.classify_batched uses:
    ``features`` (x - centre, flattened), ``head`` (features -> logits) and ``device``."""

    def __init__(self, head, centre=None):
        super().__init__()
        self.head, self.centre = head, centre

    def features(self, x):
        return (x if self.centre is None else x - self.centre).flatten(1)

    def forward(self, x):
        return self.head(self.features(x))

    @property
    def device(self):
        return torch.device("cpu")


def linear_classifier(data_shape, k=10, centre=None):
    torch.manual_seed(1)
    return Probe(nn.Linear(math.prod(data_shape), k), centre)


# ------------------------------------------------------------------------------------------------
# Soft labels (base._check_sample_args + nets.one_hot)


@pytest.mark.parametrize("preset,arch", [("cgan", "mlp"), ("cgan", "conv"), ("cvae", "mlp"), ("cvae", "conv")])
def test_one_hot_soft_labels_equal_int_labels(digits, preset, arch):
    m = tiny(preset, digits, arch=arch)
    z, y = m.prior(5), torch.tensor([0, 2, 5, 9, 2])
    ints = m.sample(5, labels=y, z=z)
    soft = m.sample(5, labels=torch.nn.functional.one_hot(y, 10).float(), z=z)
    assert torch.equal(ints, soft)
    mixed = m.sample(5, labels=L.class_weights(2, 5, torch.full((5,), 0.5), 10), z=z)
    assert not torch.allclose(mixed, ints)


def test_soft_labels_are_validated_and_int_labels_unchanged(digits):
    m = tiny("cgan", digits)
    z = m.prior(3)
    with pytest.raises(ValueError, match="sum to 1"):
        m.sample(3, labels=torch.full((3, 10), 0.2), z=z)
    with pytest.raises(ValueError, match=">= 0"):
        m.sample(3, labels=torch.tensor([[1.5, -0.5] + [0.0] * 8] * 3), z=z)
    with pytest.raises(ValueError, match=r"shape \(3, 10\)"):
        m.sample(3, labels=torch.full((3, 5), 0.2), z=z)
    with pytest.raises(ValueError, match="0..9"):
        m.sample(3, labels=torch.tensor([0, 1, 10]), z=z)
    # float 1-D labels are still class indices, as before
    assert torch.equal(m.sample(3, labels=torch.tensor([1.0, 2.0, 3.0]), z=z),
                       m.sample(3, labels=torch.tensor([1, 2, 3]), z=z))


@pytest.mark.parametrize("preset", ["cgan", "cvae"])
def test_interpolate_classes_endpoints_equal_int_label_samples(digits, preset):
    m = tiny(preset, digits)
    z = m.prior(1)
    images = L.interpolate_classes(m, 2, 5, steps=5, z=z)
    assert images.shape == (5, 1, 8, 8)
    torch.testing.assert_close(images[0], m.sample(1, labels=torch.tensor([2]), z=z)[0])
    torch.testing.assert_close(images[-1], m.sample(1, labels=torch.tensor([5]), z=z)[0])
    assert not torch.allclose(images[2], images[0]) and not torch.allclose(images[2], images[-1])


# ------------------------------------------------------------------------------------------------
# Interpolation


def test_lerp_and_slerp_endpoints_and_shapes():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(16, generator=g), torch.randn(16, generator=g)
    for f in (L.lerp, L.slerp):
        path = f(a, b, torch.linspace(0, 1, 7))
        assert path.shape == (7, 16)
        torch.testing.assert_close(path[0], a)
        torch.testing.assert_close(path[-1], b)
        assert f(a, b, 0.5).shape == (16,)
        assert f(a[None].repeat(3, 1), b[None].repeat(3, 1), torch.linspace(0, 1, 4)).shape == (4, 3, 16)
    torch.testing.assert_close(L.lerp(a, b, 0.25), 0.75 * a + 0.25 * b)


def test_slerp_keeps_norms_and_follows_the_great_circle():
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(64, generator=g), torch.randn(64, generator=g)
    b = b * a.norm() / b.norm()                                    # equal norms
    t = torch.linspace(0, 1, 11)
    norms = L.slerp(a, b, t).norm(dim=1)
    torch.testing.assert_close(norms, a.norm().expand(11), rtol=1e-5, atol=1e-5)
    assert L.lerp(a, b, 0.5).norm() < 0.9 * a.norm()               # the chord cuts inside the shell
    # on the unit circle, slerp(e1, e2; t) = (cos(t pi/2), sin(t pi/2))
    e1, e2 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    ref = torch.stack([torch.cos(t * math.pi / 2), torch.sin(t * math.pi / 2)], 1)
    torch.testing.assert_close(L.slerp(e1, e2, t), ref)


@pytest.mark.parametrize("b_of_a", [lambda a: a * (1 + 1e-7), lambda a: a.clone(), lambda a: -a,
                                    lambda a: torch.zeros_like(a)])
def test_slerp_degenerate_pairs_fall_back_to_lerp(b_of_a):
    a = torch.tensor([0.3, -1.2, 2.0])
    b = b_of_a(a)
    t = torch.linspace(0, 1, 5)
    out = L.slerp(a, b, t)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, L.lerp(a, b, t), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("preset", ["vae", "gan", "cgan"])
@pytest.mark.parametrize("method", ["linear", "spherical"])
def test_interpolate_endpoints_reproduce_endpoint_images(digits, preset, method):
    m = tiny(preset, digits)
    z0, z1 = m.prior(2)
    labels = 4 if m.config.conditional else None
    y = None if labels is None else torch.tensor([labels])
    images = L.interpolate(m, z0, z1, steps=6, method=method, labels=labels)
    assert images.shape == (6, 1, 8, 8)
    torch.testing.assert_close(images[0], m.sample(1, labels=y, z=z0[None])[0])
    torch.testing.assert_close(images[-1], m.sample(1, labels=y, z=z1[None])[0])
    assert not torch.allclose(images[0], images[-1])


def test_interpolate_images_goes_through_the_encoder(digits):
    m = tiny("vae", digits)
    x, _ = digits.get(torch.arange(2))
    images = L.interpolate_images(m, x[0], x[1], steps=4, method="spherical")
    torch.testing.assert_close(images[0], m.sample(1, z=m.encode(x[:1]))[0])
    torch.testing.assert_close(images[-1], m.sample(1, z=m.encode(x[1:]))[0])


def test_interpolate_images_conditional_blends_the_label(digits):
    m = tiny("cvae", digits)
    x, y = digits.get(torch.tensor([0, 1]))
    y0, y1 = int(y[0]), int(y[1])
    images = L.interpolate_images(m, x[0], x[1], steps=3, labels=(y0, y1))
    z0 = m.encode(x[:1], torch.tensor([y0]))
    z1 = m.encode(x[1:], torch.tensor([y1]))
    torch.testing.assert_close(images[0], m.sample(1, labels=torch.tensor([y0]), z=z0)[0])
    torch.testing.assert_close(images[-1], m.sample(1, labels=torch.tensor([y1]), z=z1)[0])


# ------------------------------------------------------------------------------------------------
# Traversal and the manifold grid


def test_traversal_changes_only_the_chosen_dimension(digits):
    m = tiny("vae", digits)
    z = m.prior(1)[0]
    before = z.clone()
    values = torch.linspace(-2, 2, 5)
    zs = L.traversal_latents(z, 3, values)
    assert zs.shape == (5, 6)
    torch.testing.assert_close(zs[:, 3], values)
    others = [d for d in range(6) if d != 3]
    assert torch.equal(zs[:, others], z[others].expand(5, -1))
    assert torch.equal(z, before)                                  # the input is not modified

    images = L.traverse(m, z, 3, values)
    assert images.shape == (5, 1, 8, 8)
    torch.testing.assert_close(images, m.sample(5, z=zs))
    assert (images[1:] - images[:-1]).abs().amax(dim=(1, 2, 3)).min() > 0   # every step changes the image


def test_traverse_grid_rows_are_traversals(digits):
    m = tiny("gan", digits)
    z = m.prior(1)[0]
    values = torch.linspace(-3, 3, 4)
    grid = L.traverse_grid(m, z, dims=[0, 5], values=values)
    assert grid.shape == (8, 1, 8, 8)
    torch.testing.assert_close(grid[4:], L.traverse(m, z, 5, values))
    assert L.traverse_grid(m, z).shape == (6 * 9, 1, 8, 8)     # default: all 6 dims, 9 values


def test_manifold_grid_shape_and_orientation(digits):
    m = tiny("vae", digits, latent_dim=2)
    grid, values = L.manifold_grid(m, n=5)
    assert grid.shape == (25, 1, 8, 8)
    lo, hi = torch.distributions.Normal(0, 1).icdf(torch.tensor([0.05, 0.95]))
    torch.testing.assert_close(values, torch.distributions.Normal(0, 1).icdf(torch.linspace(0.05, 0.95, 5)))
    for i, j in ((0, 0), (1, 3), (4, 2)):                          # row i, column j: (values[j], values[4 - i])
        torch.testing.assert_close(grid[5 * i + j], m.sample(1, z=torch.stack([values[j], values[4 - i]])[None])[0])
    torch.testing.assert_close(grid[0], m.sample(1, z=torch.tensor([[lo, hi]]))[0])     # top left
    torch.testing.assert_close(grid[-1], m.sample(1, z=torch.tensor([[hi, lo]]))[0])    # bottom right
    m6 = tiny("cvae", digits)
    grid, _ = L.manifold_grid(m6, n=3, dims=(1, 4), labels=7)
    z = torch.zeros(1, 6)
    z[0, 1], z[0, 4] = lo, hi
    torch.testing.assert_close(grid[0], m6.sample(1, labels=torch.tensor([7]), z=z)[0])


# ------------------------------------------------------------------------------------------------
# Encoding, projections and their cache


def test_encode_dataset_vae_gives_posterior_means(digits):
    m = tiny("vae", digits)
    z, y, index = L.encode_dataset(m, digits, n=300, seed=3, batch_size=128)
    sub = digits.subset(300, 3)
    assert z.shape == (300, 6) and torch.equal(y, sub.y)
    torch.testing.assert_close(z, m.encode(sub.get(torch.arange(300))[0]))
    # the encoded examples are named: point i is data.get(index[i])
    assert index.shape == (300,) and len(set(index.tolist())) == 300
    x, y_at = digits.get(index)
    assert torch.equal(y_at, y)
    torch.testing.assert_close(z, m.encode(x))
    assert torch.equal(L.encode_dataset(m, digits, n=300, seed=3).index, L.subset_index(digits, 300, 3))


def test_encode_dataset_gan_uses_prior_and_labels(digits):
    gan, cgan = tiny("gan", digits), tiny("cgan", digits)
    z, y, index = L.encode_dataset(gan, n=50, seed=1)
    assert z.shape == (50, 6) and y is None and index is None
    torch.testing.assert_close(z, prior_draw(gan, 50, 1))
    z, y, _ = L.encode_dataset(cgan, n=50)
    assert torch.equal(y, torch.arange(50) % 10)
    clf = linear_classifier((1, 8, 8))
    z, y, _ = L.encode_dataset(gan, n=50, classifier=clf)
    assert torch.equal(y, clf(gan.sample(50, z=z)).argmax(1))


def test_project_2d_shapes_and_methods():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(120, 8)).astype(np.float32)
    for method in ("identity", "pca", "tsne"):
        out = L.project_2d(z, method, cache=None)
        assert out.shape == (120, 2) and out.dtype == np.float32 and np.isfinite(out).all()
    assert L.project_2d(z, "pca", n_components=3, cache=None).shape == (120, 3)
    np.testing.assert_array_equal(L.project_2d(z, "identity", cache=None), z[:, :2])
    from sklearn.decomposition import PCA
    ref = PCA(2).fit_transform(z)
    np.testing.assert_allclose(np.abs(L.project_2d(z, "pca", cache=None)), np.abs(ref), atol=1e-4)
    z2 = torch.randn(30, 2)
    np.testing.assert_array_equal(L.project_2d(z2, "auto", cache=None), z2.numpy())      # 2-D: identity
    assert L.project_2d(z2[:, :1], "auto", cache=None).shape == (30, 2)                  # 1-D: padded


def test_project_2d_cache_hits_and_bound():
    cache = L.ProjectionCache(maxsize=2)
    z = np.random.default_rng(1).normal(size=(60, 5)).astype(np.float32)
    first = L.project_2d(z, "tsne", seed=0, cache=cache)
    assert (cache.hits, cache.misses) == (0, 1)
    second = L.project_2d(torch.from_numpy(z.copy()), "tsne", seed=0, cache=cache)   # same bytes
    assert (cache.hits, cache.misses) == (1, 1)
    np.testing.assert_array_equal(first, second)
    second[:] = 0                                                                   # callers get copies
    np.testing.assert_array_equal(L.project_2d(z, "tsne", seed=0, cache=cache), first)
    L.project_2d(z, "tsne", seed=1, cache=cache)                                    # new seed: a miss
    L.project_2d(z, "pca", cache=cache)
    assert len(cache) == 2 and cache.misses == 3
    L.project_2d(z, "tsne", seed=0, cache=cache)                                    # evicted (LRU)
    assert cache.misses == 4


# ------------------------------------------------------------------------------------------------
# Concept vectors


def test_concept_vector_vae_matches_class_means_and_self_is_zero(digits):
    m = tiny("vae", digits)
    assert torch.equal(L.concept_vector(m, digits, 3, 3), torch.zeros(6))
    v = L.concept_vector(m, digits, 1, 7, n=10_000)
    x, y = digits.get(torch.arange(len(digits)))
    mu = m.encode(x)
    torch.testing.assert_close(v, mu[y == 1].mean(0) - mu[y == 7].mean(0), rtol=1e-4, atol=1e-5)


def test_concept_vector_gan_self_is_zero_and_class_means_differ(digits):
    m = tiny("gan", digits)
    clf = linear_classifier((1, 8, 8))
    pred = clf(m.sample(200, z=prior_draw(m, 200, 0))).argmax(1)
    a = int(pred.mode().values)
    assert torch.equal(L.concept_vector(m, None, a, a, n=200, classifier=clf), torch.zeros(6))
    # two different classes: mean z of the samples labelled a minus those labelled b. The untrained
    # G's images differ little, so the linear classifier sees them centred (else one class takes all 200).
    z = prior_draw(m, 200, 0)                                        # (200, 6): concept_vector's draw, seed 0
    x = m.sample(200, z=z)                                             # (200, 1, 8, 8)
    centre = x.mean(0)
    centred = linear_classifier((1, 8, 8), centre=centre)              # clf's weights, on x - centre
    pred = centred(x).argmax(1)                                        # (200,)
    counts = torch.bincount(pred, minlength=10)
    a, b = counts.argsort(descending=True, stable=True)[:2].tolist()   # the two most common classes
    assert counts[b] >= 10, counts.tolist()
    torch.testing.assert_close(L.concept_vector(m, None, a, b, n=200, classifier=centred),
                               z[pred == a].mean(0) - z[pred == b].mean(0))


def test_apply_concept():
    z, v = torch.randn(6), torch.randn(6)
    torch.testing.assert_close(L.apply_concept(z, v, 2.0), z + 2 * v)
    row = L.apply_concept(z, v, torch.tensor([-1.0, 0.0, 1.0]))
    assert row.shape == (3, 6)
    torch.testing.assert_close(row[1], z)


# ------------------------------------------------------------------------------------------------
# Posterior collapse


def test_posterior_collapse_matches_torch_distributions_and_activity(digits):
    m = tiny("vae", digits)
    collapse = L.posterior_collapse(m, digits, n=200)
    kl = collapse.kl_per_dim
    mu, logvar = L.posterior_stats(m, digits, n=200)
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    ref = torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, 1.0)).mean(0)
    torch.testing.assert_close(kl, ref)
    torch.testing.assert_close(kl, kl_normal_per_dim(mu, logvar).mean(0))
    torch.testing.assert_close(collapse.activity, mu.var(0, unbiased=False))
    # active units: KL per dimension above genlib.metrics' one threshold (nats)
    assert collapse.threshold == metrics.ACTIVE_KL and collapse.active_units == int((kl > metrics.ACTIVE_KL).sum())
    assert L.posterior_collapse(m, digits, n=200, threshold=0.0).active_units == 6
    assert L.posterior_collapse(m, digits, n=200, threshold=float("inf")).active_units == 0


# ------------------------------------------------------------------------------------------------
# Out-of-distribution latents


def draw(kind, n=40_000, **p):
    return O.sample_latents(kind, n, (4,), torch.Generator().manual_seed(0), **p)


def test_ood_samplers_have_their_stated_distributions():
    z = draw("normal")
    assert z.shape == (40_000, 4)
    assert abs(z.mean()) < 0.02 and abs(z.std() - 1) < 0.02
    z = draw("exponential", rate=2.0)
    assert z.min() >= 0 and abs(z.mean() - 0.5) < 0.01 and abs(z.std() - 0.5) < 0.01
    z = draw("uniform", low=-3.0, high=5.0)
    assert z.min() >= -3 and z.max() <= 5 and abs(z.mean() - 1) < 0.05
    assert abs(z.std() - 8 / math.sqrt(12)) < 0.03
    z = draw("scaled", scale=3.0)
    assert abs(z.std() - 3) < 0.05 and abs(z.mean()) < 0.05
    z = draw("shifted", shift=2.5)
    assert abs(z.mean() - 2.5) < 0.02 and abs(z.std() - 1) < 0.02
    z = draw("cauchy", scale=2.0)   # median 0, quartiles at -+scale
    q = torch.quantile(z.flatten()[:100_000], torch.tensor([0.25, 0.5, 0.75]))
    torch.testing.assert_close(q, torch.tensor([-2.0, 0.0, 2.0]), atol=0.06, rtol=0)
    z = draw("constant", n=10, value=1.5)
    assert torch.equal(z, torch.full((10, 4), 1.5))
    assert set(O.OOD_SAMPLERS) == {"normal", "exponential", "uniform", "scaled", "shifted", "cauchy", "constant"}


def test_ood_samplers_are_reproducible_and_merge_parameters_once():
    assert torch.equal(draw("cauchy", n=5), draw("cauchy", n=5))
    # the one merge of defaults and given values, as the OOD page and measure_ood read it
    s = O.OOD_SAMPLERS["uniform"]
    assert s.merged({"high": 3}) == {"low": -1.0, "high": 3.0} and s.problem({"high": 3}) is None
    assert s.problem({"low": 2}) == "low must be < high"
    assert s.problem({"rate": 1}).startswith("no parameter rate")


@pytest.fixture(scope="module")
def trained_gan(digits):
    return train(tiny("gan", digits, hidden=(64,), latent_dim=8), digits, 150)


def test_measure_ood_differs_from_the_prior_on_a_trained_gan(digits, trained_gan):
    clf = linear_classifier((1, 8, 8))
    r = O.measure_ood(trained_gan, "scaled", n=300, classifier=clf, reference_data=digits,
                      n_reference=300, scale=4.0)
    assert r["kind"] == "scaled" and r["params"] == {"scale": 4.0}
    ood, ref = r["ood"], r["normal"]
    assert set(ood) == set(ref) >= {"z_norm", "discriminator", "classifier_confidence", "classifier_entropy",
                                    "mean", "std", "saturated", "diversity", "nn_distance"}
    assert ood["z_norm"] > 3 * ref["z_norm"]
    assert ood["saturated"] > ref["saturated"] + 0.2          # tanh pushed into its flat ends
    assert ood["std"] > ref["std"]
    for s in (ood, ref):
        assert 0 <= s["discriminator"] <= 1 and s["discriminator_kind"] == "P(real)"
        assert 0.1 <= s["classifier_confidence"] <= 1 and 0 <= s["classifier_entropy"] <= math.log(10)
        assert s["nn_distance"] > 0
    # the classifier numbers, recomputed: the OOD draw uses seed 0, the N(0, I) reference seed 0 + 1
    shape = trained_gan.latent_shape
    for s, z in ((ood, O.sample_latents("scaled", 300, shape, torch.Generator().manual_seed(0), scale=4.0)),
                 (ref, torch.randn(300, *shape, generator=torch.Generator().manual_seed(1)))):
        with torch.no_grad():
            p = clf(trained_gan.sample(300, z=z)).softmax(1)                # (300, 10)
        assert s["classifier_confidence"] == pytest.approx(p.max(1).values.mean().item(), rel=1e-5)
        assert s["classifier_entropy"] == pytest.approx(-(p * p.log()).sum(1).mean().item(), rel=1e-4)
    const = O.measure_ood(trained_gan, "constant", n=100, value=0.0)["ood"]
    assert const["diversity"] == 0 and const["z_norm"] == 0 and "nn_distance" not in const


def test_measure_ood_vae_and_toy_data():
    ring = genlib.load_dataset("ring")
    m = tiny("vae", ring)
    r = O.measure_ood(m, "exponential", n=100, reference_data=ring, n_reference=200,
                      classifier=Probe(lambda f: torch.zeros(len(f), 3)))   # uniform softmax over 3 classes
    assert "discriminator" not in r["ood"] and "saturated" not in r["ood"]
    torch.testing.assert_close(torch.tensor(r["ood"]["classifier_entropy"]), torch.tensor(math.log(3)))
    assert r["ood"]["nn_distance"] >= 0 and r["ood"]["z_norm"] != r["normal"]["z_norm"]


# ------------------------------------------------------------------------------------------------
# Bad input: each refused with a ValueError that names the problem


BAD_INPUTS = [   # (what, call(digits), the error's key words)
    ("class blend on an unconditional model", lambda d: L.interpolate_classes(tiny("gan", d), 2, 5), "conditional"),
    ("class blend to a class that is not there", lambda d: L.interpolate_classes(tiny("cgan", d), 2, 10), r"0\.\.9"),
    ("conditional model without labels", lambda d: L.interpolate(tiny("cgan", d), *torch.randn(2, 6)), "labels="),
    ("conditional VAE between images without labels",
     lambda d: L.interpolate_images(tiny("cvae", d), *d.get(torch.arange(2))[0]), "labels"),
    ("a GAN between images", lambda d: L.interpolate_images(tiny("gan", d), *d.get(torch.arange(2))[0]), "no encoder"),
    ("an unknown interpolation", lambda d: L.interpolation_path(torch.zeros(6), torch.ones(6), 5, "cubic"), "method"),
    ("a path of one step", lambda d: L.interpolation_path(torch.zeros(6), torch.ones(6), 1), "steps"),
    ("traversal of a dimension past the last", lambda d: L.traverse(tiny("gan", d), torch.zeros(6), 6), "dim"),
    ("traversal of a negative dimension", lambda d: L.traversal_latents(torch.zeros(6), -1, [0.0]), "dim"),
    ("manifold over one dimension twice", lambda d: L.manifold_grid(tiny("vae", d, latent_dim=2), dims=(0, 0)), "dims"),
    ("manifold with lo >= hi", lambda d: L.manifold_grid(tiny("vae", d), lo=0.9, hi=0.1), "lo"),
    ("an unknown projection", lambda d: L.project_2d(np.zeros((10, 4), np.float32), "umap"), "method"),
    ("a 1-D array to project", lambda d: L.project_2d(np.zeros(10, np.float32), "pca"), r"\(n, D\)"),
    ("a 4-D projection", lambda d: L.project_2d(np.zeros((10, 6), np.float32), "pca", n_components=4),
     "n_components"),
    ("t-SNE of 3 points", lambda d: L.project_2d(np.zeros((3, 4), np.float32), "tsne", cache=None), "at least 5"),
    ("encoding without data", lambda d: L.encode_dataset(tiny("vae", d)), "data="),
    ("a GAN's posterior", lambda d: L.posterior_stats(tiny("gan", d), d), "no posterior"),
    ("a class the data lacks", lambda d: L.class_latents(tiny("vae", d), d, 11), "no examples"),
    ("a GAN's concept vector without a classifier", lambda d: L.concept_vector(tiny("gan", d), None, 1, 7),
     "classifier"),
    ("an unknown latent distribution", lambda d: draw("gumbel"), "unknown latent"),
    ("a parameter of another distribution", lambda d: draw("scaled", rate=1.0), "no parameter"),
    ("exponential rate 0", lambda d: draw("exponential", rate=0.0), "rate must be > 0"),
    ("uniform with low = high", lambda d: draw("uniform", low=1.0, high=1.0), "low must be < high"),
    ("scale 0", lambda d: draw("cauchy", scale=0.0), "scale must be > 0"),
    ("measure an unknown distribution", lambda d: O.measure_ood(tiny("gan", d), "gumbel", n=10), "unknown latent"),
]


@pytest.mark.hostile
@pytest.mark.parametrize("call,match", [c[1:] for c in BAD_INPUTS], ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_is_refused_with_a_clear_error(digits, call, match):
    with pytest.raises(ValueError, match=match):
        call(digits)
