"""Interpolate and traverse: walk between two images, two codes or two classes; move one latent
dimension at a time; add a concept vector ("more of class a, less of class b")."""
import streamlit as st
import torch

from dashboard import context, figures, measure, resources, ui
from genlib import latent, sampling
from genlib.models import ENCODER

ctx = context.context()
data = ui.need_data(ctx)
st.title("Interpolate & traverse")
ui.explain("""
Every image the model draws comes from a latent code z. Moving z a little changes the image a
little: a trained decoder or generator is **smooth**.
- **Interpolation.** Decode codes on the path from A to B. For a VAE, A and B are the codes of two
  test images (so the ends are the model's *reconstructions*, shown next to the real images); for a
  GAN, two random codes. *Linear* goes along the straight line; *spherical* (slerp) along the arc,
  keeping the length |z| that N(0, I) codes have (about √D), whereas the straight line's middle is
  shorter: a code the model rarely saw in training.
- **Class to class.** A conditional model (cGAN, cVAE) gets the class as an input. Keep z fixed and
  blend the class input from a to b: half-way gives a digit between, e.g., a 2 and a 5.
- **Traversal.** Start from one code and change **one dimension** at a time, the others fixed. A
  dimension the model uses changes one feature (thickness, slant, width...), often mixed with
  others; in a VAE a collapsed dimension (KL ≈ 0, Latent space page) changes nothing.
- **Concept vector.** The mean code of class a minus the mean code of class b is a direction that
  **adds "a-ness" and removes "b-ness"**. Add it to a code with a growing strength and watch the image
  change class or style. A GAN has no encoder, so its class means come from samples the classifier
  labelled.

Numbers under the images: the position along the path (t, strength or latent value) and, when a
classifier exists for the dataset, the class it sees in the image.
""")

entry = ui.require_image_model(ctx)
model, names, k = entry.model, data.class_names, data.num_classes
d, cond, enc = model.config.latent_dim, model.config.conditional, model.supports(ENCODER)
test = resources.held_out(data)
clf = measure.classifier_for(ctx.dataset)


def labels_under(images: torch.Tensor, ticks: list[str]) -> list[str]:
    """Tick labels, with the class the classifier sees in each image when there is a classifier."""
    if clf is None:
        return ticks
    return [f"{t}<br>{names[int(p)]}" for t, p in zip(ticks, measure.classify(clf, images))]


def strip(images: torch.Tensor, ticks: list[str], x_title: str, key: str) -> None:
    st.plotly_chart(figures.grid_figure(images.cpu(), len(images), labels_under(images, ticks), x_title=x_title
                                   + (" · class the classifier sees" if clf is not None else ""), cell_px=64),
                    width="content", key=key)


def pick_image(col, key: str, default: int) -> tuple[torch.Tensor, int]:
    """A test image chosen by class and example number: ((1, C, H, W) in [0, 1], its class)."""
    cls = col.selectbox(f"Image {key}: class", range(k), index=min(default, k - 1), format_func=names.__getitem__,
                        key=ui.wkey(f"ip_{key}_cls", ctx.dataset))
    idx = (test.y == cls).nonzero().flatten()
    i = col.number_input(f"Image {key}: example (of {len(idx)})", 0, len(idx) - 1, 0, key=ui.wkey(f"ip_{key}_i", ctx.dataset, cls))
    return test.get(idx[i:i + 1])[0], cls


# --- A and B: two test images (VAE) or two random codes (GAN) --------------------------------------
c = st.columns(4)
if enc:
    (xa, ya), (xb, yb) = pick_image(c[0], "A", 2), pick_image(c[1], "B", 5)
    za, zb = (model.encode(x, torch.tensor([y]) if cond else None)[0] for x, y in ((xa, ya), (xb, yb)))  # (D,)
else:
    sa = c[0].number_input("Code A: seed", 0, 1_000_000, 0, key="ip_seed_a")
    sb = c[1].number_input("Code B: seed", 0, 1_000_000, 1, key="ip_seed_b")
    ya = yb = c[0].selectbox("Class (conditional model)", range(k), format_func=names.__getitem__,
                             key=ui.wkey("ip_cls", ctx.dataset)) if cond else None
    za, zb = sampling.prior_draw(model, 1, sa)[0], sampling.prior_draw(model, 1, sb)[0]   # (D,) each
method = c[2].segmented_control("Interpolation", ["linear", "spherical"], default="linear", required=True,
                                key="ip_method")
steps = c[3].slider("Steps", 3, 15, 9, key="ip_steps")
t = torch.linspace(0, 1, steps).tolist()

st.subheader("From A to B" + (": two test images, through the encoder" if enc else ": two random codes"))
if enc:
    path = latent.interpolate_images(model, xa, xb, steps, method, labels=(ya, yb) if cond else None)
    images = torch.cat([xa, path.cpu(), xb])
    strip(images, ["A real"] + [f"t={v:.2f}" for v in t] + ["B real"], "position t on the path", "ip_path")
