"""genlib.train on the 8x8 digits with tiny models: config checks, events, thread control, determinism,
the fixed noise's seeding rule, divergence handling, bounded history over 100k steps, metrics and
snapshots."""

from __future__ import annotations

import dataclasses
import math
import threading
import time

import pytest
import torch

import genlib
from genlib import Event, GenerativeModel, TrainConfig, Trainer, load_dataset, make_model
from genlib.models import field_specs
from genlib.sampling import to_uint8
from genlib.train import GRAD_NORM_KEYS, History, RecordedRun, as_recorded_run, is_grad_norm, overlay, thin

TIMEOUT = 20.0   # seconds; only reached when something is broken


def tiny(preset: str, data, seed: int = 0, **overrides):
    torch.manual_seed(seed)
    return make_model(preset, data, **{"hidden": (32,), "width": 4, "latent_dim": 4, **overrides})


def cfg(**kw) -> TrainConfig:
    return TrainConfig(**{"steps": 20, "batch_size": 16, "log_every": 5, "sample_every": 10, "n_fixed": 8, **kw})


def wait_until(pred, timeout: float = TIMEOUT) -> None:
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise AssertionError("timed out waiting for the trainer")
        time.sleep(0.002)


class Recorder:
    def __init__(self):
        self.events: list[Event] = []
        self.lock = threading.Lock()

    def __call__(self, ev: Event) -> None:
        with self.lock:
            self.events.append(ev)

    def kinds(self) -> list[str]:
        with self.lock:
            return [e.kind for e in self.events]

    def of(self, kind: str) -> list[Event]:
        with self.lock:
            return [e for e in self.events if e.kind == kind]


# ---------------------------------------------------------------------------------------------
# Config


@pytest.mark.hostile
@pytest.mark.parametrize("field, value", [("steps", 0), ("batch_size", 0), ("log_every", 0),
                                          ("n_fixed", 0), ("metric_every", -1), ("sample_every", 0),
                                          ("history_points", 0), ("max_sample_grids", 0), ("threads", -1),
                                          ("steps", 2.5), ("batch_size", "64")])
def test_out_of_range_train_config_is_rejected(field, value):
    with pytest.raises(ValueError, match=rf"^{field}="):
        TrainConfig(**{field: value})


def test_train_config_fields_describe_themselves():
    """Help and range live on each field (as on the model configs), so a form or a parser reads them."""
    specs = {s.name: s for s in field_specs(TrainConfig)}
    assert list(specs) == [f.name for f in dataclasses.fields(TrainConfig)]
    assert all(s.help for s in specs.values())
    assert (specs["steps"].low, specs["metric_share"].rule) == (1, "in [0, 1)")
    assert all(s.problem(s.default) is None for s in specs.values())      # the defaults are valid


# ---------------------------------------------------------------------------------------------
# A plain blocking run


@pytest.mark.parametrize("preset", ["vae", "cgan"])
def test_events_in_order(preset, digits):
    rec = Recorder()
    model = tiny(preset, digits)
    tr = Trainer(model, digits, cfg(), callbacks=[rec])
    assert tr.run() == "done"
    kinds = rec.kinds()
    assert kinds[0] == "start" and kinds[-1] == "done"
    assert [k for k in kinds if k not in ("start", "done")] == [
        "samples", "progress", "progress", "samples", "progress", "progress", "samples"]
    progress = rec.of("progress")
    assert [e.step for e in progress] == [5, 10, 15, 20]
    keys = ({"loss", "recon", "kl", "neg_elbo", "beta", "grad_norm"} if model.family == "vae"
            else {"d_loss", "g_loss", "d_real", "d_fake", "g_grad_norm", "d_grad_norm"})
    for e in progress:
        assert set(e.losses) == keys and all(math.isfinite(v) for v in e.losses.values())
        assert e.images_per_s > 0 and e.elapsed > 0
        assert e.epoch == pytest.approx(e.step / digits.steps_per_epoch(16))
    assert progress[-1].eta == 0
    samples = rec.of("samples")
    assert [e.step for e in samples] == [0, 10, 20]
    for e in samples:
        assert e.samples.dtype == torch.uint8 and e.samples.shape == (8, 1, 8, 8)
    assert not torch.equal(samples[0].samples, samples[-1].samples)   # training changed the model
    assert tr.state == "done" and tr.step == 20 and model.steps == 20
    assert rec.of("done")[0].message == "done at step 20"


