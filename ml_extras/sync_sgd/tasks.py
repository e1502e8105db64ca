"""Picklable building blocks for workers: batch samplers, losses, straggler delays, faults.

Workers are spawned processes, so whatever they run must pickle: module-level functions and
small dataclasses, never lambdas.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F


@dataclass
class ArrayBatches:
    """Minibatches from in-memory tensors; worker ``rank`` at its ``iteration``-th gradient gets
    a batch drawn without replacement with a seed made of (seed, rank, iteration), so a run
    (and a test replaying it) is reproducible whatever the arrival order."""

    inputs: torch.Tensor
    targets: torch.Tensor
    batch_size: int
    seed: int = 0

    def __post_init__(self) -> None:
        if len(self.inputs) != len(self.targets):
            raise ValueError(f"ArrayBatches: {len(self.inputs)} inputs but {len(self.targets)} targets")
        if not 1 <= self.batch_size <= len(self.inputs):
            raise ValueError(f"ArrayBatches: batch_size must be in [1, {len(self.inputs)}], got {self.batch_size}")

    def __call__(self, rank: int, iteration: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, rank, iteration])
        index = torch.from_numpy(rng.choice(len(self.inputs), self.batch_size, replace=False))
        return self.inputs[index], self.targets[index]


def cross_entropy_loss(model: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Mean cross-entropy of a classifier on an (inputs, labels) batch."""
    inputs, labels = batch
    return F.cross_entropy(model(inputs), labels)


def mse_loss(model: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Mean squared error of a regressor on an (inputs, targets) batch."""
    inputs, targets = batch
    return F.mse_loss(model(inputs), targets)


@dataclass
class HeavyTailedDelay:
    """Simulated straggling: ``base + scale * Lomax(alpha)`` seconds, capped, seeded per
    (seed, rank, iteration). alpha = 1.5 gives mean base + 2 scale and a long tail."""

    base: float = 0.01
    scale: float = 0.01
    alpha: float = 1.5
    cap: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.base < 0 or self.scale < 0 or self.alpha <= 0 or self.cap < 0:
            raise ValueError("HeavyTailedDelay: base, scale, cap must be >= 0 and alpha > 0")

    def __call__(self, rank: int, iteration: int) -> float:
        if self.scale == 0:
            return self.base
        draw = np.random.default_rng([self.seed, rank, iteration, 7]).pareto(self.alpha)
        return self.base + min(self.cap, self.scale * float(draw))


@dataclass
class Faults:
    """Injected failures for tests and demos: constant slowness per rank, a stall (long sleep)
    or a hard kill (SIGKILL, no clean-up) when a rank reaches an iteration."""

    slow: dict[int, float] = field(default_factory=dict)
    stall_at: dict[int, int] = field(default_factory=dict)
    stall_seconds: float = 3600.0
    kill_at: dict[int, int] = field(default_factory=dict)

    def __call__(self, rank: int, iteration: int) -> float:
        if rank in self.kill_at and iteration >= self.kill_at[rank]:
            os.kill(os.getpid(), signal.SIGKILL)
        if rank in self.stall_at and iteration >= self.stall_at[rank]:
            return self.stall_seconds
        return self.slow.get(rank, 0.0)
