"""The dashboard under Streamlit's AppTest: every page renders on the offline default, and the live
interactions work (a run advances, survives page switches, stops; divergence can be resumed;
the conditional page follows the class; the mode-collapse lab trains two models).

Plus the pieces the pages stand on: session cleanup (watchdog, finalizer), images, figures and memo.
Waits poll a condition with a generous deadline; nothing asserts a speed.
"""
from __future__ import annotations

import gc
import io
import math
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

import genlib  # noqa: E402
from conftest import APP, assert_clean, wait_until  # noqa: E402
from dashboard import context, figures, images, measure, resources, session, train_form, ui  # noqa: E402
from genlib.train import pool as gpool  # noqa: E402

MODEL = context.model_key("digits")        # the sidebar's model box while digits is the dataset
PAGES = ["app_pages/overview.py", "app_pages/train.py", "app_pages/conditional.py", "app_pages/mode_collapse.py"]




def runs_of(at: AppTest) -> session.SessionRuns:
    return at.session_state["genlib_runs"]


@pytest.fixture(scope="module", autouse=True)
def training_pool():
    """The Train page's runs go to the server's pool of worker processes (issue 18; the default). One
    pool of two workers for this module, warmed before the first test (spawned processes import torch
    and load the digits: tens of seconds on a busy 2-core machine, which the 20 s waits below are not
    about), closed at the end. GENLIB_DASHBOARD_POOL=0 runs the module on threads instead."""
    if not session.USE_POOL:
        yield None
        return
    old, pool = gpool._SHARED, gpool.Pool(2, publish_s=0.1)
    gpool._SHARED = pool
    try:
        data = resources.load_data("digits")
        warm = [pool.submit(gpool.RunSpec.new(genlib.make_model("vae", data), data,
                                              genlib.TrainConfig(steps=1, batch_size=8), ref=gpool.DataRef("digits")),
                            owner=f"warm-up {i}") for i in range(pool.size)]
        for run in warm:
            assert run.wait(300) == "done", run.snapshot().message
        yield pool
    finally:
        pool.close()
        gpool._SHARED = old


@pytest.fixture(autouse=True)
def state_dir(tmp_path, monkeypatch):
    """Saved runs go to a temporary folder, never the user's cache."""
    monkeypatch.setenv("GENLIB_DASHBOARD_STATE_DIR", str(tmp_path / "sessions"))
    return tmp_path / "sessions"


def new_app(**query) -> AppTest:
    """The app opened on a URL with ``query`` (default: the offline digits, quick to load)."""
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params.update({"dataset": "digits", **query})
    return at


@pytest.fixture
def app():
    at = new_app()
    at.run()
    yield at
    if "genlib_runs" in at.session_state:      # never leave a trainer thread behind
        runs = runs_of(at)
        runs.stop_all()
        for run in runs.runs.values():
            run.trainer.join(10)


def start_training(at: AppTest, preset: str, steps: int) -> session.Run:
    at.switch_page("app_pages/train.py").run()
    at.selectbox(key="tr_preset").set_value(preset).run()
    at.number_input(key="tr_steps").set_value(steps)
    at.select_slider(key="tr_batch").set_value(32)
    at.button(key="tr_start").click().run()
    assert_clean(at)
    return list(runs_of(at).runs.values())[-1]


# --- pages ---------------------------------------------------------------------------------------
def test_the_default_dataset_is_mnist_when_its_files_are_here():
    if not context.dataset_on_disk("mnist"):
        pytest.skip("no MNIST files on this machine")
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert_clean(at)
    assert at.selectbox(key="dataset").value == "mnist" and at.query_params["dataset"] == "mnist"
    assert at.selectbox(key=context.model_key("mnist")).value.startswith("mnist-")


def test_default_dataset_order(monkeypatch):
    here = {"fashion-mnist"}
    monkeypatch.setattr(context, "dataset_on_disk", lambda name: name in here)
    assert context.default_dataset() == "fashion-mnist"
    here.clear()
    assert context.default_dataset() == "digits"
    here.update({"mnist", "fashion-mnist"})
    assert context.default_dataset() == "mnist"


def test_every_page_renders_on_the_offline_default(app):
    assert app.selectbox(key="dataset").value == "digits"
    assert app.selectbox(key="device").options == genlib.available_devices()
    for page in PAGES:
        app.switch_page(page).run()
        assert_clean(app)
        assert app.title, f"{page} has no title"
        assert app.expander, f"{page} explains nothing"     # every page has a "what am I looking at"


def test_a_missing_dataset_is_explained_and_the_app_keeps_working(app, monkeypatch, tmp_path):
    monkeypatch.setenv("GENLIB_DATA_DIR", str(tmp_path))      # an empty data folder: cifar10 is missing
    app.selectbox(key="dataset").set_value("cifar10").run()
    assert not app.exception
    assert any("cifar10 files are not on this machine" in e.value for e in app.error)
    assert not any(str(tmp_path) in e.value for e in app.sidebar.error)     # no file-system paths
    assert any("Download cifar10" in b.label for b in app.button)
    app.switch_page("app_pages/train.py").run()
    assert not app.exception and app.info                    # the page points back to the sidebar
    app.selectbox(key="dataset").set_value("digits").run()
    assert_clean(app)


def test_training_advances_survives_page_switches_and_stops(app):
    run = start_training(app, "vae", 100_000)
    assert wait_until(lambda: run.snapshot().step > 0)
    assert run.alive and app.get("progress")
    app.switch_page("app_pages/overview.py").run()            # leave mid-run...
    assert_clean(app)
    step = run.snapshot().step
    assert wait_until(lambda: run.snapshot().step > step)     # ...it keeps training
    app.switch_page("app_pages/train.py").run()               # come back: the same live run
    assert_clean(app)
    assert list(runs_of(app).runs.values()) == [run] and run.alive
    assert app.selectbox(key="tr_run").value == run.name
    assert "running" in app.get("progress")[0].proto.text
    app.button(key="tr_pause").click().run()
    assert wait_until(lambda: run.snapshot().state == "paused")
    paused_at = run.snapshot().step
    app.button(key="tr_step").click().run()
    assert wait_until(lambda: run.snapshot().step == paused_at + 1)
    app.button(key="tr_stop").click().run()
    run.trainer.join(10)
    assert run.snapshot().state == "stopped" and not run.alive
    app.run()
    assert_clean(app)
    # the stopped model joins the picker, with its downloads
    assert f"{run.name} (session)" in app.selectbox(key=MODEL).options
    assert {"tr_dl_ckpt", "tr_dl_png", "tr_dl_gif"} <= {d.key for d in app.get("download_button")}


