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
    assert set(info["final_losses"]) >= {"vae": {"loss", "neg_elbo"}, "gan": {"d_loss", "g_loss"},
                                         "flow": {"loss", "grad_norm"}}[PRESETS[preset].family]


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


# ---------------------------------------------------------------------------------------------
# issue 16: outputs checked before training, counts bounded, signals, temporary files, NaN outputs


def _run(argv: list[str], capsys) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    return code, capsys.readouterr().err


def _one_error_line(err: str, needle: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], err
    assert "Traceback" not in err and "internal" not in err


@pytest.mark.hostile
@pytest.mark.parametrize("what, out, needle", [
    ("a folder", "{tmp}/folder", "is a folder"),
    ("a folder named like a checkpoint", "{tmp}/folder.pt", "is a folder"),
    ("a path under a file", "{tmp}/afile/x.pt", "is a file, not a folder"),
    ("a folder nobody can write (even root)", "/proc/genlib-test.pt", "cannot write"),
    ("another suffix", "{tmp}/x.txt", "must end in .pt"),
])
def test_train_checks_its_output_before_training(tmp_path, capsys, what, out, needle):
    """Refused before the data is loaded or a step is trained: no 'training' line, no .tmp left."""
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder.pt").mkdir()
    (tmp_path / "afile").write_text("x")
    code, err = _run(["train", "--model", "gan", "--steps", "100000", "--out", out.format(tmp=tmp_path)], capsys)
    assert code == 2
    _one_error_line(err, needle)
    assert not list(tmp_path.rglob("*.tmp"))


