"""Variational autoencoder (Kingma & Welling, 2014), optionally conditional (Sohn et al., 2015).

Images come in as [0, 1]; the decoder outputs logits whose sigmoid is the mean image, which is what
``sample`` returns (the smooth, blurry VAE sample). 2-D toy data uses a Gaussian decoder with raw
outputs.
"""
from __future__ import annotations

import dataclasses

import torch
from torch import nn

from ..sampling import eval_mode
from . import losses
from .base import ENCODER, GenerativeModel
from .config import BaseConfig, check, inherit, setting
from .nets import Decoder, Trunk, count_parameters, one_hot


@dataclasses.dataclass
class VAEConfig(BaseConfig):
    hidden: tuple[int, ...] = inherit(BaseConfig, "hidden", (400,))   # the 784-400-20 VAE of pytorch/examples
    width: int = inherit(BaseConfig, "width", 32)           # conv: 32 then 64 channels, enough for 28x28 digits
    latent_dim: int = inherit(BaseConfig, "latent_dim", 20)   # 2 for the latent-space scatter plots
    likelihood: str = setting("bernoulli", "p(x|z): 'bernoulli' (binary-ish pixels) or 'gaussian' (fixed sigma)",
                              choices=("bernoulli", "gaussian"))
    sigma: float = setting(0.1, "gaussian likelihood std; smaller weighs reconstruction more", gt=0, log=True,
                           typical=(0.01, 1.0))
    beta: float = setting(1.0, "weight of the KL term (beta-VAE, Higgins et al. 2017); 1 = the ELBO", ge=0,
                          log=True, typical=(0.1, 1000.0))
    kl_schedule: str = setting("none", "KL weight schedule: 'none', 'linear' warm-up, or 'cyclical' (Fu et al. 2019)",
                               choices=("none", "linear", "cyclical"))
    anneal_steps: int = setting(2000, "linear: warm-up length; cyclical: one cycle's length (steps)", ge=1,
                                typical=(1, 100_000))
    free_bits: float = setting(0.0, "nats per latent dim not penalised (Kingma et al. 2016); 0 = off", ge=0,
                               typical=(0.0, 2.0))
    skip: bool = setting(False, "feed z to every decoder layer, against posterior collapse (Dieng et al. 2019)")
    lr: float = setting(1e-3, "Adam learning rate", gt=0, log=True, typical=(1e-5, 1e-1))   # pytorch/examples' rate

    def validate(self) -> None:
        super().validate()
        check(self.likelihood == "gaussian" or self.is_image, "likelihood", self.likelihood,
              "'gaussian' for non-image data")


def kl_weight(cfg: VAEConfig, step: int) -> float:
    """beta times the annealing factor at ``step``.

    linear: 0 -> 1 over ``anneal_steps`` (Bowman et al. 2016). cyclical: within each cycle of
    ``anneal_steps``, 0 -> 1 over the first half, then 1 (Fu et al. 2019, R = 0.5).
    """
    if cfg.kl_schedule == "linear":
        factor = min(1.0, step / cfg.anneal_steps)
    elif cfg.kl_schedule == "cyclical":
        factor = min(1.0, (step % cfg.anneal_steps) / (0.5 * cfg.anneal_steps))
    else:
        factor = 1.0
    return cfg.beta * factor


class VAE(GenerativeModel):
    family = "vae"
    family_title = "VAE"
    config_class = VAEConfig
    capabilities = frozenset({ENCODER})
    lr_fields = {"opt": "lr"}

    def __init__(self, config: VAEConfig):
        super().__init__(config)
        c = config
        k = c.num_classes if c.conditional else 0
        self.encoder = Trunk(c.arch, c.data_shape, c.hidden, c.width, in_extra=k, act=nn.ReLU)
        self.to_stats = nn.Linear(self.encoder.out_dim + (k if c.arch == "conv" else 0), 2 * c.latent_dim)
        self.decoder = Decoder(c.arch, c.latent_dim + k, c.data_shape, c.hidden, c.width,
                               batch_norm=c.arch == "conv", skip=c.skip)
        self.opt = torch.optim.Adam(self.parameters(), lr=c.lr)

    # q(z | x, y) = N(mu, diag(exp(logvar)))
    def posterior(self, x: torch.Tensor, labels: torch.Tensor | None = None):
        self._require_labels(labels)
        y = one_hot(labels, self.config.num_classes) if self.config.conditional else None
        h = self.encoder(x, y)                              # (B, F)
        if y is not None and self.config.arch == "conv":
            h = torch.cat([h, y], 1)
        mu, logvar = self.to_stats(h).chunk(2, dim=1)       # (B, D) each
        return mu, logvar

    def decode(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Raw decoder output: logits for images, means for points."""
        self._require_labels(labels)
        if self.config.conditional:
            z = torch.cat([z, one_hot(labels, self.config.num_classes)], 1)
        return self.decoder(z)

    def to_data_range(self, out: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(out) if self.config.is_image else out

    def _require_labels(self, labels: torch.Tensor | None) -> None:
        if self.config.conditional and labels is None:
            raise ValueError("a conditional VAE needs labels to encode or decode")

    def reconstruction_nll(self, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if self.config.likelihood == "bernoulli":
            return losses.bernoulli_nll(out, x)
        return losses.gaussian_nll(self.to_data_range(out), x, self.config.sigma)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None):
        """Returns (raw output, mu, logvar) with z drawn by the reparameterisation trick."""
        mu, logvar = self.posterior(x, labels)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        return self.decode(z, labels), mu, logvar

    def training_step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        labels = y if self.config.conditional else None
        out, mu, logvar = self(x, labels)
        recon = self.reconstruction_nll(out, x)
        kl_dim = losses.kl_normal_per_dim(mu, logvar)                     # (B, D)
        kl = kl_dim.sum(1).mean()
        beta = kl_weight(self.config, self.steps)
        kl_term = losses.free_bits_kl(kl_dim, self.config.free_bits) if self.config.free_bits else kl
        loss = recon + beta * kl_term
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        # L2 norm of the whole gradient (encoder and decoder) before the step, a 0-d tensor: no host sync
        norm = torch.nn.utils.get_total_norm([p.grad for p in self.parameters() if p.grad is not None]).detach()
        self.opt.step()
        self.steps += 1
        # 'neg_elbo' = recon + KL whatever beta is: the quantity to compare across runs.
        return {"loss": loss.detach(), "recon": recon.detach(), "kl": kl.detach(),
                "neg_elbo": (recon + kl).detach(), "beta": torch.tensor(beta), "grad_norm": norm}

    @torch.no_grad()
    def encode(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Posterior means mu(x), shape (B, latent_dim)."""
        with eval_mode(self):
            return self.posterior(x.to(self.device), None if labels is None else labels.to(self.device))[0]

    @torch.no_grad()
    def sample(self, n: int, labels: torch.Tensor | None = None, z: torch.Tensor | None = None) -> torch.Tensor:
        """Decoder means for z ~ N(0, I) (or the given z): (n, *data_shape)."""
        z, labels = self._check_sample_args(n, labels, z)
        with eval_mode(self):
            return self.to_data_range(self.decode(z, labels))

    def network_sizes(self) -> dict[str, int]:
        return {"encoder": count_parameters(self.encoder) + count_parameters(self.to_stats),
                "decoder": count_parameters(self.decoder)}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"opt": self.opt}

