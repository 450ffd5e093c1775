"""Out-of-distribution latents: what a generator does with z that its prior N(0, I) never produces.

    z = sample_latents("exponential", 64, model.latent_shape, rate=1.0)
    images = model.sample(64, z=z.to(model.device))
    report = measure_ood(gan, "scaled", scale=3.0, classifier=clf, reference_data=data)
    report["ood"]["discriminator"], report["normal"]["discriminator"]

Each kind in ``OOD_SAMPLERS`` says what it draws; ``OOD_METRICS`` says what each number measures.
Seeds follow ``genlib.sampling``'s one rule (a seeded CPU generator), so a seed draws the same codes
here, on the OOD page and in the live grid.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import torch

from ..models import CRITIC
from ..sampling import classify_batched, prior_draw, sample_batched, seeded_generator


@dataclasses.dataclass(frozen=True)
class OODSampler:
    """One family of latent distributions: ``draw(shape, generator, **params)`` and its defaults."""

    description: str
    defaults: dict[str, float]
    draw: Callable[..., torch.Tensor]
    check: Callable[[dict[str, float]], str | None] = lambda p: None   # an error message or None

    def merged(self, params: Mapping[str, float]) -> dict[str, float]:
        """The defaults overridden by ``params`` (as floats): the one place they are merged."""
        return {**self.defaults, **{k: float(v) for k, v in params.items()}}

    def problem(self, params: Mapping[str, float]) -> str | None:
        """What is wrong with ``params`` (an unknown name, or a value ``check`` refuses), or None."""
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            return f"no parameter {', '.join(unknown)} (parameters: {', '.join(self.defaults) or 'none'})"
        return self.check(self.merged(params))


def _normal(shape, g):
    return torch.randn(shape, generator=g)


def _exponential(shape, g, rate):
    return torch.empty(shape).exponential_(rate, generator=g)          # mean 1/rate, >= 0


def _uniform(shape, g, low, high):
    return low + (high - low) * torch.rand(shape, generator=g)


def _scaled(shape, g, scale):
    return scale * torch.randn(shape, generator=g)


def _shifted(shape, g, shift):
    return shift + torch.randn(shape, generator=g)


def _cauchy(shape, g, scale):
    return torch.empty(shape).cauchy_(0.0, scale, generator=g)        # no mean, no variance


def _constant(shape, g, value):
    return torch.full(shape, float(value))


OOD_SAMPLERS: dict[str, OODSampler] = {
    "normal": OODSampler("N(0, I): the prior the model was trained on (the reference)", {}, _normal),
    "exponential": OODSampler("Exponential(rate) in every dimension: positive only, mean 1/rate",
                              {"rate": 1.0}, _exponential,
                              lambda p: None if p["rate"] > 0 else "rate must be > 0"),
    "uniform": OODSampler("Uniform(low, high) in every dimension", {"low": -1.0, "high": 1.0}, _uniform,
                          lambda p: None if p["low"] < p["high"] else "low must be < high"),
    "scaled": OODSampler("N(0, scale^2 I): the prior stretched; |z| grows by scale", {"scale": 3.0}, _scaled,
                         lambda p: None if p["scale"] > 0 else "scale must be > 0"),
    "shifted": OODSampler("N(shift, I): the prior moved by shift in every dimension", {"shift": 2.0}, _shifted),
    "cauchy": OODSampler("Cauchy(0, scale) in every dimension: heavy tails, a few huge coordinates",
                         {"scale": 1.0}, _cauchy,
                         lambda p: None if p["scale"] > 0 else "scale must be > 0"),
    "constant": OODSampler("every coordinate = value; value 0 is the prior's mode, yet far from where its "
                           "mass lies (|z| ~ sqrt(D))", {"value": 0.0}, _constant),
}


def sample_latents(kind: str, n: int, shape: tuple[int, ...], generator: torch.Generator | None = None,
                   **params: float) -> torch.Tensor:
    """n latents of ``shape`` (e.g. ``model.latent_shape``) from the distribution ``kind``: (n, *shape),
    on the CPU (move them to the model's device). Unset parameters take the kind's defaults."""
    if kind not in OOD_SAMPLERS:
        raise ValueError(f"unknown latent distribution {kind!r}; choose from {', '.join(OOD_SAMPLERS)}")
    s = OOD_SAMPLERS[kind]
    if (error := s.problem(params)) is not None:
        raise ValueError(f"{kind}: {error}")
    p = s.merged(params)
    return s.draw((n, *shape), generator, **p)


OOD_METRICS: dict[str, str] = {
    "z_norm": "mean L2 norm of the latent codes (N(0, I) in D dims: about sqrt(D))",
    "discriminator": "GANs: mean discriminator output on the samples (P(real), or the critic's score for "
                     "WGAN / hinge losses; see 'discriminator_kind')",
    "classifier_confidence": "mean top-class softmax probability of the given classifier",
    "classifier_entropy": "mean entropy of the classifier's softmax, nats (log K = no idea)",
    "mean": "mean pixel (or coordinate) value of the samples",
    "std": "standard deviation of all pixel (or coordinate) values of the samples",
    "saturated": "images: fraction of pixels within 0.01 of 0 or 1",
    "diversity": "mean over pixels of the standard deviation across samples (0 = all samples identical)",
    "nn_distance": "mean L2 distance, in pixel space, from each sample to its nearest reference image "
                   "(a subset of reference_data)",
}

SATURATION_MARGIN = 0.01


@torch.no_grad()
def sample_statistics(model, z: torch.Tensor, labels: torch.Tensor | None, classifier=None,
                      reference: torch.Tensor | None = None) -> dict[str, float]:
    """The ``OOD_METRICS`` numbers for the samples decoded from z (n, D)."""
    x = sample_batched(model, z.to(model.device), labels)                     # (n, *data_shape)
    flat = x.flatten(1).float().cpu()                                         # (n, P)
    out: dict[str, Any] = {"n": len(z), "z_norm": z.flatten(1).norm(dim=1).mean().item(),
                           "mean": flat.mean().item(), "std": flat.std().item(),
                           "diversity": flat.std(0).mean().item() if len(flat) > 1 else 0.0}
    if model.config.is_image:
        out["saturated"] = ((flat < SATURATION_MARGIN) | (flat > 1 - SATURATION_MARGIN)).float().mean().item()
    if model.supports(CRITIC):
        scores = torch.cat([model.discriminate(x[i:i + 500], None if labels is None else labels[i:i + 500])
                            for i in range(0, len(x), 500)])
        out["discriminator"] = scores.float().mean().item()
        out["discriminator_kind"] = "P(real)" if model.config.probabilistic else "critic score"
    if classifier is not None:
        p = torch.from_numpy(classify_batched(classifier, x)[1])              # (n, K) float64
        out["classifier_confidence"] = p.max(1).values.mean().item()
        out["classifier_entropy"] = -torch.special.xlogy(p, p).sum(1).mean().item()   # 0 log 0 = 0
    if reference is not None:
        out["nn_distance"] = nearest_distance(flat, reference.flatten(1).float()).mean().item()
    return out


def nearest_distance(x: torch.Tensor, ref: torch.Tensor, chunk: int = 1000) -> torch.Tensor:
    """L2 distance from each row of x (n, P) to its nearest row of ref (m, P): (n,)."""
    return torch.cat([torch.cdist(x[i:i + chunk], ref).min(1).values for i in range(0, len(x), chunk)])


def reference_subset(data, n: int, seed: int = 0) -> torch.Tensor:
    """n data points (images in [0, 1]) on the CPU, for nearest-neighbour distances: (n, *shape)."""
    sub = data.subset(n, seed)
    return sub.get(torch.arange(len(sub)))[0].cpu()


@torch.no_grad()
def measure_ood(model, kind: str, n: int = 500, classifier=None, reference_data=None, seed: int = 0,
                n_reference: int = 1000, **params: float) -> dict[str, Any]:
    """Compare samples from latents of ``kind`` with samples from N(0, I), the reference.

    Returns ``{'kind', 'params', 'ood': {...}, 'normal': {...}}``, the inner dicts holding the
    ``OOD_METRICS`` that apply: the discriminator for GANs, classifier confidence and entropy when a
    ``classifier`` (a genlib Classifier) is given, pixel statistics always, and the
    distance to the nearest of ``n_reference`` images of ``reference_data`` when it is given.
    Conditional models use the same balanced labels 0..K-1 for both sets. The OOD codes are drawn
    with ``seeded_generator(seed)``, the N(0, I) ones with ``prior_draw(model, n, seed + 1)``.
    """
    z_ood = sample_latents(kind, n, model.latent_shape, seeded_generator(seed), **params)
    z_ref = prior_draw(model, n, seed + 1)
    labels = model.default_labels(n)
    reference = None if reference_data is None else reference_subset(reference_data, n_reference, seed)
    stats = {name: sample_statistics(model, z, labels, classifier, reference)
             for name, z in (("ood", z_ood), ("normal", z_ref))}
    return {"kind": kind, "params": OOD_SAMPLERS[kind].merged(params), **stats}


__all__ = ["OOD_SAMPLERS", "OOD_METRICS", "OODSampler", "sample_latents", "sample_statistics",
           "measure_ood", "nearest_distance", "reference_subset"]
