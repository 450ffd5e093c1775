"""The Train page's form, generated from the config fields' own metadata (``genlib.models.field_specs``:
kind, range, log scale, choices, help), so a widget offers exactly what ``validate`` accepts.

The form only decides *which* fields it shows, in which column, under which label and key; the
widget follows from the field: a toggle for a flag, a select box for choices, a slider over a log
ladder for log-scale values, a slider or a number box for a range. ``train_settings`` returns what
``make_model`` and ``TrainConfig`` take.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

import streamlit as st

import genlib
from genlib.models import PRESETS, FieldSpec, field_specs, preset_config
from genlib.models.gan_objectives import objective

BATCH_SIZES = [16, 32, 64, 128, 256, 512]


@dataclasses.dataclass(frozen=True)
class Widget:
    """One config field on the form: its label, its key (after ``{prefix}_{preset}_``) and when it
    shows, given the values chosen above it."""

    field: str
    label: str
    key: str
    shown: Callable[[dict[str, Any]], bool] = lambda chosen: True


def _objective_reads(name: str) -> Callable[[dict[str, Any]], bool]:
    """Shown when the chosen GAN loss reads the field (``GANObjective.settings``)."""
    return lambda chosen: name in objective(chosen["loss"]).settings


# Per family: the second column, then the third. Fields not listed keep the preset's value.
LAYOUT: dict[str, tuple[tuple[Widget, ...], tuple[Widget, ...]]] = {
    "vae": ((Widget("latent_dim", "Latent size (z dimensions)", "latent"),
             Widget("lr", "Learning rate (Adam)", "lr"),
             Widget("beta", "β (KL weight)", "beta")),
            (Widget("kl_schedule", "KL schedule", "sched"),
             Widget("anneal_steps", "Annealing length (steps)", "anneal", lambda c: c["kl_schedule"] != "none"),
             Widget("free_bits", "Free bits (nats per dimension)", "fb"),
             Widget("skip", "Skip connections from z", "skip"))),
    "gan": ((Widget("latent_dim", "Latent size (z dimensions)", "latent"),
             Widget("lr_g", "lr_g (generator)", "lr_g"),
             Widget("lr_d", "lr_d (discriminator)", "lr_d")),
            (Widget("loss", "Loss", "loss"),
             Widget("n_critic", "D steps per G step (n_critic)", "ncritic"),
             Widget("spectral_norm", "Spectral norm in D", "sn"),
             Widget("minibatch_std", "Minibatch std-dev in D", "mbstd"),
             Widget("label_smoothing", "One-sided label smoothing", "ls", _objective_reads("label_smoothing")),
             Widget("ema", "EMA of G (decay)", "ema"),
             Widget("gp_weight", "Gradient-penalty weight λ", "gp", _objective_reads("gp_weight")))),
    "flow": ((Widget("lr", "Learning rate (Adam)", "lr"),
              Widget("width", "Network width", "width"),
              Widget("ema", "EMA of the weights (decay)", "ema")),
             (Widget("time_sampling", "Training times t", "tsamp"),
              Widget("sampler", "Sampler (ODE steps)", "sampler"),
              Widget("sample_steps", "Sampling steps", "ssteps"),
              Widget("guidance", "Guidance scale w (conditional)", "guid"),
              Widget("p_uncond", "Label dropout in training (conditional)", "puncond"))),
}
NO_LAYOUT: tuple[tuple[Widget, ...], tuple[Widget, ...]] = ((), ())    # a family added later: preset values

# Presentation, not validation: values a slider steps through where an even range suits badly.
# A latent size is best doubled; an EMA decay matters through 1 - decay (0 = off). Each must be valid.
LADDERS: dict[str, tuple[float, ...]] = {"latent_dim": (1, 2, 4, 8, 16, 32, 64, 128),
                                         "ema": (0.0, 0.9, 0.99, 0.999)}
SLIDER_STEPS = 100         # an even-range float slider moves in about 1/100 of its span (rounded to 1, 2, 5)
SLIDER_MAX_INTS = 20       # an int range up to this wide is a slider, wider a number box


def log_ladder(low: float, high: float, mantissas: tuple[int, ...] = (1, 2, 4, 5)) -> list[float]:
    """1, 2, 4, 5 × 10^k from ``low`` to ``high``: steps for a log-scale slider (4 keeps TTUR's 4e-4)."""
    out = []
    for k in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1):
        out += [float(f"{m}e{k}") for m in mantissas if low <= m * 10.0 ** k <= high * (1 + 1e-9)]
    return out


def _nice_step(x: float) -> float:
    """The smallest of 1, 2, 5 × 10^k that is >= ``x``."""
    k = math.floor(math.log10(x))
    return next(m * 10.0 ** k for m in (1, 2, 5, 10) if m * 10.0 ** k >= x * (1 - 1e-9))


def _span(spec: FieldSpec) -> tuple[float, float]:
    """The range a widget offers: the field's typical span, else its valid bounds."""
    lo, hi = spec.typical or (spec.low, spec.high)
    if lo is None or hi is None:
        raise ValueError(f"{spec.name}: a form widget needs a bounded or typical range")
    return lo, hi


def _options_with(options: list, value) -> list:
    return sorted(set(options) | {value})


