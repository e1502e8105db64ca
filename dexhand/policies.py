"""What can drive the env in demos and evaluation: anything with ``reset()`` and ``act(obs)``."""

from __future__ import annotations

from typing import Protocol

import numpy as np


class Policy(Protocol):
    def reset(self) -> None: ...

    def act(self, observation: dict[str, np.ndarray]) -> np.ndarray: ...


class RandomSmoothPolicy:
    """Low-pass filtered random actions: a scripted stand-in that keeps the hand moving gently."""

    def __init__(self, n_actions: int = 20, scale: float = 0.3, smoothing: float = 0.8, seed: int = 0) -> None:
        self.n_actions, self.scale, self.smoothing = n_actions, scale, smoothing
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.state = np.zeros(n_actions)

    def seed_episode(self, seed: int) -> None:
        self.rng = np.random.default_rng([self.seed, seed])

    def reset(self) -> None:
        self.state[:] = 0.0

    def act(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        noise = self.rng.uniform(-1.0, 1.0, self.n_actions)
        self.state = self.smoothing * self.state + (1 - self.smoothing) * noise
        return (self.scale * self.state / max(1e-6, 1 - self.smoothing)).clip(-1, 1).astype(np.float32)


class HoldPolicy:
    """Zero relative action: the hand holds its targets (a baseline that never turns the cube)."""

    def __init__(self, n_actions: int = 20) -> None:
        self.n_actions = n_actions

    def reset(self) -> None:
        pass

    def act(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        return np.zeros(self.n_actions, dtype=np.float32)
