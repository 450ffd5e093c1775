"""Flow matching (Lipman et al. 2023) on the straight path of rectified flow (Liu et al. 2022),
optionally class-conditional with classifier-free guidance (Ho & Salimans 2022).

Training: draw data x1, noise x0 ~ N(0, I) and a time t in [0, 1]; the point on the straight path
is x_t = (1 - t) x0 + t x1 and its velocity along the path is x1 - x0. A network v(x_t, t, y) is fit
to it by mean squared error: loss = E |v(x_t, t, y) - (x1 - x0)|^2 (mean over batch and dimensions).
Its minimiser is the conditional mean E[x1 - x0 | x_t], a velocity field whose ODE carries N(0, I)
at t = 0 to the data at t = 1.

Sampling: z = x0 ~ N(0, I) (``prior``; the latent is the starting noise, flattened: ``latent_dim`` is
the number of data dimensions, so checkpoints and the latent tools see a (n, D) code), then the ODE
dx/dt = v(x, t) from t = 0 to 1 in ``sample_steps`` equal steps, Euler (one network call per step)
or Heun (two, second-order). ``sample(n, labels, z)`` is deterministic given z, so the latent
tools (interpolation, out-of-distribution noise) work on it. ``encode(x)`` runs the same ODE
backwards from t = 1 to 0: deterministic, about as costly as sampling (``encode_evaluations``).

Conditional: the class enters as a learned embedding added to the time embedding; in training the
label is replaced by a learned null token with probability ``p_uncond``, so the same net also
learns v(x, t) without a label. At sampling: v = v_uncond + w (v_cond - v_uncond), w =
``guidance`` (1 = plain conditional, 0 = unconditional, > 1 = sharper and less diverse); w != 1
costs two network calls per evaluation, batched as one.

Images come in as [0, 1] and are mapped to [-1, 1] for the network (so noise and data have similar
scale); ``sample`` maps back and clamps to [0, 1]. 2-D toy points are used raw.
"""
from __future__ import annotations

import copy
import dataclasses
import math

import torch
import torch.nn.functional as F
from torch import nn

from ..sampling import eval_mode
from .base import ODE_ENCODER, GenerativeModel
from .config import BaseConfig, check, inherit, setting
from .flow_nets import UNet, VelocityMLP
from .nets import count_parameters

SAMPLERS = ("euler", "heun")
TIME_SAMPLING = ("uniform", "logit-normal")
PREDICTS = ("v", "x")
X_PRED_MIN_GAP = 0.05     # JiT's clamp of 1 - t in v = (x_hat - x_t) / (1 - t)


