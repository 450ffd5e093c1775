"""The flow family (genlib.models.flow): the objective against a hand computation, the ODE solvers
on fields with known solutions, classifier-free guidance, label dropout, the interface contract
(shapes, range, z of the data's shape, encode, checkpoints) and that a few steps lower the loss.

The generic contract over presets (tests/test_models.py) covers the `flow` and `cflow` presets too.
"""
from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F

import genlib
from genlib.cli import main
from genlib.models import Flow, FlowConfig, make_model
from genlib.models.flow import guided, integrate, path_and_target
from genlib.models.flow_nets import UNet, fourier_features, sinusoidal_embedding
from genlib.lessons import flow_lessons

SMALL_MLP = {"hidden": (32, 32), "emb_dim": 16}
SMALL_UNET = {"arch": "conv", "width": 8, "emb_dim": 16}


@pytest.fixture(scope="module")
def digits_small():
    return genlib.load_dataset("digits").subset(256, seed=0)


@pytest.fixture(scope="module")
def ring():
    return genlib.load_dataset("ring", n=512)


def build(preset, data=None, seed=0, **kw):
    torch.manual_seed(seed)
    if data is None:
        return make_model(preset, data_shape=kw.pop("data_shape"), num_classes=kw.pop("num_classes", 10), **kw)
    return make_model(preset, data, **kw)


