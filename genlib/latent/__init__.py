"""Latent-space tools: plain functions of a trained model (Keras' ``plot_latent_space(vae)``,
``interpolate_class(gen, a, b)``), used by the dashboard and from Python.

    z, y, index = encode_dataset(vae, data)     # posterior means of data[index] (VAE), prior draws (GAN)
    xy = project_2d(z, "tsne")                  # (n, 2), cached: a page redraws instantly
    images = interpolate(gan, z0, z1, steps=8, method="spherical")
    images = interpolate_classes(cgan, 2, 5)    # a digit between 2 and 5 (soft labels)
    report = ood.measure_ood(gan, "scaled", scale=3.0)

Where each idea lives:
- ``paths``: lerp / slerp, interpolation, class blends, traversals, the 2-D manifold grid.
- ``encode``: the posterior over a dataset (an explicit seeded subset), posterior collapse.
- ``concepts``: concept vectors (class a minus class b) and edits along them.
- ``projection``: identity / PCA / t-SNE views of latents, and their cache.
- ``ood``: out-of-distribution latent samplers and ``measure_ood``.
Seeded prior draws and batched sampling / classification are ``genlib.sampling``'s.

Every function that draws returns images in the data range ((N, C, H, W) in [0, 1]; raw points for
2-D toys), on the model's device. Latents are (D,) or (N, D) tensors. Conditional models need
``labels=``: a class index, (N,) ints, or (N, K) class weights (soft labels; rows sum to 1).
"""
from . import ood
from .concepts import apply_concept, class_latents, concept_vector
from .encode import (Encoding, PosteriorCollapse, encode_dataset, posterior_at, posterior_collapse,
                     posterior_stats, subset_index)
from .paths import (DEFAULT_TRAVERSAL, INTERPOLATIONS, Labels, class_weights, expand_labels, interpolate,
                    interpolate_classes, interpolate_images, interpolation_path, lerp, manifold_grid, slerp,
                    traversal_latents, traverse, traverse_grid)
from .projection import PROJECTIONS, TSNE_MAX_ITER, TSNE_PERPLEXITY, ProjectionCache, project_2d, projection_cache

__all__ = ["ood", "apply_concept", "class_latents", "concept_vector", "Encoding", "PosteriorCollapse",
           "encode_dataset", "posterior_at", "posterior_collapse", "posterior_stats", "subset_index",
           "DEFAULT_TRAVERSAL", "INTERPOLATIONS", "Labels", "class_weights", "expand_labels", "interpolate",
           "interpolate_classes", "interpolate_images", "interpolation_path", "lerp", "manifold_grid", "slerp",
           "traversal_latents", "traverse", "traverse_grid", "PROJECTIONS", "TSNE_MAX_ITER", "TSNE_PERPLEXITY",
           "ProjectionCache", "project_2d", "projection_cache"]
