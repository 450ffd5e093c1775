"""UI helpers shared by the pages. Each returns a value (an image, a figure, a choice) so pages stay
a few dozen lines that compose genlib calls.
"""
from __future__ import annotations

import io
import math
from typing import Any

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch
from plotly.subplots import make_subplots

import genlib
from genlib.latent import prior_draw
from genlib.models import PRESETS, preset_config
from genlib.sampling import to_uint8

from . import state

COLORS = {"real": "#9e9e9e", "fake": "#e4572e", "a": "#1f77b4", "b": "#e4572e", "c": "#2ca02c", "d": "#9467bd"}


# --- text ----------------------------------------------------------------------------------------
def explain(markdown: str, title: str = "What am I looking at?") -> None:
    with st.expander(title):
        st.markdown(markdown)


def fmt_duration(seconds: float) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def progress_text(snap: genlib.Snapshot) -> str:
    eta = f" · ETA {fmt_duration(snap.eta)}" if snap.state == "running" else ""
    return (f"{snap.state} · step {snap.step:,} / {snap.total_steps:,} · epoch {snap.epoch:.1f} · "
            f"{snap.images_per_s:,.0f} examples/s{eta}")


def need_data(ctx: state.Context) -> genlib.Dataset:
    """The sidebar's dataset, or stop the page with a pointer to the sidebar."""
    if ctx.data is None and ctx.dataset == "folder":
        st.info("Upload a .zip of your images in the sidebar (one subfolder per class, or flat) to use them here.")
        st.stop()
    if ctx.data is None:
        st.info(f"The dataset **{ctx.dataset}** is not available here (the sidebar says why and what "
                "to do). Pick **digits** to continue offline.")
        st.stop()
    return ctx.data


def no_model_note(ctx: state.Context, what: str = "model") -> None:
    st.info(f"There is no {what} for **{ctx.dataset}** yet: train one on the **Train live** page (it "
            "joins the model picker when it finishes or is stopped), or upload a checkpoint in the sidebar.")
    st.page_link("app_pages/train.py", label="Go to Train live", icon=":material/model_training:")


def require_image_model(ctx: state.Context):
    """The picked model's entry, or a note and the end of the page when the data are not images or
    there is no model: the image pages' common preamble."""
    if ctx.data is None or not ctx.data.is_image:
        st.info("This page shows images: pick an image dataset in the sidebar (**digits** works offline).")
        st.stop()
    if ctx.model is None:
        no_model_note(ctx, "model")
        st.stop()
    return ctx.model


# --- images --------------------------------------------------------------------------------------
def image_grid(x: torch.Tensor, nrow: int | None = None, pad: int = 1, min_side: int = 320) -> np.ndarray:
    """uint8 (n, C, H, W) -> one uint8 image (rows, cols) or (rows, cols, 3), upscaled by an integer
    factor (nearest neighbour, so pixels stay crisp) until it is at least ``min_side`` wide."""
    x = x.detach().cpu()
    if x.dtype != torch.uint8:
        x = (x.float().clamp(0, 1) * 255).round().to(torch.uint8)
    n, c, h, w = x.shape
    nrow = nrow or math.ceil(math.sqrt(n))
    ncol = math.ceil(n / nrow)
    grid = torch.full((c, ncol * (h + pad) + pad, nrow * (w + pad) + pad), 255, dtype=torch.uint8)
    for i in range(n):
        r, col = divmod(i, nrow)
        grid[:, pad + r * (h + pad): pad + r * (h + pad) + h, pad + col * (w + pad): pad + col * (w + pad) + w] = x[i]
    scale = max(1, math.ceil(min_side / grid.shape[2]))
    grid = grid.repeat_interleave(scale, 1).repeat_interleave(scale, 2)       # (C, H', W')
    arr = grid.permute(1, 2, 0).numpy()
    return arr[:, :, 0] if c == 1 else arr


def png_bytes(img: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def gif_bytes(samples: list[tuple[int, torch.Tensor]], ms_per_frame: int = 250) -> bytes:
    """The fixed-noise grids along training as an animated GIF (one frame per saved grid)."""
    from PIL import Image

    frames = [Image.fromarray(image_grid(x, min_side=256)).convert("P") for _, x in samples]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=ms_per_frame, loop=0)
    return buf.getvalue()


