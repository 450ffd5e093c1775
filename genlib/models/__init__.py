"""Model families (``vae``, ``gan``), their configs, and the named presets that configure them.

    config.py          BaseConfig; every field's metadata read back by field_specs()
    base.py            GenerativeModel: the interface every family implements
    presets.py         FAMILIES, Preset / PRESETS, make_model()
    vae.py, gan.py     the families
"""
from __future__ import annotations

from .base import GenerativeModel
from .config import BaseConfig, FieldSpec, field_specs
from .gan import GAN, GANConfig
from .presets import FAMILIES, PRESETS, TOY_DEFAULTS, Preset, build_model, config_class, make_model, preset_config
from .vae import VAE, VAEConfig

__all__ = ["BaseConfig", "FieldSpec", "field_specs", "GenerativeModel", "GAN", "GANConfig", "VAE", "VAEConfig",
           "FAMILIES", "PRESETS", "TOY_DEFAULTS", "Preset", "build_model", "make_model", "preset_config",
           "config_class"]
