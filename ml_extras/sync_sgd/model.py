"""A small MLP classifier for the digits experiment."""

from __future__ import annotations

import torch
from torch import nn


def make_mlp(inputs: int = 64, hidden: int = 32, classes: int = 10, seed: int = 0) -> nn.Module:
    """Two-layer tanh MLP; seeded so every run (async, sync, backup) starts from the same weights."""
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(inputs, hidden), nn.Tanh(), nn.Linear(hidden, classes))
    torch.random.set_rng_state(generator_state)
    return model


@torch.no_grad()
def accuracy(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of correctly classified examples."""
    if len(inputs) != len(labels):
        raise ValueError(f"accuracy: {len(inputs)} inputs but {len(labels)} labels")
    return float((model(inputs).argmax(dim=1) == labels).float().mean())