def test_a_diverged_run_shows_why_and_resumes_with_a_new_learning_rate(app, monkeypatch):
    # On threads (GENLIB_DASHBOARD_POOL=0): the divergence is injected by replacing the training_step of
    # the live model, which exists in this process only on the thread path (a pool run trains a copy in
    # its worker process).
    monkeypatch.setattr(session, "USE_POOL", False)
    run = start_training(app, "gan", 100_000)
    model = run.model
    real_step = type(model).training_step
    model.training_step = lambda x, y: {"d_loss": torch.tensor(math.nan)}     # blow up from the next step
    assert wait_until(lambda: run.snapshot().state == "error")
    app.run()
    assert any("diverged" in e.value for e in app.error)
    model.training_step = real_step.__get__(model)
    app.select_slider(key="tr_fix_lr_g").set_value(1e-5)
    app.button(key="tr_fix").click().run()
    assert model.config.lr_g == 1e-5 and model.opt_g.param_groups[0]["lr"] == 1e-5
    step = run.snapshot().step
    assert wait_until(lambda: run.snapshot().step > step and run.snapshot().state == "running")


def test_conditional_page_follows_the_chosen_class(app):
    run = start_training(app, "cgan", 20)
    run.trainer.join(30)
    app.switch_page("app_pages/conditional.py").run()
    app.selectbox(key=MODEL).set_value(f"{run.name} (session)").run()
    assert_clean(app)
    app.selectbox(key="cond_class@digits").set_value(8).run()
    assert_clean(app)
    assert any("class “8”" in c for img in app.get("image") for c in img.captions)


def test_conditional_page_says_when_a_model_is_not_conditional(app):
    run = start_training(app, "vae", 10)
    run.trainer.join(30)
    app.switch_page("app_pages/conditional.py").run()
    app.selectbox(key=MODEL).set_value(f"{run.name} (session)").run()
    assert not app.exception
    assert any("not conditional" in w.value for w in app.warning)
    assert any("Pick a conditional model in the sidebar:" in w.value and "digits-cgan (pretrained)" in w.value
               for w in app.warning)                                           # the shipped cGAN among them


def test_mode_collapse_lab_trains_both_models_and_measures_coverage(app):
    app.switch_page("app_pages/mode_collapse.py").run()
    app.select_slider(key="mc_steps").set_value(500)
    app.button(key="mc_start").click().run()
    assert_clean(app)
    pair = [runs_of(app).runs[n] for n in runs_of(app).state["mc_pair"]]
    assert [r.preset for r in pair] == ["gan", "wgan-gp"]
    assert wait_until(lambda: all(r.snapshot().metrics.get("toy_modes_covered") for r in pair))
    assert all(r.panel()["heat"].shape == (48, 48) for r in pair)            # the worker sent D's map
    app.run()
    assert_clean(app)
    charts = app.get("vega_lite_chart")
    assert len(charts) == 6                                   # per run: points over D's map, mode shares, coverage
    app.button(key="mc_stop").click().run()
    for r in pair:
        r.trainer.join(10)
        assert not r.alive


# --- session cleanup -----------------------------------------------------------------------------
def _tiny_run(runs: session.SessionRuns) -> session.Run:
    data = resources.load_data("digits")
    trainer = genlib.Trainer(genlib.make_model("vae", data), data, genlib.TrainConfig(steps=10**6, batch_size=16))
    return runs.add(session.Run(runs.new_name("vae"), "vae", "digits", trainer))


def test_watchdog_pauses_then_stops_the_runs_of_a_disconnected_session():
    connected = {"s1": True}
    dog = session.SessionWatchdog(is_active=lambda sid: connected[sid], pause_after=5, stop_after=60)
    runs = session.SessionRuns()
    run = _tiny_run(runs)
    run.start()
    dog.watch("s1", runs)
    try:
        assert wait_until(lambda: run.snapshot().state == "running")
        dog.check(now=0)
        connected["s1"] = False                   # the tab closed
        dog.check(now=1)
        dog.check(now=3)
        assert run.snapshot().state == "running"  # a reload reconnects within seconds: keep going
        dog.check(now=7)
        assert wait_until(lambda: run.snapshot().state == "paused")
        connected["s1"] = True                    # it came back: resume
        dog.check(now=8)
        assert wait_until(lambda: run.snapshot().state == "running")
        connected["s1"] = False
        dog.check(now=10)
        dog.check(now=71)
        run.trainer.join(10)
        assert not run.alive and run.snapshot().state == "stopped"
        assert len(dog) == 0
    finally:
        runs.stop_all()


def test_trainers_stop_when_the_session_state_is_garbage_collected():
    runs = session.SessionRuns()
    trainer = _tiny_run(runs).trainer
    trainer.start()
    assert wait_until(lambda: trainer.step > 0)
    del runs                               # the session's state goes away (the run only lived in it)
    gc.collect()
    trainer.join(10)
    assert not trainer.is_alive


def test_frozen_model_is_a_copy_and_only_exists_when_not_training():
    runs = session.SessionRuns()
    run = _tiny_run(runs)
    run.trainer.config.steps = 5
    run.start()
    run.trainer.join(30)
    frozen = run.frozen_model()
    assert frozen is not run.model and frozen is run.frozen_model()
    for a, b in zip(frozen.parameters(), run.model.parameters()):
        assert torch.equal(a, b) and a.data_ptr() != b.data_ptr()


# --- helpers -------------------------------------------------------------------------------------
def test_image_grid_places_every_image_and_upscales_whole_pixels():
    x = torch.arange(6, dtype=torch.uint8).view(6, 1, 1, 1).expand(6, 1, 2, 2) * 40   # image i = 40 i
    grid = images.image_grid(x, nrow=3, pad=1, min_side=14)
    assert grid.shape == (2 * 7, 2 * 10)          # (2 rows x 3 + pad) scaled x2 to reach >= 14 wide
    for i in range(6):
        r, c = divmod(i, 3)
        assert grid[2 * (1 + 3 * r), 2 * (1 + 3 * c)] == 40 * i
    assert images.image_grid(torch.zeros(4, 3, 2, 2, dtype=torch.uint8)).ndim == 3     # colour stays RGB


def test_gif_and_png_are_readable_images():
    from io import BytesIO

    from PIL import Image

    samples = [(s, torch.randint(0, 255, (16, 1, 8, 8), dtype=torch.uint8)) for s in (0, 10, 20)]
    gif = Image.open(BytesIO(images.gif_bytes(samples)))
    assert gif.format == "GIF" and gif.n_frames == 3
    assert Image.open(BytesIO(images.png_bytes(images.image_grid(samples[0][1])))).format == "PNG"


