"""Contract tests for every model preset (one module, parametrised over genlib.models.PRESETS).

Tiny data (a 256-image subset of the 8x8 digits, random 3x32x32 tensors, 2-D toy points), small
batches, fixed seeds. Learning is checked per phase so that it cannot be luck: a VAE's negative
ELBO falls; with G frozen, a GAN's D learns to score a fixed real batch above fixed fakes, and with
D frozen, G learns to raise D's score of its samples (loss-agnostic, so a sign error fails).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re

import pytest
import torch
import torch.nn.functional as F

import genlib
from genlib.models.gan_objectives import OBJECTIVES, objective
from genlib.models import (CAPABILITIES, CRITIC, ENCODER, GAN, PRESETS, STANDING_STATS, VAE, FieldSpec, GANConfig,
                           Preset, VAEConfig, field_specs, make_model, preset_config)

ALL = list(PRESETS)
VAES = [p for p in ALL if PRESETS[p].family == "vae"]
GANS = [p for p in ALL if PRESETS[p].family == "gan"]
FLOWS = [p for p in ALL if PRESETS[p].family == "flow"]   # more in tests/test_flow.py
CONDITIONAL = [p for p in ALL if PRESETS[p].overrides.get("conditional")]
CONV = [p for p in ALL if PRESETS[p].overrides.get("arch") == "conv"]
TOY = ["vae", "gan", "cgan", "flow", "cflow"]

# Small networks keep the whole module fast; the preset still decides loss, optimiser, n_critic.
SMALL = {"hidden": (64,), "width": 8}

EXPECTED_KEYS = {
    "vae": {"loss", "recon", "kl", "neg_elbo", "beta"},
    "gan": {"d_loss", "g_loss", "d_real", "d_fake"},
    "dcgan": {"d_loss", "g_loss", "d_real", "d_fake"},
    "dcgan-paper": {"d_loss", "g_loss", "d_real", "d_fake"},
    "sngan": {"d_loss", "g_loss", "d_real", "d_fake"},
    "wgan": {"d_loss", "g_loss", "d_real", "d_fake", "wasserstein"},
    "wgan-gp": {"d_loss", "g_loss", "d_real", "d_fake", "wasserstein", "gp"},
    "wgan-gp-paper": {"d_loss", "g_loss", "d_real", "d_fake", "wasserstein", "gp"},
    "cgan": {"d_loss", "g_loss", "d_real", "d_fake"},
    "scgan": {"d_loss", "g_loss", "d_real", "d_fake"},
    "flow": {"loss"},
    "cflow": {"loss"},
}


def expected_keys(preset: str) -> set[str]:   # plus the gradient norms (genlib.train.GRAD_NORM_KEYS)
    family = PRESETS[preset].family
    if family != "gan":
        return EXPECTED_KEYS[family] | {"grad_norm"}
    return EXPECTED_KEYS[preset] | {"g_grad_norm", "d_grad_norm"}


@pytest.fixture(scope="module")
def digits():
    return genlib.load_dataset("digits").subset(256, seed=0)


@pytest.fixture(scope="module")
def ring():
    return genlib.load_dataset("ring", n=512)


def build(preset: str, data, seed: int = 0, **overrides):
    torch.manual_seed(seed)
    model = make_model(preset, data, **{**SMALL, **overrides})
    model.fit_data(data)     # what the Trainer does first (a self-conditioned GAN's clusters)
    return model


def batch(data, n: int = 16, start: int = 0):
    return data.get(torch.arange(start, start + n))


def assert_finite_scalars(out: dict[str, torch.Tensor]) -> None:
    for k, v in out.items():
        assert isinstance(v, torch.Tensor), k
        assert v.dim() == 0, (k, v.shape)
        assert not v.requires_grad, k
        assert math.isfinite(float(v)), (k, float(v))


# ---------------------------------------------------------------------------------------------
# training_step


@pytest.mark.parametrize("preset", ALL)
def test_training_step_returns_named_finite_scalars(preset, digits):
    model = build(preset, digits)
    x, y = batch(digits)
    for _ in range(2):   # the second step exercises the n_critic schedule (no G update for WGANs)
        out = model.training_step(x, y)
        assert set(out) == expected_keys(preset)
        assert_finite_scalars(out)
    assert model.steps == 2


@pytest.mark.parametrize("preset", VAES)
def test_vae_losses_compose(preset, digits):
    model = build(preset, digits, kl_schedule="linear", anneal_steps=4, beta=2.0)
    x, y = batch(digits)
    for step in range(3):
        out = model.training_step(x, y)
        assert float(out["beta"]) == pytest.approx(2.0 * step / 4)
        assert float(out["loss"]) == pytest.approx(float(out["recon"] + out["beta"] * out["kl"]), rel=1e-5)
        assert float(out["neg_elbo"]) == pytest.approx(float(out["recon"] + out["kl"]), rel=1e-5)
        assert float(out["kl"]) >= 0


def test_wgan_clips_critic_and_reports_wasserstein(digits):
    model = build("wgan", digits)
    x, y = batch(digits)
    out = model.training_step(x, y)
    assert float(out["wasserstein"]) == pytest.approx(-float(out["d_loss"]))
    clip = model.config.clip
    assert all(p.abs().max() <= clip for p in model.discriminator.parameters())


@pytest.mark.parametrize("loss", list(OBJECTIVES))
def test_gan_reports_what_its_objective_charts(loss, digits):
    """The keys a GAN reports follow its objective: 'gp' with a penalty, 'wasserstein' with an estimate,
    and every curve of the objective's loss chart is among them."""
    out = build("gan", digits, loss=loss).training_step(*batch(digits))
    obj = objective(loss)
    assert ("gp" in out) == (loss == "wgan-gp") and ("wasserstein" in out) == obj.wasserstein
    chart = obj.chart
    assert {c.key for c in chart.curves + chart.side_curves} <= set(out)


