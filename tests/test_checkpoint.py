"""genlib.checkpoint and genlib.files: the one checkpoint format and the one safe reader, against
hostile files (code-executing pickles, corrupt, truncated, foreign, mismatched, oversized) that must
be refused with a one-line CheckpointError; plus the writer and the reader's other kinds."""
from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from genlib.checkpoint import FORMAT, CheckpointError, load_checkpoint, save_checkpoint
from genlib.files import FileFormatError, atomic_save, read_versioned
from genlib.models import make_model
from genlib.train import TrainConfig, Trainer


@pytest.fixture(scope="module")
def good_ckpt(tmp_path_factory, digits):
    torch.manual_seed(0)
    model = make_model("dcgan", digits)
    trainer = Trainer(model, digits, TrainConfig(steps=3, log_every=1, sample_every=3))
    trainer.run()
    path = tmp_path_factory.mktemp("ckpt") / "good.pt"
    save_checkpoint(path, model, trainer)
    return path


def _payload(path: Path) -> dict:
    return torch.load(path, weights_only=True)


class _Payload:
    """Runs code when unpickled: creates the marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.mark.hostile
@pytest.mark.parametrize("suffix", [".pt", ".pkl"])
def test_code_executing_pickle_is_refused_and_runs_nothing(tmp_path, suffix):
    marker = tmp_path / "pwned"
    path = tmp_path / f"evil{suffix}"
    if suffix == ".pt":
        torch.save({"format": FORMAT, "version": 1, "x": _Payload(marker)}, path)
    else:
        path.write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(path)
    assert not marker.exists(), "the payload ran"
    # the payload is real: an unrestricted load would have run it
    if suffix == ".pt":
        torch.load(path, weights_only=False)
    else:
        pickle.loads(path.read_bytes())
    assert marker.exists()


@pytest.mark.hostile
@pytest.mark.parametrize("what, make", [
    ("truncated checkpoint", lambda b: b[: len(b) // 2]),
    ("random bytes", lambda b: np.random.default_rng(0).bytes(5000)),
    ("empty file", lambda b: b""),
    ("four bytes", lambda b: b"junk"),          # struct.error inside torch.load: was an 'internal error'
    ("a text file", lambda b: b"hello, I am not a checkpoint\n"),
])
def test_corrupt_files_give_a_clear_error(tmp_path, good_ckpt, what, make):
    path = tmp_path / "bad.pt"
    path.write_bytes(make(good_ckpt.read_bytes()))
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(path)


def _edited(tmp_path: Path, good: Path, edit) -> Path:
    payload = _payload(good)
    edit(payload)
    path = tmp_path / "edited.pt"
    torch.save(payload, path)
    return path


@pytest.mark.hostile
@pytest.mark.parametrize("what, edit, match", [
    ("foreign torch file", lambda p: p.pop("format"), "not a genlib checkpoint"),
    ("future format version", lambda p: p.update(version=99), "version 99"),
    ("unknown family", lambda p: p.update(family="diffusion"), "unknown model family"),
    ("other family's config", lambda p: p.update(family="vae"), "invalid vae config"),
    ("unknown config field", lambda p: p["config"].update(colour="red"), "unknown GANConfig field.*colour"),
    ("missing config field", lambda p: p["config"].pop("latent_dim"), "missing: latent_dim"),
    ("out-of-range config value", lambda p: p["config"].update(n_critic=0), "n_critic"),
    ("weights of another architecture", lambda p: p["config"].update(arch="mlp"), "weights do not match"),
    ("weights of another size", lambda p: p["config"].update(width=16), "weights do not match"),
    ("weights that are a list", lambda p: p.update(model=[1]), "weights do not match"),
    ("optimiser state of the wrong type", lambda p: p.update(optimizers={"opt_g": [1]}), "weights do not match"),
    ("steps that are text", lambda p: p.update(steps="x"), "malformed"),
    ("samples that are numbers", lambda p: p.update(samples=[1]), "malformed"),
    ("samples that are not tensors", lambda p: p.update(samples=[{"step": 1, "images": "x"}]), "malformed"),
])
def test_mismatched_checkpoints_give_a_clear_error(tmp_path, good_ckpt, what, edit, match):
    path = _edited(tmp_path, good_ckpt, edit)
    with pytest.raises(CheckpointError, match=match):
        load_checkpoint(path)


@pytest.mark.hostile
def test_a_list_instead_of_a_checkpoint(tmp_path):
    path = tmp_path / "list.pt"
    torch.save([1, 2, 3], path)
    with pytest.raises(CheckpointError, match="not a genlib"):
        load_checkpoint(path)


@pytest.mark.hostile
@pytest.mark.parametrize("source", ["file", "upload"])
def test_size_limit(good_ckpt, source):
    with pytest.raises(CheckpointError, match="over the"):
        load_checkpoint(good_ckpt if source == "file" else io.BytesIO(good_ckpt.read_bytes()), max_bytes=1000)


def test_bytes_upload_loads(good_ckpt):
    assert load_checkpoint(good_ckpt.read_bytes()).model.family == "gan"


def test_atomic_save_leaves_only_the_file(tmp_path):
    path = tmp_path / "sub" / "x.pt"          # the folder is created
    atomic_save({"format": "genlib-test", "version": 1}, path)
    atomic_save({"format": "genlib-test", "version": 1, "again": True}, path)
    assert sorted(p.name for p in path.parent.iterdir()) == ["x.pt"]
    assert read_versioned(path, "genlib-test", 1)["again"] is True


@pytest.mark.hostile
@pytest.mark.parametrize("what, payload, match", [
    ("a checkpoint where a classifier is expected", {"format": FORMAT, "version": 1}, "not a genlib classifier"),
    ("a classifier of a future version", {"format": "genlib-classifier", "version": 7},
     "classifier version 7 is not supported"),
])
def test_the_reader_names_the_kind_it_expected(tmp_path, what, payload, match):
    path = tmp_path / "c.pt"
    torch.save(payload, path)
    with pytest.raises(FileFormatError, match=match):
        read_versioned(path, "genlib-classifier", 1, kind="classifier")


# --- the recorded run (the save side) -------------------------------------------------------------

def test_recorded_run_round_trips_through_a_plain_tensors_file(tmp_path, digits):
    """Curves (with gradient norms), metrics and grids, each with step and training-seconds axes,
    saved and read back through torch.load(weights_only=True) unchanged."""
    from genlib.train import RecordedRun

    torch.manual_seed(0)
    model = make_model("gan", digits, hidden=(32,), latent_dim=4)
    trainer = Trainer(model, digits, TrainConfig(steps=40, batch_size=16, log_every=4, sample_every=10, n_fixed=8,
                                                 metric_every=10, metric_at_start=True),
                      metric_fn=lambda m: {"steps_seen": float(m.steps)})
    trainer.run()
    path = tmp_path / "run.pt"
    save_checkpoint(path, model, trainer)
    raw = torch.load(path, weights_only=True)                   # plain data only
    assert raw["recorded_run"]["version"] == 1 and isinstance(raw["recorded_run"]["seconds"], list)
    run, mine = load_checkpoint(path).recorded_run, trainer.recorded_run()
    assert isinstance(run, RecordedRun)
    assert run.steps == mine.steps == list(range(4, 41, 4))
    assert run.curves.keys() == mine.curves.keys() >= {"g_grad_norm", "d_grad_norm", "d_loss", "g_loss"}
    for k, v in mine.curves.items():
        assert run.curves[k] == pytest.approx(v), k
    assert run.seconds == pytest.approx(mine.seconds, abs=1e-3) and run.seconds == sorted(run.seconds)
    assert run.metric_steps == [0, 10, 20, 30, 40] and run.metrics == {"steps_seen": [0.0, 10.0, 20.0, 30.0, 40.0]}
    assert run.metric_seconds[0] == 0 and len(run.metric_seconds) == 5
    assert [s for s, _ in run.samples] == [0, 10, 20, 30, 40] and len(run.sample_seconds) == 5
    assert all(torch.equal(a, b) for (_, a), (_, b) in zip(run.samples, mine.samples))
    assert run.samples[-1][1].dtype == torch.uint8
    assert (run.batch_size, run.total_steps) == (16, 40)
    assert run.total_seconds == pytest.approx(trainer.elapsed, abs=1e-3)
    assert run.history() == load_checkpoint(path).history       # one copy of the curves in the file


def test_a_long_run_is_stored_bounded(tmp_path):
    """20,000 logged points (the trainer keeps up to 2,000 per curve): the file keeps at most
    RECORDED_POINTS, the last point still at the last step."""
    from genlib.train import RECORDED_POINTS
    from test_trainer import _Tiny

    data = __import__("genlib").load_dataset("ring", n=64)
    trainer = Trainer(_Tiny(), data, TrainConfig(steps=20_000, batch_size=8, log_every=1, sample_every=5_000,
                                                 history_points=1000))
    trainer.run()
    assert len(trainer.snapshot().history["step"]) > RECORDED_POINTS
    buf = io.BytesIO()
    save_checkpoint(buf, trainer.model, trainer)
    raw = torch.load(io.BytesIO(buf.getvalue()), weights_only=True)
    assert all(len(v) <= RECORDED_POINTS for v in raw["history"].values())
    assert len(raw["recorded_run"]["seconds"]) == len(raw["history"]["step"])
    assert raw["history"]["step"][-1] == 20_000
    extra = io.BytesIO()
    torch.save({"history": raw["history"], "recorded_run": raw["recorded_run"]}, extra)
    assert extra.tell() < 40_000, f"{extra.tell()} bytes for 2 curves of <= 500 points and their axes"


def test_a_checkpoint_saved_before_recorded_runs_loads_with_none(tmp_path, good_ckpt):
    """Files written before recorded runs (no 'recorded_run' key, as every shipped file built before
    it) load as before, with recorded_run None; so do files saved without a trainer."""
    path = _edited(tmp_path, good_ckpt, lambda p: p.pop("recorded_run"))
    ck = load_checkpoint(path)
    assert ck.recorded_run is None and ck.history["step"] and ck.samples
    from genlib.train import overlay
    new = load_checkpoint(good_ckpt)
    o = overlay({"old": ck, "new": new}, "d_loss")              # an old file still overlays by step
    assert o.series["old"] == o.series["new"] == (new.history["step"], new.history["d_loss"])
    with pytest.raises(ValueError, match="no training-seconds axis"):
        overlay({"old": ck}, "d_loss", x="seconds")
    buf = io.BytesIO()
    save_checkpoint(buf, ck.model)
    assert load_checkpoint(buf.getvalue()).recorded_run is None


@pytest.mark.hostile
@pytest.mark.parametrize("what, edit, match", [
    ("a recorded run that is a list", lambda p: p.update(recorded_run=[1]), "not a dict"),
    ("a future recorded-run version", lambda p: p["recorded_run"].update(version=9), "version 9"),
    ("seconds that are text", lambda p: p["recorded_run"].update(seconds="x"), "seconds"),
    ("seconds of another length", lambda p: p["recorded_run"].update(seconds=[1.0]), "seconds has 1 points"),
    ("a curve of another length", lambda p: p["history"].update(d_loss=[1.0]), "another length"),
    ("a curve of strings", lambda p: p["history"].update(d_loss=["a"] * len(p["history"]["step"])), "numbers"),
])
def test_malformed_recorded_runs_give_a_clear_error(tmp_path, good_ckpt, what, edit, match):
    path = _edited(tmp_path, good_ckpt, edit)
    with pytest.raises(CheckpointError, match=f"malformed.*{match}"):
        load_checkpoint(path)
