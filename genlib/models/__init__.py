"""Model families (``vae``, ``gan``, ``flow``), their configs, and the named presets that configure them.

    config.py          BaseConfig; every field's metadata read back by field_specs()
    base.py            GenerativeModel: the interface every family implements; capabilities
                       (ENCODER, CRITIC, STANDING_STATS, ODE_ENCODER) with their protocols, asked by model.supports()
    presets.py         FAMILIES, Preset / PRESETS, make_model()
    vae.py, gan.py     the families; gan_objectives.py: one object per GAN loss
    flow.py            flow matching (ODE sampler, classifier-free guidance); flow_nets.py: its MLP and U-Net
    losses.py, nets.py the loss formulas with their sources; MLP and DCGAN-style blocks
"""
from __future__ import annotations

from .base import (CAPABILITIES, CRITIC, ENCODER, ODE_ENCODER, STANDING_STATS, GenerativeModel, HasCritic,
                   HasEncoder, HasODEEncoder, HasStandingStats)
from .config import BaseConfig, FieldSpec, field_specs
from .flow import Flow, FlowConfig
from .gan import GAN, GANConfig
from .gan_objectives import OBJECTIVES, GANObjective, objective
from .presets import FAMILIES, PRESETS, TOY_DEFAULTS, Preset, build_model, config_class, make_model, preset_config
from .vae import VAE, VAEConfig

__all__ = ["BaseConfig", "FieldSpec", "field_specs", "GenerativeModel", "CAPABILITIES", "ENCODER", "CRITIC",
           "STANDING_STATS", "ODE_ENCODER", "HasEncoder", "HasODEEncoder", "HasCritic", "HasStandingStats", "OBJECTIVES", "GANObjective", "objective",
           "GAN", "GANConfig", "VAE", "VAEConfig", "Flow", "FlowConfig",
           "FAMILIES", "PRESETS", "TOY_DEFAULTS", "Preset", "build_model", "make_model", "preset_config",
           "config_class"]