def checkpoint_bytes(model: genlib.GenerativeModel, trainer: genlib.Trainer | None = None, **card: Any) -> bytes:
    buf = io.BytesIO()
    genlib.save_checkpoint(buf, model, trainer, **card)
    return buf.getvalue()


@torch.no_grad()
def draw(model: genlib.GenerativeModel, n: int, seed: int = 0, labels: torch.Tensor | None = None,
         z: torch.Tensor | None = None) -> torch.Tensor:
    """n samples on the CPU, uint8 images or float (n, 2) points, from ``z`` (n, D) or else from
    z ~ N(0, I) drawn with ``seed`` (``genlib.latent.prior_draw``: the same z on any device)."""
    z = prior_draw(model, n, seed) if z is None else z                  # (n, D)
    return to_uint8(model.sample(n, labels=labels, z=z))


def history_picker(samples: list[tuple[int, torch.Tensor]], key: str) -> tuple[int, torch.Tensor]:
    """A slider over the saved fixed-noise grids, by training step. It follows the newest grid until
    the user drags it back, and keeps the chosen step while new grids arrive. Returns (step, samples)."""
    if len(samples) < 2:
        return samples[-1]
    steps = [s for s, _ in samples]
    current = st.session_state.get(key)                    # the slider's value, as the user left it
    follow = current is None or current == st.session_state.get(key + "_newest")
    # set before the widget: its options change as grids arrive (and old ones are thinned out)
    st.session_state[key] = steps[-1] if follow else max([s for s in steps if s <= current] or steps[:1])
    st.session_state[key + "_newest"] = steps[-1]
    step = st.select_slider("Training history: fixed-noise grid at step", steps, key=key,
                            help="Drag back to see how the same noise vectors looked earlier in training; "
                                 "at the right end it follows the newest grid.")
    return samples[steps.index(step)]


def memo(key: str, version: Any, build):
    """``build()``, kept in this session under ``key`` until ``version`` changes. A live view that
    polls redraws a figure or re-encodes an image only when its data changed."""
    box = st.session_state.setdefault("genlib_memo", {})
    if key not in box or box[key][0] != version:
        box[key] = (version, build())
    return box[key][1]


# --- figures -------------------------------------------------------------------------------------
DRAW_POINTS = 300     # points drawn per curve: a chart is ~500 px wide; more only costs redraw time


def thin(x: list, y: list, max_points: int = DRAW_POINTS) -> tuple[list, list]:
    """A curve with at most ``max_points`` points for drawing: consecutive points averaged in groups
    (missing values skipped), each group drawn at its last x, so the curve still ends at the newest
    point. (``genlib.trainer.History`` stores its points the same way, as means over log intervals.)"""
    n = len(y)
    if n <= max_points:
        return list(x), list(y)
    k = math.ceil(n / max_points)
    xs, ys = [], []
    for i in range(0, n, k):
        vals = [v for v in y[i:i + k] if v is not None]
        xs.append(x[min(i + k, n) - 1])
        ys.append(sum(vals) / len(vals) if vals else None)
    return xs, ys


def _line(fig, x, y, name, color=None, row=1, col=1, dash=None):
    y = [None if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in y]
    x, y = thin(x, y)
    mode = "lines" if len(y) > 30 else "lines+markers"          # a few points: show where they are
    fig.add_trace(go.Scatter(x=x, y=y, name=name, mode=mode, line=dict(color=color, dash=dash)), row=row, col=col)


