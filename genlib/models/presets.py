"""Model families, and named presets that configure them.

A *family* is a class (``vae``, ``gan``); a *preset* is a named recipe of that family the course
talks about (``dcgan``, ``wgan-gp``, ``cgan``...). ``make_model('dcgan', dataset)`` builds one.
"""
from __future__ import annotations

import dataclasses
from types import MappingProxyType
from typing import Any, Mapping

from .base import GenerativeModel
from .config import BaseConfig
from .gan import GAN
from .vae import VAE

FAMILIES: dict[str, type[GenerativeModel]] = {"vae": VAE, "gan": GAN}


@dataclasses.dataclass(frozen=True)
class Preset:
    """A named recipe: a family, the config fields it sets (read-only), and one line on what it is."""

    family: str
    overrides: Mapping[str, Any]
    description: str

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"unknown model family {self.family!r}; choose from {', '.join(FAMILIES)}")
        object.__setattr__(self, "overrides", MappingProxyType(dict(self.overrides)))


PRESETS: dict[str, Preset] = {
    "vae": Preset("vae", {}, "MLP VAE (784-400-20 on MNIST), Bernoulli likelihood"),
    "conv-vae": Preset("vae", {"arch": "conv", "latent_dim": 16}, "convolutional VAE, 16-D latent"),
    "cvae": Preset("vae", {"conditional": True}, "conditional MLP VAE: label fed to encoder and decoder"),
    "gan": Preset("gan", {}, "vanilla MLP GAN, non-saturating loss"),
    "dcgan": Preset("gan", {"arch": "conv"}, "DCGAN: strided convolutions, batch norm in G"),
    # Arjovsky et al. 2017: RMSprop, lr 5e-5, clip 0.01, 5 critic steps per G step.
    "wgan": Preset("gan", {"arch": "conv", "loss": "wgan", "n_critic": 5, "optimizer": "rmsprop",
                           "lr_g": 5e-5, "lr_d": 5e-5}, "WGAN with weight clipping (conv critic)"),
    # Gulrajani et al. 2017: Adam(1e-4, betas (0, 0.9)), lambda 10, 5 critic steps per G step.
    "wgan-gp": Preset("gan", {"arch": "conv", "loss": "wgan-gp", "n_critic": 5, "lr_g": 1e-4, "lr_d": 1e-4,
                              "beta1": 0.0, "beta2": 0.9}, "WGAN-GP: gradient penalty (conv critic)"),
    "cgan": Preset("gan", {"conditional": True}, "conditional MLP GAN: label fed to G and D"),
}

# 2-D toy points: small nets, Gaussian VAE likelihood. Conv presets need arch="mlp" here, said explicitly.
TOY_DEFAULTS: dict[str, dict[str, Any]] = {
    "vae": {"hidden": (128, 128), "latent_dim": 2, "likelihood": "gaussian"},
    "gan": {"hidden": (128, 128), "latent_dim": 8},
}


def config_class(family: str) -> type[BaseConfig]:
    if family not in FAMILIES:
        raise ValueError(f"unknown model family {family!r}; choose from {', '.join(FAMILIES)}")
    return FAMILIES[family].config_class


def build_model(family: str, config: BaseConfig | dict[str, Any], require_all: bool = False) -> GenerativeModel:
    """The model of ``family`` for ``config`` (a dataclass, or a dict as saved in checkpoints)."""
    config_cls = config_class(family)   # raises for an unknown family
    if isinstance(config, dict):
        config = config_cls.from_dict(config, require_all=require_all)
    return FAMILIES[family](config)


def preset_config(preset: str, data_shape: tuple[int, ...], num_classes: int,
                  **overrides: Any) -> tuple[str, BaseConfig]:
    """(family, config) for a preset on data of this shape; ``overrides`` win over everything."""
    if preset not in PRESETS:
        raise ValueError(f"unknown model {preset!r}; choose from {', '.join(PRESETS)}")
    p = PRESETS[preset]
    fields = dict(p.overrides)
    if len(data_shape) == 1:
        fields.update(TOY_DEFAULTS[p.family])
    fields.update(data_shape=tuple(data_shape), num_classes=num_classes)
    fields.update(overrides)
    return p.family, config_class(p.family).from_dict(fields)


def make_model(preset: str, data=None, *, data_shape=None, num_classes=None, **overrides: Any) -> GenerativeModel:
    """Build a preset for ``data`` (a ``genlib.data.Dataset``) or an explicit shape and class count."""
    if data is not None:
        data_shape, num_classes = data.shape, data.num_classes
    if data_shape is None:
        raise ValueError("make_model needs data or data_shape")
    family, config = preset_config(preset, data_shape, num_classes or 0, **overrides)
    return build_model(family, config)