@pytest.mark.parametrize("preset", ["gan", "cgan", "dcgan-paper"])
def test_probabilistic_gans_report_probabilities(preset, digits):
    out = build(preset, digits).training_step(*batch(digits))
    assert 0 < float(out["d_real"]) < 1 and 0 < float(out["d_fake"]) < 1


# Config options no preset uses, each a separate code path (projection D, conv conditional VAE,
# skip decoder, free bits, EMA generator, spectral norm, label smoothing, hinge and minimax losses).
VARIANTS = [
    ("gan", {"loss": "hinge"}), ("gan", {"loss": "minimax"}),
    ("gan", {"ema": 0.9, "spectral_norm": True, "label_smoothing": 0.1}),
    ("dcgan", {"conditional": True}), ("wgan-gp", {"conditional": True}),
    ("conv-vae", {"conditional": True, "skip": True}), ("vae", {"skip": True, "free_bits": 0.5}),
]


@pytest.mark.parametrize("preset,extra", VARIANTS, ids=[f"{p}-{'-'.join(e)}" for p, e in VARIANTS])
def test_config_variants_train_and_sample(preset, extra, digits):
    model = build(preset, digits, **extra)
    x, y = batch(digits)
    for _ in range(2):
        out = model.training_step(x, y)
    assert set(out) == expected_keys(preset) and model.steps == 2
    assert_finite_scalars(out)
    z = model.prior(4, generator=torch.Generator().manual_seed(0))
    s = model.sample(4, z=z)
    assert s.shape == (4, 1, 8, 8) and s.min() >= 0 and s.max() <= 1
    if model.config.conditional:
        assert not torch.allclose(model.sample(4, labels=torch.full((4,), 1), z=z),
                                  model.sample(4, labels=torch.full((4,), 6), z=z))


def test_ac_gan_class_losses(digits):
    """AC-GAN (Odena et al. 2017): D's class head is trained on real labels (d_class is its cross-
    entropy before the step, checked by hand), and G is pushed to make that head name the asked
    class: with D frozen, G's class loss on fixed z falls further than with a negligible weight."""
    model = build("cgan", digits, arch="conv", aux_weight=1.0, loss="hinge")
    x, y = batch(digits, 64)
    with torch.no_grad():
        expected = F.cross_entropy(model.discriminator.scores_and_classes(model.to_net_range(x), y)[1], y)
    out = model.training_step(x, y)
    assert {"d_class", "g_class"} <= set(out)
    assert_finite_scalars(out)
    assert float(out["d_class"]) == pytest.approx(float(expected), rel=1e-5)

    def g_class_drop(weight: float) -> float:
        model = build("cgan", digits, arch="conv", aux_weight=weight, loss="hinge", lr_g=5e-3)
        model.opt_d.step = lambda *a, **k: None                  # D frozen: only G's updates count
        with torch.no_grad():
            model.discriminator.aux.weight.mul_(20)              # a head with opinions, not ~uniform
        z, labels = model.prior(64, generator=torch.Generator().manual_seed(3)), torch.arange(64) % 10

        def g_class() -> float:
            with torch.no_grad():
                model.generator.eval()
                logits = model.discriminator.scores_and_classes(model.generator(z, labels), labels)[1]
                model.generator.train()
            return float(F.cross_entropy(logits, labels))

        before = g_class()
        batches = digits.batches(32, generator=torch.Generator().manual_seed(1))
        for _ in range(30):
            model.training_step(*next(batches))
        return before - g_class()

    strong, weak = g_class_drop(1.0), g_class_drop(1e-6)
    assert strong > weak + 0.05, (strong, weak)


