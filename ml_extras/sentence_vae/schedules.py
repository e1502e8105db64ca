"""The two tricks Bowman et al. use against posterior collapse: KL-weight annealing and word dropout."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

ANNEALING_KINDS = ("logistic", "linear", "none")


@dataclass(frozen=True)
class KLAnnealing:
    """Weight on the KL term as a function of the training step.

    'logistic' (the paper's choice) rises as a sigmoid centred on `midpoint` with slope
    `steepness`; 'linear' goes 0 -> 1 over [0, 2 * midpoint]; 'none' is the plain ELBO (weight 1
    from step 0), which is what lets the decoder learn to ignore z.
    """

    kind: str = "logistic"
    midpoint: int = 2000
    steepness: float = 0.0025

    def __post_init__(self) -> None:
        if self.kind not in ANNEALING_KINDS:
            raise ValueError(f"unknown annealing kind {self.kind!r}; expected one of {ANNEALING_KINDS}")
        if self.midpoint < 0 or self.steepness <= 0:
            raise ValueError(f"need midpoint >= 0 and steepness > 0, got {self.midpoint}, {self.steepness}")

    def weight(self, step: int) -> float:
        if self.kind == "none":
            return 1.0
        if self.kind == "linear":
            return 1.0 if self.midpoint == 0 else min(1.0, step / (2.0 * self.midpoint))
        return 1.0 / (1.0 + math.exp(-self.steepness * (step - self.midpoint)))


def word_dropout(
    inputs: torch.Tensor,
    rate: float,
    unk_id: int,
    protected_ids: tuple[int, ...] = (),
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Replace each decoder input token by <unk> with probability `rate`.

    Tokens in `protected_ids` (padding, <bos>) are never replaced. Weakening the decoder's view of
    the history forces it to read the sentence from z instead.
    """
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"word dropout rate must be in [0, 1], got {rate}")
    if rate == 0.0:
        return inputs
    drop = torch.rand(inputs.shape, generator=generator, device=inputs.device) < rate
    for token in protected_ids:
        drop &= inputs != token
    return inputs.masked_fill(drop, unk_id)