def test_fixed_noise_is_fixed(digits):
    """The sample grids come from the same fixed z (and labels): an untrained copy reproduces the first one."""
    rec = Recorder()
    model = tiny("cgan", digits)
    tr = Trainer(model, digits, cfg(steps=5), callbacks=[rec])
    fresh = tiny("cgan", digits)
    first = to_uint8(fresh.sample(8, labels=tr.fixed_labels, z=tr.fixed_z))
    tr.run()
    assert torch.equal(rec.of("samples")[0].samples, first)
    assert torch.equal(tr.fixed_labels, torch.arange(8))
    # genlib's one seeding rule (genlib.sampling.prior_draw): drawn on the CPU from a generator seeded
    # with the config's seed, then moved, so the grid's z is the same on any device
    cpu_draw = torch.randn(8, *model.latent_shape, generator=torch.Generator().manual_seed(0))
    assert torch.equal(tr.fixed_z.cpu(), cpu_draw) and tr.fixed_z.device.type == tr.device.type


def test_seeds_make_runs_identical(digits):
    def losses(preset, seed):
        rec = Recorder()
        Trainer(tiny(preset, digits), digits, cfg(steps=10, seed=seed, log_every=1), callbacks=[rec]).run()
        return [e.losses for e in rec.of("progress")]

    for preset in ("vae", "gan"):
        a, b = losses(preset, 3), losses(preset, 3)
        assert len(a) == 10 and a == b
        assert losses(preset, 4) != a   # the seed matters (batch order, noise)


# ---------------------------------------------------------------------------------------------
# Control from another thread


def test_pause_step_once_resume_stop(digits):
    rec = Recorder()
    tr = Trainer(tiny("vae", digits), digits, cfg(steps=10**6, log_every=50, sample_every=10**6), callbacks=[rec])
    tr.start()
    try:
        wait_until(lambda: tr.step >= 3)
        assert tr.snapshot().state == "running"
        tr.pause()
        wait_until(lambda: tr.snapshot().state == "paused")
        s = tr.step
        time.sleep(0.05)
        assert tr.step == s, "a paused trainer must not step"
        assert rec.kinds().count("paused") == 1
        with pytest.raises(RuntimeError, match="already running"):
            tr.start()

        tr.step_once()
        wait_until(lambda: tr.step == s + 1 and tr.snapshot().state == "paused")
        time.sleep(0.05)
        assert tr.step == s + 1, "step_once runs exactly one step"
        tr.step_once()
        tr.step_once()
        wait_until(lambda: tr.step == s + 3 and tr.snapshot().state == "paused")
        time.sleep(0.05)
        assert tr.step == s + 3

        tr.resume()
        wait_until(lambda: tr.step > s + 10)
        assert tr.snapshot().state == "running"
        assert "resumed" in rec.kinds()
    finally:
        tr.stop()
        tr.join(TIMEOUT)
    assert not tr.is_alive
    snap = tr.snapshot()
    assert snap.state == "stopped" and rec.kinds()[-1] == "stopped"
    assert snap.step == tr.step and snap.message == f"stopped at step {tr.step}"
    assert tr.model.steps == tr.step


def test_stop_while_paused_then_start_again_runs(digits):
    tr = Trainer(tiny("vae", digits), digits, cfg(steps=60, log_every=10))
    tr.start()
    wait_until(lambda: tr.step >= 2)
    tr.pause()
    wait_until(lambda: tr.snapshot().state == "paused")
    tr.stop()
    tr.join(TIMEOUT)
    assert tr.state == "stopped"
    s = tr.step
    tr.start()   # a stop ends the pause: the new run trains, it does not sit paused
    tr.join(5)
    assert not tr.is_alive, "the restarted run stayed paused"
    assert tr.state == "done" and tr.step == 60 > s


def test_a_stop_reports_the_steps_it_dropped():
    """Step clicks a paused loop has not taken yet are dropped by a stop, which says how many (the pool
    queues a parked run again for them); a stop with none pending says 0."""
    from genlib.train.control import RunControl
    c = RunControl()
    c.pause()
    c.step_once()
    c.step_once()
    assert c.stop() == 2 and c.stop() == 0


