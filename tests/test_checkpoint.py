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


# --- issue 16: validate before allocating; cards as plain bounded data; non-finite weights ------------

def _small(good: Path, tmp_path: Path, edit) -> Path:
    """A checkpoint without weights, optimiser state, history or grids (2-5 kB), edited by ``edit``."""
    p = _payload(good)
    p.update(model={}, optimizers={}, samples=[], history={}, metrics={}, train_config={})
    for k in ("recorded_run", "fixed_z", "fixed_labels"):
        p.pop(k, None)
    edit(p)
    path = tmp_path / "small.pt"
    torch.save(p, path)
    return path


@pytest.mark.hostile
@pytest.mark.parametrize("what, config, match", [
    ("a 10-billion-parameter MLP", {"arch": "mlp", "hidden": [100_000, 100_000]}, "over the ceiling of 50,000,000"),
    ("a conv net a million channels wide", {"width": 1_000_000}, "over the ceiling"),
    ("a width that overflows int64", {"width": 10**18}, "over the ceiling|cannot be built"),
    ("a billion-dimensional latent", {"latent_dim": 10**9}, "latent_dim"),
    ("100,000-pixel images", {"data_shape": [1, 100_000, 100_000]}, "data_shape"),
    ("a thousand layers", {"arch": "mlp", "hidden": [8] * 1000}, "1000 layers"),
    ("a billion classes", {"conditional": True, "num_classes": 10**9}, "num_classes"),
    ("17 M parameters under the ceiling, none stored", {"arch": "mlp", "hidden": [4096, 4096]},
     "weights do not match.*missing"),
])
def test_a_small_file_declaring_a_huge_network_is_refused_before_anything_is_built(
        tmp_path, good_ckpt, monkeypatch, what, config, match):
    """The config passes the field rules; the network it declares is counted on the meta device
    (or its weights found missing) and refused in milliseconds: no real module is ever built."""
    import time

    import genlib.checkpoint as C

    path = _small(good_ckpt, tmp_path, lambda p: p["config"].update(config))
    assert path.stat().st_size < 8000, path.stat().st_size

    def no_build(*a, **k):
        raise AssertionError("a real model was built for a refused file")
    monkeypatch.setattr(C, "build_model", no_build)
    t0 = time.perf_counter()
    with pytest.raises(CheckpointError, match=match):
        load_checkpoint(path)
    assert time.perf_counter() - t0 < 1.0


def _rezip(data: bytes, compression=None, duplicate: str | None = None) -> bytes:
    import zipfile
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=compression or zipfile.ZIP_STORED) as z:
        for info in src.infolist():
            z.writestr(info.filename, src.read(info.filename))
        if duplicate:
            with pytest.warns(UserWarning):
                z.writestr(next(n for n in src.namelist() if n.endswith(duplicate)), b"x")
    return out.getvalue()


@pytest.mark.hostile
@pytest.mark.parametrize("what, make, match", [
    ("a deflated member (1 MB of zeros would become 1 GB)", lambda b: _rezip(b, __import__("zipfile").ZIP_DEFLATED),
     "compressed"),
    ("a member listed twice", lambda b: _rezip(b, duplicate="data.pkl"), "twice"),
    ("a raw pickle", lambda b: pickle.dumps({"format": FORMAT}), "refused: a raw pickle"),
    ("a zip without its directory", lambda b: b[:-30], "corrupt"),
])
def test_archives_torch_save_does_not_write_are_refused_before_unpickling(tmp_path, good_ckpt, what, make, match):
    path = tmp_path / "z.pt"
    path.write_bytes(make(good_ckpt.read_bytes()))
    with pytest.raises(CheckpointError, match=match):
        load_checkpoint(path)


def _strided(shape, dtype=torch.uint8) -> torch.Tensor:
    """A tensor declaring ``shape`` over a one-element storage (stride 0)."""
    return torch.zeros(1, dtype=dtype).as_strided(shape, (0,) * len(shape))


