"""Concept (attribute) vectors: the mean latent of one class minus another's, and edits along them
(White 2016, "Sampling Generative Networks"; Larsen et al. 2016).

    v = concept_vector(vae, data, 1, 7)                       # (D,)
    zs = apply_concept(z, v, torch.linspace(-2, 2, 5))       # (5, D): a row of edits
"""
from __future__ import annotations

import torch

from ..models import ENCODER
from ..sampling import classify_batched, prior_draw, sample_batched, seeded_subset
from .encode import posterior_at
from .paths import t_like


@torch.no_grad()
def class_latents(model, data, cls: int, n: int = 500, seed: int = 0, batch_size: int = 500) -> torch.Tensor:
    """Posterior means of up to n examples of class ``cls`` (a seeded random choice): (m, D) on the CPU."""
    idx = (data.y == cls).nonzero().flatten().cpu()
    if len(idx) == 0:
        raise ValueError(f"the data has no examples of class {cls}")
    idx = idx[seeded_subset(len(idx), n, seed)]
    return posterior_at(model, data, idx, batch_size)[0]


@torch.no_grad()
def concept_vector(model, data, class_a: int, class_b: int, n: int = 500, classifier=None,
                   seed: int = 0) -> torch.Tensor:
    """Attribute vector: mean latent of class a minus class b, (D,).

    VAE: means of the encoder's posterior means over up to n examples of each class in ``data``.
    GAN: draw n prior z, generate, and let ``classifier`` (a genlib Classifier) label the samples;
    mean z of those it assigns to a minus those it assigns to b. For conditional models the label,
    not z, carries the class, so the vector captures what else differs (style).
    """
    if model.supports(ENCODER):
        mean_a, mean_b = (class_latents(model, data, c, n, seed).mean(0) for c in (class_a, class_b))   # (D,) each
        return mean_a - mean_b
    if classifier is None:
        raise ValueError("a GAN has no encoder: pass classifier= (a genlib Classifier) to label its samples")
    z = prior_draw(model, n, seed)                                           # (n, D)
    _, probs = classify_batched(classifier, sample_batched(model, z, model.default_labels(n)))   # (n, K)
    pred = torch.from_numpy(probs.argmax(1))                                 # (n,)
    za, zb = z.cpu()[pred == class_a], z.cpu()[pred == class_b]
    if len(za) == 0 or len(zb) == 0:
        missing = class_a if len(za) == 0 else class_b
        raise ValueError(f"the classifier assigned none of {n} samples to class {missing} (a larger n may)")
    return za.mean(0) - zb.mean(0)


def apply_concept(z: torch.Tensor, v: torch.Tensor, strength=1.0) -> torch.Tensor:
    """z + strength * v. strength scalar -> z's shape; (T,) -> (T, *z.shape) (a row of edits)."""
    z = torch.as_tensor(z)
    return z + t_like(strength, z) * torch.as_tensor(v, dtype=z.dtype, device=z.device)