def test_a_stop_given_right_after_start_holds(digits):
    """Stop at once after start(), before the loop's thread has begun (the pool's workers do this when a
    run is stopped while it starts): the run stops within a few steps (the new thread may run a few
    before the GIL switches back); it used to forget the stop and train to the end."""
    for _ in range(5):
        tr = Trainer(tiny("vae", digits), digits, cfg(steps=100_000, log_every=10))
        tr.start()
        tr.stop()
        tr.join(TIMEOUT)
        assert not tr.is_alive and tr.state == "stopped" and tr.step < 1000, (tr.state, tr.step)
    tr.start()                                  # and a later start trains again
    wait_until(lambda: tr.step >= 3)
    tr.stop()
    tr.join(TIMEOUT)
    assert tr.state == "stopped"


def test_stop_then_run_continues_from_the_same_step(digits):
    rec = Recorder()
    tr = None

    def stop_at_10(ev: Event) -> None:
        if ev.kind == "progress" and ev.step == 10 and tr.state == "running" and "stopped" not in rec.kinds():
            tr.stop()

    tr = Trainer(tiny("gan", digits), digits, cfg(steps=25), callbacks=[rec, stop_at_10])
    assert tr.run() == "stopped"
    assert tr.step == 10 and tr.model.steps == 10
    n_before = len(rec.events)
    assert tr.run() == "done"
    after = rec.events[n_before:]
    assert after[0].kind == "start" and after[0].step == 10
    assert [e.step for e in after if e.kind == "progress"] == [15, 20, 25]
    assert all(e.step != 0 for e in after if e.kind == "samples"), "no second step-0 grid"
    assert tr.step == 25 and tr.model.steps == 25
    assert tr.snapshot().history["step"] == [5, 10, 15, 20, 25]


def test_extend_continues_a_finished_run(digits):
    rec = Recorder()
    tr = Trainer(tiny("vae", digits), digits, cfg(steps=10), callbacks=[rec])
    assert tr.run() == "done" and tr.step == 10
    tr.extend(7)
    assert tr.snapshot().total_steps == 17
    assert tr.run() == "done"
    assert tr.step == 17 and tr.model.steps == 17
    assert [e.step for e in rec.of("progress")] == [5, 10, 15, 17]
    assert [e.step for e in rec.of("done")] == [10, 17]


def test_a_time_budget_ends_the_run_as_done_with_its_last_grid(digits):
    """``max_seconds``: done once that much training time passed (the lesson's 55-s run), with the
    last step's progress point, grid and measurement, as at the last of ``steps``; its time left
    bounds the estimate. A stop before the budget, then a continue, trains on until the budget, and
    pauses are not training time. ``extend`` drops a spent budget: "N more" trains N more steps."""
    rec = Recorder()
    tr = Trainer(tiny("vae", digits), digits, cfg(steps=10**7, max_seconds=0.4, sample_every=10**6, metric_every=10**6),
                 callbacks=[rec], metric_fn=lambda m: {"steps_seen": float(m.steps)})
    assert tr.run() == "done"
    assert 0.4 <= tr.elapsed < 5 and 0 < tr.step < 10**7 and "0.4 s of training" in tr.message
    assert rec.of("progress")[-1].step == tr.step and tr.sample_history[-1][0] == tr.step
    assert tr.snapshot().metrics["steps_seen"][-1] == tr.step
    assert [e.step for e in rec.of("done")] == [tr.step]
    assert max(e.eta for e in rec.of("progress")) <= 0.4          # not the 10**7 steps' hours
    done_at = tr.step
    tr.extend(30)
    assert tr.run() == "done" and tr.step == done_at + 30

    tr = Trainer(tiny("vae", digits), digits, cfg(steps=10**7, max_seconds=0.6))
    tr.start()
    time.sleep(0.1)
    tr.stop()
    tr.join(TIMEOUT)
    assert tr.state == "stopped" and tr.elapsed < 0.6
    tr.pause()
    tr.start()
    time.sleep(0.7)                                           # paused: no training time passes
    assert tr.state == "paused" and tr.elapsed < 0.6
    left, step = 0.6 - tr.elapsed, tr.step
    t0 = time.perf_counter()
    tr.resume()
    tr.join(TIMEOUT)
    assert tr.state == "done" and 0.6 <= tr.elapsed < 5
    assert time.perf_counter() - t0 >= left - 0.05 and tr.step > step + 1    # it trained the rest


# ---------------------------------------------------------------------------------------------
# Divergence


