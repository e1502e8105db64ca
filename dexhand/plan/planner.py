"""Sampling MPC over MuJoCo rollouts: predictive sampling, MPPI and CEM on spline-knot noise.

A plan is one joint-position target per control step over the horizon. Each iteration draws noise
on ``n_knots`` knots, interpolates it linearly to every step, adds it to the nominal plan, makes it
feasible (the env's per-step target limit and control ranges), rolls every candidate out from the
env's exact state with ``mujoco.rollout``'s persistent thread pool, and updates the nominal plan by
the method's rule. The next control step warm-starts from the plan shifted by one step.
"""

from __future__ import annotations

import copy
import os
import time
from dataclasses import dataclass

import mujoco
import numpy as np
from mujoco import rollout

from dexhand.plan.config import PlannerConfig
from dexhand.plan.cost import CostContext, CubeTrajectory, total_cost

_FULL = mujoco.mjtState.mjSTATE_FULLPHYSICS


@dataclass
class PlanStats:
    """What one control step's planning cost and found (for benchmarks and logs)."""

    seconds: float
    rollouts: int
    physics_steps: int
    best_cost: float


class SamplingPlanner:
    """Plans joint targets on a model; ``bind`` it to a model and rest pose each episode."""

    def __init__(self, cfg: PlannerConfig) -> None:
        cfg.validate()
        self.cfg = cfg
        self.rng = np.random.default_rng(cfg.seed)
        self.n_threads = cfg.n_threads or (os.cpu_count() or 1)
        self._pool = rollout.Rollout(nthread=self.n_threads)
        self.model: mujoco.MjModel | None = None
        self._datas: list[mujoco.MjData] = []
        self.nominal: np.ndarray | None = None  # (horizon, nu)
        self.sigma: np.ndarray | None = None  # CEM's per-knot std, (n_knots, nu)
        self.last_stats: PlanStats | None = None
        self.label_plan: np.ndarray | None = None  # cost-weighted mean plan (distillation label)
        knots = np.linspace(0.0, cfg.horizon - 1, cfg.n_knots)
        # Linear interpolation weights from knots to steps: (horizon, n_knots).
        self._interp = np.stack([np.interp(np.arange(cfg.horizon), knots, np.eye(cfg.n_knots)[k])
                                 for k in range(cfg.n_knots)], axis=1)

    # ----------------------------------------------------------------------------- episode set-up
    def bind(self, model: mujoco.MjModel, substeps: int, ctrl_low: np.ndarray, ctrl_high: np.ndarray,
             max_step: np.ndarray, start_target: np.ndarray, latency_steps: float = 0.0) -> None:
        """Plan on (a copy of) this episode's model; ``max_step`` is the largest target change per step,
        ``latency_steps`` how late (in control steps) a new target takes effect in this episode."""
        cfg = self.cfg
        self.model = copy.copy(model)
        scale = cfg.plan_timestep_scale
        if substeps % scale:
            raise ValueError(f"plan_timestep_scale {scale} must divide the env's {substeps} substeps")
        self.model.opt.timestep = model.opt.timestep * scale
        if cfg.plan_solver_iterations is not None:
            self.model.opt.iterations = cfg.plan_solver_iterations
        self.substeps = substeps // scale
        latency = latency_steps if cfg.plan_latency is None else cfg.plan_latency
        self.delay = min(int(round(latency * self.substeps)), self.substeps - 1)
        self._datas = [mujoco.MjData(self.model) for _ in range(self.n_threads)]
        self.ctrl_low, self.ctrl_high, self.max_step = ctrl_low, ctrl_high, max_step
        self.half_range = 0.5 * (ctrl_high - ctrl_low)
        self.nominal = np.tile(start_target, (cfg.horizon, 1))
        self.sigma = np.tile(cfg.noise_std * self.half_range, (cfg.n_knots, 1))
        self._state = np.empty(mujoco.mj_stateSize(self.model, _FULL))
        # One standard-normal knot noise per iteration, the same at every control step (fixed_noise).
        self._fixed = (np.random.default_rng([cfg.seed, 7]).normal(size=(cfg.iterations, cfg.n_samples, cfg.n_knots,
                                                                         self.model.nu))
                       if cfg.fixed_noise else None)

    def close(self) -> None:
        self._pool.close()

    # ----------------------------------------------------------------------------------- planning
    def _feasible(self, plans: np.ndarray, start: np.ndarray) -> np.ndarray:
        """Clip each step's change to the env's limit and every target to the control range."""
        out = np.empty_like(plans)
        previous = np.broadcast_to(start, plans[:, 0].shape)
        for t in range(plans.shape[1]):
            step = np.clip(plans[:, t] - previous, -self.max_step, self.max_step)
            previous = out[:, t] = np.clip(previous + step, self.ctrl_low, self.ctrl_high)
        return out

    def _candidates(self, start: np.ndarray, std: np.ndarray, iteration: int = 0) -> np.ndarray:
        n = self.cfg.n_samples
        unit = self._fixed[iteration] if self._fixed is not None else self.rng.normal(size=(n, self.cfg.n_knots, self.model.nu))
        knot_noise = unit * std
        knot_noise[:, 0] *= self.cfg.first_knot_noise
        knot_noise[0] = 0.0  # the nominal plan itself competes
        plans = self.nominal[None] + np.einsum("hk,nku->nhu", self._interp, knot_noise)
        if self.cfg.hold_candidate:
            plans[1] = start  # and so does holding every joint where it is commanded now
        return self._feasible(plans, start)

    def _rollout(self, data: mujoco.MjData, plans: np.ndarray) -> np.ndarray:
        """Roll every plan out from ``data``'s state; states at the end of each control step."""
        mujoco.mj_getState(self._source_model, data, self._state, _FULL)
        controls = np.repeat(plans, self.substeps, axis=1)
        if self.delay:  # each new target arrives ``delay`` substeps into its control step
            previous = np.concatenate([np.broadcast_to(self._start, plans[:, :1].shape), plans[:, :-1]], axis=1)
            for k in range(plans.shape[1]):
                controls[:, k * self.substeps : k * self.substeps + self.delay] = previous[:, k : k + 1]
        states, _ = self._pool.rollout(self.model, self._datas, self._state, controls)
        return states[:, self.substeps - 1 :: self.substeps]

    def _trajectory(self, states: np.ndarray, plans: np.ndarray, start: np.ndarray) -> CubeTrajectory:
        q0, v0 = 1 + self.cube_qpos, 1 + self.model.nq + self.cube_qvel
        return CubeTrajectory(pos=states[..., q0 : q0 + 3], quat=states[..., q0 + 3 : q0 + 7],
                              linvel=states[..., v0 : v0 + 3], targets=plans, start_target=start)

    def plan(self, source_model: mujoco.MjModel, data: mujoco.MjData, start_target: np.ndarray,
             ctx: CostContext, cube_qpos: int, cube_qvel: int, noise_scale: float = 1.0) -> np.ndarray:
        """Search from ``data``'s state; returns the plan (horizon, nu) whose first row to send now.

        ``noise_scale`` widens the search (the controller raises it when progress stalls)."""
        cfg = self.cfg
        t0 = time.perf_counter()
        self._source_model, self.cube_qpos, self.cube_qvel = source_model, cube_qpos, cube_qvel
        self._start = start_target
        base_std = noise_scale * cfg.noise_std * self.half_range
        best_cost = np.inf
        best_plan = self.nominal
        for it in range(cfg.iterations):
            std = noise_scale * self.sigma if cfg.method == "cem" else base_std
            plans = self._candidates(start_target, std, it)
            costs = total_cost(cfg.cost, ctx, self._trajectory(self._rollout(data, plans), plans, start_target))
            self.label_plan = self._weighted(plans, costs, cfg.label_temperature)
            i = int(np.argmin(costs))
            if costs[i] < best_cost:
                best_cost, best_plan = float(costs[i]), plans[i]
            self.nominal = self._update(plans, costs)
        if cfg.method == "sampling":
            self.nominal = best_plan  # the best over all iterations, not just the last one's
        self.last_stats = PlanStats(time.perf_counter() - t0, cfg.n_samples * cfg.iterations,
                                    cfg.n_samples * cfg.iterations * cfg.horizon * self.substeps, best_cost)
        return self._feasible(self.nominal[None], start_target)[0]

    @staticmethod
    def _weighted(plans: np.ndarray, costs: np.ndarray, temperature: float) -> np.ndarray:
        """Softmax-weighted mean of the plans; ``temperature`` is a fraction of the costs' spread."""
        spread = max(float(np.std(costs)), 1e-9)
        w = np.exp(-(costs - costs.min()) / (temperature * spread))
        return np.einsum("n,nhu->hu", w / w.sum(), plans)

    def _update(self, plans: np.ndarray, costs: np.ndarray) -> np.ndarray:
        cfg = self.cfg
        if cfg.method == "sampling":
            return plans[int(np.argmin(costs))]
        if cfg.method == "mppi":
            return self._weighted(plans, costs, cfg.temperature)
        # CEM: refit mean and knot std to the elites (std floored so the search never collapses).
        n_elite = max(2, int(round(cfg.elite_fraction * len(costs))))
        elites = plans[np.argsort(costs)[:n_elite]]
        knot_idx = np.round(np.linspace(0, cfg.horizon - 1, cfg.n_knots)).astype(int)
        floor = 0.1 * cfg.noise_std * self.half_range
        self.sigma = np.maximum(elites[:, knot_idx].std(axis=0), floor)
        return elites.mean(axis=0)

    def warm_start(self, plan: np.ndarray, start_target: np.ndarray) -> None:
        """Search around ``plan`` (horizon, nu) at the next control step, e.g. the plan a student carries."""
        self.nominal = self._feasible(np.asarray(plan, np.float64)[None], start_target)[0]

    def continue_action(self, start_target: np.ndarray, step: np.ndarray) -> None:
        """Warm start "momentum": the target change ``step`` repeated, shrinking by momentum_decay each
        control step (made feasible from ``start_target``); nothing of the last plan is kept."""
        decay = self.cfg.momentum_decay ** np.arange(self.cfg.horizon)
        self.warm_start(start_target + np.cumsum(decay)[:, None] * step[None], start_target)

    def shift(self) -> None:
        """Warm start for the next control step: drop the step just sent, repeat the last."""
        self.nominal = np.concatenate([self.nominal[1:], self.nominal[-1:]], axis=0)
        if self.cfg.method == "cem":
            self.sigma = np.maximum(self.sigma, self.cfg.noise_std * self.half_range * 0.5)
