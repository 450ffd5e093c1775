"""Train live: configure a model, train it on a background thread, watch it learn."""
import streamlit as st

import genlib
from dashboard import context, figures, images, measure, session, train_form, ui

ctx = context.context()
data = ui.need_data(ctx)
runs = session.session_runs()
st.title("Train live")
ui.explain("""
Training runs on a background thread; you can switch pages and come back, it keeps going (closing
the tab pauses it, and stops it two minutes later).
- **Loss curves.** A VAE minimises reconstruction error plus β × KL (how far the codes stray from
  N(0, I)). A GAN is a game: D learns to tell real from generated, G learns to fool D. GAN losses do
  not fall steadily; a healthy run hovers, with D(x) and D(G(z)) near 0.5. D(G(z)) stuck at 0 means D
  wins outright; G's samples then stop improving.
- **Fixed-noise grid.** The same noise vectors z are decoded every few steps, so you see one set of
  samples evolve. The history slider scrubs back through them.
- A learning rate that is too high makes the loss non-finite: the run stops with a message and the
  weights from the last good point; lower the rate and resume.
""")

with st.expander("New run", expanded=not runs.of_page("train")):
    st.caption(f"Trains on **{ctx.dataset}** ({len(data):,} examples) on **{ctx.device}**; change both in "
               "the sidebar. Defaults come from the preset.")
    preset = st.selectbox("Model", list(genlib.PRESETS), key="tr_preset", persist_state="session",
                          format_func=lambda p: f"{p}: {genlib.PRESETS[p].description}")
    overrides, train_cfg = train_form.train_settings(preset, data)
    busy = runs.start_problem()                      # per-session limits (session.MAX_RUNS_AT_ONCE, SESSION_MB)
    if busy:
        st.warning(f"Start is off: {busy}")
    if st.button("Start training", type="primary", key="tr_start", disabled=bool(busy), help=busy):
        metric = measure.live_metric_factory(data)
        try:
            why = train_form.build_problem(preset, data, overrides, train_cfg)      # before anything is allocated
            if why:
                raise ValueError(why)
            model = genlib.make_model(preset, data, **overrides)
            cfg = genlib.TrainConfig(**train_cfg, metric_every=train_form.metric_every(train_cfg["steps"]) if metric else 0)
            run = session.start_run(runs, preset, ctx.dataset, model, data, cfg, ctx.device, metric)
        except ValueError as e:
            st.error(f"Cannot build this model: {ui.plain(e, 300)}")
        except session.PoolLimitError as e:                  # the server's pool refuses (issue 18)
            st.error(f"Cannot start this run now: {ui.plain(e, 300)}")
        else:
            st.session_state["tr_run"] = run.name

train_runs = [r.name for r in runs.of_page("train")]
if not train_runs:
    st.info("No run yet: set the hyperparameters above and press **Start training**.")
    st.stop()
if st.session_state.get("tr_run") not in train_runs:
    st.session_state["tr_run"] = train_runs[-1]
run = runs.runs[st.selectbox("Run", train_runs, key="tr_run")]
family, loss = run.model.family, getattr(run.model.config, "loss", "")
snap = run.snapshot()

# --- controls (outside the live fragment; it reruns the page when the run's phase changes) -------
phase = run.phase
b = st.columns(6)
revive = phase == "ended" and runs.going() >= session.MAX_RUNS_AT_ONCE   # going again counts as a run at once
b[0].button("Pause", on_click=run.pause, disabled=phase != "running", key="tr_pause")
b[1].button("Resume", on_click=run.start, disabled=phase == "running" or snap.state in ("done", "error") or revive,
            key="tr_resume", help=busy if revive else None)
b[2].button("Step once", on_click=run.step_once, disabled=phase == "running" or snap.state == "error" or revive,
            key="tr_step")
b[3].button("Stop", on_click=run.stop, disabled=phase == "ended", key="tr_stop")
more = b[4].number_input("More steps", 10, 100_000, 500, step=100, key="tr_more", label_visibility="collapsed")
if b[5].button(f"Train {more:,} more", disabled=phase != "ended" or snap.state == "error" or revive,
                key="tr_extend"):
    run.trainer.extend(int(more))
    run.start()
    st.rerun()
