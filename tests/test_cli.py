"""The command line, run in-process through genlib.cli.main (plus one real subprocess smoke test):
train every preset for a few steps on the digits into tmp_path, sample, inspect, and bad arguments."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import genlib
from genlib.cli import main
from genlib.models import PRESETS

REPO = Path(__file__).resolve().parents[1]
CONDITIONAL = {p for p, preset in PRESETS.items() if preset.overrides.get("conditional")}


def train(ckpt: Path, preset: str, *extra: str, steps: int = 2) -> int:
    return main(["train", "--model", preset, "--dataset", "digits", "--steps", str(steps), "--batch-size", "16",
                 "--log-every", "1", "--seed", "0", "--device", "cpu", "--out", str(ckpt), *extra])


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    """One 2-step checkpoint per preset, trained once for the whole module."""
    folder = tmp_path_factory.mktemp("ckpt")
    out = {}
    for preset in PRESETS:
        path = folder / f"{preset}.pt"
        assert train(path, preset, "--quiet") == 0
        out[preset] = path
    return out


# ---------------------------------------------------------------------------------------------
# train / sample / info for every preset


def test_train_reports_progress(tmp_path, capsys):
    path = tmp_path / "runs" / "vae.pt"   # the folder is created
    assert train(path, "vae", "--set", "latent_dim=2", "--set", "hidden=16", steps=3) == 0
    err = capsys.readouterr().err
    assert "training vae on digits" in err and "step      3/3" in err and "done at step 3" in err
    assert f"saved {path}" in err
    ck = genlib.load_checkpoint(path)
    assert ck.model.steps == 3 and ck.model.config.latent_dim == 2 and ck.model.config.hidden == (16,)
    assert ck.history["step"] == [1, 2, 3]


@pytest.mark.parametrize("preset", list(PRESETS))
def test_every_preset_trains_and_samples(preset, checkpoints, tmp_path, capsys):
    ck = genlib.load_checkpoint(checkpoints[preset])
    assert ck.model.steps == 2 and ck.card["preset"] == preset and ck.card["dataset"] == "digits"

    npz = tmp_path / "s.npz"
    assert main(["sample", "--checkpoint", str(checkpoints[preset]), "--n", "12", "--out", str(npz)]) == 0
    with np.load(npz) as f:
        arrays = dict(f)
    assert arrays["x"].dtype == np.uint8 and arrays["x"].shape == (12, 8, 8)
    if preset in CONDITIONAL:
        assert arrays["y"].dtype == np.int64 and arrays["y"].tolist() == [i % 10 for i in range(12)]
    else:
        assert set(arrays) == {"x"}

    png = tmp_path / "grid.png"
    assert main(["sample", "--checkpoint", str(checkpoints[preset]), "--n", "9", "--out", str(png)]) == 0
    with Image.open(png) as im:
        assert im.size == (3 * 9 + 1, 3 * 9 + 1)   # 3x3 grid of 8x8 with 1-pixel padding

    capsys.readouterr()
    assert main(["info", str(checkpoints[preset])]) == 0
    info = json.loads(capsys.readouterr().out)
    card = info["card"]
    for key in ("family", "steps", "parameters", "torch", "python", "created", "dataset", "split", "images",
                "epochs", "wall_time_s", "device", "seed", "batch_size", "preset", "command"):
        assert key in card, key
    assert card["family"] == PRESETS[preset].family and card["steps"] == 2 and card["preset"] == preset
    assert card["command"].startswith("python -m genlib train --model " + preset)
    assert info["steps"] == 2 and info["train_config"]["steps"] == 2
    assert info["config"]["data_shape"] == [1, 8, 8]
    assert info["samples_along_training"] == [0, 2]
    assert set(info["final_losses"]) >= ({"loss", "neg_elbo"} if PRESETS[preset].family == "vae" else {"d_loss", "g_loss"})


def test_sample_is_reproducible_by_seed(checkpoints, tmp_path):
    paths = [tmp_path / f"{i}.npz" for i in range(3)]
    for path, seed in zip(paths, ("1", "1", "2")):
        assert main(["sample", "--checkpoint", str(checkpoints["gan"]), "--n", "8", "--seed", seed,
                     "--out", str(path)]) == 0
    a, b, c = (np.load(p)["x"] for p in paths)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_cgan_labels(checkpoints, tmp_path):
    out = tmp_path / "eights.npz"
    assert main(["sample", "--checkpoint", str(checkpoints["cgan"]), "--labels", "8", "--n", "10",
                 "--out", str(out)]) == 0
    y = np.load(out)["y"]
    assert y.shape == (10,) and (y == 8).all()
    assert main(["sample", "--checkpoint", str(checkpoints["cvae"]), "--labels", "2,5", "--n", "5",
                 "--out", str(out)]) == 0
    assert np.load(out)["y"].tolist() == [2, 5, 2, 5, 2]


def test_toy_points_to_npz(tmp_path):
    ckpt = tmp_path / "ring.pt"
    assert main(["train", "--model", "gan", "--dataset", "ring", "--steps", "2", "--batch-size", "16",
                 "--quiet", "--out", str(ckpt)]) == 0
    out = tmp_path / "points.npz"
    assert main(["sample", "--checkpoint", str(ckpt), "--n", "5", "--out", str(out)]) == 0
    x = np.load(out)["x"]
    assert x.dtype == np.float32 and x.shape == (5, 2)


# ---------------------------------------------------------------------------------------------
# Bad arguments: one line, non-zero, no traceback


@pytest.mark.hostile
@pytest.mark.parametrize("argv, needle", [
    (["info", "{missing}"], "nope.pt: no such file"),
    (["info", "{bad}"], "bad.pt: not a readable checkpoint (corrupt"),
    (["sample", "--checkpoint", "{missing}", "--out", "{tmp}/x.npz"], "no such file"),
    (["sample", "--checkpoint", "{vae}", "--n", "4", "--out", "{tmp}/x.txt"], ".npz or .png"),
    (["sample", "--checkpoint", "{vae}", "--n", "0", "--out", "{tmp}/x.npz"], "--n"),
    (["sample", "--checkpoint", "{gan}", "--labels", "8", "--out", "{tmp}/x.npz"], "conditional"),
    (["sample", "--checkpoint", "{cgan}", "--labels", "12", "--out", "{tmp}/x.npz"], "labels"),
    (["sample", "--checkpoint", "{cgan}", "--labels", "x", "--out", "{tmp}/x.npz"], "--labels"),
    (["train", "--model", "gan", "--set", "bogus=1"], "bogus"),
    (["train", "--steps", "1", "--model", "gan", "--set", "beta=1"], "beta"),      # a VAE field on a GAN
    (["train", "--model", "gan", "--set", "lr_g=fast"], "lr_g"),
    (["train", "--steps", "1", "--set", "latent_dim=abc"], "latent_dim"),
    (["train", "--steps", "1", "--set", "hidden=64,x"], "hidden"),
    (["train", "--steps", "1", "--set", "skip=maybe"], "skip"),
    (["train", "--model", "gan", "--set", "lr_g=-1", "--steps", "1"], "lr_g"),
    (["train", "--model", "gan", "--set", "lr_g"], "key=value"),
    (["train", "--steps", "0"], "--steps"),
    (["train", "--batch-size", "0"], "--batch-size"),
    (["train", "--model", "diffusion"], "invalid choice"),
    (["train", "--dataset", "mnist", "--data-dir", "{tmp}/empty", "--no-download", "--steps", "1"], "not found"),
    (["train", "--model", "dcgan", "--dataset", "ring", "--steps", "1"], "arch"),   # conv on 2-D points
    (["frobnicate"], "invalid choice"),
    ([], "required"),
])
def test_bad_arguments_exit_2_with_one_error_line(argv, needle, checkpoints, tmp_path, capsys, monkeypatch):
    """Exit code 2 (argparse's own errors and genlib's alike), one 'error: ' line and nothing after it
    (the missing-data message adds two lines on where to put the files), no traceback, no output."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.pt").write_bytes(b"junk")
    (tmp_path / "empty").mkdir()
    argv = [a.format(missing=tmp_path / "nope.pt", bad=tmp_path / "bad.pt", tmp=tmp_path,
                     **{k.replace("-", "_"): v for k, v in checkpoints.items()}) for a in argv]
    try:
        code = main(argv)
    except SystemExit as e:      # argparse exits itself; genlib's own errors return the code
        code = e.code
    assert code == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == (3 if "--no-download" in argv else 1), err
    assert lines[0].startswith("error: ") and needle in lines[0], err
    assert "Traceback" not in err
    assert not list(tmp_path.glob("x.*")), "a failed command left an output file"
    assert not (tmp_path / "runs").exists()


