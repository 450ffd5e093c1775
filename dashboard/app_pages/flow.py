"""Flow matching: noise carried to data along a learned ODE (genlib.models.flow).

2-D toys: particles flowing from the noise to the data (an animation over the ODE's steps) over the
velocity field at a chosen time. Images: the trajectory from noise to image as a row of frames.
Both: sampling steps against quality and time, measured on the chosen model.
"""
import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch
from plotly.subplots import make_subplots

from dashboard import context, figures, images, measure, ui
from genlib import sampling
from genlib.lessons import flow_lessons
from genlib.metrics.scores import toy_mode_metrics

LIM = 1.6             # the toys' plotting box, as figures.points_figure
FIELD_GRID = 17       # arrows per side of the vector-field plot
TOY_TRAIN_STEPS = (300, 600, 1200, 2400)

ctx = context.context()
data = ui.need_data(ctx)
st.title("Flow matching: from noise to data along an ODE")
ui.explain("""
A **flow-matching** model (Lipman et al. 2023; the straight paths of rectified flow, Liu et al. 2022)
learns a *velocity field* v(x, t). Training draws a data point x₁, a noise point x₀ ~ N(0, I) and a
time t, puts x_t = (1 − t)·x₀ + t·x₁ on the straight line between them, and regresses v(x_t, t) onto
that line's velocity x₁ − x₀: a plain mean-squared error, no adversary and no posterior. On images
the presets' network outputs the clean image x̂ instead and the velocity is (x̂ − x_t) / (1 − t)
(Li & He 2025): a network narrower than the image cannot pass the noise in x₁ − x₀, but it can
draw an image.

**Sampling** solves the ODE dx/dt = v(x, t) from t = 0 (the noise z) to t = 1 with a fixed number of
steps (Euler: one network call per step; Heun: two, more accurate). The noise z is the model's
latent: the same z always gives the same sample, so the latent pages work on it too.

A **class-conditional** flow also learns the field without a label (the label is dropped 10 % of
the time in training). **Classifier-free guidance** (Ho & Salimans 2022) samples along
v(x) + w·(v(x | y) − v(x)): w = 1 is the plain conditional model, w > 1 sharper and less varied.
""")

flows = ctx.models_where(lambda m: m.model.family == "flow")
toy = not data.is_image and data.modes is not None
entry = ctx.model if ctx.model is not None and ctx.model.model.family == "flow" else None
if entry is None and flows:
    label = st.selectbox("Flow model", [m.label for m in flows], key=ui.wkey("flow_model", ctx.dataset))
    entry = next(m for m in flows if m.label == label)
    if ctx.model is not None:
        st.caption(f"The sidebar's **{ui.plain(ctx.model.name)}** is a {ctx.model.model.family_title}; this page shows a flow.")

model, name = (entry.model, entry.name) if entry is not None else (None, "")
if model is None and toy:
    st.info(f"No flow model for **{ctx.dataset}** yet. Train one here (a seeded MLP flow with the toy preset, "
            "cached for this server), or on the **Train live** page.")
    c = st.columns([2, 1])
    steps_wanted = c[0].select_slider("Training steps", TOY_TRAIN_STEPS, value=600, key="flow_toy_steps")
    key = ("flow_toy", ctx.dataset, steps_wanted)
    if c[1].button("Train a toy flow", key="flow_toy_train") or key in st.session_state:
        with st.spinner(f"Training a flow on {ctx.dataset} for {steps_wanted} steps…"):
            st.session_state[key] = flow_lessons.toy_flow(ctx.dataset, steps_wanted, 0)
        model, name = st.session_state[key], f"flow trained here ({steps_wanted} steps)"
if model is None:
    ui.no_model_note(ctx, "flow model (preset flow or cflow)")
    st.stop()

cfg = model.config
c = st.columns(4)
steps = c[0].slider("ODE steps", 1, 100, int(cfg.sample_steps), key="flow_steps",
                    help="Steps from t = 0 (noise) to t = 1 (data). Each Euler step is one network call.")