@dataclasses.dataclass
class FlowConfig(BaseConfig):
    arch: str = setting("mlp", "velocity net: 'mlp' (residual MLP) or 'conv' (a small U-Net; sides divisible by 4)",
                        choices=("mlp", "conv"))
    hidden: tuple[int, ...] = inherit(BaseConfig, "hidden", (256, 256, 256, 256))  # input layer + 3 residual blocks
    width: int = setting(32, "U-Net: channels (w, 2w, 2w) at sides (H, H/2, H/4)", ge=1, typical=(8, 128))
    patch: int = setting(1, "U-Net: fold p x p pixel blocks into channels first (2: ~4x cheaper)", ge=1, le=4)
    # derived in __post_init__: z is noise of the data's shape, so latent_dim is the number of data dimensions
    latent_dim: int = setting(2, "derived: data dimensions (z has the data's shape)", ge=1, from_data=True)
    emb_dim: int = setting(128, "time (and class) embedding size", ge=2, typical=(8, 512))
    octaves: int = setting(0, "MLP: Fourier features of the input, 2^0..2^(k-1); 0 = raw input (toys: 6)",
                           ge=0, le=12)
    # a plain regression: 2e-3 for the MLP (measured on toys and digits, bench/flow_explore.py); U-Net 1e-3
    lr: float = setting(2e-3, "Adam learning rate", gt=0, log=True, typical=(1e-5, 1e-1))
    time_sampling: str = setting("uniform", "t ~ U[0, 1], or 'logit-normal' (Esser et al. 2024): more mid-path t",
                                 choices=TIME_SAMPLING)
    p_uncond: float = setting(0.1, "conditional: share of labels replaced by the null token (Ho & Salimans: 0.1-0.2)",
                              ge=0, lt=1)
    guidance: float = setting(2.0, "conditional: guidance scale w at sampling; 1 = none, 0 = unconditional",
                              ge=0, le=20, typical=(0.0, 8.0))
    sampler: str = setting("euler", "ODE solver: 'euler' (1 net call a step) or 'heun' (2, second order)",
                           choices=SAMPLERS)
    sample_steps: int = setting(20, "ODE steps from noise to data", ge=1, le=1000, typical=(1, 100))
    # 0.99 suits live runs (grid: 0.44 -> 0.81 high-quality share at 600 steps), 0.999 long ones
    ema: float = setting(0.99, "decay of the weight average used for sampling (0 = off)", ge=0, lt=1)
    grad_clip: float = setting(1.0, "max gradient norm; 0 = off", ge=0, typical=(0.0, 10.0))
    # The `flow` preset's MLP on MNIST, 1,500 steps: ~3 of 500 samples ran off to inf, then NaN (at
    # t ~ 0.3 one sample's velocity jumped from ~3 to 271, then grew ~4,000x a step).
    clip_x1: bool = setting(False, "images: at each sampling step, clip the image the field points at, "
                            "x_t + (1 - t) v, to the pixel range (DDPM's clipped x0, Ho et al. 2020): no "
                            "sample runs off to infinity")
    # An MLP's hidden width (256) is below an image's dimension (784): v = x1 - x0 carries the noise x0,
    # full-rank, which a 256-wide net cannot pass through; the clean image x1 lies near a low-dimensional
    # manifold, which it can. Li & He 2025 ("Back to Basics: Let Denoising Generative Models Denoise",
    # JiT) predict x1 and convert, v = (x1_hat - x_t) / max(1 - t, 0.05), the loss staying on v.
    # With 'x' the field below t = 0.05 from the end still heads for the image at the clamped speed, so
    # more than 20 steps end a little short of it (rms ~0.015 at 40-100 steps); classifier-FID still
    # falls with steps. On images use it with clip_x1: without, the cflow preset drew non-finite
    # samples after 30 CPU-s on MNIST.
    predict: str = setting("v", "what the net outputs: 'v' (the velocity) or 'x' (the clean image, turned into "
                           "v = (x - x_t) / (1 - t), 1 - t at least 0.05; Li & He 2025; with clip_x1 on images)",
                           choices=PREDICTS)
    later_fields = ("clip_x1", "predict")

    def __post_init__(self) -> None:
        self.latent_dim = math.prod(int(s) for s in self.data_shape) if self.data_shape else 1
        super().__post_init__()

    def validate(self) -> None:
        super().validate()
        check(self.patch in (1, 2, 4), "patch", self.patch, "1, 2 or 4")
        check(self.patch == 1 or self.arch == "conv" and self.data_shape[1] % self.patch == 0 == self.data_shape[2] % self.patch,
              "patch", self.patch, "1, or with arch 'conv' a divisor of the image side")


class VelocityField(nn.Module):
    """v(x, t, y): the network plus the class embedding. ``y`` is None (unconditional model), int
    labels (B,), class weights (B, K) (soft labels), and any row may be the null class: int label K,
    or the ``null`` mask."""

    def __init__(self, c: FlowConfig):
        super().__init__()
        self.conditional, self.num_classes, self.predict = c.conditional, c.num_classes, c.predict
        self.net = (UNet(c.data_shape, c.width, c.emb_dim, c.patch) if c.arch == "conv"
                    else VelocityMLP(c.data_shape, c.hidden, c.emb_dim, c.octaves))
        if c.conditional:   # rows 0..K-1: the classes; row K: the null token (no label)
            self.class_emb = nn.Parameter(torch.randn(c.num_classes + 1, c.emb_dim))   # N(0, 1), as nn.Embedding

    def embed(self, y: torch.Tensor, null: torch.Tensor | None = None) -> torch.Tensor:
        """(B, E): a soft label mixes class rows; rows where ``null`` is True get the null token."""
        k = self.num_classes
        w = y.float() if y.dim() == 2 else F.one_hot(y, k).float()       # (B, K)
        e = w @ self.class_emb[:k]                                        # (B, E)
        if null is not None:
            e = torch.where(null[:, None], self.class_emb[k].expand_as(e), e)
        return e

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None,
                null: torch.Tensor | None = None) -> torch.Tensor:
        c = self.embed(y, null) if self.conditional else None
        out = self.net(x, t, c)
        if self.predict == "x":       # out is the clean image: the velocity that reaches it from x by t = 1
            gap = (1 - t).clamp(min=X_PRED_MIN_GAP).view(-1, *[1] * (x.dim() - 1))
            return (out - x) / gap
        return out