def field_widget(spec: FieldSpec, label: str, key: str, value: Any, help: str | None = None) -> Any:
    """The widget for one config field, at ``value``; its range never leaves the valid one."""
    common = dict(key=key, help=help or spec.help, persist_state="session")
    if spec.kind == "bool":
        return st.toggle(label, bool(value), **common)
    if spec.choices is not None:
        return st.selectbox(label, spec.choices, index=spec.choices.index(value), **common)
    if spec.name in LADDERS or spec.log:
        return st.select_slider(label, _options_with(ladder(spec), value), value=value,
                                format_func=lambda v: f"{v:g}", **common)
    lo, hi = _span(spec)
    if spec.kind == "int":
        lo, hi = int(lo), int(hi)
        if hi - lo <= SLIDER_MAX_INTS:
            return st.slider(label, lo, hi, int(value), **common)
        return st.number_input(label, lo, hi, int(value), **common)
    step = _nice_step((hi - lo) / SLIDER_STEPS)
    if spec.high_open and hi == spec.high:
        hi -= step                                   # e.g. label smoothing < 0.5
    if spec.low_open and lo == spec.low:
        lo += step
    return st.slider(label, float(lo), float(hi), float(value), step, **common)


def train_settings(preset: str, data: genlib.Dataset, prefix: str = "tr") -> tuple[dict[str, Any], dict[str, Any]]:
    """Widgets for a preset's hyperparameters, seeded with the preset's defaults. Every widget's range
    keeps the config valid. Returns (model config overrides, TrainConfig fields)."""
    # 2-D points cannot go through convolutions: the conv presets become MLPs there.
    ov: dict[str, Any] = {"arch": "mlp"} if not data.is_image and PRESETS[preset].overrides.get("arch") == "conv" else {}
    family, base = preset_config(preset, data.shape, data.num_classes, **ov)
    if ov:
        st.caption(f"On 2-D points **{preset}** uses MLP networks (convolutions need images).")
    specs = {s.name: s for s in field_specs(base)}
    k = f"{prefix}_{preset}_"
    c1, *cols = st.columns(3)
    with c1:
        steps = st.number_input("Training steps", 10, 100_000, 500 if data.is_image else 2000, step=100,
                                key=prefix + "_steps", persist_state="session",
                                help="Optimisation steps. For GANs one step = one discriminator update.")
        sizes = [b for b in BATCH_SIZES if b <= len(data)] or [len(data)]     # a small upload: one batch
        batch = st.select_slider("Batch size", sizes, value=min(64, sizes[-1]), key=prefix + "_batch", persist_state="session",
                                 help="Examples per step: larger = smoother gradients, fewer steps per epoch.")
        seed = st.number_input("Seed", 0, 1_000_000, 0, key=prefix + "_seed", persist_state="session")
    for col, widgets in zip(cols, LAYOUT.get(family, NO_LAYOUT)):
        with col:
            for w in widgets:
                if not w.shown(ov):
                    continue
                value = getattr(base, w.field)
                if w.field == "anneal_steps":
                    value = min(value, int(steps))           # warm up within the run
                ov[w.field] = field_widget(specs[w.field], w.label, k + w.key, value)
    return ov, run_settings(int(steps), int(batch), int(seed), data.is_image)


def run_settings(steps: int, batch: int, seed: int, is_image: bool) -> dict[str, Any]:
    """The TrainConfig fields of a run started on the Train page: a loss point every 25 steps at
    most (about 200 over a short run), about 30 saved grids, 64 images (or 512 points) per grid."""
    return dict(steps=steps, batch_size=batch, seed=seed, log_every=max(1, min(25, steps // 200)),
                sample_every=max(1, steps // 30), n_fixed=64 if is_image else 512)


def build_problem(preset: str, data: genlib.Dataset, overrides: dict[str, Any], train_cfg: dict[str, Any]) -> str | None:
    """Why this run may not be built, in one line, before anything is allocated: steps and batch size
    outside the CLI's bounds (``genlib.cli.LIMITS``, also when a widget's state was forged), or
    networks over the checkpoint ceilings (``genlib.checkpoint.network_problem``: nothing is trained
    that could not be loaded again). None when it may."""
    from genlib.checkpoint import network_problem
    from genlib.cli import LIMITS
    from genlib.models import preset_config

    for k in ("steps", "batch_size"):
        lo, hi = LIMITS[k]
        v = train_cfg.get(k)
        if not (isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi):
            return f"{k.replace('_', ' ')} must be a whole number from {int(lo):,} to {int(hi):,}, got {str(v)[:40]}"
    try:
        family, config = preset_config(preset, tuple(data.shape), data.num_classes, **overrides)
    except (ValueError, TypeError) as e:
        return str(e)
    return network_problem(family, config)


def metric_every(steps: int) -> int:
    """The Train page measures its live metrics about 10 times per run."""
    return max(1, steps // 10)


def spec_of(config: Any, field: str) -> FieldSpec:
    """The metadata of ``config``'s field (a config class or instance)."""
    return next(s for s in field_specs(config) if s.name == field)


def ladder(spec: FieldSpec) -> list[float]:
    """The values a stepped slider offers for a field: its ladder, or 1-2-4-5 steps over its log span."""
    return list(LADDERS[spec.name]) if spec.name in LADDERS else log_ladder(*_span(spec))
