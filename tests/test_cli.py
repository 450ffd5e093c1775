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


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


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


@pytest.mark.parametrize("argv,needle", [
    (["train", "--steps", "1", "--set", "bogus=1"], "bogus"),
    (["train", "--steps", "1", "--set", "latent_dim=abc"], "latent_dim"),
    (["train", "--steps", "1", "--set", "hidden=64,x"], "hidden"),
    (["train", "--steps", "1", "--set", "skip=maybe"], "skip"),
    (["train", "--steps", "1", "--set", "lr=-1"], "lr"),
    (["train", "--steps", "1", "--model", "gan", "--set", "beta=1"], "beta"),   # a VAE field on a GAN
    (["train", "--steps", "1", "--set", "latent_dim"], "key=value"),
    (["sample", "--checkpoint", "does/not/exist.pt", "--out", "x.npz"], "no such file"),
    (["info", "does/not/exist.pt"], "no such file"),
])
def test_bad_arguments_give_one_error_line(argv, needle, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) != 0
    line = one_error_line(capsys.readouterr().err)
    assert needle in line
    assert not (tmp_path / "runs").exists()


def test_bad_sample_requests(checkpoints, tmp_path, capsys):
    cases = [
        (["--checkpoint", str(checkpoints["vae"]), "--out", str(tmp_path / "s.txt")], ".npz or .png"),
        (["--checkpoint", str(checkpoints["gan"]), "--labels", "8", "--out", str(tmp_path / "s.npz")], "conditional"),
        (["--checkpoint", str(checkpoints["cgan"]), "--labels", "12", "--out", str(tmp_path / "s.npz")], "labels"),
        (["--checkpoint", str(checkpoints["cgan"]), "--labels", "x", "--out", str(tmp_path / "s.npz")], "--labels"),
        (["--checkpoint", str(checkpoints["vae"]), "--n", "0", "--out", str(tmp_path / "s.npz")], "--n"),
    ]
    for args, needle in cases:
        capsys.readouterr()
        assert main(["sample", *args]) != 0, args
        assert needle in one_error_line(capsys.readouterr().err), args
    assert not list(tmp_path.glob("s.*"))


def test_not_a_checkpoint(tmp_path, capsys):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    assert main(["info", str(junk)]) != 0
    assert "junk.pt" in one_error_line(capsys.readouterr().err)


def test_argparse_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "--model", "diffusion"])
    assert e.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


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
