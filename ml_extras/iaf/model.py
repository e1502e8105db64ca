"""VAE with a diagonal-Gaussian or IAF posterior; ELBO and importance-weighted (IWAE) bounds.

The encoder returns (mu, log_sigma, h); h is the extra context vector the IAF steps condition
on (paper section 4). Both posteriors share everything except the flow, so comparisons are fair.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ml_extras.iaf.made import IAFFlow

LOG_2PI = math.log(2 * math.pi)


def standard_normal_log_prob(z: Tensor) -> Tensor:
    """log N(z; 0, I) summed over the last dim."""
    return -0.5 * (z.pow(2) + LOG_2PI).sum(-1)


class DiagonalGaussianPosterior(nn.Module):
    """q(z|x) = N(mu, diag sigma^2): the baseline the paper compares IAF against."""

    def forward(self, mu: Tensor, log_sigma: Tensor, context: Tensor | None,
                n_samples: int) -> tuple[Tensor, Tensor]:
        """Return samples (n_samples, B, D) and their log q (n_samples, B)."""
        eps = torch.randn((n_samples, *mu.shape), dtype=mu.dtype, device=mu.device)
        z = mu + log_sigma.exp() * eps
        log_q = -(log_sigma + 0.5 * eps.pow(2) + 0.5 * LOG_2PI).sum(-1)
        return z, log_q


class IAFPosterior(DiagonalGaussianPosterior):
    """Diagonal Gaussian followed by IAF steps: log q(z_T) = log q(z_0) - sum_t log|det J_t|."""

    def __init__(self, latent_dim: int, context_dim: int, n_steps: int = 2,
                 hidden_sizes: list[int] | None = None) -> None:
        super().__init__()
        hidden_sizes = hidden_sizes or [4 * latent_dim, 4 * latent_dim]
        self.flow = IAFFlow(latent_dim, n_steps, hidden_sizes, context_dim)

    def forward(self, mu: Tensor, log_sigma: Tensor, context: Tensor | None,
                n_samples: int) -> tuple[Tensor, Tensor]:
        z0, log_q0 = super().forward(mu, log_sigma, context, n_samples)
        ctx = None if context is None else context.expand(n_samples, *context.shape)
        z, log_det = self.flow(z0, ctx)
        return z, log_q0 - log_det


class MLPEncoder(nn.Module):
    """x (B, in_dim) -> mu, log_sigma (B, D) and context h (B, C)."""

    def __init__(self, in_dim: int, hidden: int, latent_dim: int, context_dim: int) -> None:
        super().__init__()
        self.latent_dim, self.context_dim = latent_dim, context_dim
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.ELU(), nn.Linear(hidden, hidden), nn.ELU(),
                                 nn.Linear(hidden, 2 * latent_dim + context_dim))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        out = self.net(x.flatten(1))
        mu, log_sigma, h = out.split([self.latent_dim, self.latent_dim, self.context_dim], dim=-1)
        return mu, log_sigma.clamp(-8.0, 4.0), h


class MLPDecoder(nn.Module):
    """z (..., D) -> Bernoulli logits (..., out_dim)."""

    def __init__(self, latent_dim: int, hidden: int, out_dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(latent_dim, hidden), nn.ELU(), nn.Linear(hidden, hidden), nn.ELU(),
                                 nn.Linear(hidden, out_dim))

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


class ConvEncoder(nn.Module):
    """Images (B, 3, 64, 64) in [0, 1] -> mu, log_sigma, h; four stride-2 convolutions."""

    def __init__(self, latent_dim: int, context_dim: int, channels: int = 32, size: int = 64) -> None:
        super().__init__()
        if size != 64:
            raise ValueError(f"ConvEncoder is built for 64x64 images, got size {size}")
        self.latent_dim, self.context_dim = latent_dim, context_dim
        c = channels
        self.conv = nn.Sequential(
            nn.Conv2d(3, c, 4, 2, 1), nn.ELU(), nn.Conv2d(c, 2 * c, 4, 2, 1), nn.ELU(),
            nn.Conv2d(2 * c, 2 * c, 4, 2, 1), nn.ELU(), nn.Conv2d(2 * c, 4 * c, 4, 2, 1), nn.ELU(),
        )
        self.head = nn.Linear(4 * c * 4 * 4, 2 * latent_dim + context_dim)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        if x.dim() != 4 or x.shape[1:] != (3, 64, 64):
            raise ValueError(f"ConvEncoder expects (B, 3, 64, 64), got {tuple(x.shape)}")
        out = self.head(self.conv(x).flatten(1))
        mu, log_sigma, h = out.split([self.latent_dim, self.latent_dim, self.context_dim], dim=-1)
        return mu, log_sigma.clamp(-8.0, 4.0), h


class ConvDecoder(nn.Module):
    """z (..., D) -> per-pixel Bernoulli logits (..., 3, 64, 64)."""

    def __init__(self, latent_dim: int, channels: int = 32) -> None:
        super().__init__()
        c = channels
        self.c = c
        self.fc = nn.Linear(latent_dim, 4 * c * 4 * 4)
        self.deconv = nn.Sequential(
            nn.ELU(), nn.ConvTranspose2d(4 * c, 2 * c, 4, 2, 1), nn.ELU(),
            nn.ConvTranspose2d(2 * c, 2 * c, 4, 2, 1), nn.ELU(), nn.ConvTranspose2d(2 * c, c, 4, 2, 1), nn.ELU(),
            nn.ConvTranspose2d(c, 3, 4, 2, 1),
        )

    def forward(self, z: Tensor) -> Tensor:
        lead = z.shape[:-1]
        h = self.fc(z.reshape(-1, z.shape[-1])).view(-1, 4 * self.c, 4, 4)
        return self.deconv(h).view(*lead, 3, 64, 64)


class VAE(nn.Module):
    """VAE with a Bernoulli likelihood, or a Gaussian one of fixed std for continuous pixels.

    ``posterior`` decides diagonal vs IAF. With ``gaussian_std`` set, the decoder's output passes
    through a sigmoid and is the Gaussian mean; a small fixed std makes reconstructions matter
    (Bernoulli cross-entropy on grey renders barely penalizes small pixel errors).
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, posterior: nn.Module,
                 gaussian_std: float | None = None) -> None:
        super().__init__()
        if gaussian_std is not None and gaussian_std <= 0:
            raise ValueError(f"gaussian_std must be positive, got {gaussian_std}")
        self.encoder, self.decoder, self.posterior = encoder, decoder, posterior
        self.gaussian_std = gaussian_std

    def log_weights(self, x: Tensor, n_samples: int = 1, kl_weight: float = 1.0) -> Tensor:
        """log p(x|z) + w * (log p(z) - log q(z|x)) for n_samples z per x: shape (n_samples, B)."""
        mu, log_sigma, h = self.encoder(x)
        z, log_q = self.posterior(mu, log_sigma, h, n_samples)
        logits = self.decoder(z)
        target = x.expand_as(logits)
        if self.gaussian_std is None:
            log_px = -F.binary_cross_entropy_with_logits(logits, target, reduction="none").flatten(2).sum(-1)
        else:
            std = self.gaussian_std
            squared = (torch.sigmoid(logits) - target).pow(2).flatten(2)
            log_px = -(0.5 * squared / std**2 + math.log(std) + 0.5 * LOG_2PI).sum(-1)
        return log_px + kl_weight * (standard_normal_log_prob(z) - log_q)

    def elbo(self, x: Tensor, n_samples: int = 1, kl_weight: float = 1.0) -> Tensor:
        """Per-example ELBO (B,), averaged over n_samples draws."""
        return self.log_weights(x, n_samples, kl_weight).mean(0)

    @torch.no_grad()
    def iwae(self, x: Tensor, k: int = 100, chunk: int = 100) -> Tensor:
        """Importance-weighted bound log (1/k) sum_i w_i (Burda et al.): tighter than the ELBO, -> log p(x)."""
        pieces = [self.log_weights(x, min(chunk, k - start)) for start in range(0, k, chunk)]
        return torch.logsumexp(torch.cat(pieces, 0), 0) - math.log(k)

    @torch.no_grad()
    def reconstruct(self, x: Tensor) -> Tensor:
        """Mean reconstruction (probabilities) from the posterior mean path (one flow pass, no noise)."""
        mu, log_sigma, h = self.encoder(x)
        z = mu
        flow = getattr(self.posterior, "flow", None)
        if flow is not None:
            z, _ = flow(mu, h)
        return torch.sigmoid(self.decoder(z))