@pytest.mark.parametrize("extra", [{}, {"arch": "conv"}, {"conditional": True},
                                   {"conditional": True, "arch": "conv", "aux_weight": 1.0}])
def test_minibatch_std_lets_d_see_a_batch_without_variety(digits, extra):
    """With ``minibatch_std`` D's score of an image depends on the batch it comes in: the same image
    scores differently beside varied images than beside copies of itself (the feature ProGAN adds
    against mode collapse); without it, D scores each image alone. A batch of one, or of copies, keeps
    gradients finite (the spread's square root is at its epsilon). Off, D's weights are the same
    tensors as before the option existed (old checkpoints load)."""
    x, y = batch(digits, 16)
    for on in (False, True):
        torch.manual_seed(0)
        model = build("cgan" if extra.get("conditional") else "gan", digits, minibatch_std=on,
                      **{k: v for k, v in extra.items() if k != "conditional"})
        d = model.discriminator.eval()
        real = model.to_net_range(x)
        varied = d(real, y)[:1]
        copies = d(real[:1].expand(16, -1, -1, -1), y[:1].expand(16))[:1]
        assert torch.allclose(varied, copies, atol=1e-6) != on, (on, float(varied), float(copies))
        assert d.head.in_features == d.trunk.out_dim + on         # off: the layers of old checkpoints
        if on:
            one = real[:1].clone().requires_grad_(True)
            d(one, y[:1]).sum().backward()
            assert torch.isfinite(one.grad).all()
        out = model.training_step(x, y)
        assert_finite_scalars(out)


# ---------------------------------------------------------------------------------------------
# sampling


@pytest.mark.parametrize("preset", ALL)
def test_sample_shape_range_and_mode(preset, digits):
    model = build(preset, digits)
    model.train()
    s = model.sample(5)
    assert s.shape == (5, 1, 8, 8)
    assert s.min() >= 0 and s.max() <= 1
    assert all(m.training for m in model.modules()), "sample() must restore train mode"
    model.eval()
    model.sample(2)
    assert not any(m.training for m in model.modules()), "sample() must leave eval mode as it was"
    model.train()
    z = model.prior(4, generator=torch.Generator().manual_seed(0))
    assert z.shape == (4, model.config.latent_dim)
    labels = model.default_labels(4)
    assert torch.equal(model.sample(4, labels=labels, z=z), model.sample(4, labels=labels, z=z))


@pytest.mark.hostile(3)
@pytest.mark.parametrize("preset", ALL)
def test_sample_rejects_wrong_z_shape(preset, digits):
    model = build(preset, digits)
    d = model.config.latent_dim
    for bad in (torch.randn(3, d + 1), torch.randn(d), torch.randn(3, d, 1)):
        with pytest.raises(ValueError, match="z must have shape"):
            model.sample(3, z=bad)


@pytest.mark.parametrize("preset", CONDITIONAL)
def test_conditional_sample_uses_labels(preset, digits):
    model = build(preset, digits)
    z = model.prior(6, generator=torch.Generator().manual_seed(0))
    threes = model.sample(6, labels=torch.full((6,), 3), z=z)
    sevens = model.sample(6, labels=torch.full((6,), 7), z=z)
    assert threes.shape == (6, 1, 8, 8)
    assert not torch.allclose(threes, sevens), "the label must change the sample"
    assert torch.equal(model.default_labels(12), torch.arange(12) % 10)
    with pytest.raises(ValueError, match="labels"):
        model.sample(6, labels=torch.full((6,), 10), z=z)      # class out of range
    with pytest.raises(ValueError, match="labels"):
        model.sample(6, labels=torch.zeros(5, dtype=torch.long), z=z)


@pytest.mark.parametrize("preset", sorted(set(ALL) - set(CONDITIONAL)))
def test_unconditional_has_no_default_labels(preset, digits):
    assert build(preset, digits).default_labels(4) is None