if snap.state == "error":
    rates = {f: run.model.config.__dict__[f] for f in run.model.lr_fields.values()}
    st.error(snap.message)
    cols = st.columns(len(rates) + 1)
    ladders = {f: train_form.ladder(train_form.spec_of(run.model.config, f)) for f in rates}
    new = {f: cols[i].select_slider(f"New {f}", ladders[f], value=min(ladders[f], key=lambda v: abs(v - r / 10)),
                                    format_func=lambda v: f"{v:g}", key=f"tr_fix_{f}") for i, (f, r) in enumerate(rates.items())}
    if cols[-1].button("Resume with the new learning rate", type="primary", key="tr_fix"):
        run.model.set_learning_rates(**new)
        run.start()
        st.rerun()


# Redrawn every ui.LIVE_REFRESH_S seconds; each figure and the grid's PNG are rebuilt only when their data changed.
@st.fragment(run_every=ui.LIVE_REFRESH_S if phase != "ended" else None)
def live(drawn_phase: str) -> None:
    snap = run.snapshot()
    ui.run_progress(snap, run.name)
    left, right = st.columns([3, 2] if not ctx.present else [1, 1])
    with left:
        # one version per new loss point: the same figure object (and JSON) between points
        st.plotly_chart(ui.memo("tr_loss", (run.name, len(snap.history.get("step", [])),
                                            (snap.history.get("step") or [None])[-1]),
                                lambda: figures.loss_figure(snap.history, family, loss)), key=f"tr_loss@{run.name}")
        if run.trainer.config.metric_every:          # always drawn, empty until the first measurement
            st.plotly_chart(ui.memo("tr_metric", (run.name, len(snap.metrics.get("step", []))),
                                    lambda: figures.metric_figure(snap.metrics, "Live quality metric (genlib.metrics)")),
                            key=f"tr_metric@{run.name}")
    with right:
        if snap.samples and data.is_image:
            step, x = ui.history_picker(snap.samples, key=f"tr_hist_{run.name}")
            st.image(ui.memo("tr_grid", (run.name, step, ctx.present),
                             lambda: images.png_bytes(images.image_grid(x, nrow=8, min_side=ui.grid_px(320, 640)))),
                     caption=f"The same {len(x)} noise vectors, decoded at step {step:,}", width="stretch")
        elif snap.samples:
            step, x = ui.history_picker(snap.samples, key=f"tr_hist_{run.name}")
            st.plotly_chart(ui.memo("tr_points", (run.name, step), lambda: figures.points_figure(
                data.subset(1000).x, x, f"Generated points at step {step:,}")), key=f"tr_points@{run.name}")
    if run.phase != drawn_phase:
        st.rerun()          # paused, resumed or ended meanwhile: redraw the buttons and downloads


live(phase)

if not run.alive and run.snapshot().samples:
    entry = context.ModelEntry.from_run(run)
    snap = run.snapshot()
    st.subheader("Keep the result")
    d = st.columns(4)
    d[0].button("Use in the other pages", key="tr_use",
                on_click=context.use_model, args=(entry.label,))
    d[1].download_button("Checkpoint (.pt)", key="tr_dl_ckpt", file_name=f"{run.preset}-{run.dataset}.pt",
                         data=lambda: session.checkpoint_bytes(entry.model, run.trainer, preset=run.preset),
                         mime="application/octet-stream")
    if data.is_image:
        d[2].download_button("Latest grid (.png)", images.png_bytes(images.image_grid(snap.samples[-1][1], nrow=8)),
                             file_name=f"{run.preset}-grid.png", mime="image/png", key="tr_dl_png")
        d[3].download_button("Training (.gif)", lambda: images.gif_bytes(snap.samples), key="tr_dl_gif",
                             file_name=f"{run.preset}-training.gif", mime="image/gif")
    st.caption("The model is also in the sidebar's picker as "
               f"“{ui.plain(entry.label)}”, for the other pages.")