@pytest.mark.hostile
@pytest.mark.parametrize("what, edit, match", [
    ("a sample grid of 2^33 bytes over 1 byte", lambda p: p["samples"][0].update(
        images=_strided((2**20, 1, 2**10, 8))), "declares 8,589,934,592 bytes but its storage holds 1"),
    ("a weight of 64 values over 4 bytes", lambda p: p["model"].update(
        {"generator.net.fc.bias": _strided(tuple(p["model"]["generator.net.fc.bias"].shape), torch.float32)}),
     "storage holds 4"),
    ("one grid listed 600 times", lambda p: p.update(samples=[p["samples"][0]] * 600), "listed more than once"),
    ("a sparse tensor", lambda p: p.update(fixed_z=p["fixed_z"].to_sparse()), "sparse"),
    ("5,000 tensors (zip members)", lambda p: p.update(extra=[torch.zeros(1) for _ in range(5000)]),
     "archive members is over"),
    ("a 600 kB pickle", lambda p: p["card"].update(note="x" * 600_000), "data record is"),
])
def test_tensors_and_archives_that_declare_more_than_they_hold_are_refused(tmp_path, good_ckpt, what, edit, match):
    path = _edited(tmp_path, good_ckpt, edit)
    with pytest.raises(CheckpointError, match=match):
        load_checkpoint(path)


def _dag(levels: int) -> list:
    """A list of 4 references to a list of 4 references ...: ~levels pickle entries, 4^levels paths."""
    a: list = []
    for _ in range(levels):
        a = [a] * 4
    return a


def _nested(levels: int) -> list:
    a: list = []
    for _ in range(levels):
        a = [a]
    return a


@pytest.mark.hostile
@pytest.mark.parametrize("what, edit, match", [
    ("a card with 4^25 paths (shared references)", lambda p: p["card"].update(x=_dag(25)), "over 200,000 values"),
    ("a card 2,000 levels deep", lambda p: p["card"].update(x=_nested(2000)), "deeper than 32"),
    ("a history with 4^25 paths", lambda p: p["history"].update(x=_dag(25)), "over 200,000 values"),
    ("a card 20 levels deep", lambda p: p["card"].update(x=_nested(20)), "card is nested deeper than 8"),
    ("a card with 30,000 values", lambda p: p["card"].update(x=list(range(30_000))), "over 20,000 values"),
    ("a card with 100 kB of text", lambda p: p["card"].update(x=["y" * 1000] * 100), "over 65,536 characters"),
    ("a 2,000-bit integer", lambda p: p["card"].update(steps=10**600), "bits"),
    ("a tensor on the card", lambda p: p["card"].update(x=torch.zeros(3)), "is a Tensor"),
    ("a card key that is a number", lambda p: p["card"].update(metrics={1: 2.0}), "key of type int"),
    ("a card that is a list", lambda p: p.update(card=[1, 2]), "not a dict"),
    ("a train_config holding a tensor", lambda p: p.update(train_config={"x": torch.zeros(2)}), "Tensor"),
])
def test_cards_and_plain_data_are_bounded_and_walked_in_linear_time(tmp_path, good_ckpt, what, edit, match):
    import sys
    import time
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(10_000)           # torch.save's pickler recurses on the nested lists
    try:
        path = _edited(tmp_path, good_ckpt, edit)
    finally:
        sys.setrecursionlimit(limit)
    t0 = time.perf_counter()
    with pytest.raises(CheckpointError, match=match):
        load_checkpoint(path)
    assert time.perf_counter() - t0 < 5.0


@pytest.mark.hostile(5)
def test_wrong_typed_known_card_fields_are_dropped_with_a_note(tmp_path, good_ckpt):
    """Five known fields of the wrong kind: the file loads, each field is gone, each has a note."""
    def edit(p):
        p["card"].update(epochs="many", steps="x", dataset=5, parameters={"generator": "big"}, metrics=[1, 2])
    ck = load_checkpoint(_edited(tmp_path, good_ckpt, edit))
    for key in ("epochs", "steps", "dataset", "parameters", "metrics"):
        assert key not in ck.card, key
        assert any(f"'{key}'" in n for n in ck.warnings), (key, ck.warnings)
    assert load_checkpoint(good_ckpt).warnings == []