def loss_figure(history: dict[str, list[float]], family: str, loss: str = "") -> go.Figure:
    """Loss curves of one run, laid out for its family (see the subplot titles for what each shows)."""
    steps = history.get("step", [])
    h = {k: v for k, v in history.items() if k != "step"}
    if family == "vae":
        fig = make_subplots(1, 2, subplot_titles=("Loss terms per example (nats)", "KL weight β (annealing)"))
        for key, name, color in (("recon", "reconstruction −log p(x|z)", COLORS["a"]),
                                 ("kl", "KL(q(z|x) ‖ p(z))", COLORS["b"]),
                                 ("neg_elbo", "−ELBO = recon + KL", COLORS["c"])):
            if key in h:
                _line(fig, steps, h[key], name, color)
        if "beta" in h:
            _line(fig, steps, h["beta"], "β", COLORS["d"], col=2)
        fig.update_yaxes(title_text="nats per example", row=1, col=1)
        fig.update_yaxes(title_text="β", rangemode="tozero", row=1, col=2)
    elif loss in ("wgan", "wgan-gp", "hinge"):
        right = "Gradient penalty (before ×λ)" if loss == "wgan-gp" else "Critic score, real vs generated"
        fig = make_subplots(1, 2, subplot_titles=("Critic and generator losses (critic-score units)", right))
        if "wasserstein" in h:
            _line(fig, steps, h["wasserstein"], "Wasserstein estimate E[f(x)] − E[f(G(z))]", COLORS["c"])
        _line(fig, steps, h.get("d_loss", []), "critic loss", COLORS["a"])
        _line(fig, steps, h.get("g_loss", []), "generator loss −E[f(G(z))]", COLORS["b"])
        if loss == "wgan-gp":
            _line(fig, steps, h.get("gp", []), "gradient penalty", COLORS["d"], col=2)
            fig.update_yaxes(title_text="(‖∇f‖ − 1)²", rangemode="tozero", row=1, col=2)
        else:
            _line(fig, steps, h.get("d_real", []), "f(x) on real", COLORS["real"], col=2)
            _line(fig, steps, h.get("d_fake", []), "f(G(z)) on generated", COLORS["fake"], col=2)
            fig.update_yaxes(title_text="critic score", row=1, col=2)
        fig.update_yaxes(title_text="critic-score units", row=1, col=1)
    else:
        fig = make_subplots(1, 2, subplot_titles=("Losses (binary cross-entropy, nats)",
                                                  "D's mean output: P(real) it assigns"))
        _line(fig, steps, h.get("d_loss", []), "D loss", COLORS["a"])
        _line(fig, steps, h.get("g_loss", []), "G loss", COLORS["b"])
        _line(fig, steps, h.get("d_real", []), "D(x) on real", COLORS["real"], col=2)
        _line(fig, steps, h.get("d_fake", []), "D(G(z)) on generated", COLORS["fake"], col=2)
        fig.add_hline(y=0.5, line_dash="dot", line_color="grey", row=1, col=2)
        fig.update_yaxes(title_text="nats", row=1, col=1)
        fig.update_yaxes(title_text="probability", range=[0, 1], row=1, col=2)
    fig.update_xaxes(title_text="training step")
    fig.update_layout(height=330, margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=-0.25))
    return fig


# Display names; "classifier-FID" is measured with the dataset's own small CNN, NOT Inception.
METRIC_LABELS = {
    "toy_modes_covered": "modes covered", "toy_high_quality": "high-quality share (within 3σ of a mode)",
    "classifier_fid": "classifier-FID ↓ (own CNN, not Inception FID)", "kid": "classifier-KID ↓",
    "classes_covered": "classes covered", "mean_confidence": "classifier confidence",
    "label_accuracy": "label accuracy", "precision": "precision", "recall": "recall",
}


def metric_figure(metrics: dict[str, list[float]], title: str, labels: dict[str, str] | None = None) -> go.Figure:
    """One line per metric in ``metrics`` ({'step': [...], name: [...]}), each on its own row."""
    labels = {**METRIC_LABELS, **(labels or {})}
    names = sorted(k for k in metrics if k != "step")     # a stable order: the chart updates in place
    fig = make_subplots(max(1, len(names)), 1, shared_xaxes=True, vertical_spacing=0.12,
                        subplot_titles=[labels.get(k, k) for k in names] or [title])
    for i, k in enumerate(names, start=1):
        _line(fig, metrics["step"], metrics[k], labels.get(k, k), list(COLORS.values())[2 + i % 4], row=i)
        fig.update_yaxes(title_text=labels.get(k, k).split(" (")[0], row=i, col=1)
    fig.update_xaxes(title_text="training step", row=max(1, len(names)), col=1)
    fig.update_layout(title=title, height=140 + 150 * len(names), showlegend=False,
                      margin=dict(l=10, r=10, t=60, b=10))
    return fig