@pytest.mark.parametrize("preset", CONV)
def test_conv_presets_on_colour_32x32(preset):
    torch.manual_seed(0)
    model = make_model(preset, data_shape=(3, 32, 32), num_classes=10, width=8)
    x, y = torch.rand(4, 3, 32, 32), torch.randint(10, (4,))
    out = model.training_step(x, y)
    assert set(out) == expected_keys(preset)
    assert_finite_scalars(out)
    s = model.sample(2)
    assert s.shape == (2, 3, 32, 32) and s.min() >= 0 and s.max() <= 1
    if model.supports(ENCODER):
        assert model.encode(x).shape == (4, model.config.latent_dim)


@pytest.mark.parametrize("preset", TOY)
def test_toy_points(preset, ring):
    model = build(preset, ring, seed=0)
    assert model.config.data_shape == (2,) and model.config.arch == "mlp"
    x, y = ring.get(torch.arange(32))
    out = model.training_step(x, y)
    assert set(out) == expected_keys(preset)
    assert_finite_scalars(out)
    s = model.sample(7)
    assert s.shape == (7, 2) and torch.isfinite(s).all()


# ---------------------------------------------------------------------------------------------
# learning


@pytest.mark.parametrize("preset", VAES)
def test_vae_neg_elbo_falls(preset, digits):
    model = build(preset, digits)
    batches = digits.batches(32, generator=torch.Generator().manual_seed(1))
    values = [float(model.training_step(*next(batches))["neg_elbo"]) for _ in range(40)]
    first, last = sum(values[:5]) / 5, sum(values[-5:]) / 5
    assert last < 0.85 * first, (first, last)   # measured: about 45 -> 33 nats


def _gan_scores(model, real, y, z) -> tuple[float, float, float]:
    """Mean raw D output (logit or critic score) on a fixed real batch and on G(fixed z), and the
    mean |output| as the scale; no weights change. Independent of the loss function's definition.
    The networks' condition: the labels y (conditional), the clusters (self-conditioned) or none."""
    with torch.no_grad():
        real_labels = model._condition(real, y)
        fake_labels = y if model.config.conditional else model._cluster_of(z)
        real_out = model.discriminator(model.to_net_range(real), real_labels)
        fake_out = model.discriminator(model.generator(z, fake_labels), fake_labels)
    scale = torch.cat([real_out, fake_out]).abs().mean()
    return float(real_out.mean()), float(fake_out.mean()), float(scale)


@pytest.mark.parametrize("preset", GANS)
@pytest.mark.parametrize("phase", ["d", "g"])
def test_gan_each_phase_learns(preset, phase, digits, monkeypatch):
    """Freeze one network (its optimiser's step does nothing) and train with training_step.
    D phase: D's outputs on a fixed real batch must rise relative to those on fixed fakes.
    G phase: D's output on G(fixed z) must rise. Whatever the loss, D scores 'real' higher.
    Catches sign errors in the losses, detached graphs, optimisers on the wrong network."""
    # The G phase runs every step (n_critic=1) so that it gets 25 updates, not 5.
    model = build(preset, digits, hidden=(128,), width=16, **({"n_critic": 1} if phase == "g" else {}))
    frozen = model.opt_g if phase == "d" else model.opt_d
    monkeypatch.setattr(frozen, "step", lambda *a, **k: None)
    real, y = batch(digits, 64)
    z = model.prior(64, generator=torch.Generator().manual_seed(2))
    batches = digits.batches(32, generator=torch.Generator().manual_seed(1))
    model.training_step(*next(batches))     # WGAN clips D's weights on its first step: start after it
    real0, fake0, scale = _gan_scores(model, real, y, z)
    for _ in range(25):
        model.training_step(*next(batches))
    real1, fake1, _ = _gan_scores(model, real, y, z)
    gain = (real1 - fake1) - (real0 - fake0) if phase == "d" else fake1 - fake0
    # The WGAN critic's scores are ~1e-2 (weights clipped to 0.01), hence a margin relative to their size.
    assert gain > 0.01 * scale, (gain, scale)   # measured (seeds 0, 1): WGAN-clip 0.02-0.045, others 0.4-14


# ---------------------------------------------------------------------------------------------
# save / load