@pytest.mark.parametrize("family,loss,keys,prob_axis", [
    ("vae", "", ["recon", "kl", "neg_elbo", "beta"], False),
    ("gan", "nonsaturating", ["d_loss", "g_loss", "d_real", "d_fake"], True),
    ("gan", "wgan-gp", ["d_loss", "g_loss", "gp", "wasserstein"], False),
])
def test_loss_figure_labels_its_axes(family, loss, keys, prob_axis):
    history = {"step": [1, 2, 3], **{k: [0.1, 0.2, 0.3] for k in keys}}
    fig = figures.loss_figure(history, family, loss)
    assert fig.layout.xaxis.title.text == "training step"
    assert all(ax.title.text for ax in (fig.layout.yaxis, fig.layout.yaxis2))
    assert (fig.layout.yaxis2.title.text == "probability") == prob_axis
    assert len(fig.data) >= len(keys) - 1


def test_points_figure_scales_the_heat_map_by_what_d_outputs():
    real, ticks, heat = torch.zeros(5, 2), torch.linspace(-1, 1, 4), torch.rand(4, 4)
    prob = figures.points_figure(real, None, "t", (ticks, heat), probabilistic=True).data[0]
    critic = figures.points_figure(real, None, "t", (ticks, heat * 9 - 3), probabilistic=False).data[0]
    assert (prob.zmin, prob.zmax, prob.colorbar.title.text) == (0, 1, "P(real)")
    assert (critic.zmin, critic.zmax, critic.colorbar.title.text) == (None, None, "critic score")


def test_thin_averages_long_curves_into_groups_that_end_at_the_newest_point():
    x, y = list(range(10, 1010, 10)), [float(i) for i in range(100)]          # 100 points
    assert figures.thin(x, y, max_points=100) == (x, y)                             # short enough: unchanged
    tx, ty = figures.thin(x, y, max_points=30)                                      # groups of ceil(100/30) = 4
    assert len(ty) == 25 and tx[0] == 40 and tx[-1] == 1000
    assert ty[0] == 1.5 and ty[-1] == 97.5                                     # means of 0..3 and 96..99
    assert figures.thin([1, 2, 3, 4], [None, 2.0, None, None], max_points=2) == ([2, 4], [2.0, None])
    fig = figures.loss_figure({"step": list(range(5000)), "recon": [1.0] * 5000}, "vae")
    assert len(fig.data[0].x) <= figures.DRAW_POINTS and fig.data[0].x[-1] == 4999


def test_memo_rebuilds_only_when_the_version_changes(monkeypatch):
    monkeypatch.setattr(ui.st, "session_state", {})
    calls = []
    build = lambda: calls.append(1) or len(calls)                             # noqa: E731
    assert ui.memo("k", (1,), build) == 1 and ui.memo("k", (1,), build) == 1
    assert ui.memo("k", (2,), build) == 2 and ui.memo("other", (2,), build) == 3


