"""The latent-space pages under Streamlit's AppTest: Latent space, Interpolate & traverse,
Out-of-distribution latents. Each renders on the offline default (whatever pretrained digits models
exist) and on tiny models trained here; the key interaction of each page works (a clicked point, the
interpolation method, an OOD distribution and its measured table); a dataset without a model is
explained. Plus ``figures.grid_figure``, whose tick labels must sit under the images they name.
"""
from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

import genlib  # noqa: E402
from conftest import APP, assert_clean  # noqa: E402
from dashboard import context, figures, measure, resources  # noqa: E402
from genlib import latent, sampling  # noqa: E402

MODEL = context.model_key("digits")
PAGES = ["app_pages/latent.py", "app_pages/interpolate.py", "app_pages/ood.py"]


@pytest.fixture(autouse=True)
def state_dir(tmp_path, monkeypatch):
    """Saved runs go to a temporary folder, never the user's cache."""
    monkeypatch.setenv("GENLIB_DASHBOARD_STATE_DIR", str(tmp_path / "sessions"))


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    """Small digits models, trained for a few steps into a temporary pretrained/ folder under
    shipped names (the dashboard lists genlib.pretrained's recipes): a 2-D and an 8-D VAE, a GAN and a conditional GAN (MLPs with one hidden layer of 32)."""
    folder = tmp_path_factory.mktemp("pretrained")
    data = resources.load_data("digits")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)                 # tiny models: one thread is fastest on a busy CPU
    try:
        for name, preset, kw in (("vae-2d", "vae", {"latent_dim": 2}), ("vae", "vae", {"latent_dim": 8}),
                                 ("gan", "gan", {"latent_dim": 8}), ("cgan", "cgan", {"latent_dim": 8})):
            torch.manual_seed(0)
            model = genlib.make_model(preset, data, hidden=(32,), **kw)
            trainer = genlib.Trainer(model, data, genlib.TrainConfig(steps=40, batch_size=64, sample_every=20,
                                                                     n_fixed=20))
            trainer.run()
            genlib.save_checkpoint(folder / f"digits-{name}.pt", model, trainer, preset=preset)
    finally:
        torch.set_num_threads(threads)
    return folder


@pytest.fixture
def app(tiny_models, monkeypatch):
    monkeypatch.setattr(resources, "PRETRAINED_ROOT", tiny_models)
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["dataset"] = "digits"
    at.run()
    return at


def open_page(at: AppTest, page: str, model: str, **widgets) -> AppTest:
    """Pick ``model`` in the sidebar, preset page widgets through session state, open the page."""
    at.selectbox(key=MODEL).set_value(f"{model} (pretrained)").run()
    for key, value in widgets.items():
        at.session_state[key] = value
    at.switch_page(page).run()
    assert_clean(at)
    return at


def model_of(name: str, folder: Path) -> genlib.GenerativeModel:
    return genlib.load_checkpoint(folder / f"{name}.pt").model.eval()


# --- the offline default -------------------------------------------------------------------------
def test_pages_render_on_the_offline_default():
    at = AppTest.from_file(APP, default_timeout=90)
    at.query_params["dataset"] = "digits"
    at.run()
    assert at.selectbox(key="dataset").value == "digits"
    at.session_state["lat_n"] = 250          # t-SNE (the default projection) of 250 codes: seconds, not tens
    for page in PAGES:
        at.switch_page(page).run()
        assert_clean(at)
        assert at.title and at.expander, f"{page}: no title or no explanation"
        if at.session_state["genlib_ctx"].model is None:      # no pretrained digits model built yet
            assert any("Train live" in i.value for i in at.info)


def test_a_dataset_without_models_says_so(monkeypatch, tmp_path):
    monkeypatch.setattr(resources, "PRETRAINED_ROOT", tmp_path)     # no pretrained models at all
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    for page in PAGES:
        at.switch_page(page).run()
        assert_clean(at)
        assert any("There is no model" in i.value and "Train live" in i.value for i in at.info)