def set_constant_velocity(model: Flow, c: float) -> None:
    """With the MLP's last layer at zero weights and bias c the field is v(x, t) = c everywhere."""
    last = model.velocity.net.out[1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.fill_(c)
    if model.velocity_ema is not None:
        model.velocity_ema.load_state_dict(model.velocity.state_dict())


# ---------------------------------------------------------------------------------------------
# the objective


def test_path_and_target_by_hand():
    x1, x0, t = torch.tensor([[1.0, 2.0]]), torch.tensor([[3.0, -1.0]]), torch.tensor([0.25])
    xt, u = path_and_target(x1, x0, t)
    # x_t = 0.75 * (3, -1) + 0.25 * (1, 2) = (2.5, -0.25); u = x1 - x0 = (-2, 3)
    assert torch.allclose(xt, torch.tensor([[2.5, -0.25]]))
    assert torch.allclose(u, torch.tensor([[-2.0, 3.0]]))
    # the ends of the path: noise at t = 0, data at t = 1, for image-shaped tensors too
    a, b = torch.randn(3, 1, 4, 4), torch.randn(3, 1, 4, 4)
    assert torch.allclose(path_and_target(a, b, torch.zeros(3))[0], b)
    assert torch.allclose(path_and_target(a, b, torch.ones(3))[0], a)


def test_training_step_loss_is_the_hand_computed_mse(digits_small):
    """Replay the step's random draws (same seed, same order) and compute the loss by hand with the
    network before its update: mean over batch and pixels of (v(x_t, t, y) - (x1 - x0))^2 (a net
    that predicts v, t uniform: x prediction has its own test)."""
    model = build("cflow", digits_small, **SMALL_MLP, p_uncond=0.3, predict="v", time_sampling="uniform")
    x, y = digits_small.get(torch.arange(16))
    torch.manual_seed(5)
    x1 = x * 2 - 1                                            # images in [0, 1] -> [-1, 1]
    x0 = torch.randn_like(x1)
    t = torch.rand(16)
    null = torch.rand(16) < 0.3
    tb = t.view(-1, 1, 1, 1)
    xt = (1 - tb) * x0 + tb * x1
    with torch.no_grad():
        e = torch.stack([model.velocity.class_emb[10] if n else model.velocity.class_emb[int(c)]
                         for c, n in zip(y, null)])
        v = model.velocity.net(xt, t, e)
    expected = ((v - (x1 - x0)) ** 2).mean()
    # the gradient norm the step reports: the whole velocity net's, before clipping (by hand, on a copy)
    twin = copy.deepcopy(model)
    e2 = torch.where(null[:, None], twin.velocity.class_emb[10].expand(16, -1), twin.velocity.class_emb[y.long()])
    ((twin.velocity.net(xt, t, e2) - (x1 - x0)) ** 2).mean().backward()
    norm = math.sqrt(sum(float((p.grad ** 2).sum()) for p in twin.velocity.parameters() if p.grad is not None))
    torch.manual_seed(5)
    out = model.training_step(x, y)
    assert set(out) == {"loss", "grad_norm"} and out["loss"].dim() == 0 and not out["loss"].requires_grad
    assert float(out["loss"]) == pytest.approx(float(expected), rel=1e-5)
    assert float(out["grad_norm"]) == pytest.approx(norm, rel=1e-4)
    assert model.steps == 1


def test_small_initial_field_gives_the_noise_to_data_distance(ring):
    """v ~ 0 at initialisation, so the first loss is E|x1 - x0|^2 / D: on the ring (|x1| = 1 +- 0.05,
    x0 ~ N(0, I)) that is (1 + 2) / 2 = 1.5, up to sampling noise."""
    model = build("flow", ring)
    x, y = ring.get(torch.arange(512))
    torch.manual_seed(0)
    assert float(model.training_step(x, y)["loss"]) == pytest.approx(1.5, abs=0.15)


@pytest.mark.parametrize("preset,kw", [("flow", {}), ("cflow", {}), ("flow", SMALL_UNET)])
def test_a_few_steps_lower_the_loss(preset, kw, digits_small):
    """On fixed (x1, x0, t): the loss after 40 steps is well below the loss before."""
    model = build(preset, digits_small, **{**SMALL_MLP, "hidden": (128, 128), **kw}, lr=2e-3)
    g = torch.Generator().manual_seed(0)
    x, y = digits_small.get(torch.arange(64))
    x1, x0, t = model.to_net_range(x), torch.randn(64, 1, 8, 8, generator=g), torch.rand(64, generator=g)
    labels = y if model.config.conditional else None

    def fixed_loss():
        with torch.no_grad():
            return float(model.loss_terms(x1, x0, t, labels))

    before = fixed_loss()
    batches = digits_small.batches(64, generator=torch.Generator().manual_seed(1))
    for _ in range(40):
        model.training_step(*next(batches))
    after = fixed_loss()
    assert after < 0.8 * before, (before, after)


def test_time_sampling(digits_small):
    for mode in ("uniform", "logit-normal"):
        model = build("flow", digits_small, **SMALL_MLP, time_sampling=mode)
        t = model.sample_time(4000, "cpu", torch.Generator().manual_seed(0))
        assert t.min() > 0 and t.max() < 1
        if mode == "uniform":
            assert abs(float(t.mean()) - 0.5) < 0.02 and abs(float(t.std()) - 12 ** -0.5) < 0.02
        else:   # sigmoid(N(0, 1)): mean 0.5, more mass mid-path than U[0, 1]
            assert abs(float(t.mean()) - 0.5) < 0.02 and float(t.std()) < 0.25


# ---------------------------------------------------------------------------------------------
# the ODE solvers


@pytest.mark.parametrize("method", ["euler", "heun"])
@pytest.mark.parametrize("steps", [1, 3, 20])
def test_constant_field_is_integrated_exactly(method, steps):
    x0 = torch.randn(5, 2)
    c = torch.tensor([0.7, -1.3])
    x1 = integrate(lambda x, t: c.expand_as(x), x0, 0.0, 1.0, steps, method)
    assert torch.allclose(x1, x0 + c, atol=1e-6)
    back = integrate(lambda x, t: c.expand_as(x), x1, 1.0, 0.0, steps, method)
    assert torch.allclose(back, x0, atol=1e-6)


def test_field_linear_in_time():
    """dx/dt = b t: x(1) = x(0) + b / 2. Heun (trapezoid) is exact; Euler (left sums) is short by
    b / (2n) with n steps."""
    b = torch.tensor([[2.0, -4.0]])
    f = lambda x, t: b * t[:, None]   # noqa: E731
    for n in (1, 4, 10):
        assert torch.allclose(integrate(f, torch.zeros(1, 2), 0, 1, n, "heun"), b / 2, atol=1e-6)
        assert torch.allclose(integrate(f, torch.zeros(1, 2), 0, 1, n, "euler"), b / 2 - b / (2 * n), atol=1e-6)


def test_linear_field_error_orders():
    """dx/dt = -x from x(0) = 1: x(1) = e^-1. Doubling the steps halves Euler's error (order 1) and
    quarters Heun's (order 2)."""
    f = lambda x, t: -x   # noqa: E731
    x0 = torch.ones(1, 1, dtype=torch.float64)
    exact = math.exp(-1)

    def err(n, m):
        return abs(float(integrate(f, x0, 0, 1, n, m)) - exact)

    for n in (8, 16, 32):
        assert err(n, "euler") / err(2 * n, "euler") == pytest.approx(2, rel=0.1)
        assert err(n, "heun") / err(2 * n, "heun") == pytest.approx(4, rel=0.1)
    assert err(16, "heun") < err(16, "euler") / 20


def test_trajectory_records_every_step():
    traj = []
    integrate(lambda x, t: torch.ones_like(x), torch.zeros(2, 3), 0, 1, 4, "euler", traj)
    assert len(traj) == 5 and torch.allclose(traj[-1], torch.ones(2, 3))
    assert torch.allclose(torch.stack([s[0, 0] for s in traj]), torch.linspace(0, 1, 5))


@pytest.mark.hostile
def test_unknown_sampler_is_rejected():
    with pytest.raises(ValueError, match="sampler"):
        integrate(lambda x, t: x, torch.zeros(1, 1), 0, 1, 2, "rk4")


@pytest.mark.parametrize("sampler", ["euler", "heun"])
def test_model_samples_a_constant_field_exactly(sampler, ring):
    """Through the model: with v = c, sample(z) = z + c and encode(sample(z)) = z."""
    model = build("flow", ring, sampler=sampler, sample_steps=7)
    set_constant_velocity(model, 0.5)
    z = model.prior(6, generator=torch.Generator().manual_seed(0))
    x = model.sample(6, z=z)
    assert torch.allclose(x, z + 0.5, atol=1e-5)
    assert torch.allclose(model.encode(x), z, atol=1e-5)
    traj = []
    model.sample(6, z=z, trajectory=traj, steps=3)
    assert len(traj) == 4 and torch.allclose(traj[0], z) and torch.allclose(traj[-1], z + 0.5, atol=1e-5)


def test_images_map_to_unit_range_and_back(digits_small):
    model = build("flow", digits_small, **SMALL_MLP, clip_x1=False, predict="v")
    set_constant_velocity(model, 0.0)        # the sample is the noise itself, mapped and clamped
    z = model.prior(4, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(model.sample(4, z=z), ((z + 1) / 2).clamp(0, 1).view(4, 1, 8, 8))
    x = torch.rand(4, 1, 8, 8)
    assert torch.allclose(model.encode(x), (x * 2 - 1).flatten(1), atol=1e-6)   # v = 0: the ODE leaves x where it is


def test_clip_x1_keeps_a_runaway_field_in_the_pixel_range(digits_small):
    """A field that runs away (v = 50 x: what the MLP's did for a few MNIST samples) ends far outside
    the pixel range, or at inf; with ``clip_x1`` each step heads at most for the clipped image, so the
    ODE ends in [-1, 1]; a field whose targets are in range is unchanged, and t = 1 (where encode
    starts) gives no 0 / 0."""
    z = torch.randn(16, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 3
    for clip in (False, True):
        model = build("flow", digits_small, **SMALL_MLP, clip_x1=clip)
        model._field = lambda labels, guidance: (lambda x, t: 50 * x)
        x = integrate(model.field(None), z, 0.0, 1.0, 20)
        assert torch.isfinite(x).all()
        assert (x.abs().max() <= 1 + 1e-6) if clip else (x.abs().max() > 1e6)
    model = build("flow", digits_small, **SMALL_MLP, clip_x1=True, predict="v")
    set_constant_velocity(model, 0.0)
    inside = torch.rand(4, 1, 8, 8) * 2 - 1
    assert torch.equal(model.field(None)(inside, torch.full((4,), 0.3)), torch.zeros_like(inside))
    v = model.field(None)(z[:4], torch.ones(4))
    assert torch.isfinite(v).all() and torch.equal(v, torch.zeros_like(v))
    assert build("flow", digits_small).config.clip_x1 and not FlowConfig().clip_x1   # the preset's, not the default


def test_an_x_predicting_net_gives_the_velocity_to_its_image(digits_small):
    """predict='x': the net's output is the clean image c, and the field is the velocity that reaches
    it by t = 1 on a straight line, (c - x) / (1 - t), with 1 - t held at 0.05 or more (no 0 / 0 at
    t = 1); so the ODE from any start ends at c, and the loss is still the velocity's."""
    model = build("flow", digits_small, **SMALL_MLP, predict="x", ema=0.0)
    set_constant_velocity(model, 0.5)                       # the net outputs the image 0.5 everywhere
    x = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    for t, gap in ((0.0, 1.0), (0.6, 0.4), (1.0, 0.05)):
        v = model.field(None)(x, torch.full((4,), t))
        torch.testing.assert_close(v, (0.5 - x) / gap)
    end = integrate(model.field(None), x, 0.0, 1.0, 20)
    torch.testing.assert_close(end, torch.full_like(end, 0.5))
    x1 = torch.rand(4, 1, 8, 8) * 2 - 1
    t = torch.full((4,), 0.5)
    xt, target = path_and_target(x1, x, t)
    torch.testing.assert_close(model.loss_terms(x1, x, t, None), F.mse_loss((0.5 - xt) / 0.5, target))
    # Heun's last step is Euler: its second evaluation, at t = 1, would use the clamped gap
    torch.testing.assert_close(model.sample(4, z=x.flatten(1), sampler="heun", steps=10),
                               torch.full((4, 1, 8, 8), 0.75))                   # 0.5 in [-1, 1] is 0.75
    # an image far out of range (what a net that runs away predicts) is clipped to it by clip_x1
    model = build("flow", digits_small, **SMALL_MLP, predict="x", clip_x1=True, ema=0.0)
    set_constant_velocity(model, 50.0)
    torch.testing.assert_close(model.sample(4, z=x.flatten(1)), torch.ones(4, 1, 8, 8))
    # a checkpoint's config saved before 'predict' and 'clip_x1' existed loads as the model it was
    old = {k: v for k, v in model.config.to_dict().items() if k not in ("predict", "clip_x1")}
    loaded = FlowConfig.from_dict(old, require_all=True)
    assert (loaded.predict, loaded.clip_x1) == ("v", False)


def test_encode_round_trip_on_a_trained_toy(ring):
    """A real (curved) field: encode then sample returns the points up to the solver's error."""
    model = build("flow", ring)
    batches = ring.batches(128, generator=torch.Generator().manual_seed(1))
    for _ in range(60):
        model.training_step(*next(batches))
    x = ring.get(torch.arange(50))[0]
    z = model.encode(x, steps=100, sampler="heun")
    back = model.sample(50, z=z, steps=100, sampler="heun")
    err = (back - x).abs()
    assert err.max() < 0.05 and err.median() < 1e-3, (err.max(), err.median())   # measured 0.013, 1e-4
    assert model.encode_evaluations() == model.config.sample_steps


# ---------------------------------------------------------------------------------------------
# conditioning: guidance and label dropout


def test_guidance_formula():
    vc, vu = torch.tensor([3.0, 1.0]), torch.tensor([1.0, 2.0])
    assert torch.equal(guided(vc, vu, 0.0), vu)
    assert torch.equal(guided(vc, vu, 1.0), vc)
    assert torch.allclose(guided(vc, vu, 3.0), torch.tensor([7.0, -1.0]))   # 1 + 3 (3 - 1), 2 + 3 (1 - 2)


def test_model_field_applies_guidance(digits_small):
    model = build("cflow", digits_small, **SMALL_MLP)
    batches = digits_small.batches(32, generator=torch.Generator().manual_seed(1))
    for _ in range(5):   # move off the zero initialisation so v_cond and v_uncond differ
        model.training_step(*next(batches))
    model.eval()
    x, t, y = torch.randn(6, 1, 8, 8), torch.rand(6), torch.tensor([0, 1, 2, 3, 4, 5])
    with torch.no_grad():
        net = model.sampler_net                      # the weight average (ema=0.99 by default)
        vc = net(x, t, y)
        vu = net(x, t, y, torch.ones(6, dtype=torch.bool))
        assert not torch.allclose(vc, vu)
        for w in (0.0, 1.0, 2.5):
            assert torch.allclose(model.field(y, w)(x, t), vu + w * (vc - vu), atol=1e-5)
        assert torch.allclose(model.field(None)(x, t), vu)     # no labels: the unconditional field
    assert model.encode_evaluations() == 2 * model.config.sample_steps      # guided: two calls per step
    # guidance changes samples; w = 1 is the plain conditional model
    z = model.prior(6, generator=torch.Generator().manual_seed(0))
    assert not torch.allclose(model.sample(6, y, z, guidance=1.0), model.sample(6, y, z, guidance=4.0))


def test_label_dropout_share_and_null_token(digits_small, monkeypatch):
    for p in (0.0, 0.3):
        model = build("cflow", digits_small, **SMALL_MLP, p_uncond=p)
        seen = []
        forward = model.velocity.forward

        def spy(x, t, y=None, null=None):
            seen.append(null.clone())
            return forward(x, t, y, null)

        monkeypatch.setattr(model.velocity, "forward", spy)
        torch.manual_seed(0)
        batches = digits_small.batches(128, generator=torch.Generator().manual_seed(1))
        for _ in range(20):
            model.training_step(*next(batches))
        share = float(torch.cat(seen).float().mean())
        assert share == pytest.approx(p, abs=0.03), (p, share)
    emb = model.velocity.embed(torch.tensor([3, 3]), torch.tensor([False, True]))
    assert torch.equal(emb[0], model.velocity.class_emb[3]) and torch.equal(emb[1], model.velocity.class_emb[10])


def test_soft_labels_mix_class_embeddings(digits_small):
    model = build("cflow", digits_small, **SMALL_MLP)
    soft = torch.zeros(2, 10)
    soft[0, 4] = 1
    soft[1, 2], soft[1, 7] = 0.5, 0.5
    e = model.velocity.embed(soft)
    emb = model.velocity.class_emb
    assert torch.allclose(e[0], emb[4]) and torch.allclose(e[1], 0.5 * (emb[2] + emb[7]))
    z = model.prior(2, generator=torch.Generator().manual_seed(0))
    assert model.sample(2, labels=soft, z=z).shape == (2, 1, 8, 8)


def test_unconditional_model_ignores_guidance_settings(digits_small):
    model = build("flow", digits_small, **SMALL_MLP)
    assert model.default_labels(4) is None and model.encode_evaluations() == model.config.sample_steps
    assert not hasattr(model.velocity, "class_emb")


# ---------------------------------------------------------------------------------------------
# the contract beyond tests/test_models.py: networks, shapes, ema, checkpoints


@pytest.mark.hostile(2)
def test_latent_is_the_flattened_starting_noise(digits_small, ring):
    """z is the noise at t = 0, flat (n, D) as every family's latent (checkpoints, latent tools);
    noise of the data's shape is taken too, and means the same; other shapes are refused."""
    for data, shape in ((digits_small, (1, 8, 8)), (ring, (2,))):
        model = build("flow", data, **SMALL_MLP)
        d = math.prod(shape)
        assert model.latent_shape == (d,) and model.config.latent_dim == d
        z = model.prior(3)
        assert z.shape == (3, d)
        assert torch.equal(model.sample(3, z=z), model.sample(3, z=z.view(3, *shape)))
        with pytest.raises(ValueError, match="z must have shape"):
            model.sample(3, z=torch.randn(3, d + 1))


@pytest.mark.parametrize("shape,kw", [((1, 28, 28), {}), ((1, 28, 28), {"patch": 2}), ((3, 32, 32), {}),
                                      ((3, 32, 32), {"patch": 2}), ((1, 8, 8), {"patch": 2})])
def test_unet_shapes_and_conditioning(shape, kw):
    model = build("cflow", data_shape=shape, **SMALL_UNET, **kw)
    x, y = torch.rand(3, *shape), torch.randint(10, (3,))
    out = model.training_step(x, y)
    assert math.isfinite(float(out["loss"]))
    s = model.sample(3, steps=2)
    assert s.shape == (3, *shape) and s.min() >= 0 and s.max() <= 1
    assert model.encode(x, y, steps=2).shape == (3, math.prod(shape))


def test_unet_output_starts_small():
    net = UNet((1, 28, 28), 8, 16)
    with torch.no_grad():
        v = net(torch.randn(2, 1, 28, 28), torch.rand(2))
    assert 0 < float(v.abs().max()) < 0.5


def test_embeddings():
    e = sinusoidal_embedding(torch.tensor([0.0, 0.5, 1.0]), 9)
    assert e.shape == (3, 9) and torch.equal(e[:, -1], torch.zeros(3))
    assert torch.allclose(e[0, :4], torch.ones(4)) and torch.allclose(e[0, 4:8], torch.zeros(4))
    f = fourier_features(torch.tensor([[0.25, -0.5]]), 3)
    assert f.shape == (1, 2 + 12)
    assert torch.allclose(f[0, 2:8], torch.sin(math.pi * torch.tensor([0.25, 0.5, 1.0, -0.5, -1.0, -2.0])), atol=1e-6)


def test_ema_weights_sample_and_round_trip(digits_small, tmp_path):
    model = build("cflow", digits_small, **SMALL_MLP, ema=0.9)
    batches = digits_small.batches(32, generator=torch.Generator().manual_seed(1))
    for _ in range(4):
        model.training_step(*next(batches))
    live = dict(model.velocity.named_parameters())
    avg = dict(model.velocity_ema.named_parameters())
    assert not torch.allclose(live["net.inp.weight"], avg["net.inp.weight"])
    assert model.sampler_net is model.velocity_ema and not any(p.requires_grad for p in avg.values())
    z = model.prior(5, generator=torch.Generator().manual_seed(3))
    expected = model.sample(5, z=z)
    genlib.save_checkpoint(tmp_path / "f.pt", model)
    loaded = genlib.load_checkpoint(tmp_path / "f.pt").model
    assert loaded.config == model.config and loaded.steps == 4
    assert torch.equal(loaded.sample(5, z=z), expected)
    assert math.isfinite(float(loaded.training_step(*next(batches))["loss"]))


def test_ema_warm_up():
    """The decay is min(ema, (1 + n) / (10 + n)): the first update copies 90 % of the live weights."""
    model = build("flow", data_shape=(2,), num_classes=0, **SMALL_MLP, ema=0.999)
    before = model.velocity_ema.net.inp.bias.clone()
    model.training_step(torch.randn(16, 2), torch.zeros(16, dtype=torch.long))
    live = model.velocity.net.inp.bias
    assert torch.allclose(model.velocity_ema.net.inp.bias, 0.1 * before + 0.9 * live, atol=1e-6)


@pytest.mark.hostile
@pytest.mark.parametrize("overrides,field", [
    ({"sampler": "rk4"}, "sampler"), ({"sample_steps": 0}, "sample_steps"), ({"guidance": -1.0}, "guidance"),
    ({"p_uncond": 1.0}, "p_uncond"), ({"time_sampling": "beta"}, "time_sampling"), ({"ema": 1.0}, "ema"),
    ({"lr": 0.0}, "lr"), ({"octaves": -1}, "octaves"), ({"patch": 3}, "patch"), ({"grad_clip": -1.0}, "grad_clip"),
    ({"arch": "unet"}, "arch"), ({"emb_dim": 1}, "emb_dim"),
])
def test_config_validation_names_the_field(overrides, field):
    with pytest.raises(ValueError, match=rf"^{field}="):
        make_model("cflow", data_shape=(1, 8, 8), num_classes=10, **overrides)


@pytest.mark.hostile
def test_patch_needs_images():
    with pytest.raises(ValueError, match=r"^patch="):
        FlowConfig(data_shape=(2,), patch=2)


def test_latent_dim_is_derived_from_the_data():
    assert FlowConfig(data_shape=(1, 28, 28), latent_dim=5).latent_dim == 784
    d = FlowConfig(data_shape=(2,)).to_dict()
    assert FlowConfig.from_dict(d, require_all=True) == FlowConfig(data_shape=(2,))


# ---------------------------------------------------------------------------------------------
# the command line


def test_cli_trains_and_samples_a_toy_flow(tmp_path, capsys):
    ckpt, out = tmp_path / "flow-ring.pt", tmp_path / "s.npz"
    assert main(["train", "--model", "flow", "--dataset", "ring", "--steps", "30", "--batch-size", "64",
                 "--seed", "0", "--device", "cpu", "--out", str(ckpt), "--quiet"]) == 0
    ck = genlib.load_checkpoint(ckpt)
    assert ck.model.family == "flow" and ck.model.config.octaves == 6 and ck.model.steps == 30
    assert main(["sample", "--checkpoint", str(ckpt), "--n", "20", "--out", str(out), "--seed", "0"]) == 0
    import numpy as np
    x = np.load(out)["x"]
    assert x.shape == (20, 2) and np.isfinite(x).all()


# ---------------------------------------------------------------------------------------------
# the dashboard: the Flow matching page, the conditional page's guidance slider, the Overview


@pytest.fixture(scope="module")
def flow_app_models(tmp_path_factory):
    """A tiny digits-cflow (40 steps) in a temporary pretrained/ folder, under its shipped name."""
    pytest.importorskip("streamlit")
    folder = tmp_path_factory.mktemp("pretrained")
    data = genlib.load_dataset("digits")
    torch.manual_seed(0)
    model = make_model("cflow", data, **SMALL_MLP)
    trainer = genlib.Trainer(model, data, genlib.TrainConfig(steps=40, batch_size=64, sample_every=20, n_fixed=20))
    trainer.run()
    genlib.save_checkpoint(folder / "digits-cflow.pt", model, trainer, preset="cflow")
    return folder


def _flow_app(folder, monkeypatch, dataset="digits"):
    from streamlit.testing.v1 import AppTest

    from conftest import APP
    from dashboard import resources

    monkeypatch.setattr(resources, "PRETRAINED_ROOT", folder)
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["dataset"] = dataset
    at.run()
    return at


def _plotly_specs(at) -> list[dict]:
    import json
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def test_flow_page_on_digits_shows_the_trajectory_and_the_steps_curve(flow_app_models, monkeypatch, tmp_path):
    from conftest import assert_clean

    monkeypatch.setenv("GENLIB_DASHBOARD_STATE_DIR", str(tmp_path / "sessions"))
    at = _flow_app(flow_app_models, monkeypatch)
    at.session_state["flow_steps"] = 6
    at.session_state["flow_rows"] = 3
    at.switch_page("app_pages/flow.py").run()
    assert_clean(at)
    assert at.title[0].value.startswith("Flow matching") and at.expander
    assert any(s.key == "flow_guidance" for s in at.slider)          # a conditional flow: guidance
    assert any("one noise z followed along the ODE" in c for img in at.get("image") for c in img.captions)
    at.session_state["flow_curve_n"] = 100
    at.toggle(key="flow_curve").set_value(True).run()
    assert_clean(at)
    spec = _plotly_specs(at)[-1]
    steps = [tr for tr in spec["data"] if tr.get("name") == "seconds"][0]["x"]
    assert list(steps) == list(flow_lessons.STEPS)
    names = {tr.get("name") for tr in spec["data"]}
    assert {"label accuracy", "confidence"} <= names


def test_flow_page_on_a_toy_trains_a_flow_and_animates_the_particles(flow_app_models, monkeypatch, tmp_path):
    from conftest import assert_clean

    monkeypatch.setenv("GENLIB_DASHBOARD_STATE_DIR", str(tmp_path / "sessions"))
    # the page's toy flow, cheaper: 20 steps of a small net (same function, same caching rule)
    monkeypatch.setattr(flow_lessons, "toy_flow",
                        lambda toy, steps, seed=0: flow_lessons.train_model(genlib.load_dataset(toy, n=512), 20, seed,
                                                                            64, **SMALL_MLP))
    at = _flow_app(flow_app_models, monkeypatch, dataset="ring")
    at.switch_page("app_pages/flow.py").run()
    assert_clean(at)
    assert at.button(key="flow_toy_train")
    at.session_state["flow_steps"] = 5
    at.button(key="flow_toy_train").click().run()
    assert_clean(at)
    spec = _plotly_specs(at)[0]
    assert len(spec["frames"]) == 6                                   # the noise and 5 Euler steps
    first = spec["frames"][0]["data"][0]["x"]          # plotly sends arrays as base64 ('bdata') or lists
    if isinstance(first, dict):
        import base64
        import numpy as np
        first = np.frombuffer(base64.b64decode(first["bdata"]), dtype=first["dtype"])
    assert len(first) == 500
    assert any(tr.get("name", "").startswith("v(x, t = 0.50)") for tr in spec["data"])
    assert any(m.label == "Modes covered" for m in at.metric)


def test_conditional_page_guidance_slider_changes_the_samples(flow_app_models, monkeypatch, tmp_path):
    from conftest import assert_clean
    from dashboard import context

    monkeypatch.setenv("GENLIB_DASHBOARD_STATE_DIR", str(tmp_path / "sessions"))
    at = _flow_app(flow_app_models, monkeypatch)
    at.selectbox(key=context.model_key("digits")).set_value("digits-cflow (pretrained)").run()
    at.switch_page("app_pages/conditional.py").run()
    assert_clean(at)
    before = at.get("image")[0].proto
    at.slider(key="cond_guidance").set_value(0.0).run()
    assert_clean(at)
    assert at.get("image")[0].proto != before
    at.switch_page("app_pages/overview.py").run()                    # the comparison lists the flow
    assert_clean(at)
    assert any("digits-cflow" in m.value for m in at.markdown)


def test_train_page_trains_a_cflow_live_and_draws_its_loss(flow_app_models, monkeypatch, tmp_path):
    """The Train page's form is generated from FlowConfig's fields; a cflow run advances, reports its
    loss and gradient norm, and the page draws the flow's loss chart."""
    import time

    from conftest import assert_clean

    monkeypatch.setenv("GENLIB_DASHBOARD_STATE_DIR", str(tmp_path / "sessions"))
    at = _flow_app(flow_app_models, monkeypatch)
    at.switch_page("app_pages/train.py").run()
    at.selectbox(key="tr_preset").set_value("cflow").run()
    assert_clean(at)
    assert at.slider(key="tr_cflow_guid").value == 2.0
    at.number_input(key="tr_steps").set_value(60)
    at.select_slider(key="tr_batch").set_value(32)
    at.button(key="tr_start").click().run()
    assert_clean(at)
    runs = at.session_state["genlib_runs"]
    run = list(runs.runs.values())[-1]
    try:
        end = time.monotonic() + 120
        while run.snapshot().step < 60 and time.monotonic() < end:
            time.sleep(0.2)
        snap = run.snapshot()
        assert snap.step == 60 and {"loss", "grad_norm"} <= set(snap.history)
        assert run.model.family == "flow" and run.model.config.conditional
        at.run()
        assert_clean(at)
        titles = [a.get("text", "") for s in _plotly_specs(at) for a in s.get("layout", {}).get("annotations", [])]
        assert any("Flow-matching loss" in t for t in titles)
    finally:
        runs.stop_all()
        for r in runs.runs.values():
            r.trainer.join(10)


def test_data_parallel_wraps_only_the_trained_net(tmp_path, digits_small):
    """Under torchrun (here a 1-process gloo group): the velocity net becomes a DistributedDataParallel,
    the EMA copy (no gradients, which DDP refuses) stays plain and still follows; unwrapping restores
    the checkpoint's keys."""
    import torch.distributed as td

    from genlib.train.distributed import Distributed

    td.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        d = Distributed(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"), backend="gloo")
        model = build("cflow", digits_small, **SMALL_MLP)
        keys = list(model.state_dict())
        before = model.velocity_ema.net.inp.bias.clone()
        data, cfg = d.prepare(model, digits_small, genlib.TrainConfig(steps=4, batch_size=32, threads=1))
        assert type(model.velocity).__name__ == "DistributedDataParallel"
        assert type(model.velocity_ema).__name__ == "VelocityField"
        genlib.Trainer(model, data, cfg).run()
        model.distribute(None)
        assert list(model.state_dict()) == keys and model.steps == 4
        assert not torch.equal(model.velocity_ema.net.inp.bias, before)
    finally:
        td.destroy_process_group()
