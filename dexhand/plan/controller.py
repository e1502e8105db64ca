"""The planner as a controller of the env: the ``Policy`` protocol (reset / act), bound to one env.

Privileged: it reads the env's randomized model, exact state and goal. Its action is the env's own
relative action, so ``env.step`` applies latency, backlash and the target limit as for any policy.
"""

from __future__ import annotations

import numpy as np

from dexhand.plan.config import PlannerConfig
from dexhand.plan.cost import CostContext
from dexhand.plan.planner import SamplingPlanner


class MpcController:
    """``act(obs)`` plans from the env's current state and returns the first step as an action."""

    def __init__(self, env, cfg: PlannerConfig | None = None) -> None:
        self.env = env.unwrapped
        self.cfg = cfg or PlannerConfig()
        self.planner = SamplingPlanner(self.cfg)
        self._bound_episode = None
        self.seconds: list[float] = []

    def reset(self) -> None:
        """Call after ``env.reset``: the episode's randomized model is copied for planning."""
        env = self.env
        self.planner.bind(env.model, env.cfg.scene.substeps, env.ctrl_low, env.ctrl_high, env.action_step,
                          env._target.copy())
        self.cube_rest = env.cube_pos

    def act(self, observation=None) -> np.ndarray:
        env = self.env
        ctx = CostContext(goal=env._task.goal.copy(), cube_rest=self.cube_rest)
        plan = self.planner.plan(env.model, env.data, env._target, ctx, env.ids.cube_qpos, env.ids.cube_qvel)
        self.seconds.append(self.planner.last_stats.seconds)
        action = (plan[0] - env._target) / env.action_step
        self.planner.shift()
        return np.clip(action, -1.0, 1.0).astype(np.float32)

    def close(self) -> None:
        self.planner.close()
