"""Importance-sampled softmax (Jean et al. 2015 / Jozefowicz et al. 2016).

The full softmax needs log Z = log sum_w exp(o_w) over the whole vocabulary. Drawing K words
w_1..w_K from a proposal q (with replacement), Z_hat = (1/K) sum_k exp(o_{w_k}) / q(w_k) is an
unbiased estimate of Z, i.e. Z_hat = sum_k exp(o_{w_k} - log(K q(w_k))). So the "corrected"
logits o_w - log(K q(w)) of the candidates [target, w_1..w_K] in an ordinary cross-entropy give a
loss whose gradient tends to the full-softmax gradient as K grows (the target's own slot vanishes
and accidental hits of the target among the samples stand in for its share of Z; they are kept
for that reason). One sample set is shared by the whole batch, so the output layer costs
O(N K d) instead of O(N V d).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def corrected_logits(logits: torch.Tensor, proposal: torch.Tensor, ids: torch.Tensor, num_samples: int) -> torch.Tensor:
    """o_w - log(K q(w)) for the words `ids` (broadcast against `logits`)."""
    return logits - torch.log(num_samples * proposal[ids])


def importance_partition_estimate(logits: torch.Tensor, proposal: torch.Tensor, samples: torch.Tensor) -> torch.Tensor:
    """Z_hat = (1/K) sum_k exp(o[..., s_k]) / q(s_k) for logits [..., V] and samples [K]; returns [...]."""
    k = samples.numel()
    return corrected_logits(logits[..., samples], proposal, samples, k).exp().sum(dim=-1)


class SampledSoftmax(nn.Module):
    """Output layer with a full-softmax path (evaluation) and a sampled path (training)."""

    def __init__(self, input_dim: int, vocab_size: int, proposal: torch.Tensor, num_samples: int) -> None:
        super().__init__()
        if proposal.shape != (vocab_size,):
            raise ValueError(f"proposal must have shape ({vocab_size},), got {tuple(proposal.shape)}")
        if not 0 < num_samples:
            raise ValueError(f"num_samples must be positive, got {num_samples}")
        if (proposal < 0).any() or abs(float(proposal.sum()) - 1.0) > 1e-4:
            raise ValueError("proposal must be a probability vector (non-negative, summing to 1)")
        self.weight = nn.Parameter(torch.empty(vocab_size, input_dim).uniform_(-0.05, 0.05))
        self.bias = nn.Parameter(torch.zeros(vocab_size))
        self.register_buffer("proposal", proposal.float(), persistent=False)
        self.num_samples = num_samples

    def full_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return F.linear(hidden, self.weight, self.bias)

    def full_loss(self, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Exact per-token cross-entropy [N] (what perplexity is computed from)."""
        return F.cross_entropy(self.full_logits(hidden), targets, reduction="none")

    def draw(self, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.multinomial(self.proposal, self.num_samples, replacement=True, generator=generator)

    def sampled_loss(
        self, hidden: torch.Tensor, targets: torch.Tensor, samples: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Per-token sampled-softmax loss [N]; hidden [N, d], targets [N]. Equals the full loss plus
        log(K q(target)) in the limit of many samples (a constant: same gradients)."""
        if hidden.dim() != 2 or targets.shape != hidden.shape[:1]:
            raise ValueError(f"need hidden [N, d] and targets [N], got {tuple(hidden.shape)}, {tuple(targets.shape)}")
        if samples is None:
            samples = self.draw(generator)
        k = samples.numel()
        if bool((self.proposal[targets] <= 0).any()):
            raise ValueError("a target word has zero probability under the proposal")
        target_logits = (hidden * self.weight[targets]).sum(-1) + self.bias[targets]
        sample_logits = hidden @ self.weight[samples].T + self.bias[samples]
        candidates = torch.cat([
            corrected_logits(target_logits, self.proposal, targets, k).unsqueeze(1),
            corrected_logits(sample_logits, self.proposal, samples, k),
        ], dim=1)
        return -torch.log_softmax(candidates, dim=1)[:, 0]