def path_and_target(x1: torch.Tensor, x0: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The straight path at t and its velocity: x_t = (1 - t) x0 + t x1, u = x1 - x0. t is (B,)."""
    tb = t.view(-1, *([1] * (x1.dim() - 1)))
    return (1 - tb) * x0 + tb * x1, x1 - x0


def guided(v_cond: torch.Tensor, v_uncond: torch.Tensor, w: float) -> torch.Tensor:
    """Classifier-free guidance: v_uncond + w (v_cond - v_uncond)."""
    return v_uncond + w * (v_cond - v_uncond)


def clip_x1(field):
    """``field`` whose velocity points at most to the pixel range [-1, 1]: v + (clip(x1) - x1) / (1 - t),
    x1 = x + (1 - t) v the image a straight path from x would reach (unchanged where it is in range,
    and at t = 1)."""
    def f(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        v = field(x, t)
        s = (1 - t).view(-1, *[1] * (x.dim() - 1))                      # (B, 1, ...)
        x1 = x + s * v
        return v + torch.where(s > 0, (x1.clamp(-1, 1) - x1) / s.clamp(min=1e-12), 0.0)
    return f


def integrate(field, x: torch.Tensor, t0: float, t1: float, steps: int, method: str = "euler",
              trajectory: list | None = None, euler_last: bool = False) -> torch.Tensor:
    """Solve dx/dt = field(x, t) (t a (B,) tensor) from t0 to t1 (either order) in ``steps`` equal steps.

    Euler: x += h f(x, t). Heun (explicit trapezoid): x' = x + h f(x, t); x += h/2 (f(x, t) + f(x', t + h)).
    ``euler_last``: the last step is Euler, as EDM's sampler (Karras et al. 2022) where the field at
    t1 is not the one to average (an x-predicting flow's is clamped there).
    ``trajectory``, if given, receives x at each of the steps + 1 times (the start included).
    """
    h = (t1 - t0) / steps
    b = x.shape[0]
    if trajectory is not None:
        trajectory.append(x)
    for i in range(steps):
        t = t0 + i * h
        tt = torch.full((b,), t, device=x.device, dtype=x.dtype)
        f = field(x, tt)
        if method == "euler" or euler_last and i == steps - 1:
            x = x + h * f
        elif method == "heun":
            x_pred = x + h * f
            f2 = field(x_pred, torch.full((b,), t + h, device=x.device, dtype=x.dtype))
            x = x + 0.5 * h * (f + f2)
        else:
            raise ValueError(f"unknown sampler {method!r}; use 'euler' or 'heun'")
        if trajectory is not None:
            trajectory.append(x)
    return x


class Flow(GenerativeModel):
    family = "flow"
    family_title = "flow"
    config_class = FlowConfig
    # No posterior q(z|x) (ENCODER, which the VAE tools need); encode() runs the ODE backwards instead.
    capabilities = frozenset({ODE_ENCODER})
    lr_fields = {"opt": "lr"}

    def __init__(self, config: FlowConfig):
        super().__init__(config)
        self.velocity = VelocityField(config)
        # A frozen average of the weights for sampling when ema > 0 (as in DDPM and rectified flow).
        self.velocity_ema = copy.deepcopy(self.velocity).requires_grad_(False) if config.ema else None
        self.opt = torch.optim.Adam(self.velocity.parameters(), lr=config.lr)

    # --- data <-> network range -----------------------------------------------------------------
    def to_net_range(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2 - 1 if self.config.is_image else x

    def to_data_range(self, out: torch.Tensor) -> torch.Tensor:
        return ((out + 1) / 2).clamp(0, 1) if self.config.is_image else out

    # --- training -------------------------------------------------------------------------------
    def sample_time(self, n: int, device, generator: torch.Generator | None = None) -> torch.Tensor:
        if self.config.time_sampling == "logit-normal":   # sigmoid of N(0, 1) (Esser et al. 2024, m=0, s=1)
            return torch.sigmoid(torch.randn(n, device=device, generator=generator))
        return torch.rand(n, device=device, generator=generator)

    def loss_terms(self, x1: torch.Tensor, x0: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None,
                   null: torch.Tensor | None = None) -> torch.Tensor:
        """The flow-matching loss for given data (network range), noise, times, labels and null mask."""
        xt, target = path_and_target(x1, x0, t)
        v = self.velocity(xt, t, labels, null)
        return F.mse_loss(v, target)

    def training_step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        c = self.config
        x1 = self.to_net_range(x)
        x0 = torch.randn_like(x1)
        t = self.sample_time(x1.shape[0], x1.device)
        labels = null = None
        if c.conditional:
            labels = y.long()
            null = torch.rand(x1.shape[0], device=x1.device) < c.p_uncond
        loss = self.loss_terms(x1, x0, t, labels, null)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        # L2 norm of the whole gradient before clipping and the step, a 0-d tensor (no host sync)
        grads = [p.grad for p in self.velocity.parameters() if p.grad is not None]
        norm = nn.utils.get_total_norm(grads).detach()
        if c.grad_clip:
            nn.utils.clip_grads_with_norm_(self.velocity.parameters(), c.grad_clip, norm)
        self.opt.step()
        if self.velocity_ema is not None:
            self._update_ema()
        self.steps += 1
        return {"loss": loss.detach(), "grad_norm": norm}

    @torch.no_grad()
    def _update_ema(self) -> None:
        # Warm-up (as in TensorFlow's ExponentialMovingAverage num_updates): the decay is at most
        # (1 + n) / (10 + n), so a short live run is not dominated by its random initial weights.
        d = min(self.config.ema, (1 + self.steps) / (10 + self.steps))
        for pe, p in zip(self.velocity_ema.parameters(), self.velocity.parameters()):
            pe.lerp_(p, 1 - d)
        for be, b in zip(self.velocity_ema.buffers(), self.velocity.buffers()):
            be.copy_(b)

    # --- sampling -------------------------------------------------------------------------------
    @property
    def sampler_net(self) -> VelocityField:
        return self.velocity_ema if self.velocity_ema is not None else self.velocity

    def field(self, labels: torch.Tensor | None = None, guidance: float | None = None):
        """The velocity field f(x, t) the sampler integrates (network range), with guidance applied.

        Conditional models: labels None means unconditional (the null token); w = ``guidance``
        (default: the config's) mixes v_cond and v_uncond, both from one batched call.
        """
        field = self._field(labels, guidance)
        return clip_x1(field) if self.config.clip_x1 and self.config.is_image else field

    def _field(self, labels: torch.Tensor | None, guidance: float | None):
        net = self.sampler_net
        w = self.config.guidance if guidance is None else float(guidance)
        if not self.config.conditional:
            return lambda x, t: net(x, t)
        if labels is None:
            return lambda x, t: net(x, t, torch.zeros(x.shape[0], dtype=torch.long, device=x.device),
                                    torch.ones(x.shape[0], dtype=torch.bool, device=x.device))
        if w == 1.0:
            return lambda x, t: net(x, t, labels)

        def f(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            b = x.shape[0]
            both = torch.cat([labels, labels])
            null = torch.cat([torch.zeros(b, dtype=torch.bool, device=x.device),
                              torch.ones(b, dtype=torch.bool, device=x.device)])
            v = net(torch.cat([x, x]), torch.cat([t, t]), both, null)
            return guided(v[:b], v[b:], w)
        return f

    def _check_z(self, n: int, z: torch.Tensor | None) -> torch.Tensor | None:
        """z flat (n, D), or noise of the data's shape (n, *data_shape), flattened here."""
        if z is not None and tuple(z.shape[1:]) == tuple(self.config.data_shape):
            z = z.flatten(1)
        if z is not None and (z.dim() < 2 or tuple(z.shape[1:]) != self.latent_shape):
            raise ValueError(f"z must have shape (n, {', '.join(map(str, self.latent_shape))}), "
                             f"got {tuple(z.shape)}")
        return z

    @torch.no_grad()
    def sample(self, n: int, labels: torch.Tensor | None = None, z: torch.Tensor | None = None, *,
               steps: int | None = None, sampler: str | None = None, guidance: float | None = None,
               trajectory: list | None = None) -> torch.Tensor:
        """Integrate the ODE from z (default: ``prior(n)``) at t = 0 to t = 1: (n, *data_shape).

        ``steps``, ``sampler`` and ``guidance`` default to the config's. ``trajectory``, a list, receives
        the states at every step in the data's range (steps + 1 of them), for plotting the flow.
        """
        z, labels = self._check_sample_args(n, labels, self._check_z(n, z))
        traj = [] if trajectory is not None else None
        with eval_mode(self.sampler_net):
            x0 = z.float().reshape(z.shape[0], *self.config.data_shape)
            x = integrate(self.field(labels, guidance), x0, 0.0, 1.0, steps or self.config.sample_steps,
                          sampler or self.config.sampler, traj, euler_last=self.config.predict == "x")
        if trajectory is not None:
            trajectory.extend(self.to_data_range(s) for s in traj)
        return self.to_data_range(x)

    @torch.no_grad()
    def encode(self, x: torch.Tensor, labels: torch.Tensor | None = None, *, steps: int | None = None,
               sampler: str | None = None, guidance: float | None = None) -> torch.Tensor:
        """Run the ODE backwards from data (t = 1) to noise (t = 0): z with ``sample(z) ~= x``.

        Deterministic; the round trip is exact up to the solver's error (more steps, or Heun, are
        closer). Conditional models use the same guided field as ``sample`` when labels are given,
        the unconditional one otherwise. Cost: ``encode_evaluations()`` network calls per image.
        """
        x = x.to(self.device).float()
        if labels is not None and self.config.conditional:
            labels = labels.to(self.device)
            labels = labels.float() if labels.dim() == 2 else labels.long()
        else:
            labels = None
        with eval_mode(self.sampler_net):
            z = integrate(self.field(labels, guidance), self.to_net_range(x), 1.0, 0.0,
                          steps or self.config.sample_steps, sampler or self.config.sampler)
        return z.flatten(1)

    def with_sampling(self, **settings) -> "Flow":
        """A view of this model that samples with other ``sample_steps``, ``sampler`` or ``guidance``
        (for code that calls ``sample(n, labels, z)`` only, e.g. ``genlib.metrics.evaluate``): a
        shallow copy sharing every weight, with a validated config of its own."""
        unknown = set(settings) - {"sample_steps", "sampler", "guidance"}
        if unknown:
            raise ValueError(f"with_sampling sets sample_steps, sampler or guidance, not {', '.join(sorted(unknown))}")
        view = copy.copy(self)
        object.__setattr__(view, "config", dataclasses.replace(self.config, **settings))
        return view

    @torch.no_grad()
    def velocity_at(self, x: torch.Tensor, t: float, labels: torch.Tensor | None = None,
                    guidance: float | None = None) -> torch.Tensor:
        """The sampling field v(x, t) at data points ``x`` (n, *data_shape) (network range: images
        in [-1, 1]), with guidance as ``sample`` applies it: for drawing the field."""
        x = x.to(self.device).float()
        if labels is not None:
            labels = labels.to(self.device).long()
        with eval_mode(self.sampler_net):
            return self.field(labels if self.config.conditional else None, guidance)(
                x, torch.full((x.shape[0],), float(t), device=x.device))

    def encode_evaluations(self, guided: bool = True) -> int:
        """Network calls per image for ``sample`` or ``encode`` at the config's settings (a guided
        conditional call counts twice): 20 Euler steps = 20."""
        c = self.config
        calls = c.sample_steps * (2 if c.sampler == "heun" else 1)
        return calls * (2 if c.conditional and guided and c.guidance != 1.0 else 1)

    def distribute(self, wrap) -> None:
        """Data-parallel training wraps only the trained net: the EMA copy has no gradients (a
        DistributedDataParallel of it is refused) and is updated on every rank alike from the
        averaged weights."""
        plain = self.__dict__.setdefault("_plain_networks", {})
        if wrap is None:
            if "velocity" in plain:
                self.velocity = plain.pop("velocity")
            return
        if "velocity" not in plain:
            plain["velocity"] = self.velocity
            self.velocity = wrap(self.velocity)

    def prepare_sampling(self) -> None:
        pass

    def network_sizes(self) -> dict[str, int]:
        return {"velocity": count_parameters(self.velocity)}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"opt": self.opt}