@pytest.mark.parametrize("preset,extra", [(p, {}) for p in ALL] + [("gan", {"ema": 0.9, "spectral_norm": True})])
def test_checkpoint_round_trip(preset, extra, digits, tmp_path):
    model = build(preset, digits, **extra)
    batches = digits.batches(16, generator=torch.Generator().manual_seed(1))
    for _ in range(3):   # 3 is not a multiple of n_critic=5: the WGANs resume mid-cycle
        model.training_step(*next(batches))
    z = model.prior(6, generator=torch.Generator().manual_seed(3))
    labels = model.default_labels(6)
    model.eval()
    expected = model.sample(6, labels=labels, z=z)

    genlib.save_checkpoint(tmp_path / "m.pt", model, note="test")
    ck = genlib.load_checkpoint(tmp_path / "m.pt")
    loaded = ck.model
    assert type(loaded) is type(model) and loaded.config == model.config
    assert loaded.steps == model.steps == 3
    assert ck.card["note"] == "test" and ck.card["steps"] == 3 and ck.card["family"] == model.family
    assert torch.equal(loaded.sample(6, labels=labels, z=z), expected)
    for name, opt in model.optimizers().items():
        _assert_same_state(loaded.optimizers()[name].state_dict(), opt.state_dict())
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k

    # Training continues from the checkpoint with finite losses (including mid-n_critic-cycle).
    loaded.train()
    out = loaded.training_step(*next(batches))
    assert set(out) == expected_keys(preset)
    assert_finite_scalars(out)
    assert loaded.steps == 4


def _assert_same_state(a, b) -> None:
    assert a["param_groups"] == b["param_groups"]
    assert a["state"].keys() == b["state"].keys() and len(a["state"]) > 0
    for i in a["state"]:
        for k, v in b["state"][i].items():
            w = a["state"][i][k]
            assert torch.equal(w, v) if isinstance(v, torch.Tensor) else w == v, (i, k)


# ---------------------------------------------------------------------------------------------
# sizes and encoders


@pytest.mark.parametrize("preset", ALL)
def test_network_sizes(preset, digits):
    model = build(preset, digits)
    sizes = model.network_sizes()
    expected = {"vae": {"encoder", "decoder"}, "gan": {"generator", "discriminator"},
                "flow": {"velocity"}}[model.family]
    assert set(sizes) == expected and all(v > 0 for v in sizes.values())
    assert model.num_parameters() == sum(sizes.values())
    assert model.size_bytes() >= 4 * model.num_parameters()


@pytest.mark.parametrize("preset", VAES)
def test_vae_encode(preset, digits):
    model = build(preset, digits)
    x, y = batch(digits, 10)
    labels = y if model.config.conditional else None
    mu = model.train().encode(x, labels)
    assert mu.shape == (10, model.config.latent_dim) and not mu.requires_grad
    assert all(m.training for m in model.modules()), "encode() must restore train mode"
    m2, logvar = model.posterior(x, labels)
    assert torch.allclose(mu, m2.detach()) and logvar.shape == mu.shape
    assert model.decode(mu, labels).shape == (10, 1, 8, 8)
    assert model.supports(ENCODER) and not model.supports(CRITIC)


@pytest.mark.parametrize("preset", GANS)
def test_gan_has_no_encoder(preset, digits):
    model = build(preset, digits)
    assert not model.supports(ENCODER) and model.supports(CRITIC) and model.supports(STANDING_STATS)
    with pytest.raises(NotImplementedError):
        model.encode(batch(digits)[0])
    x, y = batch(digits)
    assert model.discriminate(x, y).shape == (16,)


def test_capabilities_are_declared_checked_and_asked_one_way():
    assert VAE.supports(ENCODER) and not VAE.supports(CRITIC) and not VAE.supports(STANDING_STATS)
    assert GAN.capabilities == {CRITIC, STANDING_STATS}
    with pytest.raises(ValueError, match="unknown capability 'encodr'"):
        VAE.supports("encodr")
    for cap, protocol in CAPABILITIES.items():           # a family that declares one has its methods
        for family in (VAE, GAN):
            methods = [m for m in vars(protocol) if not m.startswith("_")]
            assert methods and all(callable(getattr(family, m, None)) for m in methods) or not family.supports(cap)
    with pytest.raises(TypeError, match="declares 'critic' but does not define discriminate"):
        type("Broken", (VAE,), {"capabilities": frozenset({ENCODER, CRITIC})})
    with pytest.raises(TypeError, match="unknown capability"):
        type("Broken", (VAE,), {"capabilities": frozenset({"flow"})})