def test_nan_loss_stops_with_error_and_restores_last_good_weights(digits, monkeypatch):
    model = tiny("gan", digits)
    bad_step = 13   # inside the log interval (10, 15]
    real_step = model.training_step
    poisoned = []

    def training_step(x, y):
        out = real_step(x, y)
        if model.steps == bad_step and not poisoned:
            poisoned.append(model.steps)
            out = {**out, "g_loss": torch.tensor(float("nan"))}
        return out

    monkeypatch.setattr(model, "training_step", training_step)
    good = {}

    def remember(ev: Event) -> None:
        if ev.kind == "progress":
            good[ev.step] = {k: v.clone() for k, v in model.state_dict().items()}

    rec = Recorder()
    tr = Trainer(model, digits, cfg(steps=30), callbacks=[rec, remember])
    assert tr.run() == "error"
    assert rec.kinds()[-1] == "error"
    assert [e.step for e in rec.of("progress")] == [5, 10]
    snap = tr.snapshot()
    assert snap.state == "error" and "g_loss" in snap.message and "diverged" in snap.message
    assert "step 15" in snap.message and "step 10" in snap.message   # failed at, restored from
    assert snap.step == 10 and model.steps == 10
    assert snap.history["step"] == [5, 10]                            # no NaN in the curves
    state = model.state_dict()
    assert any(not torch.equal(state[k], v) for k, v in good[5].items())
    for k, v in good[10].items():
        assert torch.equal(state[k], v), k
    # The restored model trains on: running again finishes (the poison fired once).
    assert tr.run() == "done" and tr.step == 30 and model.steps == 30


def test_divergence_stops_keeps_last_good_weights_and_resumes_with_new_lr(digits):
    torch.manual_seed(0)
    model = make_model("vae", digits, lr=1e4)     # absurd: the KL overflows within a few steps
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = Trainer(model, digits, TrainConfig(steps=60, log_every=5))
    assert trainer.run() == "error"
    assert "diverged" in trainer.message and "learning rate" in trainer.message
    assert all(torch.isfinite(v).all() for v in model.state_dict().values() if v.is_floating_point())
    assert trainer.step == 0
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    model.set_learning_rates(lr=1e-3)
    assert trainer.run() == "done" and trainer.step == 60
    assert all(math.isfinite(v) for v in trainer.losses.values())


def test_exception_in_training_step_is_reported(digits, monkeypatch):
    model = tiny("vae", digits)
    monkeypatch.setattr(model, "training_step", lambda x, y: 1 / 0)
    rec = Recorder()
    tr = Trainer(model, digits, cfg(), callbacks=[rec])
    tr.start()
    tr.join(TIMEOUT)
    snap = tr.snapshot()
    assert snap.state == "error" and "ZeroDivisionError" in snap.message
    assert rec.kinds()[-1] == "error"


# ---------------------------------------------------------------------------------------------
# History, metrics, snapshots


def test_history_is_bounded_and_averages():
    h = History(max_points=100)
    for step in range(1, 10_001):
        h.append(step, {"a": float(step), "b": 2.0 * step})
        if step in (199, 200, 201, 5_000, 9_999):
            assert len(h) < 200 and len(h.to_dict()["step"]) <= 200
    d = h.to_dict()
    assert 100 <= len(h) < 200 and len(d["a"]) == len(d["b"]) == len(d["step"]) <= 200
    assert d["step"][-1] == 10_000, "the curve reaches the last step (a partial group is averaged so far)"
    prev = 0
    for step, a, b in zip(d["step"], d["a"], d["b"]):
        covered = range(prev + 1, step + 1)            # each point averages the steps since the last one
        assert a == pytest.approx(sum(covered) / len(covered))
        assert b == pytest.approx(2 * a)
        prev = step
    widths = [j - i for i, j in zip([0] + d["step"], d["step"])]
    assert len(set(widths[:len(h)])) == 1 and widths[-1] <= widths[0]   # equal groups, the last may be partial
    assert widths[0] > 1


def test_history_keeps_the_seconds_of_each_point_through_halving():
    h = History(max_points=10)
    for step in range(1, 1001):
        h.append(step, {"a": 1.0}, seconds=step / 4)
    d = h.to_dict(seconds=True)
    assert len(d["seconds"]) == len(d["step"]) == len(d["a"]) and "seconds" not in h.to_dict()
    assert d["seconds"] == [s / 4 for s in d["step"]], "each point's time is its last step's"
    plain = History()
    plain.append(1, {"a": 1.0})
    assert math.isnan(plain.to_dict(seconds=True)["seconds"][0]), "no time given: NaN, not a made-up 0"


