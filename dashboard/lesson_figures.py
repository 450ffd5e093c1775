"""What the Lessons page draws for each lesson (``VIEWS[slug](result)``), from a
``genlib.lessons.LessonResult``'s plain data, and how it runs one: ``run_lesson`` (st.cache_data on
slug, seed and settings, so a re-open is instant) under a progress bar while it works
(``run_with_progress``: the lesson runs on a worker thread, one per lesson and settings even when the
page reruns meanwhile). Where a lesson compares runs, their curves share one chart through
``genlib.train.overlay`` (``overlay_figure``)."""
from __future__ import annotations

import threading
import time
from typing import Any, Callable, Mapping

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch
from plotly.subplots import make_subplots

from genlib.lessons import LessonResult, lesson
from genlib.train import Overlay, overlay

from . import figures, images, ui

PALETTE = ["#1f77b4", "#e4572e", "#2ca02c", "#9467bd", "#ff9f1c", "#17becf", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22"]


# --- running a lesson ----------------------------------------------------------------------------
@st.cache_data(show_spinner=False, max_entries=64)
def run_lesson(slug: str, seed: int, settings: Mapping[str, Any]) -> LessonResult:
    """``lesson(slug).run(seed, **settings)``, kept per slug, seed and settings."""
    return lesson(slug).run(seed=seed, **dict(settings))


_JOBS: dict[tuple, dict[str, Any]] = {}     # (slug, seed, settings) -> {"thread", "result" | "error", "t0"}
_JOBS_LOCK = threading.Lock()
SECONDS: dict[str, float] = {}              # the last measured seconds of each lesson (the bar's estimate)


def _key(slug: str, seed: int, settings: Mapping[str, Any]) -> tuple:
    return slug, seed, repr(sorted(settings.items()))


def run_with_progress(slug: str, seed: int, settings: Mapping[str, Any], label: str,
                      quick_s: float = 0.3) -> LessonResult:
    """``run_lesson`` on a worker thread; a progress bar (elapsed against the lesson's last measured
    seconds, else its budget) when it takes longer than ``quick_s``. A rerun meanwhile rejoins the
    same job instead of starting another. Raises what the lesson raised."""
    from streamlit.runtime.scriptrunner import add_script_run_ctx, get_script_run_ctx

    key = _key(slug, seed, settings)
    with _JOBS_LOCK:
        job = _JOBS.get(key)
        if job is None or (not job["thread"].is_alive() and "result" not in job and "error" not in job):
            job = {"t0": time.perf_counter()}

            def work(job: dict[str, Any] = job) -> None:
                try:
                    job["result"] = run_lesson(slug, seed, dict(settings))
                except BaseException as e:  # noqa: BLE001 - handed to the page, which shows it
                    job["error"] = e

            job["thread"] = threading.Thread(target=work, daemon=True, name=f"lesson-{slug}")
            add_script_run_ctx(job["thread"], get_script_run_ctx())
            _JOBS[key] = job
            job["thread"].start()
    job["thread"].join(quick_s)
    if job["thread"].is_alive():
        estimate = SECONDS.get(slug) or lesson(slug).budget_s
        bar = st.progress(0.0, text=label)
        while job["thread"].is_alive():
            spent = time.perf_counter() - job["t0"]
            left = max(0.0, estimate - spent)
            bar.progress(min(0.99, spent / max(estimate, 1e-9)),
                         text=f"{label}: {spent:.0f} s, {ui.fmt_eta(left) if left > 0 else 'nearly done'} left")
            job["thread"].join(0.5)
        bar.empty()
    with _JOBS_LOCK:
        _JOBS.pop(key, None)
    if "error" in job:
        raise job["error"]
    result = job["result"]
    SECONDS.setdefault(slug, result.seconds)
    return result


# --- shared figure helpers ---------------------------------------------------------------------------
def overlay_figure(ov: Overlay, title: str, y_title: str, log_y: bool = False, height: int = 330) -> go.Figure:
    """One line per run of an ``Overlay`` (``genlib.train.overlay``): several runs' curves on one chart."""
    fig = go.Figure()
    for i, (name, (xs, ys)) in enumerate(ov.series.items()):
        xs, ys = figures.thin(list(xs), list(ys))
        fig.add_trace(go.Scatter(x=xs, y=ys, name=name, mode="lines" if len(xs) > 30 else "lines+markers",
                                 line=dict(color=PALETTE[i % len(PALETTE)])))
    x_title = {"step": "training step", "seconds": "training seconds", "images": "examples seen"}[ov.x]
    fig.update_xaxes(title_text=x_title)
    fig.update_yaxes(title_text=y_title, type="log" if log_y else "linear")
    fig.update_layout(title=title, height=height, margin=dict(l=10, r=10, t=50, b=10),
                      legend=dict(orientation="h", y=-0.25))
    return fig


def curves(runs: Mapping[str, Mapping[str, Any]], key: str, x: str = "step") -> Overlay:
    """``overlay`` of plain curve dicts {run name: {x: [...], key: [...]}}."""
    return overlay({name: {"step": [float(v) for v in c[x]], key: [float(v) for v in c[key]]}
                    for name, c in runs.items()}, key)


def twin_figure(x, left, right, left_name: str, right_name: str, title: str) -> go.Figure:
    """Two series over one x axis, each on its own y axis (left blue, right red; the right one is
    non-negative, e.g. classifier-FID, and its axis says so: no tick below 0)."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Scatter(x=list(x), y=list(left), name=left_name, mode="lines+markers",
                             line=dict(color=PALETTE[0])), secondary_y=False)
    fig.add_trace(go.Scatter(x=list(x), y=list(right), name=right_name, mode="lines+markers",
                             line=dict(color=PALETTE[1], dash="dot")), secondary_y=True)
    fig.update_yaxes(title_text=left_name, secondary_y=False, title_font_color=PALETTE[0])
    fig.update_yaxes(title_text=right_name, secondary_y=True, title_font_color=PALETTE[1], rangemode="nonnegative")
    fig.update_xaxes(title_text="training step")
    fig.update_layout(title=title, height=340, margin=dict(l=10, r=10, t=50, b=10),
                      legend=dict(orientation="h", y=-0.25))
    return fig


def lines_figure(x, series: Mapping[str, Any], title: str, x_title: str, y_title: str,
                 hline: float | None = None, hline_text: str = "") -> go.Figure:
    fig = go.Figure()
    for i, (name, ys) in enumerate(series.items()):
        fig.add_trace(go.Scatter(x=list(map(float, x)), y=[float(v) for v in ys], name=name, mode="lines+markers",
                                 line=dict(color=PALETTE[i % len(PALETTE)])))
    if hline is not None:
        fig.add_hline(y=hline, line_dash="dot", line_color="grey", annotation_text=hline_text)
    fig.update_xaxes(title_text=x_title)
    fig.update_yaxes(title_text=y_title)
    fig.update_layout(title=title, height=320, margin=dict(l=10, r=10, t=50, b=10),
                      legend=dict(orientation="h", y=-0.25))
    return fig


def scatter3d_figure(z: np.ndarray, y: np.ndarray, title: str) -> go.Figure:
    """A rotatable 3-D scatter of codes (n, 3), one trace per class."""
    fig = go.Figure()
    for k in np.unique(y):
        sel = y == k
        fig.add_trace(go.Scatter3d(x=z[sel, 0], y=z[sel, 1], z=z[sel, 2], mode="markers", name=str(int(k)),
                                   marker=dict(size=2.5, opacity=0.7)))
    fig.update_layout(title=title, height=520, margin=dict(l=0, r=0, t=40, b=0), legend_title_text="class",
                      scene=dict(xaxis_title="z₁", yaxis_title="z₂", zaxis_title="z₃"))
    return fig


def grid_image(x: torch.Tensor, nrow: int, caption: str, where: Any = st) -> None:
    where.image(images.image_grid(x, nrow=nrow, min_side=ui.grid_px(240, 480)), caption=caption)


def table(rows: list[Mapping[str, Any]], where: Any = st) -> None:
    plain = [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()
              if not isinstance(v, (torch.Tensor, np.ndarray, list, tuple, dict))} for r in rows]
    where.dataframe(plain, hide_index=True)


def chart(fig: go.Figure, key: str, where: Any = st) -> None:
    where.plotly_chart(fig, key=key)


# --- one view per lesson -----------------------------------------------------------------------------
def _sharp_vs_gan(r: LessonResult) -> None:
    rows, grids = r.data["rows"], r.data["grids"]
    cols = st.columns(3)
    for col, role in zip(cols, ("vae", "gan", "cgan")):
        row = rows[role]
        grid_image(grids[role], 5, f"{row['model']}: sharpness {row['sharpness_vs_real']:.2f}× real · recall "
                   f"{row['recall']:.2f} · {row['classes_covered']} classes · spread {row['spread_vs_real']:.2f}× "
                   "real", col)
    table([{"role": k, **v} for k, v in rows.items()])


def _all_eights(r: LessonResult) -> None:
    s = r.settings
    a, b = s["between"]
    c = st.columns(2)
    grid_image(r.data["class_grid"], 5, f"told class {s['cls']}: {r.figures['share_class']:.0%} classified "
               f"{s['cls']}", c[0])
    grid_image(r.data["between_grid"], 5, f"told half {a}, half {b}: mean P({a}) {r.figures['p_between_a']:.2f}, "
               f"P({b}) {r.figures['p_between_b']:.2f}", c[1])
    p = r.data["blend_p"]
    chart(lines_figure(r.data["blend_t"], {f"P({a})": p[:, 0], f"P({b})": p[:, 1]},
                       f"Soft label from {a} to {b}: the classifier's mean probabilities", f"weight of {b}",
                       "mean probability"), "lesson_blend")


def _nonsaturating(r: LessonResult) -> None:
    d = r.data
    labels = d["labels"]
    runs = {labels[k]: {"step": d["steps"], "g_grad_norm": c["g_grad_norm"]} for k, c in d["curves"].items()}
    fig = overlay_figure(curves(runs, "g_grad_norm"), "G's gradient norm, both runs on one chart (log scale)",
                         "‖∇G‖", log_y=True)
    fig.add_vrect(x0=0, x1=d["window"], fillcolor="grey", opacity=0.08, line_width=0,
                  annotation_text=f"first {d['window']} steps (measured)")
    chart(fig, "lesson_ns_grad")
    evals = {labels[k]: {"step": c["eval_step"], "modes_covered": c["modes_covered"]} for k, c in d["curves"].items()}
    c = st.columns(3)
    chart(overlay_figure(curves(evals, "modes_covered"), "Modes covered along training", "modes"), "lesson_ns_modes",
          c[0])
    for col, k in zip(c[1:], d["points"]):
        chart(figures.points_figure(d["real"], d["points"][k], labels[k]), f"lesson_ns_pts_{k}", col)


def _critic(r: LessonResult) -> None:
    d = r.data
    w, v = d["wgan"], d["vanilla"]
    st.caption(f"WGAN-GP: {'recorded live' if d['live'] else 'replayed'}, from {d['source']['wgan']}. Vanilla GAN: "
               f"{'recorded live' if d.get('live_vanilla') else 'replayed'}, from {d['source']['vanilla']}.")
    c = st.columns(2)
    chart(twin_figure(w["step"], w["estimate"], w["fid"], "Wasserstein estimate", "classifier-FID",
                      f"WGAN-GP: rank correlation {r.figures['rho_wgan']:.2f}"), "lesson_critic_w", c[0])
    chart(twin_figure(v["step"], v["js"], v["fid"], "JS estimate, (log 4 − D loss) / 2 (nats)", "classifier-FID",
                      f"Vanilla GAN: rank correlation {r.figures['rho_vanilla']:.2f}"), "lesson_critic_v", c[1])


def _fixed_noise(r: LessonResult) -> None:
    rows, grids = r.data["rows"], r.data["grids"]
    names = list(rows)
    c = st.columns([2, 3])
    with c[0]:
        name = st.selectbox("Model", names, key="lesson_fn_model")
        steps = [s for s, _ in grids[name]]
        play = st.toggle("Play as an animation", key="lesson_fn_play")
        row = rows[name]
        if play:
            st.image(ui.memo(f"lesson_fn_gif@{name}", len(steps), lambda: images.gif_bytes(grids[name])),
                     caption=f"{name}: {len(steps)} stored grids, steps {steps[0]:,} to {steps[-1]:,}")
        else:
            step = st.select_slider("Stored grid at step", steps, value=steps[-1], key=f"lesson_fn_step@{name}")
            i = steps.index(step)
            grid_image(grids[name][i][1], 8, f"{name} at step {step:,}: classifier-FID of this grid "
                       f"{row['fid'][i]:.0f} (real images: {row['floor']:.0f}), {row['classes'][i]} classes named")
    with c[1]:
        runs = {k: {"step": v["step"], "fid": v["fid"]} for k, v in rows.items()}
        chart(overlay_figure(curves(runs, "fid"), "Classifier-FID of each stored grid along training (all models)",
                             "classifier-FID of the grid", log_y=True, height=420), "lesson_fn_fid")
        recorded = {k: {"step": v["recorded_fid"][0], "fid": v["recorded_fid"][1]} for k, v in rows.items()
                    if v["recorded_fid"] is not None}
        if recorded:
            chart(overlay_figure(curves(recorded, "fid"), "Recorded live classifier-FID (n = 1,000)",
                                 "classifier-FID", log_y=True), "lesson_fn_rec")


def _latent_clusters(r: LessonResult) -> None:
    d, f = r.data, r.figures
    names = [str(k) for k in range(int(max(d["y2"].max(), d["y3"].max())) + 1)]
    c = st.columns(2)
    chart(figures.latent_scatter(torch.as_tensor(d["z2"]), torch.as_tensor(d["y2"]), names, ("z₁", "z₂"),
                                 f"2-D latent: 5-NN accuracy {f['knn_2d']:.2f}"), "lesson_lc_2d", c[0])
    chart(scatter3d_figure(d["z3"], d["y3"], f"3-D latent (trained here, drag to rotate): 5-NN {f['knn_3d']:.2f}"),
          "lesson_lc_3d", c[1])
    chart(figures.latent_scatter(torch.as_tensor(d["tsne"]), torch.as_tensor(d["y_tsne"]), names, ("", ""),
                                 f"t-SNE of the larger latent: 5-NN {f['knn_tsne']:.2f}"), "lesson_lc_tsne")


def _family_race(r: LessonResult) -> None:
    st.markdown("**Shipped models (cards)**")
    table(r.data["cards"])
    st.markdown(f"**Fair race: {r.settings['race_s']:g} s of training each**")
    race = r.data["race"]
    table(race)
    cols = st.columns(len(race))
    for col, x in zip(cols, race):
        grid_image(x["grid"], 5, f"{x['preset']}: FID {x['classifier_fid']:.1f}", col)


def _posterior(r: LessonResult) -> None:
    d = r.data
    runs = d["runs"]
    c = st.columns([3, 2])
    fig = overlay_figure(curves({k.split(" (")[0]: {"step": v["curve_step"], "kl": v["curve_kl"]}
                                 for k, v in runs.items()}, "kl"),
                         "KL per batch along training, every run", "KL (nats)", log_y=True, height=380)
    fig.update_layout(legend=dict(orientation="v", x=1.02, y=1))
    chart(fig, "lesson_pc_kl", c[0])
    fig = go.Figure(go.Bar(x=[k.split(" (")[0] for k in runs], y=[v["active_units"] for v in runs.values()],
                           marker_color=PALETTE[0],
                           text=[f"{v['kl']:.1f} nats" for v in runs.values()], textposition="outside"))
    fig.update_yaxes(title_text=f"active units (KL > {d['threshold']:g} nats)", range=[0, d["latent_dim"] + 2])
    fig.update_layout(title="Active units per run (total KL above each bar)", height=380,
                      margin=dict(l=10, r=10, t=50, b=10))
    chart(fig, "lesson_pc_active", c[1])
    pick = st.selectbox("KL per dimension of", list(runs), key="lesson_pc_run")
    fig = figures.kl_figure(torch.as_tensor(runs[pick]["kl_per_dim"]), torch.as_tensor(runs[pick]["active"]))
    fig.add_hline(y=d["threshold"], line_dash="dot", line_color="grey", annotation_text="active above this line")
    chart(fig, "lesson_pc_dims")


def _mode_collapse(r: LessonResult) -> None:
    d = r.data
    labels = d["labels"]
    runs = {labels[k]: v for k, v in d["curves"].items()}
    c = st.columns(3)
    chart(overlay_figure(curves(runs, "modes_covered"), "Modes covered, both runs", "modes"), "lesson_mc_modes",
          c[0])
    for col, k in zip(c[1:], ("vanilla", "fix")):
        chart(figures.points_figure(d["real"], d["points"][k],
                                    f"{labels[k].split(' (')[0]}: {int(r.figures['modes_' + k])} modes"),
              f"lesson_mc_pts_{k}", col)


def _smooth(r: LessonResult) -> None:
    d = r.data
    paths = d["paths"]
    grid_image(paths.flatten(0, 1), paths.shape[1], f"{paths.shape[0]} spherical interpolations of "
               f"{paths.shape[1]} images each (unevenness {r.figures['unevenness']:.2f}: largest step / mean step)")
    values = d["traversal_values"]
    st.plotly_chart(figures.grid_figure(d["traversal"], len(values), col_labels=[f"{v:+.1f}" for v in values],
                                        x_title=f"value of latent dimension {d['dim']}",
                                        title=f"Traversal of dimension {d['dim']}"), key="lesson_sm_trav")
    table([{"dimension": i, **{k: float(e[j]) for j, k in enumerate(d["features"])}}
           for i, e in enumerate(d["effects"])])


def _ood(r: LessonResult) -> None:
    d = r.data
    rows = d["rows"]
    strengths = [x["strength"] for x in rows]
    c = st.columns([2, 3])
    with c[0]:
        s = st.select_slider("Strength (0 = N(0, I), 1 = the out-of-distribution law)", strengths,
                             value=strengths[-1], key="lesson_ood_s")
        row = rows[strengths.index(s)]
        grid_image(d["grids"][s], 5, f"strength {s:g}: nearest real image {row['nn_distance']:.2f} away "
                   f"({row['nn_distance'] / rows[0]['nn_distance']:.2f}× N(0, I)), confidence "
                   f"{row['classifier_confidence']:.3f}")
    with c[1]:
        base = rows[0]["nn_distance"]
        chart(lines_figure(strengths, {"nearest-real distance / N(0, I)'s": [x["nn_distance"] / base for x in rows],
                                       "classifier confidence": [x["classifier_confidence"] for x in rows]},
                           "Measured at each strength", "strength", "ratio / probability",
                           hline=1 + r.settings["drift"], hline_text="10 % further than N(0, I)"), "lesson_ood_rows")
    table(rows)


def _concepts(r: LessonResult) -> None:
    d = r.data
    names, s = d["class_names"], r.settings
    strips = d["strips"]                                     # (8, steps, C, H, W)
    st.plotly_chart(figures.grid_figure(strips.flatten(0, 1), strips.shape[1],
                                        col_labels=[f"{v:.2f}" for v in d["strengths"]], x_title="strength",
                                        title=f"'{names[s['add']]}' − '{names[s['remove']]}' added"),
                    key="lesson_cv_strip")
    chart(lines_figure(d["strengths"], {f"P({names[s['add']]})": d["p_add"], f"P({names[s['remove']]})": d["p_remove"]},
                       "The classifier along the strength", "strength", "mean probability"), "lesson_cv_p")


def _live(r: LessonResult) -> None:            # the headless run's result (the page shows the live run)
    d = r.data
    c = st.columns(2)
    chart(figures.loss_figure(d["history"], "gan", "nonsaturating"), "lesson_live_loss", c[0])
    grid_image(d["grid"], 5, f"after {r.figures['train_s']:.0f} s ({int(r.figures['steps']):,} steps)", c[1])


def generic_view(r: LessonResult) -> None:
    """A lesson without a view of its own: its image grids (uint8 (n, C, H, W) tensors), 2-D point
    sets, curves ({x: [...], y: [...], ...}: the first key is the x axis) and secondary numbers."""
    items = list(r.data.items())
    grids = [(k, v) for k, v in items if isinstance(v, torch.Tensor) and v.dim() == 4 and v.dtype == torch.uint8]
    grids += [(f"{k}: {k2}", v2) for k, v in items if isinstance(v, Mapping) for k2, v2 in v.items()
              if isinstance(v2, torch.Tensor) and v2.dim() == 4 and v2.dtype == torch.uint8]
    for col, (name, x) in zip(st.columns(min(3, len(grids))) if grids else [], grids[:3]):
        grid_image(x[:25], 5, str(name), col)
    points = r.data.get("points")
    real = r.data.get("real")
    if isinstance(points, Mapping) and isinstance(real, torch.Tensor) and real.dim() == 2 and real.shape[1] == 2:
        pts = [(k, v) for k, v in points.items() if isinstance(v, torch.Tensor) and v.dim() == 2 and v.shape[1] == 2]
        for col, (k, v) in zip(st.columns(min(3, len(pts))) if pts else [], pts[:3]):
            chart(figures.points_figure(real, v, str(k)), f"lesson_generic_pts_{k}", col)
    curve = r.data.get("curve")
    if isinstance(curve, Mapping) and len(curve) >= 2:
        (x_name, xs), *rest = curve.items()
        series = {k: v for k, v in rest if np.ndim(v) == 1 and len(v) == len(xs)}
        if series:
            chart(lines_figure(xs, series, "Measured", str(x_name), "value"), "lesson_generic_curve")
    table([{"figure": k, "value": float(v)} for k, v in r.figures.items() if isinstance(v, (int, float))])


VIEWS: dict[str, Callable[[LessonResult], None]] = {
    "vae-blurry-gan-sharp": _sharp_vs_gan, "all-eights": _all_eights, "nonsaturating-vs-minimax": _nonsaturating,
    "critic-tracks-quality": _critic, "fixed-noise-along-training": _fixed_noise, "latent-clusters": _latent_clusters,
    "family-race": _family_race, "posterior-collapse": _posterior, "mode-collapse": _mode_collapse,
    "smooth-interpolation": _smooth, "ood-latents": _ood, "concept-vectors": _concepts, "train-from-scratch": _live,
}
