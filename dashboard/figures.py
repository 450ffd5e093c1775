"""Every plotly figure the pages show (and the models table), each a function of plain data: loss
and metric curves, 2-D points over a discriminator heat-map, mode and class shares, image grids with
labelled axes, latent scatters, KL per dimension, latent-value histograms."""
from __future__ import annotations

import base64
import math
from typing import TYPE_CHECKING

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from genlib.models.gan_objectives import GANObjective, objective

from . import images

if TYPE_CHECKING:
    from .context import ModelEntry

COLORS = {"real": "#9e9e9e", "fake": "#e4572e", "a": "#1f77b4", "b": "#e4572e", "c": "#2ca02c", "d": "#9467bd"}
# a GAN loss curve's colour, by the key its training step reports
# (one colour per key: G loss and D(G(z)) may share a legend, so D(G(z)) is not the generator's red)
CURVE_COLORS = {"d_loss": COLORS["a"], "g_loss": COLORS["b"], "wasserstein": COLORS["c"], "gp": COLORS["d"],
                "d_real": COLORS["real"], "d_fake": "#ff9f1c"}


def fmt_duration(seconds: float) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


DRAW_POINTS = 300     # points drawn per curve: a chart is ~500 px wide; more only costs redraw time


def thin(x: list, y: list, max_points: int = DRAW_POINTS) -> tuple[list, list]:
    """A curve with at most ``max_points`` points for drawing: consecutive points averaged in groups
    (missing values skipped), each group drawn at its last x, so the curve still ends at the newest
    point. (``genlib.train.History`` stores its points the same way, as means over log intervals.)"""
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
    """Loss curves of one run, laid out for its family; a GAN's by the chart of its ``loss``
    (``genlib.models.gan_objectives``: curve names, labels, units, the side panel)."""
    steps = history.get("step", [])
    h = {k: v for k, v in history.items() if k != "step"}
    if family == "flow":   # flow matching: one regression loss, and its gradient's norm
        fig = make_subplots(1, 2, subplot_titles=("Flow-matching loss E|v(x_t, t) − (x₁ − x₀)|²",
                                                  "‖∇ loss‖ (before clipping)"))
        _line(fig, steps, h.get("loss", []), "loss (mean squared error)", COLORS["a"])
        _line(fig, steps, h.get("grad_norm", []), "‖∇ loss‖", COLORS["d"], col=2)
        fig.update_yaxes(title_text="per dimension", row=1, col=1)
    elif family == "vae":
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
    else:
        obj = objective(loss)
        chart = obj.chart
        fig = make_subplots(1, 2, subplot_titles=(chart.title, chart.side_title))
        for curve in chart.curves:
            _line(fig, steps, h.get(curve.key, []), curve.label, CURVE_COLORS.get(curve.key))
        for curve in chart.side_curves:
            _line(fig, steps, h.get(curve.key, []), curve.label, CURVE_COLORS.get(curve.key), col=2)
        fig.update_yaxes(title_text=chart.units, row=1, col=1)
        if chart.side_range is not None:                              # probabilities: 0.5 = D cannot tell
            fig.add_hline(y=0.5, line_dash="dot", line_color="grey", row=1, col=2)
            fig.update_yaxes(title_text=chart.side_units, range=list(chart.side_range), row=1, col=2)
        else:                                                         # a penalty is >= 0; scores are free
            fig.update_yaxes(title_text=chart.side_units, row=1, col=2,
                             rangemode="tozero" if type(obj).penalty is not GANObjective.penalty else "normal")
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
    if not names:
        fig.add_annotation(text="waiting for the first measurement…", showarrow=False, xref="x domain",
                           yref="y domain", x=0.5, y=0.5)
    fig.update_xaxes(title_text="training step", row=max(1, len(names)), col=1)
    fig.update_layout(title=title, height=140 + 150 * max(1, len(names)), showlegend=False,
                      margin=dict(l=10, r=10, t=60, b=10))
    return fig


