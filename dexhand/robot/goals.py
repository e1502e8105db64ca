"""Goal manager logic: sample or accept goal orientations, detect successes, count them.

Dactyl semantics (REFERENCE.md section 1): success when the cube is within ``success_threshold`` rad
of the goal; a new goal follows each success; a drop or ``goal_timeout`` without success ends the
episode and resets the count of consecutive successes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dexhand.robot import quat

GOAL_MODES = ("z", "full")


@dataclass
class GoalConfig:
    mode: str = "z"  # "z": rotations about the vertical; "full": any orientation
    success_threshold: float = 0.4  # rad
    goal_timeout: float = 32.0  # s without success ends the episode (robogym: 400 steps x 0.08 s)
    drop_height: float = -0.06  # m; cube z relative to the hand origin below this is a drop
    seed: int = 0

    def __post_init__(self) -> None:
        if self.mode not in GOAL_MODES:
            raise ValueError(f"goal mode {self.mode!r}: use one of {', '.join(GOAL_MODES)}")
        if not 0 < self.success_threshold < np.pi:
            raise ValueError(f"success_threshold {self.success_threshold}: must be in (0, pi)")
        if self.goal_timeout <= 0:
            raise ValueError(f"goal_timeout {self.goal_timeout}: must be > 0")


class GoalManagerCore:
    """Feed it cube poses; it says what happened and holds the goal and the counts."""

    def __init__(self, config: GoalConfig) -> None:
        self.config = config
        self.rng = np.random.default_rng(config.seed)
        self.goal: np.ndarray | None = None
        self.goal_since = 0.0
        self.consecutive_successes = 0
        self.goals_reached = 0
        self.episode = 0
        self.steps_on_goal = 0
        self.distance = float("nan")

    def sample(self, cube_quat: np.ndarray) -> np.ndarray:
        if self.config.mode == "z":
            return quat.normalize(quat.multiply(quat.about_z(self.rng.uniform(-np.pi, np.pi)), cube_quat))
        return quat.uniform(self.rng)

    def set_goal(self, goal: np.ndarray, now: float) -> None:
        self.goal = quat.normalize(goal)
        self.goal_since = now
        self.steps_on_goal = 0

    def update(self, cube_pos: np.ndarray, cube_quat: np.ndarray, now: float) -> str:
        """One pose: returns the event ('', 'goal_set', 'success', 'drop', 'timeout')."""
        cube_quat = quat.normalize(cube_quat)
        if self.goal is None:
            self.set_goal(self.sample(cube_quat), now)
            self.distance = quat.distance(cube_quat, self.goal)
            return "goal_set"
        self.steps_on_goal += 1
        self.distance = quat.distance(cube_quat, self.goal)
        if float(cube_pos[2]) < self.config.drop_height:
            return self._end_episode("drop", cube_quat, now)
        if self.distance < self.config.success_threshold:
            self.consecutive_successes += 1
            self.goals_reached += 1
            self.set_goal(self.sample(cube_quat), now)
            self.distance = quat.distance(cube_quat, self.goal)
            return "success"
        if now - self.goal_since > self.config.goal_timeout:
            return self._end_episode("timeout", cube_quat, now)
        return ""

    def _end_episode(self, event: str, cube_quat: np.ndarray, now: float) -> str:
        self.consecutive_successes = 0
        self.episode += 1
        self.set_goal(self.sample(cube_quat), now)
        return event
