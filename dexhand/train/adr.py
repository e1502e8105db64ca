"""Automatic Domain Randomization (OpenAI 2019) over the simulator's randomization groups.

Each group (cube size, friction, forces, observation noise, ...) has its own strength in [0, 1].
Most episodes run every group at its current strength. A ``boundary_probability`` share of episodes
probes one group one step wider; when the mean consecutive successes of a group's last
``buffer_size`` probes reach ``widen_at`` the group widens by ``step``, and when they fall to
``narrow_at`` it narrows. The state is part of the training checkpoint.

Envs share one instance (threaded VecEnv), so methods take a lock.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sim.configio import ConfigError


@dataclass
class AdrConfig:
    enabled: bool = False
    initial_strength: float = 0.0
    boundary_probability: float = 0.5
    buffer_size: int = 8  # probes per decision
    widen_at: float = 2.0  # mean consecutive successes in probes to widen
    narrow_at: float = 0.5  # ... and to narrow
    step: float = 0.1

    def validate(self) -> None:
        if not 0 <= self.initial_strength <= 1:
            raise ConfigError("adr.initial_strength: must be in [0, 1]")
        if not 0 < self.boundary_probability <= 1:
            raise ConfigError("adr.boundary_probability: must be in (0, 1]")
        if self.narrow_at >= self.widen_at:
            raise ConfigError("adr.narrow_at: must be below adr.widen_at")
        if not 0 < self.step <= 1:
            raise ConfigError("adr.step: must be in (0, 1]")


@dataclass
class AutomaticDomainRandomization:
    cfg: AdrConfig
    groups: Sequence[str]
    strengths: dict[str, float] = field(default_factory=dict)
    buffers: dict[str, list[float]] = field(default_factory=dict)
    changes: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        for g in self.groups:
            self.strengths.setdefault(g, self.cfg.initial_strength)
            self.buffers.setdefault(g, [])

    def episode_strengths(self, rng: np.random.Generator) -> dict[str, float]:
        with self._lock:
            chosen = dict(self.strengths)
            if rng.random() < self.cfg.boundary_probability:
                group = self.groups[int(rng.integers(len(self.groups)))]
                chosen[group] = min(1.0, chosen[group] + self.cfg.step)
                if chosen[group] == self.strengths[group]:  # already at full range: probe the edge itself
                    chosen[group] = 1.0
                chosen["__probe__"] = float(self.groups.index(group))
            return chosen

    def report(self, strengths: dict[str, float], consecutive_successes: int) -> None:
        if "__probe__" not in strengths:
            return
        group = self.groups[int(strengths["__probe__"])]
        with self._lock:
            buf = self.buffers[group]
            buf.append(float(consecutive_successes))
            if len(buf) < self.cfg.buffer_size:
                return
            mean = float(np.mean(buf))
            buf.clear()
            if mean >= self.cfg.widen_at and self.strengths[group] < 1.0:
                self.strengths[group] = min(1.0, self.strengths[group] + self.cfg.step)
                self.changes += 1
            elif mean <= self.cfg.narrow_at and self.strengths[group] > 0.0:
                self.strengths[group] = max(0.0, self.strengths[group] - self.cfg.step)
                self.changes += 1

    def mean_strength(self) -> float:
        return float(np.mean(list(self.strengths.values())))

    def state_dict(self) -> dict[str, Any]:
        with self._lock:
            return {"strengths": dict(self.strengths), "buffers": {k: list(v) for k, v in self.buffers.items()},
                    "changes": self.changes}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        with self._lock:
            self.strengths.update(state["strengths"])
            self.buffers = {k: list(v) for k, v in state["buffers"].items()}
            self.changes = int(state["changes"])
