"""The planner as a controller of the env: the ``Policy`` protocol (reset / act), bound to one env.

Privileged: it reads the env's randomized model, exact state and goal. Its action is the env's own
relative action, so ``env.step`` applies latency, backlash and the target limit as for any policy.
"""

from __future__ import annotations

import numpy as np

from dexhand.plan.config import PlannerConfig
from dexhand.plan.cost import CostContext
from dexhand.plan.planner import SamplingPlanner
from sim import rotations


class MpcController:
    """``act(obs)`` plans from the env's current state and returns the first step as an action.

    Give it the env now or later (``bind_env``): evaluation and demos make their env themselves.
    """

    def __init__(self, cfg: PlannerConfig | None = None, env=None) -> None:
        self.cfg = cfg or PlannerConfig()
        self.planner = SamplingPlanner(self.cfg)
        self.env = None
        self.seconds: list[float] = []  # planning time of every control step
        self.last_plan: np.ndarray | None = None  # (horizon, nu) targets chosen at the last step
        self.label: np.ndarray | None = None  # the cost-weighted action at the last step (distillation)
        if env is not None:
            self.bind_env(env)

    def bind_env(self, env) -> None:
        self.env = env.unwrapped

    def seed_episode(self, seed: int) -> None:
        """The search noise of an episode follows from the planner's seed and the episode's."""
        self.planner.rng = np.random.default_rng([self.cfg.seed, seed])

    def reset(self) -> None:
        """Call after ``env.reset``: the episode's randomized model is copied for planning."""
        env = self.env
        if env is None:
            raise RuntimeError("MpcController: bind_env(env) before reset()")
        self.planner.bind(env.model, env.cfg.scene.substeps, env.ctrl_low, env.ctrl_high, env.action_step,
                          env.current_target, latency_steps=0.5 * env.action_perturbation.latency_fraction)
        self.cube_rest = env.cube_pos
        self._goal_best = (None, np.inf, 0)  # (goal, best distance so far, steps since it improved)

    def act(self, observation=None) -> np.ndarray:
        env = self.env
        target = env.current_target
        if self.cfg.warm_start == "momentum":
            self.planner.continue_action(target, env.previous_action * env.action_step)
        ctx = CostContext(goal=env.goal, cube_rest=self.cube_rest, success_threshold=env.cfg.task.success_threshold)
        self._last_search = (self.planner.nominal.copy(), self._goal_best, target, ctx)
        plan = self.planner.plan(env.model, env.data, target, ctx, env.ids.cube_qpos, env.ids.cube_qvel,
                                 noise_scale=self._noise_scale(ctx.goal, env.cube_quat))
        self.seconds.append(self.planner.last_stats.seconds)
        self.last_plan = plan
        self.label = self._relative(self.planner.label_plan[0], target)
        self.planner.shift()
        return self._relative(plan[0], target)

    def resolve_label_plans(self, n: int) -> list[np.ndarray]:
        """``n`` more independent searches from the state and warm start of the last ``act`` (fresh noise),
        each one's cost-weighted plan: averaged with ``planner.label_plan`` they are a less noisy label.
        The controller's own state (its plan for the next step) is left as ``act`` left it."""
        env, planner = self.env, self.planner
        warm, goal_best, target, ctx = self._last_search
        after = (planner.nominal, self._goal_best, planner.label_plan, planner.last_stats)
        plans = []
        for _ in range(n):
            planner.nominal, self._goal_best = warm.copy(), goal_best
            planner.plan(env.model, env.data, target, ctx, env.ids.cube_qpos, env.ids.cube_qvel,
                         noise_scale=self._noise_scale(ctx.goal, env.cube_quat))
            plans.append(planner.label_plan.copy())
        planner.nominal, self._goal_best, planner.label_plan, planner.last_stats = after
        return plans

    def _relative(self, first_target: np.ndarray, target: np.ndarray) -> np.ndarray:
        return np.clip((first_target - target) / self.env.action_step, -1.0, 1.0).astype(np.float32)

    def _noise_scale(self, goal: np.ndarray, cube_quat: np.ndarray) -> float:
        """Wider search after ``stall_steps`` without ``stall_tolerance`` rad of progress on this goal."""
        cfg = self.cfg
        distance = float(rotations.distance(cube_quat, goal))
        last_goal, best, since = self._goal_best
        if last_goal is None or not np.array_equal(last_goal, goal) or distance < best - cfg.stall_tolerance:
            self._goal_best = (goal, distance, 0)
            return 1.0
        self._goal_best = (last_goal, best, since + 1)
        return cfg.stall_noise_scale if since + 1 >= cfg.stall_steps else 1.0

    def close(self) -> None:
        self.planner.close()