def test_history_new_keys_are_padded():
    h = History(max_points=10)
    h.append(1, {"a": 1.0})
    h.append(2, {"a": 2.0, "b": 5.0})
    d = h.to_dict()
    assert d["a"] == [1.0, 2.0] and math.isnan(d["b"][0]) and d["b"][1] == 5.0


def test_metric_events(digits):
    rec = Recorder()
    calls = []

    def metric_fn(model):
        calls.append(model.steps)
        model.eval()   # the trainer must put it back into train mode
        return {"steps_seen": float(model.steps)}

    model = tiny("vae", digits)
    tr = Trainer(model, digits, cfg(steps=22, metric_every=5), callbacks=[rec], metric_fn=metric_fn)
    tr.run()
    assert calls == [5, 10, 15, 20, 22]
    assert [e.step for e in rec.of("metric")] == [5, 10, 15, 20, 22]
    assert rec.of("metric")[0].metrics == {"steps_seen": 5.0}
    assert tr.snapshot().metrics == {"step": [5, 10, 15, 20, 22], "steps_seen": [5.0, 10.0, 15.0, 20.0, 22.0]}
    assert model.training


def test_snapshot_is_consistent_while_training(digits):
    tr = Trainer(tiny("gan", digits), digits, cfg(steps=200, log_every=1, sample_every=7, max_sample_grids=5,
                                                   history_points=20))
    snaps = []
    tr.start()
    while tr.is_alive:
        snaps.append(tr.snapshot())
        time.sleep(0.001)
    tr.join(TIMEOUT)
    snaps.append(tr.snapshot())
    assert len(snaps) > 5
    for s in snaps:
        assert s.state in ("idle", "running", "done") and s.total_steps == 200
        hist = s.history
        n = len(hist["step"])
        assert all(len(v) == n for v in hist.values())
        assert hist["step"] == sorted(set(hist["step"])) and (n == 0 or hist["step"][-1] <= s.step)
        assert n <= 2 * 20
        steps = [k for k, _ in s.samples]
        assert steps == sorted(steps) and len(steps) <= 5 and (not steps or steps[-1] <= s.step)
        assert all(x.dtype == torch.uint8 and x.shape == (8, 1, 8, 8) for _, x in s.samples)
    final = snaps[-1]
    assert final.state == "done" and final.step == 200 and final.eta == 0
    assert [k for k, _ in final.samples][0] == 0 and final.samples[-1][0] == 200   # first and newest kept
    assert final.history["step"][-1] == 200
    assert final.losses.keys() == set(final.history) - {"step"}


def test_speed_and_eta_count_the_batch_actually_drawn():
    data = genlib.load_dataset("ring", n=40)          # smaller than the configured batch
    trainer = genlib.Trainer(genlib.make_model("gan", data), data,
                             genlib.TrainConfig(steps=20, batch_size=128, log_every=10))
    assert trainer.batch_size == 40
    trainer.images_per_s = 400.0                      # 10 steps of 40 examples per second
    assert trainer.snapshot().eta == pytest.approx(20 * 40 / 400.0)   # not 20 * 128 / 400


# ---------------------------------------------------------------------------------------------
# Long runs


class _Tiny(GenerativeModel):
    """The cheapest possible model, to run 100k trainer steps in seconds."""

    family = "gan"

    def __init__(self):
        from genlib.models import GANConfig
        super().__init__(GANConfig(data_shape=(2,), num_classes=0, hidden=(1,), latent_dim=1))
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.opt = torch.optim.SGD([self.w], lr=0.0)

    def training_step(self, x, y):
        self.steps += 1
        return {"loss": x.mean(), "other": x.std()}

    def sample(self, n, labels=None, z=None):
        return torch.zeros(n, 2)

    def network_sizes(self):
        return {"w": 1}

    def optimizers(self):
        return {"opt": self.opt}


def test_100k_steps_keep_memory_bounded():
    data = load_dataset("ring", n=512)
    cfg = TrainConfig(steps=100_000, batch_size=8, log_every=10, sample_every=500, history_points=200,
                      max_sample_grids=20)
    trainer = Trainer(_Tiny(), data, cfg)
    assert trainer.run() == "done"
    snap = trainer.snapshot()
    assert len(snap.history["step"]) < 2 * 200 and len(snap.history["loss"]) == len(snap.history["step"])
    assert len(snap.samples) <= 20
    assert snap.history["step"][-1] > 99_000 and snap.samples[-1][0] == 100_000