@pytest.mark.hostile
@pytest.mark.parametrize("argv, needle", [
    (["sample", "--checkpoint", "{vae}", "--n", "1000000000", "--out", "{tmp}/x.npz"],
     "--n must be between 1 and 10000"),
    (["sample", "--checkpoint", "{vae}", "--n", "4", "--seed", "-1", "--out", "{tmp}/x.npz"], "--seed"),
    (["sample", "--checkpoint", "{vae}", "--n", "4", "--out", "{tmp}"], "is a folder"),
    (["sample", "--checkpoint", "{vae}", "--n", "4", "--out", "{tmp}/afile/x.png"], "not a folder"),
    (["sample", "--checkpoint", "{cgan}", "--n", "4", "--labels", "100000000000000000000000", "--out", "{tmp}/x.npz"],
     "--labels"),
    (["sample", "--checkpoint", "{cgan}", "--n", "2", "--labels", "1,2,3", "--out", "{tmp}/x.npz"], "--labels"),
    (["sample", "--checkpoint", "{vae}", "--n", "4", "--device", "bogus", "--out", "{tmp}/x.npz"], "--device"),
    (["evaluate", "{vae}", "--n", "1000000000"], "--n must be between 1 and 50000"),
    (["evaluate", "{vae}", "--n", "0"], "--n"),
    (["compare", "{vae}", "--n", "10", "--out", "{tmp}"], "is a folder"),
    (["compare", "{vae}", "--n", "99999999", "--out", "{tmp}/t.csv"], "--n"),
    (["train", "--steps", "1000000000000"], "--steps must be between"),
    (["train", "--epochs", "1e9"], "--epochs must be between"),
    (["train", "--epochs", "nan"], "--steps / --epochs must be positive"),
    (["train", "--batch-size", "10000000"], "--batch-size must be between"),
    (["train", "--seed", "-5"], "--seed"),
    (["train", "--threads", "100000"], "--threads"),
    (["train", "--log-every", "0"], "--log-every"),
    (["train", "--device", "bogus:7", "--steps", "1"], "--device"),
    (["train", "--set", "data_shape=1,99999,99999", "--steps", "1"], "set from the dataset"),
    (["train", "--set", "num_classes=100000", "--steps", "1"], "set from the dataset"),
    (["train", "--model", "gan", "--set", "hidden=100000,100000", "--steps", "1"], "over the ceiling"),
    (["train", "--set", "latent_dim=1000000000", "--steps", "1"], "latent_dim"),
    (["train", "--model", "gan", "--set", "lr_g=nan", "--steps", "1"], "finite"),
    (["train", "--set", "hidden=" + ",".join(["8"] * 40), "--steps", "1"], "layers"),
])
def test_every_count_and_output_is_bounded(argv, needle, checkpoints, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("x")
    argv = [a.format(tmp=tmp_path, **{k.replace("-", "_"): v for k, v in checkpoints.items()}) for a in argv]
    code, err = _run(argv, capsys)
    assert code == 2
    _one_error_line(err, needle)
    assert not list(tmp_path.glob("x.*")) and not (tmp_path / "runs").exists()


def _crafted(tmp_path: Path, source: Path, edit) -> Path:
    payload = torch.load(source, weights_only=True)
    edit(payload)
    path = tmp_path / "crafted.pt"
    torch.save(payload, path)
    return path


def _overflowing(p: dict) -> None:
    """Finite weights of +-1e30: the second layer sums +inf and -inf, so every output is NaN."""
    g = torch.Generator().manual_seed(0)
    for k, w in p["model"].items():
        if w.dtype.is_floating_point:
            w.copy_(torch.where(torch.randn(w.shape, generator=g) > 0, 1e30, -1e30))
    p["optimizers"] = {}


@pytest.mark.hostile
@pytest.mark.parametrize("what, edit, argv, needle", [
    ("NaN weights", lambda p: next(iter(p["model"].values())).view(-1)[0:3].fill_(float("nan")),
     ["sample", "--n", "4", "--out", "{tmp}/x.png"], "non-finite weights"),
    ("weights whose outputs overflow to NaN", _overflowing, ["sample", "--n", "4", "--out", "{tmp}/x.png"],
     "NaN or Inf"),
    ("weights whose outputs overflow, evaluated", _overflowing, ["evaluate", "--n", "10"], "NaN or Inf"),
    ("a 10-billion-parameter config", lambda p: p["config"].update(hidden=[100_000, 100_000]),
     ["info"], "over the ceiling"),
])
def test_non_finite_and_huge_checkpoints_are_one_line_errors(tmp_path, checkpoints, capsys, what, edit, argv, needle):
    """Never an all-black grid with exit 0, never 'internal error', nothing written."""
    path = _crafted(tmp_path, checkpoints["vae"], edit)
    argv = [argv[0], *(["--checkpoint"] if argv[0] == "sample" else []), str(path)] + \
        [a.format(tmp=tmp_path) for a in argv[1:]]
    code, err = _run(argv, capsys)
    assert code == 2
    _one_error_line(err, needle)
    assert not list(tmp_path.glob("x.*")) and not list(tmp_path.glob("*.tmp"))


def test_info_notes_dropped_card_fields(tmp_path, checkpoints, capsys):
    path = _crafted(tmp_path, checkpoints["gan"], lambda p: p["card"].update(epochs="many"))
    code, err = _run(["info", str(path)], capsys)
    assert code == 0 and "note: card field 'epochs' was str" in err


def _dead_pid() -> int:
    pid = 999_999
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            pass
        pid -= 1


@pytest.mark.hostile(2)
def test_sigterm_saves_like_ctrl_c_and_a_second_interrupt_is_ignored_while_saving(tmp_path, capsys, monkeypatch):
    """SIGTERM at step 3 of 100,000: the run stops, saves and exits 0; SIGINT and SIGTERM sent while it
    saves are ignored (the save completes). Stale .tmp files of dead processes beside the output are
    removed; other files that look alike are not."""
    import signal
    import time

    import genlib.cli as cli
    out = tmp_path / "run.pt"
    dead = _dead_pid()
    stale = tmp_path / f"run.pt.{dead}.tmp"
    stale.write_bytes(b"half a checkpoint")
    keep = [tmp_path / "run.pt.abc.tmp", tmp_path / f"other.pt.{dead}.tmp", tmp_path / f"run.pt.{os.getpid()}x.tmp"]
    for p in keep:
        p.write_bytes(b"not ours")

    seen = []            # events and the save, in order: the loop must have ended before the save

    def terminate_at_step_3(ev, total):
        seen.append((ev.kind, ev.step))
        if ev.kind == "progress" and ev.step == 3:
            os.kill(os.getpid(), signal.SIGTERM)
    real_save = cli.save_checkpoint

    def save_under_fire(*a, **k):
        seen.append(("save", None))
        os.kill(os.getpid(), signal.SIGINT)       # both ignored while saving
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)
        return real_save(*a, **k)
    monkeypatch.setattr(cli, "_print_event", terminate_at_step_3)
    monkeypatch.setattr(cli, "save_checkpoint", save_under_fire)
    def not_handled(signum, frame):      # should main stop handling SIGTERM, fail here, not kill pytest
        raise RuntimeError("SIGTERM reached the test's own handler")
    old_term = signal.signal(signal.SIGTERM, not_handled)
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    try:
        code = main(["train", "--model", "gan", "--steps", "100000", "--batch-size", "8", "--log-every", "1",
                     "--set", "hidden=16", "--out", str(out)])
        after = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    finally:
        signal.signal(signal.SIGTERM, old_term)
    err = capsys.readouterr().err
    assert code == 0, err
    assert "terminated: saving what was trained" in err and f"saved {out}" in err
    assert after == before   # handlers restored
    ck = genlib.load_checkpoint(out)
    assert 3 <= ck.model.steps < 100_000
    assert [kind for kind, _ in seen[-2:]] == ["stopped", "save"] and seen[-2][1] == ck.model.steps, seen[-4:]
    assert not stale.exists() and all(p.exists() for p in keep)
    assert "removed 1 stale temporary file" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["run.pt"] + [p.name for p in keep])


