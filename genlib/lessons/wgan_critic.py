"""Lesson 4: a WGAN critic scores rather than classifies, and its estimate tracks sample quality.

The WGAN-GP critic's loss gives an estimate of the Wasserstein distance between the data and G's
samples, W ~ E[f(x)] - E[f(G(z))] (Arjovsky et al. 2017, Gulrajani et al. 2017, figure 3): as G
improves, the estimate falls with the distance. A vanilla GAN's D loss is a classifier's
cross-entropy in a game. Read as the distance it would estimate at D's optimum, where the loss is
log 4 - 2 JSD (Goodfellow et al. 2014, theorem 1), its Jensen-Shannon estimate (log 4 - D loss) / 2
need not fall as the samples improve: Arjovsky et al.'s figure 4 shows a DCGAN's JS estimate not
tracking quality. Measured on the shipped files: the old mnist-gan's D loss hovered (rank correlation
with classifier-FID 0.38); the one built with minibatch standard deviation (20k steps) has a D that
keeps winning, its loss falling 1.13 -> 0.88 as classifier-FID falls 162 -> 5.7, so its JS estimate
*rises* while the samples improve (rank correlation -0.91).

Measured on a whole training run: the estimate (the run's 'wasserstein' curve, averaged over the
steps between two quality measurements) against classifier-FID (the run's live metric) at each
measurement after the start; Spearman's rank correlation (scipy.stats.spearmanr) of the two. Beside
it the same for a vanilla GAN's JS estimate; the check asks the WGAN's to track quality by at least
0.2 more (a distance estimate that tracks quality correlates positively with classifier-FID). The
runs come from the shipped models' recorded runs (read with ``load_source``:
``mnist-wgan-gp`` and ``mnist-gan``) when their files hold one; a file built before recorded runs
has none, and then that run is recorded here, live, on the bundled 8x8 digits (MLP networks,
``live_s`` seconds, one thread, seeded), the note saying which. The live WGAN-GP critic first
trains alone for ``head_start`` steps against the untrained G, as in Arjovsky et al.'s own schedule
(100 critic steps per G step at first), so the estimate measures a trained critic from the first
point instead of rising while the critic learns.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import torch

from . import Check, Lesson, Outcome
from . import _common as C

LIVE_DATASET = "digits"


def load_source(source: str):
    """(``source``'s model config, its recorded run): a shipped model's name, or a checkpoint file's
    path, read once. The run is None when the file was saved before recorded runs."""
    if source.endswith(".pt") or os.sep in source:
        from ..checkpoint import load_checkpoint
        ckpt = load_checkpoint(Path(source))
    else:
        from ..pretrained import load_pretrained
        ckpt = load_pretrained(source)
    return ckpt.model.config, ckpt.recorded_run


def bce_problem(config, name: str) -> str:
    """Why the D loss of a model of ``config`` (named ``name``) gives no Jensen-Shannon estimate (''
    when it does): only a D trained on the plain binary cross-entropy (the non-saturating or minimax
    objective, no label smoothing) does."""
    if getattr(config, "loss", None) is None:
        return f"{name} is not a GAN"
    if not config.probabilistic or config.label_smoothing:
        how = f"the {config.loss} loss" + (f" with label smoothing {config.label_smoothing:g}" if config.label_smoothing else "")
        return (f"{name} is trained with {how}: its D loss is not the plain binary cross-entropy, so "
                "(log 4 - D loss) / 2 estimates no Jensen-Shannon divergence; pick a vanilla GAN (non-saturating "
                "or minimax loss)")
    return ""


def record_live(kind: str, seconds: float, seed: int, head_start: int = 0, metric_every: int = 25,
                n_metric: int = 500, **overrides: Any):
    """A short seeded run on the digits with classifier-FID measured every ``metric_every`` steps:
    ``kind`` 'wgan-gp' (MLP critic, the preset's optimiser settings) or 'gan'. Returns its RecordedRun."""
    from ..metrics import live_metric_fn
    from ..models import make_model
    from ..train import TrainConfig, Trainer
    torch.set_num_threads(1)
    data = C.dataset(LIVE_DATASET)
    torch.manual_seed(seed)
    model = make_model(kind, data, **({"arch": "mlp"} if kind == "wgan-gp" else {}), **overrides)
    if head_start:
        _critic_head_start(model, data, head_start, seed)
    metric = live_metric_fn(LIVE_DATASET, n=n_metric)
    trainer = Trainer(model, data, TrainConfig(steps=10 ** 7, max_seconds=seconds, batch_size=64, seed=seed, threads=1,
                                               log_every=5, sample_every=10 ** 7, metric_every=metric_every,
                                               metric_at_start=True),
                      metric_fn=lambda m: {"classifier_fid": metric(m)["classifier_fid"]})
    trainer.run()
    return trainer.recorded_run()


def _critic_head_start(model, data, steps: int, seed: int) -> None:
    """D alone for ``steps`` steps (its full objective, penalty included) against the untrained G."""
    batches = data.batches(64, torch.Generator().manual_seed(seed + 7))
    for _ in range(steps):
        x, y = next(batches)
        with torch.no_grad():
            fake = model.generator(torch.randn(len(x), model.config.latent_dim))
        model._update_discriminator(model.to_net_range(x), fake, None)


def run(seed: int = 0, wgan: str = "mnist-wgan-gp", vanilla: str = "mnist-gan", live_s: float = 20.0,
        head_start: int = 100, metric_every: int = 25) -> Outcome:
    if not live_s > 0 or head_start < 0 or metric_every < 1:
        raise ValueError("live_s must be > 0, head_start >= 0 and metric_every >= 1")
    runs, source = {}, {}
    for role, name in (("wgan", wgan), ("vanilla", vanilla)):
        try:
            config, rec = load_source(name)
        except FileNotFoundError:
            config, rec = None, None
        why = bce_problem(config, Path(name).stem) if role == "vanilla" and rec is not None else ""
        if why:
            raise ValueError(why)
        if rec is not None and "classifier_fid" in rec.metrics and (
                "wasserstein" in rec.curves if role == "wgan" else "d_loss" in rec.curves):
            runs[role], source[role] = rec, f"the run recorded when {Path(name).stem} was built"
    for role, kind, ahead in (("wgan", "wgan-gp", head_start), ("vanilla", "gan", 0)):
        if role not in runs:                              # a file without a recorded run: record one here
            runs[role] = record_live(kind, live_s, seed, ahead, metric_every)
            source[role] = (f"a {live_s:g}-s run recorded live here on the digits (seed {seed}; "
                            f"{Path(wgan if role == 'wgan' else vanilla).stem} has no recorded run)")
    w_steps, w_fid, w_est = runs["wgan"].at_measurements("wasserstein")
    v_steps, v_fid, v_loss = runs["vanilla"].at_measurements("d_loss")
    if len(w_steps) < 3 or len(v_steps) < 3:
        raise ValueError("a run needs at least 3 quality measurements after its start to rank them")
    v_js = [js_estimate(x) for x in v_loss]
    rho_w, rho_v = C.spearman(w_est, w_fid), C.spearman(v_js, v_fid)
    follow = ("falls as classifier-FID falls: it tracks quality" if rho_w >= 0.5 else
              "does not follow classifier-FID closely in this run")
    note = (f"WGAN-GP: {source['wgan']}, {len(w_steps)} quality measurements over {int(w_steps[-1]):,} steps. "
            f"Its critic's Wasserstein estimate goes from {w_est[0]:.3g} to {w_est[-1]:.3g} while classifier-FID "
            f"goes from {w_fid[0]:.1f} to {w_fid[-1]:.1f}; their rank correlation is {rho_w:.2f}: the estimate "
            f"{follow}. Vanilla GAN: {source['vanilla']}, D loss {v_loss[0]:.3f} -> {v_loss[-1]:.3f}, so the "
            f"Jensen-Shannon estimate it gives at D's optimum, (log 4 - D loss) / 2, goes {v_js[0]:.3f} -> "
            f"{v_js[-1]:.3f} while classifier-FID goes {v_fid[0]:.1f} -> {v_fid[-1]:.1f}; their rank "
            f"correlation is {rho_v:.2f}"
            + (": it says little about quality (D is a classifier in a game, never at its optimum)."
               if abs(rho_v) < 0.5 else
               ": it rises as the samples improve, the wrong way for a distance (D keeps winning its game)."
               if rho_v < 0 else ": here it falls with classifier-FID too."))
    data = {"wgan": {"step": w_steps, "fid": w_fid, "estimate": w_est,
                     "curve": runs["wgan"].series("wasserstein")},
            "vanilla": {"step": v_steps, "fid": v_fid, "d_loss": v_loss, "js": v_js,
                        "curve": runs["vanilla"].series("d_loss")},
            "source": source, "live": "live" in source["wgan"], "live_vanilla": "live" in source["vanilla"]}
    return Outcome(rho_w, note, data=data,
                   figures={"rho_wgan": rho_w, "rho_vanilla": rho_v, "points_wgan": float(len(w_steps)),
                            "points_vanilla": float(len(v_steps))},
                   checks=(Check("rank correlation: WGAN estimate minus vanilla JS estimate", rho_w - rho_v, 0.2),))


def js_estimate(d_loss: float) -> float:
    """The Jensen-Shannon divergence a vanilla D loss (real + fake binary cross-entropy, in nats)
    would mean at D's optimum: loss = log 4 - 2 JSD (Goodfellow et al. 2014), so (log 4 - loss) / 2."""
    return (math.log(4.0) - float(d_loss)) / 2


LESSON = Lesson(
    4, "critic-tracks-quality", "A WGAN critic scores, and its estimate tracks quality",
    "The Wasserstein estimate and classifier-FID over a whole training run on one chart fall together (their "
    "rank correlation printed), beside the Jensen-Shannon estimate of a vanilla GAN's D loss, which does not.",
    page="train.py", effect="rank correlation of the W estimate with classifier-FID", threshold=0.5,
    settings={"wgan": "mnist-wgan-gp", "vanilla": "mnist-gan", "live_s": 20.0, "head_start": 100,
              "metric_every": 25},
    runner=run)
