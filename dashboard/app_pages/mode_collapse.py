"""Mode collapse lab: a vanilla GAN and a WGAN-GP on a 2-D mixture, side by side, live."""
import functools

import streamlit as st
import torch

import genlib
from genlib.models import GANConfig
from genlib.metrics import ToyProbe
from genlib.models.gan_objectives import OBJECTIVES
from dashboard import context, figures, measure, resources, session, train_form, ui

ctx = context.context()
runs = session.session_runs()
st.title("Mode collapse lab")
ui.explain("""
The real data (grey) is a mixture of small Gaussian blobs ("modes"). A GAN whose generator puts all
its samples (red) on a few blobs still fools its discriminator there: that is **mode collapse**.
- **Heat-map**: the discriminator's opinion over the plane. Vanilla GAN: P(real), blue = "real",
  red = "fake". WGAN-GP: the critic's score, higher = more real; only differences matter.
  The generator moves its points uphill on this map.
- **Where the points go**: the share of generated points nearest to each blob. Even bars = no
  collapse, even if the points are still blurry.
- **Modes covered**: blobs with enough *good* samples (within 3 standard deviations of the centre;
  20 per 2,500 samples). **High-quality share**: the fraction of samples that are good.
- WGAN-GP makes 5 critic updates per generator update, so at equal steps its generator has moved
  5× less. Watch the coverage and quality curves, not only the last picture.
- To see collapse, pick **grid** (25 modes) and the **minimax** loss: measured here, 2,000 steps at
  lr 0.001 covered 13 of 25 modes (18 with the non-saturating loss); on the 8-mode ring the vanilla
  GAN usually finds all 8.
""")

c = st.columns(4)
toy = c[0].segmented_control("2-D data", ["ring", "grid"], default="ring", key="mc_toy", required=True,
                             persist_state="session")
steps = c[1].select_slider("Steps each", [500, 1000, 2000, 3000, 5000, 10000], value=2000, key="mc_steps",
                           persist_state="session")
rates = [v for v in train_form.ladder(train_form.spec_of(GANConfig, "lr_g")) if 1e-4 <= v <= 1e-2]
lr = c[2].select_slider("Learning rate (both)", rates, value=1e-3, format_func=lambda v: f"{v:g}",
                        key="mc_lr", persist_state="session")
vanilla_loss = c[3].selectbox("Vanilla GAN loss", [n for n, o in OBJECTIVES.items() if o.probabilistic], key="mc_loss",
                              persist_state="session")
data = resources.load_data(toy)
st.caption(f"{genlib.DATASETS[toy]} Both models train on the CPU, batch 128. Coverage is measured on "
           f"1,000 samples by `{measure.toy_metrics_source()}`.")

busy = runs.start_problem(2)                   # two runs at once (session.MAX_RUNS_AT_ONCE)
if busy:
    st.warning(f"Start both is off: {busy}")