def points_figure(real: torch.Tensor, fake: torch.Tensor | None, title: str,
                  heat: tuple[torch.Tensor, torch.Tensor] | None = None, heat_label: str = "D(x)",
                  lim: float = 1.6) -> go.Figure:
    """Real (grey) and generated (red) 2-D points, optionally over a heat-map of D on the plane."""
    fig = go.Figure()
    if heat is not None:
        ticks, values = heat
        prob = heat_label.startswith("P(")
        fig.add_trace(go.Heatmap(x=ticks.numpy(), y=ticks.numpy(), z=values.numpy(), colorscale="RdBu",
                                 zmin=0 if prob else None, zmax=1 if prob else None, opacity=0.6,
                                 colorbar=dict(title=dict(text=heat_label, side="right"), len=0.8)))
    fig.add_trace(go.Scatter(x=real[:, 0].numpy(), y=real[:, 1].numpy(), mode="markers", name="real data",
                             marker=dict(size=3, color=COLORS["real"])))
    if fake is not None:
        fig.add_trace(go.Scatter(x=fake[:, 0].numpy(), y=fake[:, 1].numpy(), mode="markers", name="generated",
                                 marker=dict(size=3, color=COLORS["fake"])))
    fig.update_xaxes(title_text="x₁", range=[-lim, lim], constrain="domain")
    fig.update_yaxes(title_text="x₂", range=[-lim, lim], scaleanchor="x")
    fig.update_layout(title=title, height=430, margin=dict(l=10, r=10, t=50, b=10),
                      legend=dict(orientation="h", y=-0.2))
    return fig


def mode_share_figure(share: torch.Tensor) -> go.Figure:
    """Bars: the share of generated points nearest to each mode, against the uniform share."""
    k = len(share)
    fig = go.Figure(go.Bar(x=[str(i) for i in range(k)], y=share.numpy() * 100, marker_color=COLORS["fake"]))
    fig.add_hline(y=100 / k, line_dash="dot", line_color="grey", annotation_text="uniform")
    fig.update_xaxes(title_text="mode (nearest centre)")
    fig.update_yaxes(title_text="% of generated points", rangemode="tozero")
    fig.update_layout(title="Where the generated points go", height=260, margin=dict(l=10, r=10, t=40, b=10))
    return fig


def class_share_figure(steps: list[int], shares: torch.Tensor, class_names: list[str]) -> go.Figure:
    """Heat-map: which share of a model's fixed-noise samples the classifier puts in each class."""
    fig = go.Figure(go.Heatmap(x=steps, y=class_names, z=shares.T.numpy() * 100, colorscale="Viridis",
                               zmin=0, colorbar=dict(title=dict(text="% of samples", side="right"))))
    fig.update_xaxes(title_text="training step (saved fixed-noise grid)", type="category")
    fig.update_yaxes(title_text="class the classifier predicts", type="category")
    fig.update_layout(title="Class histogram of generated samples along training", height=380,
                      margin=dict(l=10, r=10, t=50, b=10))
    return fig


# --- tables --------------------------------------------------------------------------------------
TABLE_METRICS = ("classifier_fid", "precision", "recall", "classes_covered", "label_accuracy",
                 "toy_modes_covered", "toy_high_quality")
SHORT = {"generator": "G", "discriminator": "D", "encoder": "enc", "decoder": "dec"}


def model_rows(entries: list[state.ModelEntry], metrics: dict[str, dict[str, float]] | None = None) -> list[dict]:
    """One row per model: where it comes from, parameters per network, steps and time from its card,
    and its metrics (measured now when given in ``metrics``, else from its card)."""
    rows = []
    for e in entries:
        card, now = e.card, (metrics or {}).get(e.label)
        measured = now or card.get("metrics") or {}
        row = {"model": e.name, "source": e.source, "preset": e.preset or card.get("preset", e.model.family),
               "parameters": " + ".join(f"{SHORT.get(k, k)} {n:,}" for k, n in e.model.network_sizes().items()),
               "steps": card.get("steps", e.model.steps),
               "epochs": round(float(card["epochs"]), 1) if "epochs" in card else None,
               "train time": fmt_duration(card["wall_time_s"]) if "wall_time_s" in card else "?",
               "trained on": f"{card.get('dataset', '?')} ({card.get('split', '?')}) · {card.get('device', '?')}"}
        row.update({METRIC_LABELS[k].split(" (")[0]: round(float(measured[k]), 3)
                    for k in TABLE_METRICS if isinstance(measured.get(k), (int, float))})
        if measured:
            row["metrics from"] = (f"now, {measured.get('n', 1000):,} samples" if now
                                   else f"card, {measured.get('n', '?')} samples")
        rows.append(row)
    return rows