# ---------------------------------------------------------------------------------------------
# configs


@pytest.mark.parametrize("preset,overrides,field", [
    ("vae", {"lr": 0.0}, "lr"),
    ("conv-vae", {"lr": -1e-3}, "lr"),
    ("gan", {"lr_g": 0.0}, "lr_g"),
    ("dcgan", {"lr_d": -1.0}, "lr_d"),
    ("vae", {"latent_dim": 0}, "latent_dim"),
    ("wgan-gp", {"latent_dim": 0}, "latent_dim"),
    ("wgan", {"n_critic": 0}, "n_critic"),
    ("vae", {"beta": -0.5}, "beta"),
    ("cvae", {"free_bits": -1.0}, "free_bits"),
    ("vae", {"kl_schedule": "cosine"}, "kl_schedule"),
    ("vae", {"likelihood": "poisson"}, "likelihood"),
    ("gan", {"loss": "least-squares"}, "loss"),
    ("gan", {"optimizer": "sgd"}, "optimizer"),
    ("dcgan", {"beta1": 1.0}, "beta1"),
    ("gan", {"label_smoothing": 0.5}, "label_smoothing"),
    ("gan", {"hidden": ()}, "hidden"),
    ("dcgan", {"data_shape": (1, 30, 30)}, "arch"),
    ("cgan", {"num_classes": 1}, "num_classes"),
    ("cgan", {"aux_weight": 1.0}, "aux_weight"),                        # MLP D reads the label
    ("dcgan", {"aux_weight": 1.0}, "aux_weight"),                       # unconditional
    ("cgan", {"arch": "conv", "aux_weight": -1.0}, "aux_weight"),
    ("vae", {"lr": -1e-3}, "lr"), ("vae", {"anneal_steps": 0}, "anneal_steps"),
    ("vae", {"kl_schedule": "sometimes"}, "kl_schedule"), ("gan", {"latent_dim": 0}, "latent_dim"),
    ("wgan-gp", {"n_critic": 0}, "n_critic"), ("gan", {"loss": "magic"}, "loss"), ("gan", {"ema": 1.0}, "ema"),
    ("gan", {"label_smoothing": 0.7}, "label_smoothing"), ("gan", {"hidden": (0,)}, "hidden"),
    ("dcgan", {"width": 0}, "width"),
    ("vae", {"latent_dim": 2.5}, "latent_dim"), ("gan", {"lr_g": "fast"}, "lr_g"),   # wrong types
    ("gan", {"n_critic": True}, "n_critic"),
])
@pytest.mark.hostile
def test_config_validation_names_the_field(preset, overrides, field):
    with pytest.raises(ValueError, match=rf"^{field}=.* is invalid: must be "):
        make_model(preset, **{"data_shape": (1, 8, 8), "num_classes": 10, **overrides})


# Field metadata is the one description of a setting: validate(), the CLI's --set and the dashboard's
# training form all read field_specs.
@pytest.mark.parametrize("cls", [VAEConfig, GANConfig])
def test_field_specs_describe_every_field(cls):
    specs = field_specs(cls)
    assert [s.name for s in specs] == [f.name for f in dataclasses.fields(cls)]
    assert field_specs(cls()) == specs                                   # an instance works too
    defaults = cls()
    for s in specs:
        assert isinstance(s, FieldSpec) and s.kind in ("bool", "int", "float", "str", "tuple"), s
        assert s.help and s.default == getattr(defaults, s.name), s.name
        assert s.problem(s.default) is None, s.name
        if s.choices is not None:
            assert s.kind == "str" and s.default in s.choices
        if s.typical is not None:                       # a form's span lies inside the valid range
            assert all(s.problem(type(s.default)(v)) is None for v in s.typical), s.name
        if s.log:
            assert s.low is not None and s.low >= 0 and s.kind == "float", s.name
    with pytest.raises(dataclasses.FrozenInstanceError):
        specs[0].name = "x"