go_col, stop_col = st.columns([1, 8])
if go_col.button("Start both", type="primary", key="mc_start", disabled=bool(busy), help=busy):
    pair = []
    every = max(25, steps // 40)                 # a measurement costs ~10 steps: keep it to a few %
    cfg = genlib.TrainConfig(steps=steps, batch_size=128, log_every=10, sample_every=every,
                             n_fixed=400, metric_every=every)
    try:
        for preset, extra in (("gan", {"loss": vanilla_loss}), ("wgan-gp", {"arch": "mlp"})):
            model = genlib.make_model(preset, data, lr_g=lr, lr_d=lr, **extra)
            pair.append(session.start_run(runs, preset, toy, model, data, cfg, device="cpu", page="toy",
                                          metric=functools.partial(ToyProbe, toy, grid=48)).name)
    except (session.LimitError, session.PoolLimitError) as e:
        for name in pair:
            runs.runs[name].stop()
        st.error(str(e))
        pair = []
    if pair:
        runs.state["mc_pair"] = pair        # with the session id: a reload shows the same pair

pair = [runs.runs[n] for n in runs.state.get("mc_pair", []) if n in runs.runs]
if pair:
    alive = any(r.alive for r in pair)
    stop_col.button("Stop both", disabled=not alive, key="mc_stop", on_click=lambda: [r.stop() for r in pair])
    pair_data = resources.load_data(pair[0].dataset)
    real, real_modes = pair_data.subset(500).x, pair_data.modes

    # 6 charts every 2 s: each figure is rebuilt only when its data changed (a new grid, heat-map or
    # measurement), and the browser is spared the rest
    @st.fragment(run_every=ui.LIVE_REFRESH_S if alive else None)
    def live(was_alive: bool) -> None:
        for i, (col, run) in enumerate(zip(st.columns(2), pair)):
            snap, panel = run.snapshot(), run.panel() or {}
            heat, share = panel.get("heat"), panel.get("mode_share")
            with col:
                st.markdown(f"**{ui.plain(run.name)}** — {snap.state}, step {snap.step:,} / {snap.total_steps:,}")
                ui.run_progress(snap, run.name)
                fake = snap.samples[-1][1] if snap.samples else None
                drawn = (run.name, snap.samples[-1][0] if snap.samples else None, panel.get("step"))
                # Vega-Lite (figures.points_chart, ...): the chart element stays, only its data change
                st.vega_lite_chart(ui.memo(f"mc_pts_{i}", drawn, lambda: figures.points_chart(
                    real, fake, "Real (grey) vs generated (red) points",
                    None if heat is None else (panel["ticks"], heat), run.model.config.probabilistic)),
                    key=f"mc_pts@{run.name}", width="stretch")
                # every chart is drawn on every pass (empty until the first measurement): an element
                # that is sometimes absent is removed and re-created by the browser, i.e. it blinks
                measured = (run.name, len(snap.metrics.get("step", [])), (snap.metrics.get("step") or [None])[-1])
                st.vega_lite_chart(ui.memo(f"mc_share_{i}", (measured, share is None), lambda: figures.mode_share_chart(
                    share if share is not None else torch.zeros(len(real_modes)))),
                    key=f"mc_share@{run.name}", width="stretch")
                st.vega_lite_chart(ui.memo(f"mc_met_{i}", measured,
                                           lambda: figures.metric_chart(snap.metrics, "Coverage over training")),
                                   key=f"mc_met@{run.name}", width="stretch")
        if was_alive and not any(r.alive for r in pair):
            st.rerun()

    live(alive)

st.divider()
st.subheader("Images: which classes does a GAN draw along training?")
st.caption("The classifier labels each saved fixed-noise grid of an image GAN; a GAN that collapses "
           "piles its samples into a few classes.")
gans = [m for m in ctx.models if m.model.family == "gan" and m.samples] if ctx.data is not None and ctx.data.is_image else []
gans.sort(key=lambda m: m.model.config.conditional)     # unconditional first: a cGAN is told its classes
clf = measure.classifier_for(ctx.dataset) if gans else None
if not gans:
    st.info("Pick an image dataset in the sidebar and a GAN that saved samples during training (a pretrained "
            "GAN, or one you trained on the Train page).")
elif clf is None:
    st.info(f"No classifier for **{ctx.dataset}**: build one with `python -m genlib.classifier build`.")
else:
    labels = [m.label for m in gans]
    chosen = gans[labels.index(st.selectbox("GAN", labels, key=ui.wkey("mc_gan", ctx.dataset)))]
    # classify the saved grids again only for another model or new grids, not on every rerun
    st.plotly_chart(ui.memo("mc_hist", (ctx.dataset, chosen.label, len(chosen.samples), chosen.samples[-1][0]),
                            lambda: figures.class_share_figure(*measure.class_histogram(chosen.samples, clf,
                                                                                   ctx.data.num_classes),
                                                          ctx.data.class_names)), key="mc_hist")
    st.caption(f"Judge: the {ctx.dataset} classifier ({measure.classifier_accuracy_note(clf)}). A uniform "
               f"model puts {100 / ctx.data.num_classes:.0f} % in each class.")