# ---------------------------------------------------------------------------------------------
# Gradient norms


def _hand_norm(module: torch.nn.Module) -> float:
    """sqrt of the sum of every squared gradient entry, in float64, written out."""
    total = 0.0
    for p in module.parameters():
        if p.grad is not None:
            total += float((p.grad.double() ** 2).sum())
    return math.sqrt(total)


@pytest.mark.parametrize("preset, extra", [("vae", {}), ("conv-vae", {}), ("gan", {}), ("cgan", {}),
                                           ("wgan-gp", {}), ("gan", {"spectral_norm": True, "ema": 0.9}),
                                           ("dcgan", {"conditional": True, "aux_weight": 1.0})])
def test_grad_norms_equal_a_hand_computation(preset, extra, digits):
    """Each step's reported norm is the L2 norm of the gradient its optimiser step used: after the
    step the gradients are still in .grad (zeroed before each backward, not after)."""
    model = tiny(preset, digits, **extra)
    x, y = digits.get(torch.arange(16))
    for step in range(6):
        out = model.training_step(x, y)
        for k in set(out) & set(GRAD_NORM_KEYS):
            assert out[k].dim() == 0 and not out[k].requires_grad and math.isfinite(float(out[k])), k
        if model.family == "vae":
            assert float(out["grad_norm"]) == pytest.approx(_hand_norm(model), rel=1e-5)
            continue
        assert float(out["d_grad_norm"]) == pytest.approx(_hand_norm(model.discriminator), rel=1e-5)
        if step % model.config.n_critic == 0:      # G moved this step: its gradient is in .grad
            g_norm = _hand_norm(model.generator)
            assert float(out["g_grad_norm"]) == pytest.approx(g_norm, rel=1e-5)
        else:                                       # reported until G's next update, like g_loss
            assert float(out["g_grad_norm"]) == pytest.approx(g_norm, rel=1e-5)
        assert float(out["d_grad_norm"]) > 0 and float(out["g_grad_norm"]) > 0


def test_grad_norm_of_a_model_resumed_between_generator_updates_changes_nothing(digits):
    """A GAN loaded mid n_critic cycle reports the norm G's gradient would have through the updated
    D, computed by hand here from the same z, and G's weights and statistics stay as they were."""
    import copy

    model = tiny("wgan-gp", digits, spectral_norm=True)
    model.steps = 1                                   # n_critic = 5: no G update at this step
    twin = copy.deepcopy(model)
    twin._last_g = {"g_loss": torch.tensor(0.0), "g_grad_norm": torch.tensor(0.0)}   # as if G had moved before
    x, y = digits.get(torch.arange(16))
    torch.manual_seed(7)
    z = torch.randn(16, model.config.latent_dim)      # the step's first draw
    torch.manual_seed(7)
    out = model.training_step(x, y)
    torch.manual_seed(7)
    twin.training_step(x, y)
    for k, v in model.state_dict().items():           # the extra passes left no trace (BN, spectral-norm u)
        assert torch.equal(v, twin.state_dict()[k]), k
    model.discriminator.requires_grad_(False)
    loss = -model.discriminator(model.generator(z) * 1.0).mean()     # WGAN's G loss, -E[f(G(z))]
    grads = torch.autograd.grad(loss, list(model.generator.parameters()))
    hand = math.sqrt(sum(float((g.double() ** 2).sum()) for g in grads))
    assert float(out["g_grad_norm"]) == pytest.approx(hand, rel=1e-5)


def test_grad_norms_reach_events_and_history(digits):
    rec = Recorder()
    tr = Trainer(tiny("wgan-gp", digits), digits, cfg(steps=30), callbacks=[rec])
    assert tr.run() == "done"
    for e in rec.of("progress"):
        assert {"g_grad_norm", "d_grad_norm"} <= set(e.losses)
        assert all(math.isfinite(e.losses[k]) and e.losses[k] > 0 for k in ("g_grad_norm", "d_grad_norm"))
    hist = tr.snapshot().history
    assert len(hist["g_grad_norm"]) == len(hist["d_grad_norm"]) == len(hist["step"]) == 6
    run = tr.recorded_run()
    assert set(run.grad_norms()) == {"g_grad_norm", "d_grad_norm"}
    assert [k for k in run.curves if is_grad_norm(k)] and not is_grad_norm("g_loss")


