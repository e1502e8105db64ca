"""MADE (Germain et al. 2015) and the IAF step built on it.

The autoregressive masks are what make the IAF Jacobian triangular, so its log-determinant is a
cheap sum of log gates instead of an O(D^3) determinant.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class MaskedLinear(nn.Linear):
    """A linear layer whose weight is multiplied by a fixed 0/1 mask (shape: out x in)."""

    def __init__(self, in_features: int, out_features: int, mask: Tensor) -> None:
        super().__init__(in_features, out_features)
        if mask.shape != (out_features, in_features):
            raise ValueError(f"mask shape {tuple(mask.shape)} != (out, in) = {(out_features, in_features)}")
        self.register_buffer("mask", mask.float())

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


def hidden_degrees(dim: int, width: int) -> Tensor:
    """Degrees 1..dim-1 cycled over a hidden layer so every degree is present (deterministic)."""
    return torch.arange(width) % max(1, dim - 1) + 1


class MADE(nn.Module):
    """Masked MLP: output i sees only inputs earlier than i in ``order`` (and all of ``context``).

    ``order`` is a permutation of 1..dim giving each input's position; outputs are returned as
    ``n_heads`` tensors shaped like the input (for IAF: a shift and a gate pre-activation).
    """

    def __init__(self, dim: int, hidden_sizes: list[int], context_dim: int = 0,
                 order: Tensor | None = None, n_heads: int = 2) -> None:
        super().__init__()
        if dim < 1 or not hidden_sizes:
            raise ValueError("MADE needs dim >= 1 and at least one hidden layer")
        order = torch.arange(1, dim + 1) if order is None else torch.as_tensor(order)
        if sorted(order.tolist()) != list(range(1, dim + 1)):
            raise ValueError(f"order must be a permutation of 1..{dim}, got {order.tolist()}")
        self.dim = dim
        self.register_buffer("order", order.clone())
        layers = []
        previous = order
        for width in hidden_sizes:
            degrees = hidden_degrees(dim, width)
            mask = (degrees[:, None] >= previous[None, :]).float()
            layers.append(MaskedLinear(len(previous), width, mask))
            previous = degrees
        self.hidden_layers = nn.ModuleList(layers)
        self.context_layer = nn.Linear(context_dim, hidden_sizes[0]) if context_dim > 0 else None
        out_mask = (order[:, None] > previous[None, :]).float()
        self.heads = nn.ModuleList(MaskedLinear(len(previous), dim, out_mask) for _ in range(n_heads))

    def forward(self, z: Tensor, context: Tensor | None = None) -> list[Tensor]:
        if z.shape[-1] != self.dim:
            raise ValueError(f"MADE expects last dim {self.dim}, got shape {tuple(z.shape)}")
        h = self.hidden_layers[0](z)
        if self.context_layer is not None:
            if context is None:
                raise ValueError("this MADE was built with a context but none was given")
            h = h + self.context_layer(context)
        h = F.elu(h)
        for layer in self.hidden_layers[1:]:
            h = F.elu(layer(h))
        return [head(h) for head in self.heads]


class IAFStep(nn.Module):
    """One gated IAF step (Kingma et al. 2016, eq. 11-14): z' = g * z + (1 - g) * m.

    g = sigmoid(s + forget_bias) with (m, s) from a MADE, so dz'_i/dz_j = 0 for j later than i and
    log|det J| = sum log g. The positive forget bias starts the step close to the identity.
    """

    def __init__(self, dim: int, hidden_sizes: list[int], context_dim: int = 0,
                 order: Tensor | None = None, forget_bias: float = 1.0) -> None:
        super().__init__()
        self.made = MADE(dim, hidden_sizes, context_dim, order, n_heads=2)
        self.forget_bias = forget_bias
        for head in self.made.heads:  # start near the identity map
            nn.init.normal_(head.weight, std=1e-3)
            nn.init.zeros_(head.bias)

    def forward(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        shift, gate_logit = self.made(z, context)
        gate_logit = gate_logit + self.forget_bias
        gate = torch.sigmoid(gate_logit)
        z_new = gate * z + (1.0 - gate) * shift
        return z_new, F.logsigmoid(gate_logit).sum(-1)


class IAFFlow(nn.Module):
    """A stack of IAF steps; the variable order is reversed between steps so all dims mix."""

    def __init__(self, dim: int, n_steps: int, hidden_sizes: list[int], context_dim: int = 0,
                 forget_bias: float = 1.0) -> None:
        super().__init__()
        forward_order = torch.arange(1, dim + 1)
        self.steps = nn.ModuleList(
            IAFStep(dim, hidden_sizes, context_dim,
                    forward_order if t % 2 == 0 else forward_order.flip(0), forget_bias)
            for t in range(n_steps)
        )

    def forward(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Return the transformed z and the summed log|det dz_T/dz_0| (shape z.shape[:-1])."""
        total = z.new_zeros(z.shape[:-1])
        for step in self.steps:
            z, log_det = step(z, context)
            total = total + log_det
        return z, total