# --- Latent space ---------------------------------------------------------------------------------
def test_latent_page_maps_a_clicked_point_to_its_image(app, tiny_models):
    open_page(app, "app_pages/latent.py", "digits-vae", lat_proj="pca")
    assert app.metric[0].label == "Active units"
    test = resources.held_out(resources.load_data("digits"))
    model = model_of("digits-vae", tiny_models)
    assert app.metric[0].value == f"{latent.posterior_collapse(model, test).active_units} / 8"
    assert any("Click a point" in m.value for m in app.markdown)
    n = app.select_slider(key="lat_n").value
    # a click arrives as the chart's selection state: the point's customdata is its index
    app.session_state["lat_scatter"] = {"selection": {"points": [{"curve_number": 3, "point_index": 2,
                                                                  "customdata": 7}],
                                                      "point_indices": [2], "box": [], "lasso": []}}
    app.run()
    assert_clean(app)
    assert any("The point you clicked" in m.value for m in app.markdown)
    caption = next(c.value for c in app.caption if c.value.startswith("Point 7"))
    x, y = test.get(latent.subset_index(test, n)[7:8])
    assert f"class **{test.class_names[int(y)]}** (true label)" in caption
    shown = [float(v) for v in re.search(r"z = \(([^)]*)\)", caption).group(1).replace("…", "").split(",") if v.strip()]
    assert shown == pytest.approx(model.encode(x)[0, :6].tolist(), abs=0.006)   # the clicked image's code


def test_latent_page_on_a_2d_vae_and_on_a_gan(app):
    open_page(app, "app_pages/latent.py", "digits-vae-2d")
    assert not app.get("button_group")                       # a 2-D latent needs no projection
    assert app.metric[0].value.endswith("/ 2")
    app.selectbox(key=MODEL).set_value("digits-gan (pretrained)").run()
    app.session_state["lat_proj"] = "pca"
    app.session_state["lat_n"] = 250
    app.run()
    assert_clean(app)
    assert any("no encoder" in i.value for i in app.info)
    assert not app.metric                                    # no KL for a GAN
    app.button(key="lat_use_vae").click().run()               # one click to a model with an encoder
    assert_clean(app)
    assert app.selectbox(key=MODEL).value in ("digits-vae-2d (pretrained)", "digits-vae (pretrained)")
    assert app.metric[0].label == "Active units"


# --- Interpolate & traverse -----------------------------------------------------------------------
def test_interpolation_method_changes_the_path(app, tiny_models):
    open_page(app, "app_pages/interpolate.py", "digits-gan")
    model = model_of("digits-gan", tiny_models)
    za, zb = sampling.prior_draw(model, 1, 0)[0], sampling.prior_draw(model, 1, 1)[0]     # seeds A = 0, B = 1
    norms = {}
    for method in ("linear", "spherical"):
        app.segmented_control(key="ip_method").set_value(method).run()
        assert_clean(app)
        caption = next(c.value for c in app.caption if "path. Length |z|" in c.value)
        assert caption.startswith(method.capitalize())
        norms[method] = [float(v) for v in caption.split("along it: ")[1].split(" (")[0].split(", ")]
        expected = latent.interpolation_path(za, zb, 9, method).norm(dim=1)
        assert norms[method] == pytest.approx(expected.tolist(), abs=0.051)
    # the same endpoints; the straight line's middle is shorter than the arc's
    assert norms["linear"][0] == norms["spherical"][0] and norms["linear"][-1] == norms["spherical"][-1]
    assert norms["linear"][4] < norms["spherical"][4] - 0.5


def test_vae_interpolates_test_images_traverses_and_edits(app):
    open_page(app, "app_pages/interpolate.py", "digits-vae")
    assert any("not conditional" in i.value for i in app.info)       # no class-to-class for a VAE
    app.selectbox(key="ip_A_cls@digits").set_value(7).run()
    app.number_input(key="ip_A_i@digits@7").set_value(3).run()
    app.segmented_control(key="ip_method").set_value("spherical").run()
    app.slider(key="ip_strength").set_value(-1.0).run()
    app.multiselect(key="ip_dims@digits-vae (pretrained)").set_value([0, 3]).run()
    assert_clean(app)
    assert len(app.get("plotly_chart")) == 3                         # path, traversal, concept strip