def test_the_server_loads_torch_with_a_passive_openmp_wait_policy():
    """Under `streamlit run`, app.py's first import of the dashboard package must come before torch
    loads (libgomp reads OMP_WAIT_POLICY once, then); a value the user set is kept."""
    code = ("import sys, streamlit.web.cli; assert 'torch' not in sys.modules, 'streamlit loaded torch';"
            "import dashboard, os; assert 'torch' not in sys.modules; print(os.environ['OMP_WAIT_POLICY'])")
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    repo = Path(APP).parents[1]
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=repo, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "PASSIVE", out.stderr
    out = subprocess.run([sys.executable, "-c", code], env={**env, "OMP_WAIT_POLICY": "ACTIVE"}, cwd=repo,
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "ACTIVE", out.stderr
    app = Path(APP).read_text()
    before_dashboard = app[:app.index("from dashboard import")]
    assert "import torch" not in before_dashboard and "import genlib" not in before_dashboard





# --- with pretrained models ----------------------------------------------------------------------
@pytest.fixture
def pretrained(tmp_path, monkeypatch):
    """Two tiny 'pretrained' digits models (a GAN and a cGAN) in a temporary pretrained/ folder."""
    data = resources.load_data("digits")
    for preset in ("gan", "cgan"):
        model = genlib.make_model(preset, data, hidden=(32,))
        cfg = genlib.TrainConfig(steps=6, batch_size=16, sample_every=2, n_fixed=20)
        trainer = genlib.Trainer(model, data, cfg)
        trainer.run()
        genlib.save_checkpoint(tmp_path / f"digits-{preset}.pt", model, trainer, preset=preset)
    monkeypatch.setattr(resources, "PRETRAINED_ROOT", tmp_path)
    return tmp_path


def test_pages_use_the_pretrained_models(app, pretrained):
    assert measure.classifier_for("digits") is not None, "the digits classifier ships with the repo"
    app.run()
    assert app.selectbox(key=MODEL).options == ["digits-cgan (pretrained)", "digits-gan (pretrained)"]
    assert_clean(app)
    assert len(app.get("image")) == 2                               # one grid per model, side by side
    table = app.dataframe[0].value
    assert list(table["model"]) == ["digits-cgan", "digits-gan"]
    assert table["parameters"][0].startswith("G ") and " + D " in table["parameters"][0]
    app.switch_page("app_pages/conditional.py").run()
    assert_clean(app)
    assert [m.label for m in app.metric] == ["Label accuracy"]
    app.switch_page("app_pages/mode_collapse.py").run()
    assert_clean(app)
    # the class histogram along training
    assert app.selectbox(key="mc_gan@digits").options == ["digits-gan (pretrained)", "digits-cgan (pretrained)"]
    assert app.get("plotly_chart")


def test_uploaded_checkpoints_join_the_picker_and_bad_files_are_refused(app):
    data = resources.load_data("digits")
    model = genlib.make_model("cgan", data, hidden=(32,))
    trainer = genlib.Trainer(model, data, genlib.TrainConfig(steps=3, batch_size=16))
    trainer.run()
    good = session.checkpoint_bytes(model, trainer, preset="cgan")          # what the Train page's download gives
    assert genlib.load_checkpoint(good).card["dataset"] == "digits"
    app.sidebar.file_uploader(key="upload").upload("mine.pt", good).run()
    assert_clean(app)
    assert "mine.pt (upload)" in app.selectbox(key=MODEL).options
    app.sidebar.file_uploader(key="upload").set_value(("junk.pt", b"not a checkpoint", "application/octet-stream"))
    app.run()
    assert not app.exception
    with pytest.raises(genlib.CheckpointError) as why:
        genlib.load_checkpoint(b"not a checkpoint")
    assert [e.value for e in app.error] == [ui.plain(why.value, 400)]    # the one-line reason, as plain text
    app.switch_page("app_pages/overview.py").run()                   # the app keeps working
    assert not app.exception


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_training_on_the_gpu_feeds_cpu_copies_to_the_pages(app):
    app.selectbox(key="device").set_value("cuda").run()
    run = start_training(app, "cgan", 30)
    run.trainer.join(60)
    assert run.model.device.type == "cuda" and run.snapshot().state == "done"
    assert run.frozen_model().device.type == "cpu"
    app.switch_page("app_pages/conditional.py").run()
    app.selectbox(key=MODEL).set_value(f"{run.name} (session)").run()
    assert_clean(app)
    ckpt = genlib.load_checkpoint(session.checkpoint_bytes(run.frozen_model(), run.trainer))
    assert ckpt.card["device"].startswith("cuda")


def test_two_sessions_never_share_a_run(app):
    run = start_training(app, "vae", 100_000)
    other = AppTest.from_file(APP, default_timeout=60).run()
    other.switch_page("app_pages/train.py").run()
    assert not other.exception
    assert "genlib_runs" not in other.session_state or not runs_of(other).runs
    assert run.alive


def test_training_settings_survive_a_page_switch(app):
    app.switch_page("app_pages/train.py").run()
    app.selectbox(key="tr_preset").set_value("dcgan").run()
    app.number_input(key="tr_steps").set_value(1234)
    app.select_slider(key="tr_dcgan_lr_d").set_value(4e-4).run()
    app.switch_page("app_pages/overview.py").run()
    app.switch_page("app_pages/train.py").run()
    assert app.selectbox(key="tr_preset").value == "dcgan"
    assert app.number_input(key="tr_steps").value == 1234
    assert app.select_slider(key="tr_dcgan_lr_d").value == 4e-4


def test_the_training_form_offers_only_what_the_config_accepts(app):
    """Every hyperparameter widget comes from the field's metadata: its ends, steps and choices all
    pass ``validate`` (label smoothing once stopped at 0.3 while 0.5 was allowed; now up to 0.5)."""
    app.switch_page("app_pages/train.py").run()
    for preset, p in genlib.PRESETS.items():
        app.selectbox(key="tr_preset").set_value(preset).run()
        assert_clean(app)
        fields = {f"tr_{preset}_{w.key}": w.field for col in train_form.LAYOUT[p.family] for w in col}
        specs = {s.name: s for s in genlib.models.field_specs(genlib.models.config_class(p.family))}
        seen = set()
        for kind in ("slider", "select_slider", "selectbox", "number_input", "toggle"):
            for w in app.get(kind):
                if w.key not in fields:
                    continue
                spec, seen = specs[fields[w.key]], seen | {w.key}
                if kind == "slider" or kind == "number_input" and w.min is not None:
                    values = [w.min, w.max]
                elif kind == "select_slider":
                    values = [float(o) for o in w.options]
                elif kind == "selectbox":
                    assert tuple(w.options) == spec.choices
                    values = list(w.options)
                else:
                    values = [True, False]
                for v in values:
                    v = int(v) if spec.kind == "int" else v
                    assert spec.problem(v) is None, (preset, w.key, v, spec.rule)
        assert seen, preset
    app.selectbox(key="tr_preset").set_value("gan").run()
    assert 0.3 < app.slider(key="tr_gan_ls").max < 0.5


def test_the_download_button_reports_progress(app, monkeypatch, tmp_path):
    monkeypatch.setenv("GENLIB_DATA_DIR", str(tmp_path))
    calls = []

    def fake_download(name, progress):                 # stands in for the network
        progress(0, 2**20, "Downloading https://example.org/train-images-idx3-ubyte.gz")
        progress(2**20, 2**20, "Downloading https://example.org/train-images-idx3-ubyte.gz")
        calls.append(name)
        raise genlib.DataNotFoundError("mirror unreachable")

    monkeypatch.setattr(resources, "download_data", fake_download)
    app.selectbox(key="dataset").set_value("fashion-mnist").run()
    if not app.error:                                  # the shared data folder may hold it after all
        pytest.skip("fashion-mnist is present here")
    app.button(key="download_data").click().run()
    assert calls == ["fashion-mnist"] and not app.exception
    assert any("Download failed: mirror unreachable" in e.value for e in app.error)


def test_history_slider_scrubs_back_through_the_fixed_noise_grids(app):
    run = start_training(app, "vae", 120)
    run.trainer.join(30)
    app.run()
    steps = [s for s, _ in run.snapshot().samples]
    slider = history_slider(app, run)
    assert slider.value == steps[-1] and len(steps) > 3            # follows the newest grid
    slider.set_value(steps[1]).run()
    assert any(f"decoded at step {steps[1]:,}" in c for img in app.get("image") for c in img.captions)
    app.run()                                                      # and stays where the user put it
    assert history_slider(app, run).value == steps[1]
    history_slider(app, run).set_value(steps[-1]).run()            # back at the right end: follows again
    assert app.session_state[f"tr_hist_{run.name}_pin"] is None


def history_slider(at: AppTest, run: session.Run):
    """The Train page's history slider (its key names the newest grid's step: ``ui.history_picker``)."""
    found = [s for s in at.select_slider if str(s.key).startswith(f"tr_hist_{run.name}@")]
    assert len(found) == 1, [s.key for s in at.select_slider]
    return found[0]


def test_history_slider_follows_new_grids_during_a_run_and_keeps_a_dragged_step(app, monkeypatch):
    """The grid shows each new fixed-noise grid as it arrives (the run is not touched meanwhile);
    a step the user dragged to stays while newer grids arrive."""
    # On threads (GENLIB_DASHBOARD_POOL=0): the test makes grids come every 5 steps by changing the live
    # trainer's config mid-run, which a pool run (its trainer in a worker process) does not take.
    monkeypatch.setattr(session, "USE_POOL", False)
    run = start_training(app, "vae", 100_000)
    run.trainer.config.sample_every = 5
    seen = []
    for _ in range(40):
        before = [s for s, _ in run.snapshot().samples]
        app.run()
        if len(before) >= 2:
            seen.append(history_slider(app, run).value)
            assert seen[-1] >= before[-1]                        # the newest (or one that arrived meanwhile)
        if len(set(seen)) >= 3:
            break
        time.sleep(0.3)
    assert len(set(seen)) >= 3 and seen == sorted(seen), seen
    pick = [s for s, _ in run.snapshot().samples][1]
    history_slider(app, run).set_value(pick).run()
    newest = run.snapshot().samples[-1][0]
    assert wait_until(lambda: run.snapshot().samples[-1][0] > newest)
    app.run()
    kept = [s for s, _ in run.snapshot().samples]              # old grids are thinned out as new ones come
    assert history_slider(app, run).value == max(s for s in kept if s <= pick) < kept[-1]
    run.stop()


def _zip_of_images(n_per_class: int = 12) -> bytes:
    """A .zip as a user would make it: one top folder, a subfolder per class, PNGs plus a stray note."""
    from PIL import Image

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for c, (name, shade) in enumerate((("circles", 40), ("squares", 220))):
            for i in range(n_per_class):
                img = Image.new("RGB", (20 + i, 24), (shade, 255 - shade, 8 * i))
                png = io.BytesIO()
                img.save(png, format="PNG")
                zf.writestr(f"shapes/{name}/{i}.png", png.getvalue())
        zf.writestr("shapes/README.txt", "not an image")
    return buf.getvalue()


@pytest.mark.hostile(3)   # a zip bomb, not a zip, a zip without images
def test_training_on_an_uploaded_zip_of_images_and_bad_zips_are_refused(app):
    app.selectbox(key="dataset").set_value("folder").run()
    assert_clean(app)
    assert any("Upload a .zip" in i.value for i in app.sidebar.info)    # nothing yet: says what to upload
    app.switch_page("app_pages/train.py").run()
    assert not app.exception and app.info                               # the page points to the sidebar
    app.sidebar.file_uploader(key="folder_zip").upload("shapes.zip", _zip_of_images(), "application/zip").run()
    assert_clean(app)
    caption = " ".join(c.value for c in app.sidebar.caption)
    assert "24 images in 2 classes (circles, squares)" in caption and "(1, 28, 28)" in caption
    assert "1 files skipped: not images or unsafe paths" in caption
    held = runs_of(app).state["folder"]["data"]
    assert held.shape == (1, 28, 28) and held.class_names == ["circles", "squares"]
    for preset in ("vae", "dcgan"):                                     # MLP and conv (28 = 4 × 7)
        app.selectbox(key="tr_preset").set_value(preset).run()
        app.number_input(key="tr_steps").set_value(10)
        app.select_slider(key="tr_batch").set_value(16)
        app.button(key="tr_start").click().run()
        assert_clean(app)
        run = list(runs_of(app).runs.values())[-1]
        assert run.dataset == "folder" and run.preset == preset
        run.trainer.join(30)
        assert run.snapshot().state == "done", run.snapshot().message
    app.toggle(key="folder_rgb").set_value(True).run()                 # colour: the same zip, 3 channels
    assert_clean(app)
    assert "(3, 28, 28)" in " ".join(c.value for c in app.sidebar.caption)

    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a/zeros.png", bytes(8 << 20))                    # 8 MB of zeros: ~1000x compression
    bad = [("zip bomb", "bomb.zip", bomb.getvalue(), "zip bomb"),
           ("not a zip", "notes.zip", b"plain text, not a zip", "not a valid zip file"),
           ("zip without images", "empty.zip", _zip_of_images(0), "no readable images")]
    for what, name, raw, why in bad:
        app.sidebar.file_uploader(key="folder_zip").set_value((name, raw, "application/zip"))
        app.run()
        errors = [e.value for e in app.error]
        handled = not app.exception and len(errors) == 1 and ui.plain(why) in errors[0] and ui.plain(name) in errors[0]
        assert handled, (what, errors, [e.value for e in app.exception])
    app.selectbox(key="dataset").set_value("digits").run()              # the app keeps working
    assert_clean(app)
    app.switch_page("app_pages/overview.py").run()
    assert_clean(app)


# --- classroom-ready (issue 15): state that survives a reload, the view in the URL --------------------
def test_a_reload_with_the_session_id_finds_the_runs_still_running(app):
    run = start_training(app, "vae", 100_000)
    sid = app.query_params["sid"]
    assert session.SID_RE.fullmatch(sid)
    reloaded = new_app(sid=sid)                         # F5: a new Streamlit session, the same URL
    reloaded.switch_page("app_pages/train.py").run()
    assert_clean(reloaded)
    assert runs_of(reloaded) is runs_of(app) and run.phase == "running"
    assert any("running" in p.value["text"] if isinstance(p.value, dict) else "running" in str(p.proto.text)
               for p in reloaded.get("progress"))
    other = new_app()                                   # no id: a session of its own
    other.run()
    assert other.query_params["sid"] != sid and not runs_of(other).runs
    run.stop()


def test_ended_runs_are_saved_and_come_back_after_the_store_lets_the_session_go(app, state_dir):
    run = start_training(app, "vae", 30)
    run.trainer.join(30)
    sid = app.query_params["sid"]
    runs = runs_of(app)
    written = runs.persist()
    assert [p.parent.name for p in written] == [sid] and runs.persist() == []      # once per step
    session.STORE.release(runs)
    assert sid not in session.STORE
    back = new_app(sid=sid)
    back.run()
    assert f"{run.name} (session)" in back.selectbox(key=MODEL).options
    assert run.name in runs_of(back).restored
    fresh = new_app()
    fresh.run()
    assert not any("(session)" in o for o in fresh.selectbox(key=MODEL).options)


@pytest.mark.hostile(3)
def test_a_forged_session_id_is_replaced_not_used_as_a_path(state_dir):
    for bad in ("../../etc", "a" * 200, "x/y" * 8):
        at = new_app(sid=bad)
        at.run()
        assert_clean(at)
        assert at.query_params["sid"] != bad and session.SID_RE.fullmatch(at.query_params["sid"])
    with pytest.raises(ValueError):
        session.STORE.get("../../etc/passwd-and-more")


def test_saved_sessions_are_bounded_in_size_and_age(tmp_path):
    store = session.SessionStore(root=lambda: tmp_path)
    folders = []
    for i in range(4):
        f = tmp_path / f"session{i:02d}aaaaaaaaaaaa"
        f.mkdir()
        (f / "run.pt").write_bytes(b"x" * 2**20)                # 1 MB each
        os.utime(f, (time.time() - 100 + i, time.time() - 100 + i))
        folders.append(f)
    old = tmp_path / "sessionOLDaaaaaaaaaaaa"
    old.mkdir()
    os.utime(old, (time.time() - 9 * 86400, time.time() - 9 * 86400))
    (tmp_path / "not-a-session").mkdir()                          # not ours: never touched
    gone = store.cleanup(limit_mb=2.5, keep_days=7)
    assert set(gone) == {old, folders[0], folders[1]}             # too old, then the oldest over 2.5 MB
    assert folders[2].is_dir() and folders[3].is_dir() and (tmp_path / "not-a-session").is_dir()


def test_the_watchdog_keeps_a_reloaded_session_running():
    connected = {"old-tab": True, "new-tab": True}
    dog = session.SessionWatchdog(is_active=lambda sid: connected[sid], pause_after=1, stop_after=60)
    runs = session.SessionRuns()
    run = _tiny_run(runs)
    run.start()
    assert wait_until(lambda: run.snapshot().state == "running")
    dog.watch("old-tab", runs)
    dog.watch("new-tab", runs)                      # the reload attached the same runs
    try:
        assert len(dog) == 1
        connected["old-tab"] = False                # the page that was reloaded has gone
        dog.check(now=0)
        dog.check(now=5)
        assert run.snapshot().state == "running"
        connected["new-tab"] = False
        dog.check(now=6)
        dog.check(now=8)
        assert wait_until(lambda: run.snapshot().state == "paused")
    finally:
        runs.stop_all()


def test_the_url_opens_a_view_and_follows_the_sidebar(pretrained):
    at = new_app(model="digits-gan", present="1", lesson="4")
    at.switch_page("app_pages/conditional.py")
    at.run()
    assert_clean(at)
    assert at.selectbox(key=MODEL).value == "digits-gan (pretrained)"
    assert at.toggle(key="present").value is True
    assert at.query_params["lesson"] == "4"                      # another helper's parameter: left alone
    at.selectbox(key=MODEL).set_value("digits-cgan (pretrained)").run()
    assert at.query_params["model"] == "digits-cgan"
    at.toggle(key="present").set_value(False).run()
    assert "present" not in at.query_params


def test_each_dataset_has_its_own_model_box(pretrained):
    at = new_app()
    at.run()
    at.selectbox(key=MODEL).set_value("digits-gan (pretrained)").run()
    at.selectbox(key="dataset").set_value("ring").run()
    assert_clean(at)
    assert not [s for s in at.sidebar.selectbox if s.key == MODEL]         # digits' box is gone, not stale
    assert at.session_state["genlib_ctx"].model is None and "model" not in at.query_params
    at.selectbox(key="dataset").set_value("digits").run()
    assert at.selectbox(key=MODEL).value == "digits-gan (pretrained)"      # and digits' choice is kept


def test_presentation_mode_draws_large_grids_and_plain_tables(pretrained, monkeypatch):
    monkeypatch.setattr(measure, "table_metrics", lambda model, data, n=1000: {
        "classifier_fid": 3.0, "precision": 0.5, "recall": 0.25, "classifier_is": 4.0,
        "sample_seconds": 0.2, "peak_memory_mb": 12.0, "n": 1000})
    at = new_app(present="1")
    at.run()
    assert_clean(at)
    at.toggle(key="ov_metrics").set_value(True).run()
    assert_clean(at)
    assert len(at.table) == 2 and not at.dataframe                        # full names, every column
    about, quality = (t.value for t in at.table)
    assert list(about["model"]) == [ui.plain("digits-cgan"), ui.plain("digits-gan")]    # escaped: st.table reads markdown
    assert {"precision", "recall", "classifier IS ↑", "peak memory MB", "sampling s / 1k"} <= set(quality.columns)


def test_measuring_every_model_keeps_every_column(pretrained, monkeypatch):
    at = new_app()
    at.run()
    calls = []

    def fake(model, data, n=measure.LIVE_N):
        calls.append(model)
        return {"classifier_fid": 3.0, "precision": 0.5, "recall": 0.25, "classifier_is": 4.0,
                "classes_covered": 10.0, "sample_seconds": 0.2, "peak_memory_mb": 12.0, "n": 1000}

    monkeypatch.setattr(measure, "table_metrics", fake)
    at.toggle(key="ov_metrics").set_value(True).run()
    assert_clean(at)
    quality = at.dataframe[1].value
    assert len(calls) == 2 and list(quality["precision"]) == [0.5, 0.5] and list(quality["recall"]) == [0.25, 0.25]
    assert list(quality["sampling s / 1k"]) == [0.2, 0.2] and list(quality["classifier IS ↑"]) == [4.0, 4.0]


def test_the_eta_is_smoothed_against_a_jumpy_rate():
    eta, rng = ui.Eta(window=30, alpha=0.25), torch.Generator().manual_seed(0)
    done, t, shown = 0.0, 0.0, []
    for i in range(200):                                  # 10 steps/s on average, bursts of 1-19
        t += 1.0
        done += 1 + 18 * float(torch.rand(1, generator=rng))
        shown.append(eta.update(done, 5000, t))
    tail = [s for s in shown[20:] if math.isfinite(s)]
    jumps = [abs(b - a) for a, b in zip(tail, tail[1:])]
    assert max(jumps) < 15                                 # seconds per 1-s update, on a ~300 s estimate
    truth = (5000 - done) / 10
    assert abs(shown[-1] - truth) < 0.25 * truth
    assert ui.fmt_eta(float("nan")) == "estimating…" and ui.fmt_eta(183) == "about 3 min 00 s"


def test_gif_frames_carry_their_step():
    from PIL import Image

    grids = [(s, torch.zeros(4, 1, 8, 8, dtype=torch.uint8)) for s in (0, 250, 12_000)]
    gif = Image.open(io.BytesIO(images.gif_bytes(grids)))
    assert gif.n_frames == 3
    bands = []
    for i in range(3):
        gif.seek(i)
        frame = np.asarray(gif.convert("L"))
        band = frame[: frame.shape[0] - frame.shape[1]]         # the strip above the square grid
        assert band.size and (band < 128).any(), "no text in the frame's header"
        bands.append(band)
    assert not np.array_equal(bands[0], bands[2])              # a different number on each


def test_g_loss_and_d_of_fake_have_their_own_colours():
    assert figures.CURVE_COLORS["g_loss"] != figures.CURVE_COLORS["d_fake"]
    assert len(set(figures.CURVE_COLORS.values())) == len(figures.CURVE_COLORS)


def test_latent_scatter_hands_plotly_arrays_not_tensors():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")                         # torch tensors made NumPy warn on every draw
        fig = figures.latent_scatter(torch.randn(50, 2), torch.randint(0, 3, (50,)), ["a", "b", "c"], ("x", "y"), "t")
        fig.to_json()


def test_live_lab_charts_keep_their_spec_when_only_the_data_change():
    """The lab's charts are Vega-Lite specs whose data sit in named datasets: new points or a new
    measurement change the datasets, never the rest of the spec (the browser keeps the chart)."""
    def without_data(spec):
        return {k: v for k, v in spec.items() if k != "datasets"}

    a = figures.points_chart(torch.randn(50, 2), torch.randn(40, 2), "t", (torch.linspace(-1, 1, 4), torch.rand(4, 4)))
    b = figures.points_chart(torch.randn(50, 2), torch.randn(40, 2), "t", (torch.linspace(-1, 1, 4), torch.rand(4, 4)))
    assert without_data(a) == without_data(b) and a["datasets"] != b["datasets"]
    assert len(a["datasets"]["heat"]) == 16 and len(a["datasets"]["fake"]) == 40
    m1 = figures.metric_chart({"step": [0, 10], "toy_modes_covered": [1.0, 3.0]}, "c")
    m2 = figures.metric_chart({"step": [0, 10, 20], "toy_modes_covered": [1.0, 3.0, 8.0]}, "c")
    assert without_data(m1) == without_data(m2) and len(m2["datasets"]["metrics"]) == 3
    s1, s2 = figures.mode_share_chart(torch.zeros(8)), figures.mode_share_chart(torch.full((8,), 0.125))
    assert without_data(s1) == without_data(s2)


# --- hostile and broken inputs (issue 16): boundaries, cards as text, models that fit, session limits ---
EVIL = "![x](http://evil.example/pixel.png)"          # markdown that would make the browser fetch a URL
ALL_PAGES = PAGES + ["app_pages/latent.py", "app_pages/interpolate.py", "app_pages/ood.py", "app_pages/flow.py"]


def _crafted(preset: str = "gan", card: dict | None = None, edit=None, data_shape=None, num_classes=None,
             **kw) -> bytes:
    """A small digits checkpoint as the Train page saves it, its card extended with ``card`` and its
    payload then changed by ``edit(payload)`` (re-saved with torch.save: loadable, but crafted)."""
    data = resources.load_data("digits")
    if data_shape is None:
        model = genlib.make_model(preset, data, hidden=(32,), **kw)
        trainer = genlib.Trainer(model, data, genlib.TrainConfig(steps=4, batch_size=16, sample_every=2, n_fixed=20))
        trainer.run()
    else:
        model, trainer = genlib.make_model(preset, data_shape=data_shape, num_classes=num_classes, **kw), None
    raw = session.checkpoint_bytes(model, trainer, preset=preset, **(card or {}))
    if edit is not None:
        payload = torch.load(io.BytesIO(raw), weights_only=True)
        edit(payload)
        buf = io.BytesIO()
        torch.save(payload, buf)
        raw = buf.getvalue()
    return raw


PLAIN_TEXT = {"Code", "Text", "Dataframe", "Selectbox", "Multiselect"}    # never read as markdown


def markdown_texts(at: AppTest) -> list[str]:
    """The protos of every element (and block: expander labels) whose text Streamlit may read as
    markdown: everything but code, plain text, data frames and select boxes' options."""
    from streamlit.testing.v1 import element_tree as et

    out = []

    def walk(node) -> None:
        if isinstance(node, et.Block):
            if getattr(node, "proto", None) is not None:
                out.append(str(node.proto))
            for child in node.children.values():
                walk(child)
        elif type(node).__name__ not in PLAIN_TEXT:
            out.append(str(node.proto))

    walk(at._tree)
    return out


def upload(at: AppTest, name: str, raw: bytes, key: str = "upload") -> AppTest:
    box = next(u for u in at.sidebar.get("file_uploader") if u.key.split("#")[0] == key)
    box.set_value((name, raw, "application/octet-stream"))
    return at.run()


def sidebar_text(at: AppTest) -> str:
    return "\n".join(t.value for t in at.sidebar.text)


def test_a_failing_page_or_widget_is_one_line_and_the_rest_keeps_working(app, monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(figures, "model_rows", boom)             # the Overview's table
    app.run()
    assert not app.exception
    assert [e.value for e in app.error] == [ui.plain("The page Overview / compare") + " failed: RuntimeError: boom"]
    assert app.sidebar.selectbox(key="dataset").value == "digits" and app.title      # sidebar and page top drawn
    app.switch_page("app_pages/train.py").run()
    assert_clean(app)
    monkeypatch.setattr(context, "available_models", boom)     # a sidebar widget
    app.run()
    assert not app.exception
    assert [e.value for e in app.sidebar.error] == ["The model list failed: RuntimeError: boom"]
    assert app.title and not app.main.error                    # the page renders (no model picked)


@pytest.mark.hostile(6)    # markdown in the file name, description, data_note, name, run_name, preset
def test_markdown_in_a_card_or_file_name_never_reaches_a_markdown_element(pretrained):
    def evil_preset(payload):
        payload["card"]["preset"] = EVIL

    raw = _crafted(card=dict(description=EVIL, data_note=EVIL, name=EVIL, run_name=EVIL), edit=evil_preset)
    for present in ("", "1"):                               # st.table (presentation mode) reads markdown
        at = new_app(present=present) if present else new_app()
        at.run()
        upload(at, f"{EVIL}.pt", raw)
        label = next(o for o in at.selectbox(key=MODEL).options if "(upload)" in o)
        at.selectbox(key=MODEL).set_value(label).run()
        assert any(f"description: {EVIL}" in c.value for c in at.sidebar.code)    # the card, as text
        for page in ALL_PAGES:
            at.switch_page(page).run()
            assert not at.exception, (page, [e.value for e in at.exception])
            leaks = [t for t in markdown_texts(at) if "](http://evil" in t]
            assert not leaks, (page, leaks[0][:300])
        if "genlib_runs" in at.session_state:
            runs_of(at).stop_all()


@pytest.mark.hostile(3)    # another dataset's shape, another class count, another dataset's name
def test_models_that_do_not_fit_the_dataset_are_listed_with_why_not_offered(app):
    bad = {"ring.pt": _crafted("gan", data_shape=(2,), num_classes=0),
           "three.pt": _crafted("cgan", data_shape=(1, 8, 8), num_classes=3, hidden=(32,)),
           "other.pt": _crafted("gan", card={"dataset": "fashion-mnist"}, edit=lambda p: p["card"].update(
               dataset="fashion-mnist"))}
    for name, raw in bad.items():
        upload(app, name, raw)
        assert not app.exception
    options = app.selectbox(key=MODEL).options
    assert not any(n in o for o in options for n in bad)
    listed = sidebar_text(app)
    assert "ring.pt (upload): it makes points of shape (2,); digits has (1, 8, 8)" in listed
    assert "three.pt (upload): it is conditional on 3 classes; digits has 10" in listed
    assert "other.pt (upload): it was trained on fashion-mnist, not digits" in listed
    for page in ALL_PAGES:
        app.switch_page(page).run()
        assert_clean(app)


@pytest.mark.hostile(2)    # wrong-typed card fields; odd but loadable sample grids
def test_crafted_but_loadable_checkpoints_do_not_crash_the_overview_or_the_lab(app):
    def odd(payload):
        card = payload["card"]
        card.update(epochs="many", wall_time_s=[1], steps="?", parameters={"G": "x"},
                    metrics={"fid_floor": "x", "n": {"a": 1}, "classifier_fid": [1], "precision": None})
        grid = payload["samples"][0]["images"]
        payload["samples"] = [{"step": 9, "images": grid[:1]}, {"step": 0, "images": grid.repeat(51, 1, 1, 1)[:1024]},
                              {"step": 9, "images": grid[:3]}]     # one image, 1,024 images, steps out of order

    upload(app, "odd.pt", _crafted(edit=odd))
    assert not app.exception
    app.selectbox(key=MODEL).set_value("odd.pt (upload)").run()
    warned = " ".join(w.value for w in app.sidebar.warning)
    assert "epochs" in warned and "dropped" in warned                # ckpt.warnings, shown
    assert_clean(app)                                                # the Overview, with its table
    app.switch_page("app_pages/mode_collapse.py").run()
    assert_clean(app)
    app.selectbox(key="mc_gan@digits").set_value("odd.pt (upload)").run()
    assert_clean(app)
    assert app.get("plotly_chart")                                  # the class histogram of its grids


@pytest.mark.hostile(2)    # a checkpoint with a wrong-shaped grid, then junk: refused, each can be removed
def test_a_refused_upload_says_why_and_can_be_removed(app):
    def wrong_grid(payload):
        payload["samples"][0]["images"] = torch.zeros(4, 3, 5, 5, dtype=torch.uint8)

    for name, raw, why in (("grid.pt", _crafted(edit=wrong_grid), "sample grid"),
                           ("junk.pt", b"not a checkpoint", "not a readable checkpoint")):
        upload(app, name, raw)
        assert not app.exception
        errors = [e.value for e in app.sidebar.error]
        assert len(errors) == 1 and ui.plain(why) in errors[0], errors
        app.sidebar.button(key="upload_remove").click().run()
        assert_clean(app)
        assert all(not u.value for u in app.sidebar.get("file_uploader"))      # a fresh, empty file box
        app.switch_page("app_pages/overview.py").run()
        assert_clean(app)


@pytest.mark.hostile   # a third run while two are going
def test_at_most_two_runs_go_at_once_and_start_says_why(app):
    first = start_training(app, "gan", 100_000)
    second = start_training(app, "vae", 100_000)
    assert first.alive and second.alive
    app.run()                                    # the page drawn with both going
    assert app.button(key="tr_start").disabled
    assert any("at most 2 may go at once" in w.value for w in app.warning)
    with pytest.raises(session.LimitError):
        runs_of(app).add(session.Run("third", "gan", "digits", genlib.Trainer(
            genlib.make_model("gan", resources.load_data("digits")), resources.load_data("digits"),
            genlib.TrainConfig(steps=10))))
    app.switch_page("app_pages/mode_collapse.py").run()
    assert app.button(key="mc_start").disabled                       # two more: refused too
    first.stop()
    second.stop()
    app.switch_page("app_pages/train.py").run()
    assert not app.button(key="tr_start").disabled


@pytest.mark.hostile(2)   # a fifth upload; an upload over the session's memory
def test_uploads_kept_and_session_memory_are_bounded(app, monkeypatch):
    data = resources.load_data("digits")
    model = genlib.make_model("gan", data, hidden=(32,))
    files = {f"m{i}.pt": session.checkpoint_bytes(model, None, preset="gan", dataset="digits", description=str(i))
             for i in range(5)}
    for name, raw in files.items():
        upload(app, name, raw)
        assert_clean(app)
    assert len(runs_of(app).uploads) == session.MAX_UPLOADS == 4
    kept = [n for n, _ in runs_of(app).uploads.values()]
    assert kept == ["m1.pt", "m2.pt", "m3.pt", "m4.pt"]                 # the oldest let go
    assert any("m0.pt let go for m4.pt" in i.value for i in app.sidebar.info)
    assert all(not isinstance(v, (bytes, bytearray)) for v in runs_of(app).uploads.values())
    monkeypatch.setattr(session, "SESSION_MB", 0.01)
    upload(app, "big.pt", session.checkpoint_bytes(model, None, preset="gan", dataset="digits", description="big"))
    assert not app.exception
    assert any("big.pt is not kept" in e.value and "over its" in e.value for e in app.sidebar.error)
    assert len(runs_of(app).uploads) == 4
    app.switch_page("app_pages/train.py").run()
    assert app.button(key="tr_start").disabled                        # no new run either


@pytest.mark.hostile   # GENLIB_DATA_DIR is a file
def test_a_corrupt_data_root_does_not_crash_the_sidebar(monkeypatch, tmp_path):
    root = tmp_path / "data"
    root.write_text("not a folder")
    monkeypatch.setenv("GENLIB_DATA_DIR", str(root))
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception
    assert at.sidebar.selectbox(key="dataset").value in ("digits", "mnist")
    for name in ("mnist", "cifar10"):          # cifar10 is in no data root here: the sidebar says so
        at.sidebar.selectbox(key="dataset").set_value(name).run()
        assert not at.exception
        assert not any(str(root) in e.value for e in at.sidebar.error)    # no file-system paths
    assert any("cifar10 files are not on this machine" in e.value for e in at.sidebar.error)
    at.sidebar.selectbox(key="dataset").set_value("digits").run()
    assert_clean(at)


@pytest.mark.hostile(3)   # steps and batch outside the CLI's bounds, a network over the ceiling
def test_the_training_form_checks_bounds_and_networks_before_building():
    data = resources.load_data("digits")
    assert train_form.build_problem("gan", data, {}, dict(steps=100, batch_size=32)) is None
    assert "steps must be" in train_form.build_problem("gan", data, {}, dict(steps=10**9, batch_size=32))
    assert "batch size must be" in train_form.build_problem("gan", data, {}, dict(steps=100, batch_size=0))
    why = train_form.build_problem("gan", data, {"hidden": (8192, 8192, 8192)}, dict(steps=100, batch_size=32))
    assert "over the ceiling" in why
