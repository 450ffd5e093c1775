"""Latent space: where a model puts the test images (VAE) or its samples (GAN), the 2-D manifold,
and how much of its latent space a VAE really uses (KL per dimension)."""
import streamlit as st
import torch

from dashboard import context, figures, measure, resources, ui
from genlib import latent
from genlib import metrics as gmetrics
from genlib.models import ENCODER

ctx = context.context()
data = ui.need_data(ctx)
st.title("Latent space")
ui.explain("""
A generative model draws an image from a short vector of numbers, its **latent code z**.
- **The scatter.** A VAE's encoder maps each test image x to a code: the mean μ(x) of its posterior.
  One dot per test image, coloured by its true class. Classes form **clusters**: images that look
  alike get nearby codes, though no label was used in training. A 2-D latent is drawn as it is;
  larger ones are squashed to 2-D by **PCA** (a linear view: distances in latent units) or **t-SNE**
  (keeps neighbours together, so clusters show well; its axes and the distances between clusters
  mean nothing). Click a dot to see the test image beside what the decoder makes of its code.
- **The manifold.** A grid of codes spaced evenly in *probability* under N(0, 1) (5 % to 95 %),
  decoded: how the images change as you walk across two latent dimensions. For a 2-D VAE this is
  the whole latent space.
- **KL per dimension.** How much information (nats) the encoder puts into each dimension, on average
  over test images. A dimension with KL near 0 is ignored: its code is N(0, 1) whatever the image.
  When most dimensions are like that, the VAE suffers **posterior collapse**; *active units* counts
  the dimensions whose code still moves with the image (variance of μ(x) > 0.01, Burda et al. 2016).
- A **GAN** has no encoder, so it cannot place a real image in its latent space. Instead we draw z
  from N(0, I), generate, and colour each z by the class the classifier sees in its image.
""")

entry = ui.require_image_model(ctx)
model, names = entry.model, data.class_names
d = model.config.latent_dim
test = resources.held_out(data)
clf = measure.classifier_for(ctx.dataset)


def picked_point(event, n: int) -> int | None:
    """The index (a point's customdata) of the first clicked point, or None. Reads Streamlit's
    PlotlyState and the plain dict a test puts in session state alike."""
    for p in ((event or {}).get("selection") or {}).get("points") or []:
        i = p.get("customdata")
        i = i[0] if isinstance(i, (list, tuple)) else i
        if i is not None and 0 <= int(i) < n:
            return int(i)
    return None


# --- the scatter -------------------------------------------------------------------------------
if model.supports(ENCODER):
    st.caption(f"**{ui.plain(entry.name)}** encodes {test.name}'s **{test.split}** images (μ of q(z|x), {d}-D latent).")
else:
    vaes = [m.label for m in ctx.models if m.model.supports(ENCODER)]
    st.info(f"**{ui.plain(entry.name)}** is a GAN: it has no encoder, so test images cannot be placed in its latent "
            "space. Below: random codes z ~ N(0, I), each coloured by "
            + ("its conditioning label (for a conditional GAN the label, not z, decides the class: expect no "
               "clusters)." if model.config.conditional else "the class the classifier sees in its image "
               "(z was drawn at random and a GAN spreads each class through z, so clusters are weak)."
               if clf is not None else "nothing: there is no classifier for this dataset.")
            + (f" To see encoded test images pick a VAE in the sidebar: {', '.join(vaes)}." if vaes else ""))
    if vaes:
        st.button(f"Use {vaes[0]}", key="lat_use_vae", on_click=context.use_model, args=(vaes[0],))
c = st.columns(3)
sizes = [s for s in (250, 500, 1000, 2000, 5000) if not model.supports(ENCODER) or s < len(test)] + \
    ([len(test)] if model.supports(ENCODER) and len(test) <= 5000 else [])
n = c[0].select_slider("Points", sizes, value=min(sizes, key=lambda s: abs(s - 1000)), key="lat_n")
method = "identity"
if d > 2:
    method = c[1].segmented_control("Projection to 2-D", ["tsne", "pca"], default="tsne", required=True,
                                    format_func={"tsne": "t-SNE", "pca": "PCA"}.get, key="lat_proj",
                                    help="t-SNE: neighbours stay together (clusters show), axes mean nothing. "
                                         "PCA: the two directions of largest variance, in latent units.")
with st.spinner("Encoding and projecting (t-SNE: seconds for 1,000 points, a minute for 5,000; then cached)…"):
    z, y, index = latent.encode_dataset(model, test, n=n, classifier=clf)       # (n, D), (n,) or None, (n,) or None
    xy = latent.project_2d(z, method)                                            # (n, 2)
axes = {"identity": ("z0 (latent units)", "z1 (latent units)" if d > 1 else "(1-D latent: no second axis)"),
        "pca": ("principal component 1 (latent units)", "principal component 2 (latent units)"),
        "tsne": ("t-SNE 1 (no units)", "t-SNE 2 (no units)")}[method]
