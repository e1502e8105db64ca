"""The Dactyl task's logic on plain arrays: goals, rotation distance, success, drop, timeout, reward.

Kept free of MuJoCo so it can be tested on constructed states and reused by the ROS goal manager.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dexhand.robot.goals import FACE_ORIENTATIONS, GOAL_MODES, sample_goal  # noqa: F401  (shared with the robot side)
from sim import rotations
from sim.config import TaskConfig


@dataclass
class StepOutcome:
    reward: float
    success: bool
    dropped: bool
    terminated: bool
    truncated: bool
    distance: float


@dataclass
class TaskState:
    """Per-episode counters the task updates every control step."""

    goal: np.ndarray
    previous_distance: float
    consecutive_successes: int = 0
    steps_since_goal: int = 0


def evaluate_step(
    cfg: TaskConfig, state: TaskState, cube_quat: np.ndarray, cube_height_drop: float
) -> StepOutcome:
    """Score one control step and update ``state`` (a new goal is the caller's job on success).

    ``cube_height_drop`` is how far (m) the cube is below its start height.
    """
    distance = float(rotations.distance(cube_quat, state.goal))
    rewards = cfg.rewards
    reward = rewards.rotation_progress * (state.previous_distance - distance)
    state.previous_distance = distance
    state.steps_since_goal += 1
    dropped = cube_height_drop > cfg.drop_height
    success = (not dropped) and distance < cfg.success_threshold
    if success:
        reward += rewards.success_bonus
        state.consecutive_successes += 1
        state.steps_since_goal = 0
    if dropped:
        reward += rewards.drop_penalty
    terminated = dropped or state.consecutive_successes >= cfg.max_consecutive_successes
    truncated = (not terminated) and state.steps_since_goal >= cfg.goal_timeout_steps
    return StepOutcome(reward, success, dropped, terminated, truncated, distance)
