"""Out-of-distribution latents: feed a model codes that its prior N(0, I) never produces."""
import streamlit as st

from dashboard import context, figures, images, measure, ui
from genlib import sampling
from genlib.latent import ood

ctx = context.context()
data = ui.need_data(ctx)
st.title("Out-of-distribution latents")
ui.explain("""
A generator (or a VAE's decoder) is trained only on codes z ~ N(0, I). In D dimensions nearly all of
them lie in a thin shell of radius about √D around 0, and every pattern of signs (+ and −) is
equally likely. Here the model gets codes from another distribution instead, drawn from the same
seed as the N(0, I) grid beside it.
- **Exponential**: every coordinate is positive, so every code lies in one *orthant* of the latent
  space (all signs +). N(0, I) puts only a share 2^−D of its codes there (1 in 2^64 ≈ 2·10^19 for
  D = 64), so the generator never saw such codes in training and nothing taught it to draw anything
  sensible there. The images are **not blank** (a network always outputs something) but carry no
  guarantee of meaning. How far they degrade depends on the model: on the small 8×8 digits models
  the damage is mild (still digit-like, a little further from real images); compare the table.
- **Scaled** (longer codes) and **Cauchy** (a few huge coordinates) push the network's units past
  the range they were trained on: saturated, high-contrast images. **Shifted** and **uniform** move
  or reshape the cloud; **constant 0** is the prior's most likely point, yet far from the shell where
  its codes lie.
- **The table** puts numbers on the difference (500 samples of each): how sure the dataset's classifier
  is about the class, the discriminator's opinion (GANs), pixel statistics, the variety between
  samples and the distance to the nearest real image. Each row says what it measures.
""")

entry = ui.require_image_model(ctx)
model = entry.model
clf = measure.classifier_for(ctx.dataset)

kinds = [k for k in ood.OOD_SAMPLERS if k != "normal"]
c = st.columns([2, 2, 1])
kind = c[0].selectbox("Latent distribution", kinds, key="ood_kind")
sampler = ood.OOD_SAMPLERS[kind]
c[0].caption(sampler.description)
params = {p: c[1].number_input(p, value=float(v), step=0.5, key=f"ood_{kind}_{p}") for p, v in sampler.defaults.items()}
seed = c[2].number_input("Seed", 0, 1_000_000, 0, key="ood_seed")
if (problem := sampler.problem(params)) is not None:
    st.warning(f"{kind}: {problem}.")
    st.stop()
if kind == "exponential":
    st.info("Exponential noise is **positive only**: these codes all lie in one orthant of the latent space, "
            "a region the generator never saw in training. What it draws there is not blank, but nothing in "
            "training made it meaningful: compare the two grids and the table below.")

n, labels = 64, model.default_labels(64)
z = {name: ood.sample_latents(name, n, model.latent_shape, sampling.seeded_generator(seed), **p)
     for name, p in (("normal", {}), (kind, params))}                                  # each (n, D)
cols = st.columns(2)
for col, (name, zs) in zip(cols, z.items()):
    x = sampling.sample_batched(model, zs.to(model.device), labels).cpu()               # (n, C, H, W)
    col.image(images.image_grid(x, nrow=8), caption=f"{ui.plain(entry.name)} from {n} codes z ~ "
              + ("N(0, I), the training prior" if name == "normal" else
                 f"{kind}({', '.join(f'{k}={v:g}' for k, v in params.items())})") + f", seed {seed}")

st.plotly_chart(figures.latent_histogram({"N(0, I)" if name == "normal" else kind: zs for name, zs in z.items()}),
                key="ood_hist")

st.subheader("Measured differences")
with st.spinner("Sampling 500 codes of each kind and measuring…"):
    report = ood.measure_ood(model, kind, n=500, classifier=clf, reference_data=data, seed=seed, **params)
ref, out = report["normal"], report["ood"]
rows = [{"measure": m + (f" ({out['discriminator_kind']})" if m == "discriminator" else ""),
         "N(0, I) codes": round(ref[m], 3), f"{kind} codes": round(out[m], 3), "what it measures": what}
        for m, what in ood.OOD_METRICS.items() if m in out]
st.dataframe(rows, hide_index=True, key="ood_table")
st.caption(f"{report['ood']['n']} samples from each distribution (the N(0, I) ones from seed {seed + 1}). "
           + ("No classifier for this dataset, so no confidence or entropy rows. " if clf is None else
              f"Classifier: the {ctx.dataset} CNN ({measure.classifier_accuracy_note(clf)}). ")
           + f"Not blank: the pixel standard deviation is {out['std']:.2f} against {ref['std']:.2f} for N(0, I) codes; "
           f"samples differ from each other by {out['diversity']:.2f} against {ref['diversity']:.2f} per pixel.")