@pytest.mark.hostile
@pytest.mark.parametrize("what, edit, match", [
    ("a NaN weight", lambda p: p["model"]["generator.net.fc.weight"].view(-1)[5].fill_(float("nan")),
     "non-finite weights.*generator.net.fc.weight"),
    ("an Inf batch-norm statistic", lambda p: p["model"]["generator.net.fc_norm.running_var"].fill_(float("inf")),
     "non-finite weights"),
    ("an Inf in Adam's moments", lambda p: next(iter(p["optimizers"]["opt_g"]["state"].values()))["exp_avg"]
     .view(-1)[0].fill_(float("inf")), "non-finite optimiser state"),
    ("integer weights", lambda p: p["model"].update(
        {"generator.net.fc.bias": p["model"]["generator.net.fc.bias"].long()}), "torch.int64 where"),
    ("Adam moments of another shape", lambda p: next(iter(p["optimizers"]["opt_g"]["state"].values())).update(
        exp_avg=torch.zeros(3)), "weights do not match.*shape"),
    ("a grid of colour images for a grey model", lambda p: p["samples"][0].update(
        images=torch.zeros(4, 3, 8, 8, dtype=torch.uint8)), "sample grid of \\(4, 3, 8, 8\\)"),
    ("a grid of floats for an image model", lambda p: p["samples"][0].update(images=torch.zeros(4, 1, 8, 8)),
     "sample grid"),
    ("an empty grid", lambda p: p["samples"][0].update(images=torch.zeros(0, 1, 8, 8, dtype=torch.uint8)),
     "sample grid"),
    ("a grid step that is text", lambda p: p["samples"][0].update(step="x"), "step"),
    ("fixed noise of another size", lambda p: p.update(fixed_z=torch.zeros(4, 3)), "fixed_z"),
    ("fixed noise with NaN", lambda p: p["fixed_z"].fill_(float("nan")), "fixed_z"),
    ("fixed labels out of range", lambda p: p.update(fixed_labels=torch.full((len(p["fixed_z"]),), 50)),
     "fixed_labels"),
    ("a loss curve of text in an old file", lambda p: (p.pop("recorded_run"), p["history"].update(d_loss="abc")),
     "history\\['d_loss'\\]"),
    ("steps that are a float", lambda p: p.update(steps=1.5), "steps"),
    ("a family that is a list", lambda p: p.update(family=["gan"]), "unknown model family"),
    ("a config that is a list", lambda p: p.update(config=[1]), "invalid gan config"),
])
def test_loadable_but_broken_checkpoints_are_refused_at_load(tmp_path, good_ckpt, what, edit, match):
    """Each of these loaded before and crashed a page (or drew black) later."""
    path = _edited(tmp_path, good_ckpt, edit)
    with pytest.raises(CheckpointError, match=match):
        load_checkpoint(path)


def test_fits_dataset_says_why_a_model_does_not_fit(good_ckpt, digits):
    import dataclasses

    from genlib.checkpoint import fits_dataset
    ck = load_checkpoint(good_ckpt)
    assert fits_dataset(ck, digits) is None
    ring = __import__("genlib").load_dataset("ring", n=64)
    assert "shape (1, 8, 8)" in fits_dataset(ck, ring)
    other = dataclasses.replace(digits, name="other")
    assert "trained on digits" in fits_dataset(ck, other)
    assert fits_dataset(ck, other, same_dataset=False) is None
    cgan = make_model("cgan", digits)
    five = dataclasses.replace(digits, class_names=digits.class_names[:5])
    assert "conditional on 10 classes" in fits_dataset(cgan, five)
    assert fits_dataset(make_model("gan", digits), five) is None      # unconditional: classes do not matter


def test_card_text_is_plain_and_bounded():
    """Markdown stays literal text (the dashboard shows it with st.text), control and bidi characters
    and newlines inside a value cannot forge lines, and the whole is bounded."""
    from genlib.checkpoint import card_text
    card = {"description": "![x](http://evil.example/x.png) [click](javascript:alert(1))\n# forged: line\x1b[31m\u202e",
            "metrics": {"fid": 1.23456789, "hist": list(range(1000)), "deep": {"a": {"b": {"c": {"d": 1}}}}},
            "long": "z" * 10_000}
    text = card_text(card, max_chars=2000)
    assert "![x](http://evil.example/x.png)" in text            # literal, for st.text
    assert "\x1b" not in text and "\u202e" not in text
    assert not any(line.startswith("# forged") for line in text.splitlines())
    assert "  fid: 1.23457" in text and "..." in text
    assert len(text) <= 2000 and max(len(line) for line in text.splitlines()) <= 320
    assert len(card_text({f"k{i}": "v" * 300 for i in range(1000)})) <= 8000


def test_network_problem_allows_every_preset_and_refuses_past_the_ceiling(digits):
    from genlib.checkpoint import network_problem
    from genlib.models import PRESETS, preset_config
    for preset in PRESETS:
        family, config = preset_config(preset, (3, 128, 128), 10)
        assert network_problem(family, config) is None, preset
    family, config = preset_config("gan", digits.shape, 10, hidden=(8192, 8192))
    assert "over the ceiling" in network_problem(family, config)