else:
    strip(latent.interpolate(model, za, zb, steps, method, labels=ya), [f"t={v:.2f}" for v in t],
          "position t on the path", "ip_path")
norms = latent.interpolation_path(za, zb, steps, method).norm(dim=1)                   # (steps,)
st.caption(f"{method.capitalize()} path. Length |z| of the codes along it: {', '.join(f'{v:.1f}' for v in norms.tolist())} "
           f"(latent units; draws from N(0, I) in {d} dimensions have |z| ≈ √{d} = {d ** 0.5:.1f}"
           + ("; a VAE's codes μ(x) are shorter, about 0 in the dimensions it does not use)." if enc else ")."))

st.subheader("From class to class (conditional models)")
if cond:
    c = st.columns(3)
    a = c[0].selectbox("From class", range(k), index=min(2, k - 1), format_func=names.__getitem__, key=ui.wkey("ip_ca", ctx.dataset))
    b = c[1].selectbox("To class", range(k), index=min(5, k - 1), format_func=names.__getitem__, key=ui.wkey("ip_cb", ctx.dataset))
    seed = c[2].number_input("Seed of z (fixed)", 0, 1_000_000, 0, key="ip_cseed")
    strip(latent.interpolate_classes(model, a, b, steps, seed=seed), [f"{v:.2f}" for v in t],
          f"weight of class {names[b]} in the class input (1 − weight for {names[a]})", "ip_classes")
else:
    st.info(f"**{ui.plain(entry.name)}** is not conditional: its class is not an input it can blend. "
            + ui.conditional_hint(ctx))

# --- one dimension at a time ---------------------------------------------------------------------
st.subheader("Traversal: one latent dimension at a time, starting from A")
kl = latent.posterior_collapse(model, test).kl_per_dim if enc else None                           # (D,) nats
order = kl.argsort(descending=True).tolist() if kl is not None else list(range(d))
c = st.columns([3, 2, 1])
dims = c[0].multiselect("Dimensions (rows)", range(d), default=order[:min(6, d)], key=ui.wkey("ip_dims", entry.label),
                        format_func=lambda j: f"z{j}" + (f" ({kl[j]:.2f} nats)" if kl is not None else ""),
                        help="Default: " + ("the dimensions with the most KL, the ones the VAE uses." if enc
                                            else "the first ones (a GAN's dimensions have no order)."))
lo, hi = c[1].slider("Range of the varied value (latent units)", -5.0, 5.0, (-3.0, 3.0), 0.5, key="ip_range")
cols = c[2].slider("Columns", 3, 11, 7, key="ip_cols")
if dims:
    values = torch.linspace(lo, hi, cols)
    grid = latent.traverse_grid(model, za, dims, values, labels=ya).cpu()            # (len(dims)*cols, C, H, W)
    st.plotly_chart(figures.grid_figure(grid, cols, [f"{v:.1f}" for v in values.tolist()], [f"z{j}" for j in dims],
                                   "value given to the row's dimension (latent units)", "dimension varied",
                                   cell_px=48), width="content", key="ip_traverse")

# --- concept vectors -----------------------------------------------------------------------------
st.subheader("Concept vector: mean code of class a − mean code of class b, added to A")
c = st.columns(3)
ca = c[0].selectbox("a (add)", range(k), index=min(5, k - 1), format_func=names.__getitem__, key=ui.wkey("ip_va", ctx.dataset))
cb = c[1].selectbox("b (remove)", range(k), index=min(2, k - 1), format_func=names.__getitem__, key=ui.wkey("ip_vb", ctx.dataset))
strength = c[2].slider("Strength", -2.0, 3.0, 1.5, 0.1, key="ip_strength")
if not enc and clf is None:
    st.info(f"A GAN has no encoder: its class means need a classifier for **{ctx.dataset}**, and there is none.")
else:
    try:
        v = latent.concept_vector(model, data, ca, cb, classifier=clf)               # (D,)
    except ValueError as e:
        st.warning(f"No concept vector: {e}. This model rarely draws that class: pick other classes.")
    else:
        s = torch.linspace(0, strength, 7)
        zs = latent.apply_concept(za.cpu(), v, s)                                     # (7, D)
        edits = sampling.sample_batched(model, zs.to(model.device), latent.expand_labels(model, ya, len(zs)))
        strip(edits, [f"{x:.2f}" for x in s.tolist()], "strength: z_A + strength × (mean z of a − mean z of b)",
              "ip_concept")
        st.caption(f"|mean z of {names[ca]} − mean z of {names[cb]}| = {float(v.norm()):.2f} latent units"
                   + (f", from {ctx.dataset}'s {data.split} images through the encoder." if enc else
                      ", from 500 samples the classifier labelled.")
                   + (" For a conditional model the class input stays fixed, so the vector moves the *style*."
                      if cond else ""))