def points_figure(real: torch.Tensor, fake: torch.Tensor | None, title: str,
                  heat: tuple[torch.Tensor, torch.Tensor] | None = None, probabilistic: bool = True,
                  lim: float = 1.6) -> go.Figure:
    """Real (grey) and generated (red) 2-D points, optionally over a heat-map of D on the plane:
    ``heat`` = (ticks (g,), values (g, g)), P(real) in [0, 1] when D is ``probabilistic``, else a
    critic's unbounded score."""
    fig = go.Figure()
    if heat is not None:
        ticks, values = heat
        fig.add_trace(go.Heatmap(x=ticks.numpy(), y=ticks.numpy(), z=values.numpy(), colorscale="RdBu",
                                 zmin=0 if probabilistic else None, zmax=1 if probabilistic else None, opacity=0.6,
                                 colorbar=dict(title=dict(text="P(real)" if probabilistic else "critic score",
                                                          side="right"), len=0.8)))
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
TABLE_METRICS = ("classifier_fid", "precision", "recall", "classifier_is", "classes_covered", "label_accuracy",
                 "toy_modes_covered", "toy_high_quality")
METRIC_LABELS["classifier_is"] = "classifier IS ↑"
SHORT = {"generator": "G", "discriminator": "D", "encoder": "enc", "decoder": "dec"}


def model_rows(entries: list[ModelEntry], metrics: dict[str, dict[str, float]] | None = None) -> list[dict]:
    """One row per model: where it comes from, parameters per network, steps and time from its card,
    its metrics (measured now when given in ``metrics``, else from its card) and the cost of
    sampling (seconds per 1,000 samples, peak memory). Every row has every column (None: unknown),
    so a measurement never drops a column."""
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
                    if isinstance(measured.get(k), (int, float)) else None for k in TABLE_METRICS})
        n = measured.get("n")
        sample_s = measured.get("sample_seconds")
        row["sampling s / 1k"] = (round(1000 * float(sample_s) / float(n), 3)
                                  if isinstance(sample_s, (int, float)) and isinstance(n, (int, float)) and n else None)
        mem = measured.get("peak_memory_mb")
        row["peak memory MB"] = round(float(mem), 1) if isinstance(mem, (int, float)) and math.isfinite(mem) else None
        row["metrics from"] = ((f"now, {int(n or 0):,} samples" if now else f"card, {n if n else '?'} samples")
                               if measured else "")
        rows.append(row)
    return drop_empty_columns(rows)


def drop_empty_columns(rows: list[dict], keep: tuple[str, ...] = ("model",)) -> list[dict]:
    """Leave out a column no row has a value in (a toy metric on an image dataset)."""
    used = {k for r in rows for k, v in r.items() if v not in (None, "")} | set(keep)
    return [{k: v for k, v in r.items() if k in used} for r in rows]


def grid_figure(x: torch.Tensor, ncol: int, col_labels: list[str] | None = None,
                row_labels: list[str] | None = None, x_title: str = "", y_title: str = "", title: str = "",
                cell_px: int = 48) -> go.Figure:
    """Images (n, C, H, W), ``ncol`` to a row, as one figure whose axes say what varies over the
    grid: ``col_labels[i]`` under column i, ``row_labels[j]`` beside row j (latent values, t, ...)."""
    n, c, h, w = x.shape
    s = max(1, math.ceil(cell_px / w))                                 # whole-pixel upscale
    img = images.image_grid(x, nrow=ncol, pad=1, min_side=1)                  # (rows, cols[, 3]), 1 px borders
    img = img.repeat(s, 0).repeat(s, 1)

    def centres(k: int, size: int) -> list[float]:                     # of cell i, in image pixels
        return [(1 + i * (size + 1)) * s + (size * s - 1) / 2 for i in range(k)]

    fig = go.Figure(go.Image(source="data:image/png;base64," + base64.b64encode(images.png_bytes(img)).decode(),
                             hoverinfo="skip"))
    axis = dict(showgrid=False, zeroline=False, ticks="")
    fig.update_xaxes(title_text=x_title, tickvals=centres(ncol, w) if col_labels else [],
                     ticktext=col_labels or [], range=[-0.5, img.shape[1] - 0.5], **axis)
    fig.update_yaxes(title_text=y_title, tickvals=centres(math.ceil(n / ncol), h) if row_labels else [],
                     ticktext=row_labels or [], range=[img.shape[0] - 0.5, -0.5], scaleanchor="x", **axis)
    fig.update_layout(title=title, width=img.shape[1] + 120, height=img.shape[0] + (110 if title else 80),
                      margin=dict(l=70 if y_title else 10, r=10, t=40 if title else 10, b=60 if x_title else 10))
    return fig