@pytest.mark.parametrize("cls", [VAEConfig, GANConfig])
def test_validation_follows_the_metadata_at_each_bound(cls):
    """Every bound and choice in the metadata is enforced with its rule in the message, and only there:
    the bound itself passes or fails by its openness; one step inside always passes."""
    checked = 0
    for s in field_specs(cls):
        if s.from_data:
            continue
        shape = {k: v for k, v in (("data_shape", (1, 8, 8)), ("conditional", s.name != "clusters"),
                                   ("arch", "conv")) if k != s.name}   # every cross-field rule holds
        for bound, is_open, inward in ((s.low, s.low_open, 1), (s.high, s.high_open, -1)):
            if bound is None:
                continue
            step = 1 if s.kind == "int" else 1e-3
            inside, outside = bound + inward * step, bound - inward * step
            cls(**shape, **{s.name: type(s.default)(inside)})
            with pytest.raises(ValueError, match=rf"^{s.name}=.* is invalid: must be {re.escape(s.rule)}$"):
                cls(**shape, **{s.name: type(s.default)(outside)})
            if is_open:
                with pytest.raises(ValueError, match=rf"^{s.name}="):
                    cls(**shape, **{s.name: type(s.default)(bound)})
            else:
                cls(**shape, **{s.name: type(s.default)(bound)})
            checked += 1
        if s.choices is not None:
            for choice in s.choices:
                assert s.problem(choice) is None
            with pytest.raises(ValueError, match=rf"^{s.name}='nope' is invalid: must be {re.escape(s.rule)}$"):
                cls(**shape, **{s.name: "nope"})
            checked += 1
    assert checked >= (8 if cls is VAEConfig else 12)


def test_a_whole_number_in_a_float_field_becomes_a_float(digits):
    """beta1=0 (as JSON or Python writes it) is 0.0: torch's Adam refuses betas mixing int and float."""
    model = make_model("gan", digits, beta1=0, beta2=0.9, lr_d=1)
    assert model.config.beta1 == 0.0 and type(model.config.beta1) is float and type(model.config.lr_d) is float
    assert type(genlib.TrainConfig(max_seconds=3).max_seconds) is float
    model.training_step(*digits.get(torch.arange(8)))


def test_field_rules_read_as_before():
    rules = {s.name: s.rule for s in field_specs(GANConfig)}
    assert rules["lr_g"] == "> 0" and rules["gp_weight"] == ">= 0" and rules["beta1"] == "in [0, 1)"
    assert rules["label_smoothing"] == "in [0, 0.5)" and rules["optimizer"] == "'adam' or 'rmsprop'"
    assert {s.name: s.rule for s in field_specs(VAEConfig)}["kl_schedule"] == "'none', 'linear' or 'cyclical'"
    with pytest.raises(ValueError, match=r"^label_smoothing=0\.5 is invalid: must be in \[0, 0\.5\)$"):
        GANConfig(label_smoothing=0.5)
    assert GANConfig(label_smoothing=0.49).label_smoothing == 0.49


def test_cli_set_parsing_reads_the_specs():
    from genlib.cli import UsageError, parse_overrides
    got = parse_overrides("vae", ["lr=1e-3", "hidden=256,128", "skip=yes", "latent-dim=2", "kl_schedule=linear"])
    assert got == {"lr": 1e-3, "hidden": (256, 128), "skip": True, "latent_dim": 2, "kl_schedule": "linear"}
    assert type(got["lr"]) is float and type(got["latent_dim"]) is int
    assert parse_overrides("gan", ["ema=0", "spectral_norm=0"]) == {"ema": 0.0, "spectral_norm": False}
    for item, needle in (("loss=magic", "choose 'nonsaturating', 'minimax'"), ("n_critic=2.5", "expected a int"),
                         ("spectral_norm=maybe", "expected a bool"), ("beta=1", "not a gan setting")):
        with pytest.raises(UsageError, match=needle):
            parse_overrides("gan", [item])


@pytest.mark.hostile(2)
@pytest.mark.parametrize("cls", [VAEConfig, GANConfig])
def test_conv_on_points_is_rejected(cls):
    with pytest.raises(ValueError, match=r"^arch="):
        cls(data_shape=(2,), arch="conv")
    with pytest.raises(ValueError, match=r"^arch="):
        make_model("vae" if cls is VAEConfig else "gan", data_shape=(2,), num_classes=8, arch="conv")


@pytest.mark.hostile
def test_bernoulli_likelihood_needs_images():
    with pytest.raises(ValueError, match=r"^likelihood="):
        VAEConfig(data_shape=(2,), likelihood="bernoulli")


@pytest.mark.parametrize("preset", ALL)
def test_config_dict_round_trip(preset, digits):
    config = build(preset, digits).config
    d = config.to_dict()
    json.dumps(d)   # plain data: checkpoints and the CLI print it
    again = type(config).from_dict(json.loads(json.dumps(d)))
    assert again == config
    assert type(config).from_dict(d, require_all=True) == config


