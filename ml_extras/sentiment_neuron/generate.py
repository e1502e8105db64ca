"""Sampling bytes from the LM, optionally with one cell-state unit held fixed (the paper's Table 3)."""

from __future__ import annotations

import numpy as np
import torch

from ml_extras.sentiment_neuron.data import SEPARATOR, from_bytes, to_bytes
from ml_extras.sentiment_neuron.model import ByteMLSTM


@torch.no_grad()
def generate(model: ByteMLSTM, prompt: str = "", n_bytes: int = 200, temperature: float = 0.8,
             clamp_unit: int | None = None, clamp_value: float = 0.0, seed: int = 0,
             stop_at_separator: bool = True) -> str:
    """Read ``SEPARATOR + prompt``, then sample ``n_bytes`` bytes at ``temperature``.

    With ``clamp_unit`` the cell state of that unit is overwritten with ``clamp_value`` after every
    step (prompt included), so its influence on all later bytes is held fixed.
    """
    if n_bytes < 0:
        raise ValueError(f"n_bytes must be >= 0, got {n_bytes}")
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if clamp_unit is not None and not 0 <= clamp_unit < model.hidden_size:
        raise ValueError(f"clamp_unit {clamp_unit} is outside [0, {model.hidden_size})")
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    h, c = model.zero_state(1)

    clamp = None if clamp_unit is None else (clamp_unit, float(clamp_value))

    def step(byte: int) -> torch.Tensor:
        nonlocal h, c
        gates_x, mult_x = model.cell.project_inputs(model.embed(torch.tensor([byte])))
        h, c = model.cell.step_projected(gates_x, mult_x, h, c, clamp)
        return model.decoder(h)[0]

    logits = torch.zeros(256)
    for byte in to_bytes(SEPARATOR + prompt):
        logits = step(int(byte))
    sampled: list[int] = []
    for _ in range(n_bytes):
        probs = torch.softmax(logits / temperature, dim=-1)
        byte = int(torch.multinomial(probs, 1, generator=generator))
        if stop_at_separator and byte == ord(SEPARATOR):
            break
        sampled.append(byte)
        logits = step(byte)
    return prompt + from_bytes(np.array(sampled, dtype=np.uint8))
