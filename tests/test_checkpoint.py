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
