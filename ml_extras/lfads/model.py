"""LFADS: a sequential VAE that explains each trial by an initial condition and inferred inputs.

x_{1:T} -> bidirectional GRU -> q(g0 | x); x_{1:T} -> bidirectional GRU -> per-step encodings e_t.
Controller GRU c_t = GRU([e_t, f_{t-1}], c_{t-1}) -> q(u_t | x); generator g_t = GRU(u_t, g_{t-1});
factors f_t = W_f g_t (low-dimensional, no bias); log rates = W_r f_t + b (Poisson) or means
(Gaussian, for continuous signals such as joint states). Priors: g0 ~ N(0, I),
u_t ~ N(0, input_prior_var I) (the paper uses an autoregressive prior; this keeps it i.i.d.).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass
class LFADSConfig:
    n_channels: int
    encoder_size: int = 64
    controller_encoder_size: int = 32
    controller_size: int = 32
    generator_size: int = 64
    factor_size: int = 8
    inferred_input_size: int = 1
    input_prior_var: float = 0.1
    dropout: float = 0.05
    likelihood: str = "poisson"  # or "gaussian"


def gaussian_kl(mean: Tensor, log_var: Tensor, prior_var: float) -> Tensor:
    """KL(N(mean, exp(log_var)) || N(0, prior_var)) summed over the last dim."""
    return 0.5 * (log_var.exp() / prior_var + mean.pow(2) / prior_var - 1.0
                  + math.log(prior_var) - log_var).sum(-1)


class LFADS(nn.Module):
    """The LFADS sequential VAE. Input (B, T, C); see module docstring for the graph."""

    def __init__(self, config: LFADSConfig) -> None:
        super().__init__()
        if config.likelihood not in ("poisson", "gaussian"):
            raise ValueError(f"likelihood must be 'poisson' or 'gaussian', got {config.likelihood!r}")
        self.config = c = config
        self.dropout = nn.Dropout(c.dropout)
        self.ic_encoder = nn.GRU(c.n_channels, c.encoder_size, batch_first=True, bidirectional=True)
        self.ic_posterior = nn.Linear(2 * c.encoder_size, 2 * c.generator_size)
        self.uses_controller = c.inferred_input_size > 0
        if self.uses_controller:
            self.ci_encoder = nn.GRU(c.n_channels, c.controller_encoder_size, batch_first=True, bidirectional=True)
            self.controller = nn.GRUCell(2 * c.controller_encoder_size + c.factor_size, c.controller_size)
            self.input_posterior = nn.Linear(c.controller_size, 2 * c.inferred_input_size)
        self.generator = nn.GRUCell(max(1, c.inferred_input_size), c.generator_size)
        self.to_factors = nn.Linear(c.generator_size, c.factor_size, bias=False)
        self.readout = nn.Linear(c.factor_size, c.n_channels)
        if c.likelihood == "gaussian":
            self.log_var = nn.Parameter(torch.zeros(c.n_channels))

    def forward(self, x: Tensor, sample: bool = True) -> dict[str, Tensor]:
        """Run the model; sample=False uses posterior means (for inferring rates)."""
        c = self.config
        if x.dim() != 3 or x.shape[-1] != c.n_channels:
            raise ValueError(f"LFADS expects (batch, time, {c.n_channels}), got {tuple(x.shape)}")
        batch, steps, _ = x.shape
        x_in = self.dropout(x)
        _, ic_last = self.ic_encoder(x_in)  # (2, B, H): final forward and backward states
        ic_mean, ic_log_var = self.ic_posterior(self.dropout(torch.cat([ic_last[0], ic_last[1]], -1))).chunk(2, -1)
        g = ic_mean + (0.5 * ic_log_var).exp() * torch.randn_like(ic_mean) if sample else ic_mean
        kl = gaussian_kl(ic_mean, ic_log_var, 1.0)
        factor = self.to_factors(self.dropout(g))
        if self.uses_controller:
            ci_seq, _ = self.ci_encoder(x_in)
            ci_seq = self.dropout(ci_seq)
            controller_state = x.new_zeros(batch, c.controller_size)
            u_noise = torch.randn(batch, steps, c.inferred_input_size) if sample else None
        u = x.new_zeros(batch, 1)
        factors, input_params = [], []
        for t in range(steps):  # kept to the essential ops: this loop dominates the run time
            if self.uses_controller:
                controller_state = self.controller(torch.cat([ci_seq[:, t], factor], -1), controller_state)
                params = self.input_posterior(controller_state)
                input_params.append(params)
                u_mean, u_log_var = params.chunk(2, -1)
                u = u_mean + (0.5 * u_log_var).exp() * u_noise[:, t] if sample else u_mean
            g = self.generator(u, g)
            factor = self.to_factors(self.dropout(g))
            factors.append(factor)
        factor_seq = torch.stack(factors, 1)
        out = {"factors": factor_seq, "output": self.readout(factor_seq)}
        if input_params:
            u_mean, u_log_var = torch.stack(input_params, 1).chunk(2, -1)
            kl = kl + gaussian_kl(u_mean, u_log_var, c.input_prior_var).sum(1)
            out["inputs"] = u_mean
        out["kl"] = kl
        return out

    @torch.no_grad()
    def init_readout_from_data(self, x: Tensor) -> None:
        """Start the readout bias at each channel's mean (log mean count for Poisson).

        Without it the first hundreds of steps only learn the mean firing rates.
        """
        mean = x.reshape(-1, x.shape[-1]).mean(0)
        self.readout.bias.copy_(mean.clamp(min=1e-3).log() if self.config.likelihood == "poisson" else mean)

    def reconstruction_nll(self, x: Tensor, output: Tensor) -> Tensor:
        """Negative log-likelihood per trial (B,)."""
        if self.config.likelihood == "poisson":
            return F.poisson_nll_loss(output, x, log_input=True, full=False, reduction="none").sum((1, 2))
        var = self.log_var.exp()
        return 0.5 * ((x - output).pow(2) / var + self.log_var + math.log(2 * math.pi)).sum((1, 2))

    def loss(self, x: Tensor, kl_weight: float = 1.0, l2_weight: float = 0.0) -> tuple[Tensor, dict[str, float]]:
        """Mean over trials of NLL + kl_weight * KL (+ L2 on the generator's recurrent weights)."""
        out = self(x)
        nll = self.reconstruction_nll(x, out["output"]).mean()
        kl = out["kl"].mean()
        l2 = self.generator.weight_hh.pow(2).sum()
        total = nll + kl_weight * kl + l2_weight * l2
        return total, {"nll": nll.item(), "kl": kl.item()}

    @torch.no_grad()
    def infer_rates(self, x: Tensor, bin_s: float, batch_size: int = 256) -> Tensor:
        """Posterior-mean firing rates in Hz (Poisson) or denoised signals (Gaussian), shape of x."""
        was_training = self.training
        self.eval()
        pieces = [self(x[s:s + batch_size], sample=False)["output"] for s in range(0, len(x), batch_size)]
        self.train(was_training)
        out = torch.cat(pieces)
        return out.exp() / bin_s if self.config.likelihood == "poisson" else out