@pytest.mark.hostile(4)
def test_from_dict_rejects_unknown_and_foreign_fields():
    with pytest.raises(ValueError, match="unknown VAEConfig field.*bogus"):
        VAEConfig.from_dict({"bogus": 1})
    with pytest.raises(ValueError, match="unknown VAEConfig field.*n_critic"):
        VAEConfig.from_dict(GANConfig().to_dict())
    with pytest.raises(ValueError, match="unknown GANConfig field"):
        GANConfig.from_dict(VAEConfig().to_dict())
    with pytest.raises(ValueError, match="missing"):
        GANConfig.from_dict({"latent_dim": 8}, require_all=True)


def test_checkpoint_configs_may_lack_only_later_fields():
    """A GAN saved before aux_weight and minibatch_std existed loads as the model it was; other gaps
    still fail."""
    old = GANConfig().to_dict()
    del old["aux_weight"], old["minibatch_std"]
    assert GANConfig.from_dict(old, require_all=True) == GANConfig()
    del old["ema"]
    with pytest.raises(ValueError, match="missing: ema"):
        GANConfig.from_dict(old, require_all=True)


def test_presets_are_named_read_only_records():
    p = PRESETS["wgan-gp"]
    assert isinstance(p, Preset) and p.family == "gan" and p.overrides["loss"] == "wgan-gp" and p.description
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.family = "vae"
    with pytest.raises(TypeError):
        p.overrides["loss"] = "hinge"                       # a preset cannot be changed by a caller
    for name, p in PRESETS.items():
        family, config = preset_config(name, (1, 8, 8), 10)
        assert family == p.family and all(getattr(config, k) == v for k, v in p.overrides.items())
    with pytest.raises(ValueError, match="unknown model family"):
        Preset("diffusion", {}, "not a family yet")


@pytest.mark.hostile
def test_make_model_rejects_unknown_preset():
    with pytest.raises(ValueError, match="unknown model"):
        make_model("diffusion", data_shape=(1, 8, 8), num_classes=10)


def test_ema_generator_samples_with_its_own_batchnorm_statistics():
    data = genlib.load_dataset("digits")
    torch.manual_seed(0)
    model = make_model("gan", data, ema=0.9)
    x, y = data.get(torch.arange(64))
    for _ in range(20):
        model.training_step(x, y)
    bn = lambda g: next(m for m in g.modules() if isinstance(m, torch.nn.BatchNorm1d))  # noqa: E731
    copied = bn(model.generator_ema).running_mean.clone()
    assert torch.equal(copied, bn(model.generator).running_mean)     # stand-in: the live G's statistics
    z = model.prior(8)
    first = model.sample(8, z=z)                                     # re-estimates them once
    fresh = bn(model.generator_ema).running_mean.clone()
    assert not torch.allclose(fresh, copied)
    # the re-estimate is what the averaged G's own outputs give, and it is deterministic
    model._ema_stats_stale = True
    assert torch.equal(model.sample(8, z=z), first)
    assert torch.equal(bn(model.generator_ema).running_mean, fresh)


@pytest.mark.parametrize("preset", ["dcgan", "cgan"])
def test_standing_statistics_follow_the_one_seeding_rule(preset, digits):
    """Batch-norm statistics come from z (and labels) drawn on the CPU by sampling.seeded_generator,
    then moved: the statistics are the same on any device. Rebuilt here by hand from that rule."""
    from genlib.sampling import seeded_generator

    model = build(preset, digits, arch="conv")
    norms = [m for m in model.sampler.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert norms
    by_hand = build(preset, digits, arch="conv").sampler
    hand_norms = [m for m in by_hand.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in hand_norms:
        m.reset_running_stats()
        m.momentum = None
    gen = seeded_generator(7)
    with torch.no_grad():
        for _ in range(3):
            z = torch.randn(16, model.config.latent_dim, generator=gen)
            labels = torch.randint(10, (16,), generator=gen) if model.config.conditional else None
            by_hand(z, labels)
    model.eval()
    model.standing_statistics(batches=3, batch_size=16, seed=7)
    for mine, hand in zip(norms, hand_norms):
        assert torch.equal(mine.running_mean, hand.running_mean) and torch.equal(mine.running_var, hand.running_var)
        assert mine.momentum == 0.1                            # the momentum comes back after the estimate
    assert not any(m.training for m in model.modules())       # and so does the mode it was in
