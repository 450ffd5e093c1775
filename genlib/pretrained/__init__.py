"""The pretrained models shipped in ``pretrained/``: the recipes that build them (``recipes``), the
build itself (``build``), the README table from their cards (``report``), and their loaders.

A class should never wait for training: the dashboard opens on these files offline. Every file is
built by this project's own code from the table ``recipes.RECIPES``, and one command rebuilds them:

    python -m genlib.pretrained build                        # everything, one model after another
    python -m genlib.pretrained build --dataset mnist        # one dataset's models
    python -m genlib.pretrained build --only mnist-dcgan     # one model
    python -m genlib.pretrained evaluate [--only NAME]       # re-measure a card's metrics, no training
    python -m genlib.pretrained list

Each file is a normal genlib checkpoint (read with ``torch.load(weights_only=True)``, so loading
never runs code) without optimiser state, holding its recorded training run (``recorded_run(name)``:
loss curves, gradient norms, the live quality metric and fixed-noise grids along training) and a
model card: data and split, images, steps, epochs, wall time, device, torch version, seed, the
exact command that rebuilt it, and its metrics from ``genlib.metrics.evaluate``.
"""
from ..files import PRETRAINED_DIR
from .build import (EVAL_SAMPLES, MAX_SAMPLE_GRIDS, METRIC_CANDIDATES, METRIC_SHARE, SAMPLES_DIR, build,
                    default_metric_fn, half_weights, latent_separation, measure, recorded_run, reevaluate,
                    save_sample_png, standing_batchnorm, update_card)
from .recipes import (BUILD_COMMAND, BY_NAME, CGAN, RECIPES, PretrainedEntry, Recipe, describe, list_pretrained,
                      load_pretrained, rebuild_command)
from .report import report

__all__ = ["PRETRAINED_DIR", "EVAL_SAMPLES", "MAX_SAMPLE_GRIDS", "METRIC_CANDIDATES", "METRIC_SHARE", "SAMPLES_DIR",
           "build", "default_metric_fn", "half_weights", "latent_separation", "measure", "recorded_run", "reevaluate",
           "save_sample_png", "standing_batchnorm", "update_card",
           "BUILD_COMMAND", "BY_NAME", "CGAN", "RECIPES", "PretrainedEntry", "Recipe", "describe", "list_pretrained",
           "load_pretrained", "rebuild_command", "report"]