# --- pickers -------------------------------------------------------------------------------------
def model_picker(entries: list[state.ModelEntry], key: str = "model", where: Any = st.sidebar
                 ) -> tuple[str | None, state.ModelEntry | None]:
    """Choose one of ``entries``; returns (label, entry), or (None, None) when there are none."""
    if not entries:
        where.caption("No model for this dataset yet: train one on the **Train live** page.")
        return None, None
    labels = [e.label for e in entries]
    if st.session_state.get(key) not in labels:
        st.session_state.pop(key, None)     # the dataset changed: fall back to the first model
    label = where.selectbox("Model", labels, key=key, help="Pretrained models, models trained in this "
                            "session (once finished or stopped) and uploaded checkpoints for this dataset.")
    return label, entries[labels.index(label)]


def _folder() -> genlib.Dataset | None:
    """The user's own images: a .zip uploaded in the sidebar, read into this session only."""
    sb = st.sidebar
    f = sb.file_uploader("Your images (.zip)", type=["zip"], key="folder_zip",
                         max_upload_size=state.FOLDER_LIMIT_MB,
                         help="A .zip with one subfolder per class (cats/…, dogs/…), or just images. "
                              f"Resized to {state.FOLDER_SIZE}×{state.FOLDER_SIZE}; read in memory, "
                              "never extracted. Kept for this browser session only.")
    rgb = sb.toggle("Colour (RGB)", False, key="folder_rgb",
                    help="Off: grey images (1 channel). On: RGB (3 channels, larger models).")
    held = state.folder_upload()
    name, raw = (f.name, f.getvalue()) if f is not None else (held[:2] if held else (None, None))
    if raw is None:
        sb.info(f"Upload a .zip of your images (up to {state.FOLDER_LIMIT_MB} MB): one subfolder per "
                "class, or all in one folder. PNG, JPEG, …; other files are skipped.")
        return None
    try:
        return state.add_folder_upload(name, raw, channels=3 if rgb else 1)
    except ValueError as e:
        sb.error(str(e))
        return None


def _dataset(name: str) -> genlib.Dataset | None:
    """Load through the shared cache; a missing dataset shows what to do, and a download button."""
    if name == "folder":
        return _folder()
    try:
        return state.dataset(name)
    except genlib.DataNotFoundError as e:
        st.sidebar.error(str(e))
    if st.sidebar.button(f"Download {name} (needs internet)", key="download_data"):
        bar = st.sidebar.progress(0.0, text="Starting download…")

        def report(done: int, total: int | None, message: str) -> None:
            frac = min(1.0, done / total) if total else 0.0
            bar.progress(frac, text=f"{message.rsplit('/', 1)[-1]}: {done / 2**20:.1f} MB")

        try:
            data = state.download_data(name, report)
            bar.empty()
            return data
        except (genlib.DataNotFoundError, OSError) as e:
            st.sidebar.error(f"Download failed: {e}")
    return None


def _upload() -> None:
    f = st.sidebar.file_uploader("Upload a checkpoint (.pt)", type=["pt"], key="upload",
                                 max_upload_size=state.UPLOAD_LIMIT_MB,
                                 help="A file saved by genlib (the Train page's download, or "
                                      "`python -m genlib train --out`). Loaded with weights_only=True: "
                                      "nothing in it can run code.")
    if f is None:
        return
    try:
        ckpt = state.add_upload(f.name, f.getvalue())
    except genlib.CheckpointError as e:
        st.sidebar.error(str(e))
        return
    data_name = ckpt.card.get("dataset", "?")
    if ckpt.card.get("dataset") != st.session_state.get("dataset") and data_name != "?":
        st.sidebar.warning(f"{f.name} was trained on **{data_name}**; pick that dataset to use it.")


DATASET_LABELS = {n: n for n in genlib.DATASETS} | {"folder": "your images (.zip)"}


def sidebar() -> state.Context:
    """Device, dataset, uploads and the model picker; stores the choice for the pages."""
    sb = st.sidebar
    devices = genlib.available_devices()
    device = sb.selectbox("Device", devices, key="device",
                          help="Where training runs (only devices this machine has). Pages sample on the CPU.")
    names = list(genlib.DATASETS)
    if "dataset" not in st.session_state:
        st.session_state["dataset"] = "digits"       # bundled with scikit-learn: works offline
    dataset = sb.selectbox("Dataset", names, key="dataset", format_func=DATASET_LABELS.get, help="\n\n".join(
        f"**{DATASET_LABELS[n]}**: {genlib.DATASETS[n]}" for n in names))
    data = _dataset(dataset)
    if data is not None and dataset == "folder":
        skipped = data.skipped
        sb.caption(f"{len(data):,} images in {data.num_classes} classes ({', '.join(data.class_names[:10])}"
                   f"{', …' if data.num_classes > 10 else ''}), resized to {tuple(data.shape)}."
                   + (f" {skipped:,} files skipped: not images or unsafe paths." if skipped else ""))
    elif data is not None:
        kind = "images" if data.is_image else "points"
        sb.caption(f"{len(data):,} {kind} of shape {tuple(data.shape)}, {data.num_classes} classes "
                   f"({data.split} split). {data.note}")
    _upload()
    models = state.available_models(data) if data is not None else []
    _, entry = model_picker(models)
    ctx = state.Context(device=device, dataset=dataset, data=data, models=models, model=entry)
    state.set_context(ctx)
    return ctx