def latent_scatter(xy: torch.Tensor, y: torch.Tensor | None, class_names: list[str], axes: tuple[str, str],
                   title: str) -> go.Figure:
    """WebGL scatter of 2-D points (n, 2), one trace per class (its legend entry) or one 'samples'
    trace when ``y`` is None; customdata = the point's index, so a click says which point it was."""
    fig = go.Figure()
    groups = [(class_names[k], (y == k).nonzero().flatten()) for k in y.unique().tolist()] if y is not None else \
        [("samples", torch.arange(len(xy)))]
    # plotly reads arrays; a torch tensor made NumPy warn on every draw (projections come as either)
    xy = xy.detach().cpu().numpy() if torch.is_tensor(xy) else np.asarray(xy)
    for label, idx in groups:
        idx = idx.numpy()
        fig.add_trace(go.Scattergl(x=xy[idx, 0], y=xy[idx, 1], mode="markers", name=label, customdata=idx,
                                   marker=dict(size=6, opacity=0.75),
                                   hovertemplate=f"class {label} · point %{{customdata}}<extra></extra>"))
    fig.update_xaxes(title_text=axes[0])
    fig.update_yaxes(title_text=axes[1])
    fig.update_layout(title=title, height=520, margin=dict(l=10, r=10, t=50, b=10), legend_title_text="class")
    return fig


def kl_figure(kl: torch.Tensor, active: torch.Tensor) -> go.Figure:
    """Bars: KL per latent dimension (D,) in nats, active dimensions (D,) bool in blue, the rest grey."""
    fig = go.Figure(go.Bar(x=[f"z{k}" for k in range(len(kl))], y=kl.numpy(),
                           marker_color=[COLORS["a"] if a else COLORS["real"] for a in active.tolist()],
                           hovertemplate="%{x}: %{y:.3f} nats<extra></extra>"))
    fig.update_xaxes(title_text="latent dimension (blue = active, grey = collapsed)")
    fig.update_yaxes(title_text="KL(q(z_d|x) ‖ N(0, 1)), nats", rangemode="tozero")
    fig.update_layout(height=300, margin=dict(l=10, r=10, t=10, b=10))
    return fig


def latent_histogram(codes: dict[str, torch.Tensor], clip: float = 8.0) -> go.Figure:
    """Overlaid histograms of every coordinate of each {legend name: codes (n, D)}, grey then red;
    values beyond ±``clip`` are counted at the edge."""
    fig = go.Figure()
    for (name, z), color in zip(codes.items(), (COLORS["real"], COLORS["fake"])):
        fig.add_trace(go.Histogram(x=np.clip(z.flatten().numpy(), -clip, clip), name=name,
                                   xbins=dict(start=-clip, end=clip, size=0.25), histnorm="percent", opacity=0.6,
                                   marker_color=color))
    fig.update_xaxes(title_text=f"value of one latent coordinate (latent units; beyond ±{clip:g} counted at the edge)")
    fig.update_yaxes(title_text="% of coordinates")
    fig.update_layout(barmode="overlay", height=260, margin=dict(l=10, r=10, t=10, b=10))
    return fig


