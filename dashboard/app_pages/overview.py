"""Overview / compare: the same random seed through every model available on one dataset."""
import streamlit as st

from dashboard import context, figures, images, measure, ui

ctx = context.context()
data = ctx.data           # None when the dataset is not on disk: the pretrained models still draw
st.title("Overview: compare models")
st.caption(f"Every model available for **{ctx.dataset}**, each drawing 25 samples from the same seed.")
ui.explain("""
Each grid shows 25 samples: random latent vectors z ~ N(0, I) pushed through a model's generator
(GAN) or decoder (VAE). The same seed is used for every model, but models with different latent
sizes read different numbers, so compare the *look* of the grids, not image by image.
- **VAE** samples tend to be smooth and blurry: the decoder outputs the *mean* image for a code.
- **GAN** samples tend to be sharper, but a GAN may cover only some kinds of images (mode collapse).

The table lists the parameters of each network, how long the model was trained and, when the metrics
module is available, **classifier-FID**: the Fréchet distance between features of real and generated
images taken from a small classifier trained on this dataset. Lower is better. It is *not* the
Inception FID of papers, so its numbers cannot be compared with published ones.
""")

if not ctx.models:
    ui.no_model_note(ctx)
    st.stop()

seed = st.number_input("Seed (the same for every model)", 0, 1_000_000, 0, key="ov_seed")
cols = st.columns(min(2 if ctx.present else 3, len(ctx.models)))
for i, entry in enumerate(ctx.models):
    is_image = len(entry.model.config.data_shape) == 3
    with cols[i % len(cols)]:
        st.markdown(f"**{ui.plain(entry.name)}** · {entry.source}")
        x = ui.memo(f"ov_draw@{entry.label}", (entry.model.steps, seed), lambda: ui.draw(entry.model, 25 if is_image
                                                                                        else 1000, seed))
        if is_image:
            st.image(images.image_grid(x, nrow=5, min_side=ui.grid_px(320, 600)), width="stretch",
                     caption=f"{entry.model.family_title} samples, seed {seed}")
        elif data is not None:
            st.plotly_chart(figures.points_figure(data.subset(1000).x, x, entry.name), key=f"ov_pts@{entry.label}")


def measure_all() -> tuple[dict[str, dict[str, float]], tuple[float, int] | None]:
    """measure.table_metrics of every model (a progress bar with an ETA), and the floor at the same
    sample size (the card's is at n=5000)."""
    done = ui.each_with_progress(ctx.models, lambda e: measure.table_metrics(e.model, data),
                                 lambda e: f"Measuring {ui.plain(e.name)}")
    return ({e.label: m for e, m in zip(ctx.models, done)}, measure.floor_fid_with_count(data, measure.LIVE_N))


metrics, floor, floor_n = {}, None, None
if data is None:
    st.info(f"The **{ctx.dataset}** images are not on this machine: the grids above come from its pretrained "
            "models, the table's quality numbers from their cards (measured when they were built).")
elif not measure.has_quality_metrics(data):
    st.info(f"No quality metrics for **{ctx.dataset}** here: they need `genlib.metrics` and, for images, "
            "the dataset's classifier (`python -m genlib.classifier build`).")
elif st.toggle(f"Measure every model now ({measure.LIVE_N:,} samples each; a few seconds per model)",
               key="ov_metrics"):
    # measured again only when the models change (a new run, more steps), not when a widget does
    metrics, live_floor = ui.memo("ov_metrics", (data.name, tuple((e.label, e.model.steps) for e in ctx.models)),
                                  measure_all)
    floor, floor_n = live_floor or (None, None)
if not metrics:     # the cards' numbers, and the floor measured with them
    card = next((m.card["metrics"] for m in ctx.models
                 if isinstance((m.card.get("metrics") or {}).get("fid_floor"), float)), None)
    floor, floor_n = (card["fid_floor"], card.get("n")) if card else (None, None)
st.subheader("The models")
rows = figures.model_rows(ctx.models, metrics)
QUALITY = ("classifier-FID ↓", "precision", "recall", "classifier IS ↑", "classes covered", "label accuracy",
           "modes covered", "high-quality share", "sampling s / 1k", "peak memory MB", "metrics from")
# two tables, each narrow enough for a 1280 px projector: what each model is, then how good and how costly
about = [{k: v for k, v in r.items() if k not in QUALITY} for r in rows]
quality = [{k: v for k, v in r.items() if k == "model" or k in QUALITY} for r in rows]
for table, key in ((about, "ov_table"), (quality, "ov_quality")):
    if len(table[0]) <= 1:
        continue
    if ctx.present:
        # plain HTML: the page's large type, full names, no scrolling; st.table reads markdown in cells,
        # and names and card fields come from files: escaped (ui.plain)
        st.table([{k: ui.plain(v, 120) if isinstance(v, str) else v for k, v in r.items()} for r in table])
    else:
        st.dataframe(table, hide_index=True, key=key, width="stretch",
                     column_config={"model": st.column_config.TextColumn("model", width="medium", pinned=True)})
at_n = f" at {floor_n:,} samples" if isinstance(floor_n, int) else ""
st.caption("parameters: trainable weights per network (G generator, D discriminator, enc/dec encoder and "
           "decoder). steps, epochs and train time come from each model's card (time excludes pauses). "
           "classifier-FID ↓ is the Fréchet distance in the features of this dataset's small CNN classifier, "
           "not the Inception network of published FIDs: compare it only within this table"
           + (f"; held-out real images score {floor:.2f}{at_n} (it rises as the sample count falls): a model "
              "near that is as close to the data as this measure can tell (small differences are sampling "
              "noise)." if floor else ".")
           + " precision = share of samples that look like real data, recall = share of real data the "
           "samples cover (Kynkäänniemi et al. 2019). classifier IS ↑ = the Inception Score computed with the "
           "same small classifier (up to the number of classes: confident and varied samples). sampling s / 1k = "
           "seconds to draw 1,000 samples on the CPU; peak memory MB = how much the process grew meanwhile "
           "(genlib.metrics.cost.PeakMemory: resident set on the CPU).")
