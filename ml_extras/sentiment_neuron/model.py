"""Byte-level multiplicative LSTM (Krause et al. 2016) as used by Radford et al. 2017.

The mLSTM replaces the LSTM's recurrent input ``h_{t-1}`` with an input-dependent
"multiplicative" state ``m_t = (W_mx x_t) * (W_mh h_{t-1})``, so every byte picks its own
recurrent transition; Radford et al. found one of its units tracks sentiment.

Equations (gate order in the packed weights: input, forget, output, candidate)::

    m_t = (x_t @ W_mx) * (h_{t-1} @ W_mh)
    z_t = x_t @ W_x + m_t @ W_m + b          # 4H pre-activations
    i, f, o = sigmoid(z_i), sigmoid(z_f), sigmoid(z_o);  u = tanh(z_u)
    c_t = f * c_{t-1} + i * u
    h_t = o * tanh(c_t)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

N_BYTES = 256


@dataclass
class MLSTMConfig:
    """Sizes of the byte model; ``hidden_size`` is the number of candidate 'neurons'."""

    hidden_size: int = 256
    embed_size: int = 64


class MultiplicativeLSTMCell(nn.Module):
    """One mLSTM step; input projections can be precomputed for a whole sequence (faster on CPU)."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        if input_size <= 0 or hidden_size <= 0:
            raise ValueError(f"sizes must be positive, got input_size={input_size}, hidden_size={hidden_size}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        h = hidden_size
        self.w_x = nn.Parameter(torch.empty(input_size, 4 * h))
        self.w_mx = nn.Parameter(torch.empty(input_size, h))
        self.w_mh = nn.Parameter(torch.empty(h, h))
        self.w_m = nn.Parameter(torch.empty(h, 4 * h))
        self.bias = nn.Parameter(torch.zeros(4 * h))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Orthogonal recurrent weights keep early gradients sane; forget bias 1 helps memory."""
        nn.init.normal_(self.w_x, std=1.0 / math.sqrt(self.input_size))
        nn.init.normal_(self.w_mx, std=1.0 / math.sqrt(self.input_size))
        nn.init.orthogonal_(self.w_mh)
        nn.init.normal_(self.w_m, std=1.0 / math.sqrt(self.hidden_size))
        with torch.no_grad():
            self.bias.zero_()
            self.bias[self.hidden_size:2 * self.hidden_size] = 1.0

    def project_inputs(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Input-only parts of a step for any leading shape: (x @ W_x + b, x @ W_mx)."""
        if x.shape[-1] != self.input_size:
            raise ValueError(f"input has {x.shape[-1]} features, the cell expects {self.input_size}")
        return x @ self.w_x + self.bias, x @ self.w_mx

    def step_projected(self, gates_x: Tensor, mult_x: Tensor, h: Tensor, c: Tensor,
                       clamp: tuple[int, float] | None = None) -> tuple[Tensor, Tensor]:
        """One step from precomputed input projections; returns the new (h, c).

        ``clamp=(unit, value)`` overwrites that unit of the new cell state before h is computed,
        which is how the paper steers generation with the sentiment unit.
        """
        m = mult_x * (h @ self.w_mh)
        z = torch.addmm(gates_x, m, self.w_m)
        hs = self.hidden_size
        gates = torch.sigmoid(z[:, : 3 * hs])  # one call for i, f, o: fewer small CPU kernels
        i, f, o = gates[:, :hs], gates[:, hs:2 * hs], gates[:, 2 * hs:]
        c_new = f * c + i * torch.tanh(z[:, 3 * hs:])
        if clamp is not None:
            c_new = c_new.clone()
            c_new[:, clamp[0]] = clamp[1]
        h_new = o * torch.tanh(c_new)
        return h_new, c_new

    def forward(self, x: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        """One step from a raw input x of shape (batch, input_size)."""
        h, c = state
        if x.dim() != 2 or h.shape != (x.shape[0], self.hidden_size) or c.shape != h.shape:
            raise ValueError(
                f"expected x (B, {self.input_size}) and h, c (B, {self.hidden_size}); got x {tuple(x.shape)}, "
                f"h {tuple(h.shape)}, c {tuple(c.shape)}"
            )
        gates_x, mult_x = self.project_inputs(x)
        return self.step_projected(gates_x, mult_x, h, c)


class ByteMLSTM(nn.Module):
    """Byte embedding -> mLSTM -> next-byte logits; also exposes the final state as text features."""

    def __init__(self, config: MLSTMConfig | None = None) -> None:
        super().__init__()
        self.config = config or MLSTMConfig()
        self.embed = nn.Embedding(N_BYTES, self.config.embed_size)
        self.cell = MultiplicativeLSTMCell(self.config.embed_size, self.config.hidden_size)
        self.decoder = nn.Linear(self.config.hidden_size, N_BYTES)

    @property
    def hidden_size(self) -> int:
        return self.config.hidden_size

    def zero_state(self, batch: int) -> tuple[Tensor, Tensor]:
        device = self.decoder.weight.device
        zeros = torch.zeros(batch, self.hidden_size, device=device)
        return zeros, zeros.clone()

    def run(
        self,
        tokens: Tensor,
        lengths: Tensor | None = None,
        state: tuple[Tensor, Tensor] | None = None,
        keep_outputs: bool = True,
    ) -> tuple[Tensor | None, tuple[Tensor, Tensor]]:
        """Read byte sequences (B, T); return per-step hidden states (B, T, H) and the final (h, c).

        With ``lengths`` the state stops updating after each row's last real byte, so right-padded
        batches give the same final state as reading each row alone.
        """
        if tokens.dim() != 2:
            raise ValueError(f"tokens must be (batch, time), got shape {tuple(tokens.shape)}")
        if tokens.dtype not in (torch.int64, torch.int32, torch.uint8):
            raise ValueError(f"tokens must be integer bytes, got dtype {tokens.dtype}")
        batch, steps = tokens.shape
        if lengths is not None:
            if lengths.shape != (batch,):
                raise ValueError(f"lengths must have shape ({batch},), got {tuple(lengths.shape)}")
            if int(lengths.min()) < 1 or int(lengths.max()) > steps:
                raise ValueError(f"lengths must lie in [1, {steps}]")
        h, c = state if state is not None else self.zero_state(batch)
        # time-major and contiguous: each step then reads one dense (B, .) block
        gates_x, mult_x = self.cell.project_inputs(self.embed(tokens.long().t()))
        outputs: list[Tensor] = []
        for t in range(steps):
            h_new, c_new = self.cell.step_projected(gates_x[t], mult_x[t], h, c)
            if lengths is not None:
                alive = (lengths > t).unsqueeze(1)
                h_new = torch.where(alive, h_new, h)
                c_new = torch.where(alive, c_new, c)
            h, c = h_new, c_new
            if keep_outputs:
                outputs.append(h)
        hidden = torch.stack(outputs, dim=1) if keep_outputs else None
        return hidden, (h, c)

    def forward(self, tokens: Tensor) -> Tensor:
        """Next-byte logits (B, T, 256) for a batch of byte sequences read from a zero state."""
        hidden, _ = self.run(tokens)
        assert hidden is not None
        return self.decoder(hidden)

    def loss(self, window: Tensor) -> Tensor:
        """Mean next-byte cross-entropy (nats) over windows of shape (B, T+1)."""
        if window.dim() != 2 or window.shape[1] < 2:
            raise ValueError(f"windows must be (batch, T+1) with T >= 1, got shape {tuple(window.shape)}")
        logits = self(window[:, :-1])
        return nn.functional.cross_entropy(logits.reshape(-1, N_BYTES), window[:, 1:].reshape(-1).long())