# --- training settings ---------------------------------------------------------------------------
LRS = [1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 4e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 3e-2, 1e-1]
BATCH_SIZES = [16, 32, 64, 128, 256, 512]
LATENTS = [1, 2, 4, 8, 16, 20, 32, 64, 100, 128]


def _options_with(options: list, value) -> list:
    return sorted(set(options) | {value})


def _lr(label: str, key: str, default: float, help: str) -> float:
    return st.select_slider(label, _options_with(LRS, default), value=default, key=key,
                            format_func=lambda v: f"{v:g}", help=help, persist_state="session")


def train_settings(preset: str, data: genlib.Dataset, prefix: str = "tr") -> tuple[dict[str, Any], dict[str, Any]]:
    """Widgets for a preset's hyperparameters, seeded with the preset's defaults. Every widget's range
    keeps the config valid. Returns (model config overrides, TrainConfig fields)."""
    # 2-D points cannot go through convolutions: the conv presets become MLPs there.
    ov: dict[str, Any] = {"arch": "mlp"} if not data.is_image and PRESETS[preset].overrides.get("arch") == "conv" else {}
    family, base = preset_config(preset, data.shape, data.num_classes, **ov)
    if ov:
        st.caption(f"On 2-D points **{preset}** uses MLP networks (convolutions need images).")
    k = f"{prefix}_{preset}_"
    c1, c2, c3 = st.columns(3)
    with c1:
        steps = st.number_input("Training steps", 10, 100_000, 500 if data.is_image else 2000, step=100,
                                key=prefix + "_steps", persist_state="session",
                                help="Optimisation steps. For GANs one step = one discriminator update.")
        sizes = [b for b in BATCH_SIZES if b <= len(data)] or [len(data)]     # a small upload: one batch
        batch = st.select_slider("Batch size", sizes, value=min(64, sizes[-1]), key=prefix + "_batch", persist_state="session",
                                 help="Examples per step: larger = smoother gradients, fewer steps per epoch.")
        seed = st.number_input("Seed", 0, 1_000_000, 0, key=prefix + "_seed", persist_state="session")
    with c2:
        ov["latent_dim"] = st.select_slider("Latent size (z dimensions)", _options_with(LATENTS, base.latent_dim),
                                            value=base.latent_dim, key=k + "latent", persist_state="session")
        if family == "vae":
            ov["lr"] = _lr("Learning rate (Adam)", k + "lr", base.lr, "Too high and the loss explodes.")
            ov["beta"] = st.slider("β (KL weight)", 0.0, 10.0, float(base.beta), 0.1, key=k + "beta",
                                   persist_state="session",
                                   help="1 = the ELBO. > 1 pushes codes towards the prior (smoother, blurrier).")
        else:
            ov["lr_g"] = _lr("lr_g (generator)", k + "lr_g", base.lr_g, "Generator learning rate.")
            ov["lr_d"] = _lr("lr_d (discriminator)", k + "lr_d", base.lr_d,
                             "TTUR (Heusel et al. 2017): a faster D than G, e.g. 4e-4 vs 1e-4, can help.")
    with c3:
        if family == "vae":
            ov["kl_schedule"] = st.selectbox("KL schedule", ["none", "linear", "cyclical"],
                                             index=["none", "linear", "cyclical"].index(base.kl_schedule),
                                             key=k + "sched", persist_state="session",
                                             help="Warm β up from 0 so the decoder learns to use z first.")
            if ov["kl_schedule"] != "none":
                ov["anneal_steps"] = st.number_input("Annealing length (steps)", 1, 100_000,
                                                     min(base.anneal_steps, int(steps)), key=k + "anneal",
                                                     persist_state="session")
            ov["free_bits"] = st.slider("Free bits (nats per dimension)", 0.0, 2.0, float(base.free_bits), 0.05,
                                        key=k + "fb", persist_state="session",
                                        help="KL below this per latent dimension is not penalised.")
            ov["skip"] = st.toggle("Skip connections from z", base.skip, key=k + "skip", persist_state="session",
                                   help="Feed z to every decoder layer, against posterior collapse.")
        else:
            from genlib.models.gan import LOSSES

            ov["loss"] = st.selectbox("Loss", LOSSES, index=LOSSES.index(base.loss), key=k + "loss",
                                      persist_state="session")
            ov["n_critic"] = st.slider("D steps per G step (n_critic)", 1, 10, base.n_critic, key=k + "ncritic",
                                       persist_state="session")
            ov["spectral_norm"] = st.toggle("Spectral norm in D", base.spectral_norm, key=k + "sn",
                                            persist_state="session")
            if ov["loss"] in ("nonsaturating", "minimax"):
                ov["label_smoothing"] = st.slider("One-sided label smoothing", 0.0, 0.3,
                                                  float(base.label_smoothing), 0.05, key=k + "ls",
                                                  persist_state="session", help="Real target 1 − s.")
            ema = st.select_slider("EMA of G (decay)", [0.0, 0.9, 0.99, 0.999], value=base.ema, key=k + "ema",
                                   persist_state="session", help="Sample from a moving average of G; 0 = off.")
            ov["ema"] = ema
            if ov["loss"] == "wgan-gp":
                ov["gp_weight"] = st.slider("Gradient-penalty weight λ", 0.0, 50.0, float(base.gp_weight), 1.0,
                                            key=k + "gp", persist_state="session")
    steps = int(steps)
    train = dict(steps=steps, batch_size=int(batch), seed=int(seed),
                 log_every=max(1, min(25, steps // 200)), sample_every=max(1, steps // 30),
                 n_fixed=64 if data.is_image else 512)
    return ov, train


# --- latent pages: held-out images, image grids whose axes say what varies ----------------------
@st.cache_resource(show_spinner="Loading the test split…")
def _test_split(name: str) -> genlib.Dataset | None:
    try:
        return genlib.load_dataset(name, split="test", download=False)
    except (genlib.DataNotFoundError, ValueError):
        return None


def held_out(data: genlib.Dataset) -> genlib.Dataset:
    """The test split of ``data``'s dataset when it is on disk (images no model trained on), else
    ``data`` itself; ``.split`` says which one a page got."""
    if data.split == "test" or not data.is_image:
        return data
    return _test_split(data.name) or data


def grid_figure(x: torch.Tensor, ncol: int, col_labels: list[str] | None = None,
                row_labels: list[str] | None = None, x_title: str = "", y_title: str = "", title: str = "",
                cell_px: int = 48) -> go.Figure:
    """Images (n, C, H, W), ``ncol`` to a row, as one figure whose axes say what varies over the
    grid: ``col_labels[i]`` under column i, ``row_labels[j]`` beside row j (latent values, t, ...)."""
    n, c, h, w = x.shape
    s = max(1, math.ceil(cell_px / w))                                 # whole-pixel upscale
    img = image_grid(x, nrow=ncol, pad=1, min_side=1)                  # (rows, cols[, 3]), 1 px borders
    img = img.repeat(s, 0).repeat(s, 1)

    def centres(k: int, size: int) -> list[float]:                     # of cell i, in image pixels
        return [(1 + i * (size + 1)) * s + (size * s - 1) / 2 for i in range(k)]

    import base64

    fig = go.Figure(go.Image(source="data:image/png;base64," + base64.b64encode(png_bytes(img)).decode(),
                             hoverinfo="skip"))
    axis = dict(showgrid=False, zeroline=False, ticks="")
    fig.update_xaxes(title_text=x_title, tickvals=centres(ncol, w) if col_labels else [],
                     ticktext=col_labels or [], range=[-0.5, img.shape[1] - 0.5], **axis)
    fig.update_yaxes(title_text=y_title, tickvals=centres(math.ceil(n / ncol), h) if row_labels else [],
                     ticktext=row_labels or [], range=[img.shape[0] - 0.5, -0.5], scaleanchor="x", **axis)
    fig.update_layout(title=title, width=img.shape[1] + 120, height=img.shape[0] + (110 if title else 80),
                      margin=dict(l=70 if y_title else 10, r=10, t=40 if title else 10, b=60 if x_title else 10))
    return fig
