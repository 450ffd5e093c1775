"""The Train page's form: widgets for a preset's hyperparameters, seeded with the preset's defaults,
whose ranges keep the config valid; ``train_settings`` returns what ``make_model`` and
``TrainConfig`` take."""
from __future__ import annotations

from typing import Any

import streamlit as st

import genlib
from genlib.models import PRESETS, preset_config

LRS = [1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 4e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 3e-2, 1e-1]
BATCH_SIZES = [16, 32, 64, 128, 256, 512]
LATENTS = [1, 2, 4, 8, 16, 20, 32, 64, 100, 128]


def _options_with(options: list, value) -> list:
    return sorted(set(options) | {value})


def _lr(label: str, key: str, default: float, help: str) -> float:
    return st.select_slider(label, _options_with(LRS, default), value=default, key=key,
                            format_func=lambda v: f"{v:g}", help=help, persist_state="session")


def train_settings(preset: str, data: genlib.Dataset, prefix: str = "tr") -> tuple[dict[str, Any], dict[str, Any]]:
    """Widgets for a preset's hyperparameters, seeded with the preset's defaults. Every widget's range
    keeps the config valid. Returns (model config overrides, TrainConfig fields)."""
    # 2-D points cannot go through convolutions: the conv presets become MLPs there.
    ov: dict[str, Any] = {"arch": "mlp"} if not data.is_image and PRESETS[preset].overrides.get("arch") == "conv" else {}
    family, base = preset_config(preset, data.shape, data.num_classes, **ov)
    if ov:
        st.caption(f"On 2-D points **{preset}** uses MLP networks (convolutions need images).")
    k = f"{prefix}_{preset}_"
    c1, c2, c3 = st.columns(3)
    with c1:
        steps = st.number_input("Training steps", 10, 100_000, 500 if data.is_image else 2000, step=100,
                                key=prefix + "_steps", persist_state="session",
                                help="Optimisation steps. For GANs one step = one discriminator update.")
        sizes = [b for b in BATCH_SIZES if b <= len(data)] or [len(data)]     # a small upload: one batch
        batch = st.select_slider("Batch size", sizes, value=min(64, sizes[-1]), key=prefix + "_batch", persist_state="session",
                                 help="Examples per step: larger = smoother gradients, fewer steps per epoch.")
        seed = st.number_input("Seed", 0, 1_000_000, 0, key=prefix + "_seed", persist_state="session")
    with c2:
        ov["latent_dim"] = st.select_slider("Latent size (z dimensions)", _options_with(LATENTS, base.latent_dim),
                                            value=base.latent_dim, key=k + "latent", persist_state="session")
        if family == "vae":
            ov["lr"] = _lr("Learning rate (Adam)", k + "lr", base.lr, "Too high and the loss explodes.")
            ov["beta"] = st.slider("β (KL weight)", 0.0, 10.0, float(base.beta), 0.1, key=k + "beta",
                                   persist_state="session",
                                   help="1 = the ELBO. > 1 pushes codes towards the prior (smoother, blurrier).")
        else:
            ov["lr_g"] = _lr("lr_g (generator)", k + "lr_g", base.lr_g, "Generator learning rate.")
            ov["lr_d"] = _lr("lr_d (discriminator)", k + "lr_d", base.lr_d,
                             "TTUR (Heusel et al. 2017): a faster D than G, e.g. 4e-4 vs 1e-4, can help.")
    with c3:
        if family == "vae":
            ov["kl_schedule"] = st.selectbox("KL schedule", ["none", "linear", "cyclical"],
                                             index=["none", "linear", "cyclical"].index(base.kl_schedule),
                                             key=k + "sched", persist_state="session",
                                             help="Warm β up from 0 so the decoder learns to use z first.")
            if ov["kl_schedule"] != "none":
                ov["anneal_steps"] = st.number_input("Annealing length (steps)", 1, 100_000,
                                                     min(base.anneal_steps, int(steps)), key=k + "anneal",
                                                     persist_state="session")
            ov["free_bits"] = st.slider("Free bits (nats per dimension)", 0.0, 2.0, float(base.free_bits), 0.05,
                                        key=k + "fb", persist_state="session",
                                        help="KL below this per latent dimension is not penalised.")
            ov["skip"] = st.toggle("Skip connections from z", base.skip, key=k + "skip", persist_state="session",
                                   help="Feed z to every decoder layer, against posterior collapse.")
        else:
            from genlib.models.gan import LOSSES

            ov["loss"] = st.selectbox("Loss", LOSSES, index=LOSSES.index(base.loss), key=k + "loss",
                                      persist_state="session")
            ov["n_critic"] = st.slider("D steps per G step (n_critic)", 1, 10, base.n_critic, key=k + "ncritic",
                                       persist_state="session")
            ov["spectral_norm"] = st.toggle("Spectral norm in D", base.spectral_norm, key=k + "sn",
                                            persist_state="session")
            if ov["loss"] in ("nonsaturating", "minimax"):
                ov["label_smoothing"] = st.slider("One-sided label smoothing", 0.0, 0.3,
                                                  float(base.label_smoothing), 0.05, key=k + "ls",
                                                  persist_state="session", help="Real target 1 − s.")
            ema = st.select_slider("EMA of G (decay)", [0.0, 0.9, 0.99, 0.999], value=base.ema, key=k + "ema",
                                   persist_state="session", help="Sample from a moving average of G; 0 = off.")
            ov["ema"] = ema
            if ov["loss"] == "wgan-gp":
                ov["gp_weight"] = st.slider("Gradient-penalty weight λ", 0.0, 50.0, float(base.gp_weight), 1.0,
                                            key=k + "gp", persist_state="session")
    steps = int(steps)
    train = dict(steps=steps, batch_size=int(batch), seed=int(seed),
                 log_every=max(1, min(25, steps // 200)), sample_every=max(1, steps // 30),
                 n_fixed=64 if data.is_image else 512)
    return ov, train
