"""Conditional generation: ask a conditional model for one class ("all 8s")."""
import streamlit as st
import torch

from dashboard import context, figures, images, measure, ui
from genlib import sampling

ctx = context.context()
data = ui.need_data(ctx)
st.title("Conditional generation")
ui.explain("""
A *conditional* model (cGAN, cVAE) receives the class label y next to the noise z, and learns
p(x | y) instead of p(x). Fix y = 8 and vary z: you should get many different 8s. Fix z and vary y:
the same "style" (slant, thickness) drawn as different digits.

**Label accuracy** checks the promise: a separately trained classifier labels the generated images,
and we count how many it puts in the class that was asked for. It is only as good as the
classifier (its own accuracy on real test images is shown next to it).
""")

entry = ctx.model
if entry is None:
    ui.no_model_note(ctx, "conditional model")
    st.stop()
if not entry.model.config.conditional:
    st.warning(f"**{ui.plain(entry.name)}** is not conditional: it was trained without labels, so it cannot be told "
               "which class to draw. " + ui.conditional_hint(ctx))
    st.stop()

names = data.class_names
cls = st.selectbox("Class", range(len(names)), format_func=lambda i: names[i], key=ui.wkey("cond_class", ctx.dataset))
seed = st.number_input("Seed", 0, 1_000_000, 0, key="cond_seed")
model = entry.model
if model.family == "flow":   # classifier-free guidance: a setting of sampling, not of the weights (lesson 16)
    model = model.with_sampling(guidance=st.slider("Guidance scale w", 0.0, 8.0, float(model.config.guidance), 0.5,
                                key="cond_guidance", help="0: ignore the label; 1: plain conditional; more: "
                                "more samples of the class asked for, less varied"))
n = 64 if data.is_image else 500
x = ui.draw(model, n, seed, labels=torch.full((n,), cls, dtype=torch.long))
left, right = st.columns([3, 2])
with left:
    if data.is_image:
        st.image(images.image_grid(x, nrow=8), caption=f"{n} samples of class “{ui.plain(names[cls], 40)}” from {ui.plain(entry.name)}")
    else:
        st.plotly_chart(figures.points_figure(data.subset(1000).x, x, f"{n} points of class “{names[cls]}”"))
with right:
    clf = measure.classifier_for(ctx.dataset) if data.is_image else None
    if clf is None:
        st.info(f"No classifier for **{ctx.dataset}**, so no label accuracy "
                "(build one with `python -m genlib.classifier build`).")
    else:
        acc = measure.share_classified_as(clf, x, cls)
        st.metric("Label accuracy", f"{acc:.0%}", help="Share of these samples the classifier labels as "
                  f"“{names[cls]}”.")
        st.caption(f"Judge: the {ctx.dataset} classifier ({measure.classifier_accuracy_note(clf)}).")

if data.is_image:
    st.subheader("Same noise, every class")
    k = len(names)
    z_idx = torch.arange(8).repeat(k)                                   # (8k,) column = one noise vector
    labels = torch.arange(k).repeat_interleave(8)                       # (8k,) row = one class
    z = sampling.prior_draw(model, 8, seed)[z_idx]                        # (8k, D)
    grid = ui.draw(model, 8 * k, labels=labels, z=z)                    # (8k, C, H, W) uint8
    st.image(images.image_grid(grid, nrow=8), caption="Each row is one class, each column one noise vector z.")
