"""Overview / compare: the same random seed through every model available on one dataset."""
import streamlit as st

from dashboard import context, figures, images, measure, ui

ctx = context.context()
data = ui.need_data(ctx)
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
cols = st.columns(min(3, len(ctx.models)))
for i, entry in enumerate(ctx.models):
    with cols[i % len(cols)]:
        st.markdown(f"**{entry.name}** · {entry.source}")
        x = ui.draw(entry.model, 25 if data.is_image else 1000, seed)
        if data.is_image:
            st.image(images.image_grid(x, nrow=5), caption=f"{entry.model.family.upper()} samples, seed {seed}")
        else:
            st.plotly_chart(figures.points_figure(data.subset(1000).x, x, entry.name), key=f"ov_pts_{i}")


def measure_all() -> tuple[dict[str, dict[str, float]], tuple[float, int] | None]:
    """measure.live_metrics of every model, and the floor at the same sample size (the card's is at n=5000)."""
    with st.spinner("Measuring…"):
        return ({e.label: measure.live_metrics(e.model, data) for e in ctx.models},
                measure.floor_fid_with_count(data, measure.LIVE_N))


metrics, floor, floor_n = {}, None, None
if not measure.has_quality_metrics(data):
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
st.dataframe(figures.model_rows(ctx.models, metrics), hide_index=True)
at_n = f" at {floor_n:,} samples" if isinstance(floor_n, int) else ""
st.caption("parameters: trainable weights per network (G generator, D discriminator, enc/dec encoder and "
           "decoder). steps, epochs and train time come from each model's card (time excludes pauses). "
           "classifier-FID ↓ is the Fréchet distance in the features of this dataset's small CNN classifier, "
           "not the Inception network of published FIDs: compare it only within this table"
           + (f"; held-out real images score {floor:.2f}{at_n} (it rises as the sample count falls): a model "
              "near that is as close to the data as this measure can tell (small differences are sampling "
              "noise)." if floor else ".")
           + " precision = share of samples that look like real data, recall = share of real data the "
           "samples cover (Kynkäänniemi et al. 2019).")
