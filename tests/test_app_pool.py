"""The Train page trains in the server's pool (issue 18)."""
from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from conftest import APP, assert_clean, wait_until
from dashboard import session
from genlib.train import pool as gpool


@pytest.fixture
def state_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("GENLIB_DASHBOARD_STATE_DIR", str(tmp_path / "sessions"))
    return tmp_path / "sessions"


def start(at, steps):
    at.switch_page("app_pages/train.py").run()
    at.selectbox(key="tr_preset").set_value("vae").run()
    at.number_input(key="tr_steps").set_value(steps)
    at.select_slider(key="tr_batch").set_value(32)
    at.button(key="tr_start").click().run()


def test_train_page_runs_go_to_the_pool_and_queue(state_dir, monkeypatch):
    monkeypatch.setattr(session, "USE_POOL", True)
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params.update({"dataset": "digits"})
    at.run()
    # The pool's workers spawn after the app ran, as in the server (__main__ is then app.py, which a
    # spawned worker must not re-run: it used to exit with code 1).
    monkeypatch.setattr(gpool, "_SHARED", gpool.Pool(1, max_runs_per_owner=2, publish_s=0.1))
    start(at, 1_000_000)
    assert_clean(at)
    runs = at.session_state["genlib_runs"]
    first = list(runs.runs.values())[-1]
    assert first.remote and isinstance(first.trainer, gpool.RemoteRun)
    assert wait_until(lambda: first.snapshot().step > 0, 120)
    start(at, 30)
    assert_clean(at)
    second = list(runs.runs.values())[-1]
    assert second.trainer.state == "queued"
    at.selectbox(key="tr_run").set_value(second.name).run()
    assert "1st in line" in at.get("progress")[0].proto.text, at.get("progress")[0].proto.text
    assert at.button(key="tr_start").disabled            # a third: the session's limit (issue 16) counts queued runs
    at.selectbox(key="tr_run").set_value(first.name).run()
    at.button(key="tr_stop").click().run()
    assert wait_until(lambda: not second.alive, 120) and second.snapshot().state == "done"
    assert first.frozen_model() is not None and second.frozen_model().steps == 30
    runs.persist()                                      # (the watchdog's pass may have saved one already)
    import genlib
    files = sorted(runs.folder.glob("*.pt"))
    assert len(files) == 2
    cards = [genlib.load_checkpoint(f).card for f in files]
    assert {c["run_name"] for c in cards} == {first.name, second.name} and all(c["dataset"] == "digits" for c in cards)
    at.selectbox(key="tr_run").set_value(second.name).run()
    assert_clean(at)
    gpool._SHARED.close()


def test_runs_at_once_have_one_source_of_truth(monkeypatch):
    """The session's MAX_RUNS_AT_ONCE decides; the pool's per-owner limit is a backstop never below it."""
    import types
    fake = types.SimpleNamespace(max_runs_per_owner=2)
    monkeypatch.setattr(session, "shared_pool", lambda: fake)
    monkeypatch.setattr(session, "MAX_RUNS_AT_ONCE", 3)
    assert session.server_pool().max_runs_per_owner == 3        # raised: it would refuse the session's 3rd run
    fake.max_runs_per_owner = 5
    assert session.server_pool().max_runs_per_owner == 5        # a higher backstop stays
    fake.max_runs_per_owner = 0
    assert session.server_pool().max_runs_per_owner == 0        # off stays off


def test_a_parked_run_says_resume_queues_it_again():
    """The progress line of a paused run whose worker went to a waiting run (``RemoteSnapshot.parked``,
    set by the pool: tests/test_pool.py) tells its owner what Resume does."""
    import genlib
    from dashboard import ui
    from genlib.train.remote import RemoteSnapshot
    data = genlib.load_dataset("digits")
    snap = genlib.Trainer(genlib.make_model("vae", data), data, genlib.TrainConfig(steps=100_000)).snapshot()
    fields = {k: getattr(snap, k) for k in snap.__dataclass_fields__}
    paused = RemoteSnapshot(**{**fields, "state": "paused", "step": 696})
    assert "worker" not in ui.progress_text(paused, "A")
    parked = RemoteSnapshot(**{**fields, "state": "paused", "step": 696, "parked": True})
    assert ui.progress_text(parked, "A") == (
        "paused · step 696 / 100,000 · epoch 0.0 · 0 examples/s · its worker went to a waiting run: "
        "Resume queues it again")
