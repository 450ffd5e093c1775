"""genlib.train.pool: training runs in worker processes (one shared pool of one worker, to stay
inside CI's budget: spawning a worker imports torch, a few seconds)."""
from __future__ import annotations

import os
import signal
import time

import pytest
import torch

import genlib
from genlib.metrics import ToyProbe
from genlib.train.pool import DataRef, Pool, PoolLimitError, RunSpec

LONG = 1_000_000          # steps of a run that is stopped by the test


@pytest.fixture(scope="module")
def pool():
    p = Pool(1, max_runs_per_owner=0, publish_s=0.1, poll_s=0.2)
    yield p
    p.close(timeout=10)


def _spec(data, steps, seed=0, model="vae", **kw):
    torch.manual_seed(seed)
    m = genlib.make_model(model, data)
    cfg = genlib.TrainConfig(steps=steps, seed=seed, log_every=5, sample_every=10, threads=1)
    return RunSpec.new(m, data, cfg, ref=DataRef("digits"), **kw)


def _until(cond, timeout=60.0, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def test_same_losses_as_in_process_and_continues(pool, digits, tmp_path):
    run = pool.submit(_spec(digits, 30), owner="a", name="pooled")
    assert run.wait(120) == "done", run.message
    torch.manual_seed(0)
    local = genlib.Trainer(genlib.make_model("vae", digits), digits,
                           genlib.TrainConfig(steps=30, seed=0, log_every=5, sample_every=10, threads=1))
    local.run()
    got, want = run.snapshot(), local.snapshot()
    assert (got.state, got.step, got.history["step"]) == ("done", 30, want.history["step"]), got
    for key in ("loss", "recon", "kl"):
        assert torch.allclose(torch.tensor(got.history[key]), torch.tensor(want.history[key]), rtol=1e-6), \
            (key, got.history[key], want.history[key])
    assert [s for s, _ in got.samples] == [0, 10, 20, 30], got.samples
    assert torch.equal(got.samples[-1][1], want.samples[-1][1])
    ckpt = genlib.load_checkpoint(run.checkpoint_bytes)            # the trained model came back
    assert ckpt.model.steps == 30 and ckpt.recorded_run.total_steps == 30
    assert run.frozen_model() is not None and run.frozen_model().steps == 30
    assert any(ev.kind == "done" for ev in run.events), list(run.events)
    # continuing queues it again and goes on from step 30 with its curves
    run.extend(10)
    run.model.set_learning_rates(lr=5e-4)          # as the Train page does on its copy, before a restart
    run.start()
    assert run.wait(120) == "done", run.message
    snap = run.snapshot()
    assert (snap.step, snap.history["step"][:6], snap.history["step"][-1]) == (40, want.history["step"], 40), snap
    run.save(tmp_path / "run.pt")
    ckpt = genlib.load_checkpoint(tmp_path / "run.pt")
    assert ckpt.model.steps == 40 and ckpt.model.config.lr == 5e-4 and ckpt.model.opt.param_groups[0]["lr"] == 5e-4
    # an ended RemoteRun stands in for a Trainer where the dashboard saves one (persist, downloads, cards)
    genlib.save_checkpoint(tmp_path / "again.pt", run.frozen_model(), run, preset="vae", run_name="pooled")
    again = genlib.load_checkpoint(tmp_path / "again.pt")
    assert again.card["dataset"] == "digits" and again.card["images"] == len(digits) and again.card["steps"] == 40
    assert again.history == ckpt.history and torch.equal(again.fixed_z, ckpt.fixed_z)
    assert again.recorded_run.total_steps == 40 and len(again.samples) == len(ckpt.samples)


def test_a_metric_panel_comes_back_from_the_worker(pool):
    """The Toy lab's probe runs in the worker beside the Trainer; its panel (D's map, mode shares)
    comes with the snapshots, from the latest measurement, as on a thread (``Trainer.panel``)."""
    from functools import partial

    ring = genlib.load_dataset("ring")
    torch.manual_seed(0)
    cfg = genlib.TrainConfig(steps=60, batch_size=64, log_every=10, sample_every=20, metric_every=20, threads=1)
    spec = RunSpec.new(genlib.make_model("gan", ring), ring, cfg, ref=DataRef("ring"),
                       metric=partial(ToyProbe, "ring", n=200, grid=12))
    run = pool.submit(spec, owner="toy")
    assert run.panel() is None
    assert run.wait(120) == "done", run.message
    snap, panel = run.snapshot(), run.panel()
    assert snap.metrics["step"][-1] == panel["step"] == 60 and "toy_modes_covered" in snap.metrics
    assert panel["heat"].shape == (12, 12) and panel["mode_share"].shape == (8,)
    local = ToyProbe("ring", n=200, grid=12)       # the same measurement of the trained model
    local(genlib.load_checkpoint(run.checkpoint_bytes).model)
    assert torch.allclose(local.panel()["heat"], panel["heat"], atol=1e-5)


def test_controls_reach_a_run_while_it_is_starting(pool, digits):
    """Stop and extend given at once, while the worker still builds the run ('starting'): the worker
    gets them after the run itself (the CI failure this pins: a stop in that window was lost and the
    run trained on)."""
    _until(lambda: pool.status()["busy"] == 0, what="an idle pool")
    run = pool.submit(_spec(digits, LONG), owner="s")
    assert run.state in ("starting", "queued"), run.state
    run.extend(5)
    run.stop()
    assert run.wait(120) == "stopped", run.message
    assert run.spec.config.steps == LONG + 5 and run.step < LONG


def test_pause_step_resume_stop_across_processes(pool, digits):
    run = pool.submit(_spec(digits, LONG), owner="b")
    _until(lambda: run.state == "running" and run.step > 0, what="the run to start")
    run.pause()
    _until(lambda: run.snapshot().state == "paused", what="the pause")
    at = run.step
    time.sleep(0.5)
    assert run.snapshot().step == at                               # paused means no steps
    run.step_once()
    _until(lambda: run.snapshot().step == at + 1, what="one step")
    time.sleep(0.3)
    snap = run.snapshot()
    assert snap.step == at + 1 and snap.state == "paused"
    run.resume()
    _until(lambda: run.step > at + 1 and run.state == "running", what="the resume")
    run.stop()
    assert run.wait(30) == "stopped"
    assert genlib.load_checkpoint(run.checkpoint_bytes).model.steps == run.step


def test_a_paused_run_gives_its_worker_to_a_waiting_run(pool, digits, monkeypatch):
    """One worker: A pauses, B waits; A is parked (ended in its worker with its checkpoint, still
    'paused' here), B trains; A resumed queues again and goes on from its step, curves and all (the
    same losses up to the pause; after it, the batches of a restarted run: as a stop and a continue).
    Stopping a parked run ends it where it was. No checkpoint is decoded under the pool's lock (that
    would hold up every page asking for the pool's status)."""
    decoded = []

    def load_checkpoint(*args, **kw):
        decoded.append(pool._lock._is_owned())
        return genlib.load_checkpoint(*args, **kw)
    monkeypatch.setattr("genlib.train.pool.load_checkpoint", load_checkpoint)
    monkeypatch.setattr("genlib.train.remote.load_checkpoint", load_checkpoint)
    a = pool.submit(_spec(digits, 40), owner="p", name="A")
    _until(lambda: a.state == "running" and a.step > 0, what="A to start")
    a.pause()
    _until(lambda: a.snapshot().state == "paused", what="A's pause")
    at = a.step
    b = pool.submit(_spec(digits, 20, seed=1), owner="q", name="B")
    assert b.wait(120) == "done", b.message                       # B did not wait for A's owner
    snap = a.snapshot()
    assert a.is_alive and snap.state == "paused" and snap.step == at and "worker went to a waiting run" in snap.message
    assert pool.status()["parked"] == 1 and snap.parked       # the Train page's line: test_app_pool.py
    a.resume()
    assert a.wait(120) == "done", a.message
    got = a.snapshot()
    torch.manual_seed(0)
    local = genlib.Trainer(genlib.make_model("vae", digits), digits,
                           genlib.TrainConfig(steps=40, seed=0, log_every=5, sample_every=10, threads=1))
    local.run()
    want = local.snapshot()
    steps = got.history["step"]       # one more point where it was parked (a stop logs its step)
    assert got.step == 40 and steps == sorted(set(steps)) and set(want.history["step"]) <= set(steps), steps
    before = [s for s in want.history["step"] if s <= at]
    assert torch.allclose(torch.tensor([got.history["loss"][steps.index(s)] for s in before]),
                          torch.tensor([want.history["loss"][want.history["step"].index(s)] for s in before]), rtol=1e-5)
    assert not any(ev.kind == "stopped" for ev in a.events)

    c = pool.submit(_spec(digits, LONG), owner="p", name="C")
    _until(lambda: c.state == "running" and c.step > 0, what="C to start")
    c.pause()
    _until(lambda: c.snapshot().state == "paused", what="C's pause")
    d = pool.submit(_spec(digits, 10, seed=2), owner="q", name="D")
    _until(lambda: pool.status()["parked"] == 1, what="C to be parked")
    c.stop()
    assert c.wait(10) == "stopped" and genlib.load_checkpoint(c.checkpoint_bytes).model.steps == c.step
    assert d.wait(120) == "done", d.message
    assert pool.status()["parked"] == 0
    # the owner's Stop of a paused run, with a run arriving right after it, stays a stop (not a park)
    e = pool.submit(_spec(digits, LONG), owner="p", name="E")
    _until(lambda: e.state == "running" and e.step > 0, what="E to start")
    e.pause()
    _until(lambda: e.snapshot().state == "paused", what="E's pause")
    e.stop()
    f = pool.submit(_spec(digits, 10, seed=3), owner="q", name="F")
    assert e.wait(30) == "stopped" and pool.status()["parked"] == 0
    assert f.wait(120) == "done", f.message
    assert decoded and not any(decoded), decoded


def test_a_step_asked_just_before_a_park_is_still_taken(pool, digits):
    """A paused run's owner clicks Step as another run arrives: the park's stop may reach the worker
    before its loop takes the step (here the two commands arrive back to back). The stop reports the
    step it dropped (``RunControl.stop``) and the run queues again for it; either way the run takes
    exactly that step and stays paused."""
    a = pool.submit(_spec(digits, LONG), owner="p", name="A")
    _until(lambda: a.state == "running" and a.step > 0, what="A to start")
    a.pause()
    _until(lambda: a.snapshot().state == "paused", what="A's pause")
    at = a.step
    slot = next(s for s in pool._slots if s.run is a)
    put, held = slot.cmd_q.put, []

    def step_with_the_stop(cmd, *args, **kw):
        if cmd[0] == "step":
            held.append(cmd)
            return None
        for c in held if cmd[0] == "stop" else ():
            put(c)
        return put(cmd, *args, **kw)
    slot.cmd_q.put = step_with_the_stop
    a.step_once()
    b = pool.submit(_spec(digits, 10, seed=1), owner="q", name="B")
    assert b.wait(120) == "done", b.message       # on the one worker: so A was parked
    slot.cmd_q.put = put
    assert held, "the step never reached the worker's queue"
    _until(lambda: a.step == at + 1 and a.snapshot().state == "paused", what=f"A's step (at {a.step}, was {at})")
    time.sleep(0.5)
    assert a.step == at + 1 and a.snapshot().state == "paused"
    a.stop()
    assert a.wait(30) == "stopped"


def test_killed_worker_is_an_error_and_the_pool_recovers(pool, digits):
    run = pool.submit(_spec(digits, LONG), owner="c")
    _until(lambda: run.state == "running" and run.step > 0, what="the run to start")
    pid = run.worker_pid
    os.kill(pid, signal.SIGKILL)
    assert run.wait(30) == "error"
    assert "SIGKILL" in run.message and "carry on" in run.message, run.message
    assert run.snapshot().state == "error"
    pool.recycle_after = 1                                            # and is itself replaced after one run
    try:
        after = pool.submit(_spec(digits, 10), owner="c")            # a fresh worker takes the next run
        assert after.wait(120) == "done", after.message
    finally:
        pool.recycle_after = 0
    assert after.worker_pid != pid
    # (recycling is decided before the run's end is announced: resetting recycle_after above once
    # raced the reader thread under load, and the replacement went uncounted)
    _until(lambda: pool.status()["replaced"] >= 2, 120, "the recycled worker's replacement")


def test_queue_places_estimates_and_order(pool, digits):
    first = pool.submit(_spec(digits, LONG), owner="d")
    second = pool.submit(_spec(digits, 10, seed=1), owner="d")
    third = pool.submit(_spec(digits, 10, seed=2), owner="e")
    assert (second.queue_place, third.queue_place) == (1, 2)
    _until(lambda: first.state == "running" and first.step >= 10, what="a speed to estimate from")
    s2, s3 = second.snapshot(), third.snapshot()
    assert s2.state == "queued" and "1st in line" in s2.message and "2nd in line" in s3.message
    assert s2.wait_s is not None and s3.wait_s is not None and s3.wait_s > s2.wait_s   # first's ETA, then + second
    first.stop()
    assert second.wait(120) == "done" and third.wait(120) == "done"
    assert first.ended_at <= second.started_at <= second.ended_at <= third.started_at
    assert second.snapshot().queue_place is None


def test_a_timed_run_is_estimated_by_its_budget_and_steps_on_after_it(pool, digits):
    """A run with a time budget (lesson 13's: ``max_seconds``, its steps only a ceiling) tells the run
    queued behind it the budget's time left, not the ceiling's hours; ended on its budget, Step trains
    one step more and ends there (it does not train on towards the ceiling)."""
    torch.manual_seed(0)
    cfg = genlib.TrainConfig(steps=LONG, seed=0, log_every=5, sample_every=10, threads=1, max_seconds=2.0)
    first = pool.submit(RunSpec.new(genlib.make_model("vae", digits), digits, cfg, ref=DataRef("digits")), owner="t")
    second = pool.submit(_spec(digits, 10, seed=1), owner="u")
    _until(lambda: first.state == "running" and first.step >= 10, what="a speed to estimate from")
    wait = second.snapshot().wait_s
    assert wait is not None and wait < 10
    assert first.wait(120) == "done" and second.wait(120) == "done"
    at = first.step
    assert 10 < at < LONG
    first.step_once()
    assert first.wait(120) == "done" and first.step == at + 1


def _ballast():
    """A metric_fn factory whose metric holds 400 MB (for the memory limit test)."""
    held = []

    def metric(model):
        if not held:
            held.append(torch.ones(100 * 2**20))                  # 400 MB, touched
        return {"ballast": 1.0}
    return metric


@pytest.mark.hostile(4)
def test_limits_refuse_with_a_reason(pool, digits):
    pool.max_runs_per_owner, pool.run_memory_mb = 1, 150
    try:
        busy = pool.submit(_spec(digits, LONG), owner="f")
        with pytest.raises(PoolLimitError, match="most one session may have at once on this server is 1"):
            pool.submit(_spec(digits, 10), owner="f")
        with pytest.raises(PoolLimitError, match=r"needs about 1,000 MB .* over the 150 MB per run"):
            pool.submit(_spec(digits, 10, memory_mb=1000), owner="g")
        busy.stop()
        assert busy.wait(120) == "stopped"         # bounds, not speeds: a spawned worker imports torch first
        # a run that declares little but uses more is stopped by the watch, with the reason
        spec = _spec(digits, LONG, memory_mb=10)
        spec.config = genlib.TrainConfig(**{**spec.config.__dict__, "metric_every": 5})
        spec.metric = _ballast
        hog = pool.submit(spec, owner="f")
        assert hog.wait(120) == "error"
        assert "over the 150 MB per run" in hog.message, hog.message
        ok = pool.submit(_spec(digits, 10), owner="f")               # the owner's slot is free again
        assert ok.wait(120) == "done", ok.message
    finally:
        pool.max_runs_per_owner, pool.run_memory_mb = 0, None


def test_workers_leave_when_the_server_is_killed(tmp_path):
    """A server killed without closing its pool (SIGKILL, OOM) leaves no worker training for nobody."""
    script = tmp_path / "server.py"
    script.write_text(
        "import sys, time, genlib\n"
        "from genlib.train.pool import Pool, RunSpec, DataRef\n"
        "if __name__ == '__main__':\n"
        "    data = genlib.load_dataset('digits')\n"
        "    pool = Pool(1)\n"
        "    m = genlib.make_model('vae', data)\n"
        "    run = pool.submit(RunSpec.new(m, data, genlib.TrainConfig(steps=10**6, threads=1), ref=DataRef('digits')))\n"
        "    while run.step == 0:\n"
        "        time.sleep(0.05)\n"
        "    print(run.worker_pid, flush=True)\n"
        "    time.sleep(600)\n")
    import subprocess
    import sys
    from pathlib import Path
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "OMP_NUM_THREADS": "1"}
    server = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        worker = int(server.stdout.readline())
    finally:
        server.kill()
        server.wait()
    _until(lambda: not os.path.exists(f"/proc/{worker}") or open(f"/proc/{worker}/stat").read().split()[2] == "Z",
           30, "the orphaned worker to exit")