def build_vector_vae(in_dim: int, latent_dim: int, posterior: str, hidden: int = 256,
                     context_dim: int = 32, n_flow_steps: int = 2) -> VAE:
    """An MLP VAE for flattened binary images with posterior 'diag' or 'iaf'."""
    return VAE(MLPEncoder(in_dim, hidden, latent_dim, context_dim), MLPDecoder(latent_dim, hidden, in_dim),
               make_posterior(posterior, latent_dim, context_dim, n_flow_steps))


def build_image_vae(latent_dim: int, posterior: str, channels: int = 32, context_dim: int = 32,
                    n_flow_steps: int = 2, gaussian_std: float | None = 0.05) -> VAE:
    """A convolutional VAE for 64x64 RGB renders (Gaussian pixels of std 0.05 by default)."""
    return VAE(ConvEncoder(latent_dim, context_dim, channels), ConvDecoder(latent_dim, channels),
               make_posterior(posterior, latent_dim, context_dim, n_flow_steps), gaussian_std)


def make_posterior(kind: str, latent_dim: int, context_dim: int, n_flow_steps: int) -> nn.Module:
    if kind == "diag":
        return DiagonalGaussianPosterior()
    if kind == "iaf":
        return IAFPosterior(latent_dim, context_dim, n_flow_steps)
    raise ValueError(f"unknown posterior '{kind}': use 'diag' or 'iaf'")