def test_gan_objectives_name_the_grad_norm_curves_for_their_own_axis():
    from genlib.models import OBJECTIVES
    for obj in OBJECTIVES.values():
        keys = {c.key for c in obj.chart.grad_curves}
        assert keys == {"g_grad_norm", "d_grad_norm"} <= set(GRAD_NORM_KEYS)
        assert not keys & {c.key for c in obj.chart.curves + obj.chart.side_curves}, "never on the losses' axes"


# ---------------------------------------------------------------------------------------------
# Time axes, the metric budget, the recorded run


def test_every_point_carries_its_training_seconds(digits):
    tr = Trainer(tiny("gan", digits), digits, cfg(steps=120, sample_every=7, max_sample_grids=6, metric_every=20,
                                                   metric_at_start=True),
                 metric_fn=lambda m: {"steps_seen": float(m.steps)})
    assert tr.run() == "done"
    s = tr.snapshot()
    assert "seconds" not in s.history and "seconds" not in s.metrics     # the curves dicts are unchanged
    for steps, secs in ((s.history["step"], s.history_seconds), (s.metrics["step"], s.metric_seconds),
                        ([k for k, _ in s.samples], s.sample_seconds)):
        assert len(secs) == len(steps) > 1
        assert secs == sorted(secs) and 0 <= secs[0] and secs[-1] <= s.elapsed + 1e-6
    assert s.metrics["step"][0] == 0 and s.metric_seconds[0] == 0 and s.sample_seconds[0] == 0
    assert s.metrics["step"][-1] == 120 and s.samples[-1][0] == 120
    assert s.history_seconds[-1] <= s.sample_seconds[-1] <= s.elapsed   # the final grid after the last log point
    assert s.batch_size == 16


def test_metric_share_keeps_evaluation_within_its_share(digits):
    """A slow metric (5 ms) asked for at every step: metric_share lets it take at most 20 % of the
    training seconds (room kept for the final evaluation, always made), and the evaluations are spread out."""
    calls = []

    def slow(model):
        calls.append(model.steps)
        time.sleep(0.005)
        return {"one": 1.0}

    tr = Trainer(tiny("vae", digits), digits, cfg(steps=800, log_every=20, metric_every=1, metric_share=0.2),
                 metric_fn=slow)
    assert tr.run() == "done"
    assert calls[-1] == 800 and 2 < len(calls) < 800
    last = tr.metric_cost_s / len(calls)
    assert tr.metric_cost_s <= 0.2 * tr.elapsed + last      # + last: the share is of the seconds so far
    assert tr.metric_cost_s >= 0.005 * len(calls), "the evaluations' time is measured"
    assert tr.snapshot().metric_cost_s == tr.metric_cost_s


@pytest.mark.hostile
@pytest.mark.parametrize("share", [-0.1, 1.0])
def test_out_of_range_metric_share_is_rejected(share):
    with pytest.raises(ValueError, match="^metric_share="):
        TrainConfig(metric_share=share)


def test_recorded_run_of_a_trainer_is_thinned_on_request(digits):
    tr = Trainer(tiny("vae", digits), digits, cfg(steps=200, log_every=1))
    tr.run()
    full, small = tr.recorded_run(), tr.recorded_run(max_points=30)
    assert len(full.steps) == 200 and len(small.steps) <= 30
    assert small.steps[-1] == full.steps[-1] == 200 and small.seconds[-1] == full.seconds[-1]
    k = math.ceil(200 / 30)
    assert small.curves["kl"][0] == pytest.approx(sum(full.curves["kl"][:k]) / k)
    assert small.total_steps == 200 and small.batch_size == 16 and small.total_seconds == tr.elapsed


def test_thin_averages_groups_and_keeps_the_last_time():
    x, cols = thin([1, 2, 3, 4, 5], {"a": [1.0, math.nan, 3.0, 4.0, 6.0], "t": [10, 20, 30, 40, 50]}, 2,
                   keep_last=("t",))
    assert x == [3, 5] and cols["a"] == [2.0, 5.0] and cols["t"] == [30, 50]
    assert thin([1], {"a": [1.0]}, 5) == ([1], {"a": [1.0]})


# ---------------------------------------------------------------------------------------------
# Overlay