# --- live charts as Vega-Lite: a constant spec, data in named datasets --------------------------------
# Streamlit gives a plotly chart an element id hashed from its whole figure, data included, so every
# data change makes the browser unmount the chart and draw a new one: in the mode collapse lab the
# six charts changed together (a new grid and a measurement arrive at the same steps) and polls
# caught them all blank, or doubled. A Vega-Lite chart's spec holds no data here (``st.vega_lite_chart``
# moves named datasets out of it), so the element stays and only its data are replaced.
def points_chart(real: torch.Tensor, fake: torch.Tensor | None, title: str,
                 heat: tuple[torch.Tensor, torch.Tensor] | None = None, probabilistic: bool = True,
                 lim: float = 1.6) -> dict:
    """``points_figure`` as a Vega-Lite spec with datasets 'heat', 'real', 'fake'."""
    rows_heat = []
    if heat is not None:
        ticks, values = heat
        t = ticks.tolist()
        half = (t[1] - t[0]) / 2 if len(t) > 1 else 0.05
        v = values.tolist()
        rows_heat = [{"x": tx - half, "x2": tx + half, "y": ty - half, "y2": ty + half, "v": v[j][i]}
                     for j, ty in enumerate(t) for i, tx in enumerate(t)]
    pts = lambda p: [] if p is None else [{"x": a, "y": b} for a, b in p[:, :2].tolist()]  # noqa: E731
    axis = {"scale": {"domain": [-lim, lim]}, "type": "quantitative"}
    color = {"field": "v", "type": "quantitative", "title": "P(real)" if probabilistic else "critic score",
             "scale": {"scheme": "redblue", **({"domain": [0, 1]} if probabilistic else {})}}
    return {
        "title": title, "height": 380, "width": "container",
        "datasets": {"heat": rows_heat, "real": pts(real), "fake": pts(fake)},
        "layer": [
            {"data": {"name": "heat"}, "mark": {"type": "rect", "opacity": 0.6, "clip": True},
             "encoding": {"x": {"field": "x", **axis, "title": "x₁"}, "x2": {"field": "x2"},
                          "y": {"field": "y", **axis, "title": "x₂"}, "y2": {"field": "y2"}, "color": color}},
            {"data": {"name": "real"}, "mark": {"type": "circle", "size": 10, "color": COLORS["real"], "opacity": 0.8,
                                                "clip": True},
             "encoding": {"x": {"field": "x", **axis}, "y": {"field": "y", **axis}}},
            {"data": {"name": "fake"}, "mark": {"type": "circle", "size": 10, "color": COLORS["fake"], "opacity": 0.8,
                                                "clip": True},
             "encoding": {"x": {"field": "x", **axis}, "y": {"field": "y", **axis}}},
        ],
        "resolve": {"scale": {"color": "independent"}},
    }


def mode_share_chart(share: torch.Tensor) -> dict:
    """``mode_share_figure`` as a Vega-Lite spec (dataset 'share')."""
    k = len(share)
    return {
        "title": "Where the generated points go", "height": 220, "width": "container",
        "datasets": {"share": [{"mode": str(i), "pct": float(p) * 100} for i, p in enumerate(share.tolist())]},
        "layer": [
            {"data": {"name": "share"}, "mark": {"type": "bar", "color": COLORS["fake"]},
             "encoding": {"x": {"field": "mode", "type": "ordinal", "title": "mode (nearest centre)",
                                "sort": None, "axis": {"labelAngle": 0}},
                          "y": {"field": "pct", "type": "quantitative", "title": "% of generated points",
                                "axis": {"tickCount": 4}}}},
            {"mark": {"type": "rule", "strokeDash": [4, 4], "color": "grey"},
             "encoding": {"y": {"datum": 100 / max(1, k), "type": "quantitative"}}},
        ],
    }


def metric_chart(metrics: dict[str, list[float]], title: str, labels: dict[str, str] | None = None) -> dict:
    """``metric_figure`` as a Vega-Lite spec: one row per metric (dataset 'metrics', long format)."""
    labels = {**METRIC_LABELS, **(labels or {})}
    names = sorted(k for k in metrics if k != "step")
    rows = [{"step": s, "metric": labels.get(k, k), "value": v}
            for k in names for s, v in zip(*thin(metrics["step"], metrics[k])) if v is not None]
    return {
        "title": title, "datasets": {"metrics": rows}, "data": {"name": "metrics"},
        "facet": {"row": {"field": "metric", "type": "nominal", "title": None,
                          "header": {"labelAngle": 0, "labelOrient": "top", "labelAnchor": "start",
                                     "labelFontSize": 12}}},
        "spec": {"height": 110, "width": "container",
                 "mark": {"type": "line", "color": COLORS["c"], "point": {"color": COLORS["c"]}},
                 "encoding": {"x": {"field": "step", "type": "quantitative", "title": "training step"},
                              "y": {"field": "value", "type": "quantitative", "title": None,
                                    "scale": {"zero": False}}}},
        "resolve": {"scale": {"y": "independent"}},
    }
