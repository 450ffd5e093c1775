"""Hostile files, bad input, divergence and long runs against genlib and its CLI.

Every test that feeds a bad input is marked ``hostile``; conftest tallies them from pytest's reports and
the run ends with a line "robustness: N bad inputs tried, M handled, F failed".
"""
from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import genlib
from genlib.checkpoint import FORMAT, CheckpointError, load_checkpoint, save_checkpoint
from genlib.cli import main as cli_main
from genlib.data import load_dataset
from genlib.models import GenerativeModel, make_model
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


# --- checkpoints -------------------------------------------------------------------------------

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


@pytest.mark.hostile
@pytest.mark.parametrize("argv, what", [
    (["info", "{missing}"], "CLI: missing checkpoint"),
    (["info", "{bad}"], "CLI: corrupt checkpoint"),
    (["sample", "--checkpoint", "{good}", "--n", "4", "--out", "{tmp}/x.txt"], "CLI: unknown output type"),
    (["sample", "--checkpoint", "{good}", "--n", "0", "--out", "{tmp}/x.npz"], "CLI: n = 0"),
    (["sample", "--checkpoint", "{good}", "--labels", "8", "--out", "{tmp}/x.npz"], "CLI: labels, unconditional model"),
    (["train", "--model", "gan", "--set", "bogus=1"], "CLI: unknown setting"),
    (["train", "--model", "gan", "--set", "lr_g=fast"], "CLI: badly typed setting"),
    (["train", "--model", "gan", "--set", "lr_g=-1", "--steps", "1"], "CLI: negative lr"),
    (["train", "--model", "gan", "--set", "lr_g"], "CLI: --set without ="),
    (["train", "--steps", "0"], "CLI: zero steps"),
    (["train", "--batch-size", "0"], "CLI: zero batch"),
    (["train", "--model", "diffusion"], "CLI: unknown model"),
    (["train", "--dataset", "mnist", "--data-dir", "{tmp}/empty", "--no-download", "--steps", "1"], "CLI: data missing offline"),
    (["train", "--model", "dcgan", "--dataset", "ring", "--steps", "1"], "CLI: conv on 2-D points"),
    (["frobnicate"], "CLI: unknown command"),
    ([], "CLI: no command"),
])
def test_cli_bad_arguments_exit_nonzero_with_one_line(tmp_path, good_ckpt, capsys, argv, what):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"junk")
    (tmp_path / "empty").mkdir()
    argv = [a.format(missing=tmp_path / "nope.pt", bad=bad, good=good_ckpt, tmp=tmp_path) for a in argv]
    with pytest.raises(SystemExit, match="^[1-9]"):   # a non-zero exit code
        code = cli_main(argv)
        raise SystemExit(code)   # argparse exits itself; our own errors return a code
    err = capsys.readouterr().err.strip().splitlines()
    errors = [i for i, line in enumerate(err) if line.startswith("error: ")]
    assert len(errors) == 1, err
    # one line, except the missing-data message, which also says where to put the files
    assert len(err) - errors[0] == (3 if "data missing" in what else 1), err
    assert not any("Traceback" in line for line in err)
    assert not list(tmp_path.glob("x.*")), "a failed command left an output file"


# --- hyperparameters ---------------------------------------------------------------------------

@pytest.mark.hostile
@pytest.mark.parametrize("field, value", [("steps", 0), ("batch_size", 0), ("log_every", 0),
                                          ("n_fixed", 0), ("metric_every", -1)])
def test_out_of_range_train_config_is_rejected(field, value):
    with pytest.raises(ValueError, match=rf"^{field}="):
        TrainConfig(**{field: value})


# --- divergence --------------------------------------------------------------------------------

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
    assert all(np.isfinite(v) for v in trainer.losses.values())


# --- long runs ---------------------------------------------------------------------------------

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
                      max_snapshots=20)
    trainer = Trainer(_Tiny(), data, cfg)
    assert trainer.run() == "done"
    snap = trainer.snapshot()
    assert len(snap.history["step"]) < 2 * 200 and len(snap.history["loss"]) == len(snap.history["step"])
    assert len(snap.samples) <= 20
    assert snap.history["step"][-1] > 99_000 and snap.samples[-1][0] == 100_000