def _run(steps, secs, values, key="g_grad_norm", **kw):
    return RecordedRun(steps=steps, seconds=secs, curves={key: values}, **kw)


def test_overlay_aligns_runs_by_step_or_seconds():
    fast = _run([10, 20, 30], [1.0, 2.0, 3.0], [3.0, 2.0, 1.0], batch_size=64)
    slow = _run([10, 20], [4.0, 8.0], [5.0, math.nan], batch_size=32,
                metric_steps=[20], metric_seconds=[8.0], metrics={"classifier_fid": [50.0]})
    o = overlay({"fast": fast, "slow": slow}, "g_grad_norm")
    assert o.x == "step" and o.series == {"fast": ([10, 20, 30], [3.0, 2.0, 1.0]), "slow": ([10], [5.0])}
    assert overlay({"fast": fast, "slow": slow}, "g_grad_norm", x="seconds").series["slow"] == ([4.0], [5.0])
    assert overlay([fast, slow], "g_grad_norm", x="images").series["run 1"] == ([320], [5.0])
    assert list(overlay({"fast": fast, "slow": slow}, "classifier_fid").series) == ["slow"]   # a metric, one run
    grid, ys = overlay({"fast": fast}, "g_grad_norm").on_grid(points=5)
    assert grid == [10, 15, 20, 25, 30] and ys["fast"] == [3.0, 2.5, 2.0, 1.5, 1.0]
    grid, ys = overlay({"fast": fast, "other": _run([20, 40], [0, 0], [0.0, 2.0])}, "g_grad_norm").on_grid(4)
    assert grid == [10, 20, 30, 40] and math.isnan(ys["other"][0]) and ys["other"][1:] == [0.0, 1.0, 2.0]
    assert math.isnan(ys["fast"][-1])


def test_overlay_reads_session_runs_and_history_dicts(digits):
    tr = Trainer(tiny("gan", digits), digits, cfg(steps=20))
    tr.run()
    old = {"step": [5, 10], "g_grad_norm": [1.0, 2.0]}          # a checkpoint saved before recorded runs
    o = overlay({"live": tr, "snap": tr.snapshot(), "old": old}, "g_grad_norm")
    assert o.series["live"] == o.series["snap"] and o.series["live"][0] == [5, 10, 15, 20]
    assert o.series["old"] == ([5, 10], [1.0, 2.0])
    assert as_recorded_run(tr.snapshot()).total_steps == 20

    class SessionRun:                                  # the dashboard's runs: a snapshot() method
        def snapshot(self):
            return tr.snapshot()
    assert overlay({"session": SessionRun()}, "g_grad_norm", x="seconds").series["session"] == \
        overlay({"live": tr}, "g_grad_norm", x="seconds").series["live"]
    with pytest.raises(ValueError, match="no training-seconds axis"):
        overlay({"live": tr, "old": old}, "g_grad_norm", x="seconds")
    with pytest.raises(ValueError, match="x must be"):
        overlay({"live": tr}, "g_grad_norm", x="epoch")
    with pytest.raises(TypeError, match="cannot read a run"):
        overlay({"bad": 3}, "g_grad_norm")


def test_a_curve_averaged_between_metric_measurements():
    """RecordedRun.at_measurements: each measurement after the start pairs with the mean of the
    curve over the steps since the previous one (the step-0 measurement has no points before it)."""
    run = RecordedRun(steps=[10, 20, 30, 40, 50, 60], seconds=[1, 2, 3, 4, 5, 6],
                      curves={"wasserstein": [6.0, 4.0, 3.0, float("nan"), 1.0, 2.0]},
                      metric_steps=[0, 20, 50, 55], metric_seconds=[0, 2, 5, 5.5],
                      metrics={"classifier_fid": [90.0, 40.0, 20.0, 19.0]})
    steps, fid, estimate = run.at_measurements("wasserstein")
    assert steps.tolist() == [20, 50] and fid.tolist() == [40.0, 20.0]
    assert estimate.tolist() == [5.0, 2.0]                         # (6 + 4) / 2; (3 + 1) / 2, NaN dropped
    from genlib.metrics import spearman
    assert spearman([1, 2, 3, 4], [10, 20, 25, 40]) == 1.0 and spearman([1, 2, 3], [3, 2, 1]) == -1.0
    assert spearman([1, 2, 3], [5, 5, 5]) == 0.0                   # undefined: a constant sequence