def test_class_to_class_on_a_conditional_gan(app):
    open_page(app, "app_pages/interpolate.py", "digits-cgan")
    assert not any("not conditional" in i.value for i in app.info)
    app.selectbox(key="ip_ca@digits").set_value(1).run()
    app.selectbox(key="ip_cb@digits").set_value(7).run()
    app.segmented_control(key="ip_method").set_value("spherical").run()
    assert_clean(app)
    assert app.get("plotly_chart")


# --- Out-of-distribution latents ------------------------------------------------------------------
def test_ood_page_measures_the_chosen_distribution(app):
    open_page(app, "app_pages/ood.py", "digits-gan")
    assert any("positive only" in i.value for i in app.info)          # exponential is the default
    app.selectbox(key="ood_kind").set_value("cauchy").run()
    assert_clean(app)
    table = app.dataframe[0].value
    assert list(table.columns) == ["measure", "N(0, I) codes", "cauchy codes", "what it measures"]
    measures = list(table["measure"])
    assert "z_norm" in measures and "discriminator (P(real))" in measures and "nn_distance" in measures
    assert measure.classifier_for("digits") is not None, "the digits classifier ships with the repo"
    assert "classifier_confidence" in measures
    assert table["what it measures"].str.len().min() > 10
    assert len(app.get("image")) == 2                                 # the two grids, side by side
    z_norm = table.set_index("measure").loc["z_norm"]
    assert z_norm["cauchy codes"] > z_norm["N(0, I) codes"]            # heavy tails: longer codes


def test_ood_page_refuses_bad_parameters(app):
    open_page(app, "app_pages/ood.py", "digits-vae", ood_kind="uniform")
    app.number_input(key="ood_uniform_low").set_value(2.0).run()
    assert not app.exception
    assert any("low must be < high" in w.value for w in app.warning)
    assert not app.dataframe


# --- helpers -------------------------------------------------------------------------------------
def test_grid_figure_puts_each_label_under_its_image():
    from PIL import Image

    x = (torch.arange(6, dtype=torch.uint8) * 40 + 20).view(6, 1, 1, 1).expand(6, 1, 5, 7).contiguous()  # image i = 40 i + 20
    fig = figures.grid_figure(x, 3, ["a", "b", "c"], ["r0", "r1"], "x", "y", cell_px=20)
    png = base64.b64decode(fig.data[0].source.split(",", 1)[1])
    img = np.asarray(Image.open(io.BytesIO(png)))
    xs, ys = fig.layout.xaxis.tickvals, fig.layout.yaxis.tickvals
    assert list(fig.layout.xaxis.ticktext) == ["a", "b", "c"] and len(ys) == 2
    for i in range(6):
        r, c = divmod(i, 3)
        assert img[round(ys[r]), round(xs[c])] == 40 * i + 20
    assert fig.layout.xaxis.title.text == "x" and fig.layout.yaxis.title.text == "y"


def test_latent_dimension_boxes_belong_to_their_model(app):
    """The manifold's dimension boxes show KL figures of the model picked: a new model, new boxes."""
    open_page(app, "app_pages/latent.py", "digits-vae", lat_proj="pca")
    assert len(app.selectbox(key="lat_dx@digits-vae (pretrained)").options) == 8     # the 8-D VAE's dimensions
    app.selectbox(key=MODEL).set_value("digits-vae-2d (pretrained)").run()
    assert_clean(app)
    keys = [s.key for s in app.selectbox]
    assert "lat_dx@digits-vae-2d (pretrained)" in keys and "lat_dx@digits-vae (pretrained)" not in keys
    box = app.selectbox(key="lat_dx@digits-vae-2d (pretrained)")
    assert len(box.options) == 2 and all("nats" in o for o in box.options)
