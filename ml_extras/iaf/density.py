"""Fit q to a 2-D unnormalized density by reverse KL (the paper's motivation, in miniature).

KL(q || p) = E_q[log q(z) - log p~(z)] + log Z. log Z is computed on a grid (it is 2-D), so the
reported KL is the true divergence up to Monte Carlo and grid error, comparable across models.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from ml_extras.iaf.made import IAFFlow
from ml_extras.iaf.model import LOG_2PI

LogDensity = Callable[[Tensor], Tensor]


def log_banana(z: Tensor) -> Tensor:
    """A curved, strongly non-Gaussian unimodal density (normalizable)."""
    z1, z2 = z[..., 0], z[..., 1]
    return -0.5 * (z1 / 1.5).pow(2) - 0.5 * ((z2 - 0.5 * z1.pow(2) + 1.0) / 0.35).pow(2)


def log_ring(z: Tensor) -> Tensor:
    """Rezende & Mohamed's U1: a ring with two lobes at z1 = +-2."""
    z1 = z[..., 0]
    radius = z.norm(dim=-1)
    lobes = torch.logaddexp(-0.5 * ((z1 - 2.0) / 0.6).pow(2), -0.5 * ((z1 + 2.0) / 0.6).pow(2))
    return -0.5 * ((radius - 2.0) / 0.4).pow(2) + lobes


TARGETS: dict[str, LogDensity] = {"banana": log_banana, "ring": log_ring}


def log_normalizer(log_density: LogDensity, limit: float = 8.0, n: int = 801) -> float:
    """log of the integral of exp(log_density) over [-limit, limit]^2 by the midpoint rule."""
    axis = torch.linspace(-limit, limit, n, dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(axis, axis, indexing="ij"), -1)
    cell = (axis[1] - axis[0]).item() ** 2
    return (torch.logsumexp(log_density(grid).flatten(), 0) + math.log(cell)).item()


class FlowDensity(nn.Module):
    """A learnable diagonal Gaussian, optionally followed by unconditional IAF steps."""

    def __init__(self, dim: int = 2, n_steps: int = 0, hidden: int = 32) -> None:
        super().__init__()
        self.dim = dim
        self.mean = nn.Parameter(torch.zeros(dim))
        self.log_sigma = nn.Parameter(torch.zeros(dim))
        self.flow = IAFFlow(dim, n_steps, [hidden, hidden]) if n_steps > 0 else None

    def sample(self, n: int) -> tuple[Tensor, Tensor]:
        """Samples (n, dim) and their exact log q (n,)."""
        eps = torch.randn(n, self.dim)
        z = self.mean + self.log_sigma.exp() * eps
        log_q = -(self.log_sigma + 0.5 * eps.pow(2) + 0.5 * LOG_2PI).sum(-1)
        if self.flow is not None:
            z, log_det = self.flow(z)
            log_q = log_q - log_det
        return z, log_q


def fit_reverse_kl(model: FlowDensity, log_density: LogDensity, steps: int, batch: int = 256,
                   lr: float = 3e-3) -> list[float]:
    """Minimize E_q[log q - log p~] with reparameterized samples; returns the loss history."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    history = []
    for _ in range(steps):
        z, log_q = model.sample(batch)
        loss = (log_q - log_density(z)).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        history.append(loss.item())
    return history


@torch.no_grad()
def kl_to_target(model: FlowDensity, log_density: LogDensity, log_z: float, n: int = 20000) -> float:
    """Monte Carlo KL(q || p) in nats, using the grid log-normalizer."""
    z, log_q = model.sample(n)
    return ((log_q - log_density(z)).mean() + log_z).item()
