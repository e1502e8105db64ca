"""LSTM with a projection layer (Sak et al. 2014; the LSTM-8192-1024 of Jozefowicz et al.).

The recurrent state h is projected to a smaller size before it is fed back and output, so a wide
cell costs (4 * hidden * (input + proj)) instead of (4 * hidden * (input + hidden)) weights and the
softmax works on the small projection. Training uses torch's fused `nn.LSTM(proj_size=...)`;
`lstmp_reference` writes the same equations out step by step so tests can check them.
"""

from __future__ import annotations

import torch
from torch import nn


class LSTMP(nn.Module):
    """Stacked LSTM with projection, batch-first: [B, T, input] -> [B, T, proj]."""

    def __init__(self, input_dim: int, hidden_dim: int, proj_dim: int, num_layers: int = 1, dropout: float = 0.0):
        super().__init__()
        if not 0 < proj_dim < hidden_dim:
            raise ValueError(f"projection size must be in (0, hidden_dim={hidden_dim}), got {proj_dim}")
        self.lstm = nn.LSTM(input_dim, hidden_dim, num_layers=num_layers, batch_first=True,
                            dropout=dropout if num_layers > 1 else 0.0, proj_size=proj_dim)

    def forward(
        self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        if x.dim() != 3 or x.size(-1) != self.lstm.input_size:
            raise ValueError(f"expected [batch, time, {self.lstm.input_size}], got {tuple(x.shape)}")
        return self.lstm(x, state)


def lstmp_reference(
    lstm: nn.LSTM, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """One-layer LSTMP written out: gates from [x_t, r_{t-1}], c_t, m_t = o * tanh(c_t), r_t = W_proj m_t."""
    if lstm.num_layers != 1 or not lstm.batch_first or lstm.proj_size <= 0:
        raise ValueError("lstmp_reference handles a one-layer, batch-first LSTM with proj_size > 0")
    batch = x.size(0)
    r = x.new_zeros(batch, lstm.proj_size) if state is None else state[0][0]
    c = x.new_zeros(batch, lstm.hidden_size) if state is None else state[1][0]
    outputs = []
    for t in range(x.size(1)):
        gates = x[:, t] @ lstm.weight_ih_l0.T + lstm.bias_ih_l0 + r @ lstm.weight_hh_l0.T + lstm.bias_hh_l0
        i, f, g, o = gates.chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        m = torch.sigmoid(o) * torch.tanh(c)
        r = m @ lstm.weight_hr_l0.T
        outputs.append(r)
    return torch.stack(outputs, dim=1), (r.unsqueeze(0), c.unsqueeze(0))