def test_module_help_subprocess():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    r = subprocess.run([sys.executable, "-m", "genlib", "--help"], cwd=REPO, env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0 and "train" in r.stdout and "sample" in r.stdout and "info" in r.stdout


# ---------------------------------------------------------------------------------------------
# Real MNIST from the shared folder


@pytest.mark.parametrize("preset", ["dcgan", "vae"])
def test_train_on_shared_mnist(preset, shared_data, tmp_path, capsys):
    ckpt = tmp_path / f"{preset}.pt"
    code = main(["train", "--model", preset, "--dataset", "mnist", "--data-dir", str(shared_data), "--no-download",
                 "--steps", "2", "--batch-size", "8", "--log-every", "1", "--out", str(ckpt)])
    assert code == 0, capsys.readouterr().err
    ck = genlib.load_checkpoint(ckpt)
    assert ck.card["dataset"] == "mnist" and ck.model.config.data_shape == (1, 28, 28) and ck.model.steps == 2
    assert ck.samples[-1][1].shape == (64, 1, 28, 28) and ck.samples[-1][1].dtype == torch.uint8
    out = tmp_path / "s.npz"
    assert main(["sample", "--checkpoint", str(ckpt), "--n", "4", "--out", str(out)]) == 0
    assert np.load(out)["x"].shape == (4, 28, 28)