@pytest.mark.hostile
def test_a_failed_save_leaves_no_temporary_file(tmp_path, capsys, monkeypatch):
    """The disk fills half-way through writing the checkpoint: one line, exit 2, no .tmp left."""
    import genlib.files as files

    def full_disk(obj, f, *a, **k):
        Path(f).write_bytes(b"x" * 1000)
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(files.torch, "save", full_disk)
    out = tmp_path / "run.pt"
    code, err = _run(["train", "--model", "gan", "--steps", "2", "--batch-size", "8", "--quiet", "--set", "hidden=16",
                      "--out", str(out)], capsys)
    assert code == 2
    assert err.strip().splitlines()[-1].startswith("error: ") and "No space left" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.hostile
def test_sigterm_in_a_real_process_saves(tmp_path):
    """The real thing: a subprocess training 100,000 steps, sent SIGTERM once it reports progress."""
    import signal
    out = tmp_path / "run.pt"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
           "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "genlib", "train", "--model", "gan", "--steps", "100000",
                             "--batch-size", "8", "--log-every", "5", "--set", "hidden=16", "--out", str(out)],
                            cwd=REPO, env=env, stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stderr:
            if line.startswith("step"):
                break
        proc.send_signal(signal.SIGTERM)
        rest = proc.stderr.read()
        code = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 0, rest
    # the loop ended, then the save: the saved step is the one it stopped at (an interrupted join once
    # let the save race a loop still training, and the process abort at exit)
    lines = [line for line in rest.splitlines() if not line.startswith("step ")]   # progress lines may come late
    assert lines[0].startswith("stopped at step ") and lines[1].startswith("terminated: saving") and \
        lines[2] == f"saved {out}", rest
    assert genlib.load_checkpoint(out).model.steps == int(lines[0].split()[-1]) >= 5
    assert [p.name for p in tmp_path.iterdir()] == ["run.pt"]