sampler = c[1].selectbox("Solver", ("euler", "heun"), index=("euler", "heun").index(cfg.sampler), key="flow_sampler")
seed = c[2].number_input("Seed", 0, 1_000_000, 0, key="flow_seed")
labels_for = None
guidance = None
if cfg.conditional:
    names = data.class_names
    cls = c[3].selectbox("Class", range(len(names)), format_func=lambda i: names[i], key=ui.wkey("flow_class", ctx.dataset))
    guidance = st.slider("Guidance scale w", 0.0, 8.0, float(cfg.guidance), 0.5, key="flow_guidance",
                         help="0: ignore the label; 1: the plain conditional model; more: sharper, less varied.")
    labels_for = lambda n: torch.full((n,), int(cls), dtype=torch.long)   # noqa: E731


def trajectory(n: int) -> list[torch.Tensor]:
    """The states at every step (steps + 1, the noise first), each (n, *data_shape) in the data's range."""
    traj: list[torch.Tensor] = []
    z = sampling.prior_draw(model, n, int(seed))
    model.sample(n, labels=None if labels_for is None else labels_for(n), z=z, steps=steps, sampler=sampler,
                 guidance=guidance, trajectory=traj)
    return [s.cpu() for s in traj]


def flow_figure(traj: list[torch.Tensor], t_field: float) -> go.Figure:
    """Real points (grey), the field at t_field (arrows), and the particles along the ODE (frames)."""
    ticks = torch.linspace(-LIM, LIM, FIELD_GRID)
    gy, gx = torch.meshgrid(ticks, ticks, indexing="ij")
    grid = torch.stack([gx.flatten(), gy.flatten()], 1)                               # (G*G, 2)
    v = model.velocity_at(grid, t_field, None if labels_for is None else labels_for(len(grid)), guidance).cpu()
    scale = 0.8 * (2 * LIM / FIELD_GRID) / max(float(v.norm(dim=1).max()), 1e-6)   # the longest arrow: 0.8 cells
    tips = grid + scale * v
    xs, ys = [], []
    for (x0, y0), (x1, y1) in zip(grid.tolist(), tips.tolist()):
        xs += [x0, x1, None]
        ys += [y0, y1, None]
    real = data.subset(1000).x.cpu()
    fig = go.Figure([
        go.Scatter(x=real[:, 0].numpy(), y=real[:, 1].numpy(), mode="markers", name="real data",
                   marker=dict(size=3, color=figures.COLORS["real"])),
        go.Scatter(x=xs, y=ys, mode="lines", name=f"v(x, t = {t_field:.2f})", line=dict(color="#1f77b4", width=1)),
        go.Scatter(x=tips[:, 0].numpy(), y=tips[:, 1].numpy(), mode="markers", showlegend=False, hoverinfo="skip",
                   marker=dict(size=3, color="#1f77b4")),
        go.Scatter(x=traj[0][:, 0].numpy(), y=traj[0][:, 1].numpy(), mode="markers", name="particles",
                   marker=dict(size=4, color=figures.COLORS["fake"])),
    ])
    k = len(traj) - 1
    fig.frames = [go.Frame(data=[go.Scatter(x=s[:, 0].numpy(), y=s[:, 1].numpy())], traces=[3], name=str(i))
                  for i, s in enumerate(traj)]
    fig.update_layout(
        height=520, margin=dict(l=10, r=10, t=50, b=10), legend=dict(orientation="h", y=-0.12),
        title=f"{name}: particles from noise (t = 0) to data (t = 1), {k} {sampler} steps",
        updatemenus=[dict(type="buttons", x=0, y=1.08, xanchor="left", direction="left", buttons=[
            dict(label="▶ play", method="animate",
                 args=[None, dict(frame=dict(duration=max(40, 2000 // max(k, 1)), redraw=False),
                                  transition=dict(duration=0), fromcurrent=True)]),
            dict(label="⏸", method="animate", args=[[None], dict(mode="immediate", frame=dict(duration=0))])])],
        sliders=[dict(active=0, x=0.1, len=0.9, currentvalue=dict(prefix="t = "), steps=[
            dict(label=f"{i / max(k, 1):.2f}", method="animate",
                 args=[[str(i)], dict(mode="immediate", frame=dict(duration=0, redraw=False))]) for i in range(k + 1)])])
    fig.update_xaxes(range=[-LIM, LIM], constrain="domain", title_text="x₁")
    fig.update_yaxes(range=[-LIM, LIM], scaleanchor="x", title_text="x₂")
    return fig


if toy:
    left, right = st.columns([3, 1])
    with right:
        n = st.select_slider("Particles", (100, 250, 500, 1000), value=500, key="flow_particles")
        t_field = st.slider("Field shown at time t", 0.0, 1.0, 0.5, 0.05, key="flow_t",
                            help="The arrows are v(x, t) at this one time; the particles move through all times.")
    traj = trajectory(n)
    with left:
        st.plotly_chart(flow_figure(traj, t_field), key="flow_anim")
    q = toy_mode_metrics(traj[-1], data.modes, data.mode_std)
    with right:
        st.metric("Modes covered", f"{q['toy_modes_covered']}/{q['toy_modes_total']}")
        st.metric("Near a mode", f"{q['toy_high_quality']:.0%}", help="Share of the particles within 3 std of a mode.")
    st.caption("Press ▶ to play the flow, or drag the slider through t. Early on the field points every particle "
               "towards the mean of the data; later it splits towards the nearest mode.")
else:
    st.subheader("From noise to image")
    rows = st.slider("Samples", 1, 8, 4, key="flow_rows")
    frames = min(10, steps + 1)
    traj = trajectory(rows)
    idx = np.unique(np.linspace(0, steps, frames).round().astype(int))
    stack = torch.stack([traj[i] for i in idx], 1).flatten(0, 1)                     # (rows * frames, C, H, W)
    st.image(images.image_grid(sampling.to_uint8(stack), nrow=len(idx), min_side=ui.grid_px(480, 900)),
             caption="Each row: one noise z followed along the ODE; columns at t = "
                     + ", ".join(f"{i / steps:.2f}" for i in idx) + ".")

st.subheader("Sampling steps against quality and time")
clf = measure.classifier_for(ctx.dataset) if data.is_image else None
if data.is_image and clf is None:
    st.info(f"No classifier for **{ctx.dataset}**: the curve needs one to judge the images.")
elif not data.is_image and not toy:
    st.info("This toy has no modes to count: pick the ring or the grid.")
else:
    n_curve = st.select_slider("Samples per point", (100, 250, 500, 1000), value=250 if data.is_image else 1000,
                               key="flow_curve_n")
    if st.toggle(f"Measure (steps {', '.join(map(str, flow_lessons.STEPS))}, {sampler})", key="flow_curve"):
        curve = ui.memo(f"flow_curve@{name}", (name, model.steps, sampler, n_curve, int(seed)),
                        lambda: {k: v.tolist() for k, v in flow_lessons.steps_curve(
                            model, data, flow_lessons.STEPS, n_curve, int(seed), sampler, clf).items()})
        quality = [k for k in ("high_quality", "modes_covered", "label_accuracy", "confidence") if k in curve]
        fig = make_subplots(1, 2, subplot_titles=("quality", f"seconds for {n_curve} samples"))
        for i, k in enumerate(quality):
            y = [v / (len(data.modes) if k == "modes_covered" else 1) for v in curve[k]]
            fig.add_trace(go.Scatter(x=curve["steps"], y=y, mode="lines+markers",
                                     name={"modes_covered": "modes covered (share)"}.get(k, k.replace("_", " ")),
                                     line=dict(color=list(figures.COLORS.values())[2 + i])), row=1, col=1)
        fig.add_trace(go.Scatter(x=curve["steps"], y=curve["seconds"], mode="lines+markers", name="seconds",
                                 line=dict(color=figures.COLORS["fake"])), row=1, col=2)
        fig.update_xaxes(type="log", title_text="ODE steps")
        fig.update_yaxes(range=[0, 1.05], row=1, col=1)
        fig.update_layout(height=360, margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=-0.25))
        st.plotly_chart(fig, key="flow_curve_fig")
        st.caption("Measured now on this machine, from the same seeded noise at every point. Lessons 15-17 "
                   "(Lessons page) measure the same on fixed settings.")
