"""Goal curriculum: z rotations, then the 24 face-aligned goals, then any orientation.

The stage advances when the mean consecutive successes over the last ``window`` finished episodes
reach ``advance_at``. Randomization strength follows ``strength_per_stage`` unless ADR owns it;
``goal_angle_per_stage`` (rad) can start with goals near the cube, so that successes, and with them
the +5 bonus, come early in training, and widen them to Dactyl's full range (pi).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from sim.config import GOAL_ANGLE_LIMIT
from sim.configio import ConfigError
from sim.task import GOAL_MODES


@dataclass
class CurriculumConfig:
    enabled: bool = True
    stages: list[str] = field(default_factory=lambda: ["z", "faces", "full"])
    strength_per_stage: list[float] = field(default_factory=lambda: [0.0, 0.5, 1.0])
    advance_at: float = 5.0
    window: int = 100
    goal_angle_per_stage: list[float] | None = None  # rad per stage; None: pi (the full task) throughout

    def validate(self) -> None:
        bad = [s for s in self.stages if s not in GOAL_MODES]
        if bad or not self.stages:
            raise ConfigError(f"curriculum.stages: {bad or 'empty'} (use {list(GOAL_MODES)})")
        if len(self.strength_per_stage) != len(self.stages):
            raise ConfigError("curriculum.strength_per_stage: needs one value per stage")
        if any(not 0 <= s <= 1 for s in self.strength_per_stage):
            raise ConfigError("curriculum.strength_per_stage: values must be in [0, 1]")
        if self.goal_angle_per_stage is not None:
            if len(self.goal_angle_per_stage) != len(self.stages):
                raise ConfigError("curriculum.goal_angle_per_stage: needs one value per stage")
            if any(not 0 < a <= GOAL_ANGLE_LIMIT for a in self.goal_angle_per_stage):
                raise ConfigError("curriculum.goal_angle_per_stage: values must be in (0, pi] rad")


class GoalCurriculum:
    def __init__(self, cfg: CurriculumConfig) -> None:
        self.cfg = cfg
        self.stage = 0
        self.recent: deque[float] = deque(maxlen=cfg.window)

    @property
    def goal_mode(self) -> str:
        return self.cfg.stages[self.stage]

    @property
    def strength(self) -> float:
        return self.cfg.strength_per_stage[self.stage]

    @property
    def goal_max_angle(self) -> float:
        angles = self.cfg.goal_angle_per_stage
        return math.pi if angles is None else min(float(angles[self.stage]), math.pi)

    def record(self, consecutive_successes: float) -> bool:
        """Add a finished episode; True when this moved to the next stage."""
        self.recent.append(consecutive_successes)
        full = len(self.recent) == self.recent.maxlen
        if full and self.stage < len(self.cfg.stages) - 1 and sum(self.recent) / len(self.recent) >= self.cfg.advance_at:
            self.stage += 1
            self.recent.clear()
            return True
        return False

    def state_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "recent": list(self.recent)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.stage = min(int(state["stage"]), len(self.cfg.stages) - 1)  # a config may have fewer stages now
        self.recent = deque(state["recent"], maxlen=self.cfg.window)