what = "test images, by true class" if model.supports(ENCODER) else "generated samples' codes"
left, right = st.columns([3, 2])
with left:
    event = st.plotly_chart(figures.latent_scatter(xy, y, names, axes, f"{len(z):,} {what}"), key="lat_scatter",
                            on_select="rerun", selection_mode="points")
i = picked_point(event, len(z))
with right:
    st.markdown("**The point you clicked**" if i is not None else "**Click a point** (showing point 0)")
    i = 0 if i is None else i
    label = None if y is None else y[i:i + 1]
    cond = label if model.config.conditional else None
    x_hat = model.sample(1, labels=cond, z=z[i:i + 1].to(model.device)).cpu()   # (1, C, H, W)
    if model.supports(ENCODER):
        x_real, _ = test.get(index[i:i + 1])                                      # the example encoded as point i
        st.plotly_chart(figures.grid_figure(torch.cat([x_real, x_hat]), 2, ["real test image", "decoded from μ(x)"],
                                       cell_px=120), width="content", key="lat_pair")
    else:
        st.plotly_chart(figures.grid_figure(x_hat, 1, ["G(z)"], cell_px=120), width="content", key="lat_pair")
    st.caption(f"Point {i}: class **{names[int(label)] if label is not None else '?'}**"
               + (" (true label)" if model.supports(ENCODER) else " (label)" if model.config.conditional
                  else " (the classifier's guess)")
               + f"; code z = ({', '.join(f'{v:.2f}' for v in z[i, :6].tolist())}{', …' if d > 6 else ''}).")

# --- how much of the latent space a VAE uses ---------------------------------------------------
if model.supports(ENCODER):
    st.subheader("KL per dimension: which dimensions carry information")
    mu, logvar = latent.posterior_stats(model, test)                             # (<=1000, D) each: encode once
    kl = gmetrics.kl_per_dim(mu, logvar)                                         # (D,) nats
    active_mask = gmetrics.kl_active(kl)                                         # (D,): KL > ACTIVE_KL nats
    active = int(active_mask.sum())
    m = st.columns([1, 1, 4])
    m[0].metric("Active units", f"{active} / {d}", help="Dimensions whose KL term (the bars) exceeds "
                f"{gmetrics.ACTIVE_KL:g} nats: they carry information about the image.")
    m[1].metric("Total KL", f"{float(kl.sum()):.1f} nats", help="KL(q(z|x) ‖ N(0, I)) averaged over test "
                "images: the ELBO's KL term.")
    m[2].plotly_chart(figures.kl_figure(kl, active_mask), key="lat_kl")
    if active < d:
        st.caption(f"{d - active} of {d} dimensions are (nearly) unused: the decoder ignores them and their "
                   "code stays N(0, 1) whatever the image. That is posterior collapse, here partial; a "
                   "smaller latent, a lower β or free bits (Train page) change it.")

# --- the manifold (VAEs; for a GAN, one dimension at a time is on the Interpolate page) -----------
if not model.supports(ENCODER):
    st.caption("A GAN's latent dimensions are best explored one at a time: see **Interpolate & traverse**.")
elif d >= 2:
    st.subheader("The manifold: decoding a grid of codes")
    c = st.columns(4)
    order = kl.argsort(descending=True).tolist()                                # most informative first
    # keys name the model: the options' text is its KL per dimension
    dim_x = c[0].selectbox("Horizontal: dimension", range(d), index=order[0], key=ui.wkey("lat_dx", entry.label),
                           format_func=lambda k: f"z{k} ({kl[k]:.2f} nats)")
    others = [k for k in range(d) if k != dim_x]
    dim_y = c[1].selectbox("Vertical: dimension", others, key=ui.wkey("lat_dy", entry.label, dim_x), format_func=lambda k: f"z{k} ({kl[k]:.2f} nats)",
                           index=others.index(order[1] if order[1] != dim_x else order[0]))
    size = c[2].slider("Grid size", 5, 20, 12, key="lat_grid")
    cls = c[3].selectbox("Class (conditional model)", range(len(names)), format_func=lambda k: names[k],
                         key=ui.wkey("lat_cls", ctx.dataset)) if model.config.conditional else None
    grid, values = latent.manifold_grid(model, size, (dim_x, dim_y), labels=cls)  # (size², C, H, W), (size,)
    grid, values = grid.cpu(), values.tolist()
    st.plotly_chart(figures.grid_figure(grid, size, [f"{v:.1f}" for v in values], [f"{v:.1f}" for v in values[::-1]],
                                   f"z{dim_x} (latent units)", f"z{dim_y} (latent units)", cell_px=40),
                    width="content", key="lat_manifold")
    st.caption("Codes at the 5 %, …, 95 % quantiles of N(0, 1) on the two chosen dimensions"
               + (", every other dimension at 0 (the prior's mean)" if d > 2 else "")
               + ". Neighbouring images differ a little: the decoder is smooth, so nearby codes give similar images.")
