"""The planner's configuration: search method, plan shape, rollout model and named cost weights.

Loads from YAML like every config here (``sim.configio.load_yaml(PlannerConfig, path, overrides)``);
``dexhand/configs/planner/realtime.yaml`` is the shipped real-time setting, ``teacher.yaml`` beside it
the slower one that labels distillation data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from sim.configio import ConfigError


@dataclass
class CostConfig:
    """Named cost terms, evaluated at the end of every planned control step (lower is better).

    Rotation and drop use the task's own rules (``sim.rotations.distance``, ``task.drop_height``).
    """

    rotation: float = 1.0  # x rotation distance to the goal (rad)
    closeness: float = 0.3  # x -1 / (distance + 0.1): sharp pull once the goal is near
    success: float = 0.0  # bonus (negative cost) where the task counts a success (its own threshold)
    position: float = 20.0  # x |cube position - where it settled at the episode start| (m)
    velocity: float = 0.5  # x |cube linear velocity| (m/s)
    drop: float = 100.0  # when the cube is lower than its start by drop_margin
    drop_margin: float = 0.04  # m; well before the task's drop_height, so plans keep away from it
    control_rate: float = 0.0  # x mean squared target change per control step (rad^2)
    terminal: float = 2.0  # weight of the last step's cost on top of the horizon mean

    def validate(self) -> None:
        for name in ("rotation", "closeness", "success", "position", "velocity", "drop", "control_rate", "terminal"):
            if getattr(self, name) < 0:
                raise ConfigError(f"cost.{name}: weights must be >= 0, got {getattr(self, name)}")
        if self.drop_margin <= 0:
            raise ConfigError(f"cost.drop_margin: must be > 0 m, got {self.drop_margin}")


@dataclass
class PlannerConfig:
    """Sampling MPC: ``n_samples`` noisy spline plans rolled out ``horizon`` control steps ahead."""

    method: Literal["sampling", "mppi", "cem"] = "sampling"
    n_samples: int = 48  # rollouts per iteration (the nominal plan is always one of them)
    iterations: int = 1  # planning iterations per control step
    horizon: int = 6  # control steps (0.08 s each)
    n_knots: int = 3  # spline knots over the horizon; noise is drawn on knots, interpolated linearly
    noise_std: float = 0.3  # x half of each actuator's control range
    # Noise on the first knot (the target sent now) as a fraction of noise_std. Below 1 the step sent
    # is mostly what the last control step planned for it: smoother actions that a student can learn.
    first_knot_noise: float = 1.0
    # Where each control step's search starts. "shift": the last plan shifted by one step (the planner's
    # own memory, which a student cannot see). "momentum": the last executed action continued, its
    # steps shrinking by momentum_decay, from the current targets: a warm start the student's
    # observation holds (its previous action), so the teacher's labels follow from what the student sees.
    warm_start: Literal["shift", "momentum"] = "shift"
    momentum_decay: float = 0.7
    # Common random numbers: the same knot noise (drawn once from ``seed``) at every control step, so a
    # search is a deterministic function of the state and the warm start; a student then learns a
    # function, not one noisy draw of it (two independent solves share only ~31% of their correction).
    fixed_noise: bool = False
    temperature: float = 0.1  # MPPI: softmax temperature, as a fraction of the cost spread
    # Distillation labels: the cost-weighted mean of the last iteration's plans at this temperature
    # (a fraction of the cost spread): a lower-variance target than the single best sample.
    label_temperature: float = 0.3
    elite_fraction: float = 0.1  # CEM: share of rollouts that refit the sampling distribution
    n_threads: int = 0  # rollout threads; 0: every core
    # The rollout model may be coarser than the env's: plan_timestep_scale x the timestep with
    # proportionally fewer substeps, and fewer solver iterations. 1 / None keep the env's.
    plan_timestep_scale: int = 1
    plan_solver_iterations: int | None = None
    # Privileged latency: new targets reach the rollouts this many control steps late, as the env's
    # randomized action latency delays them (None: the episode's mean delay, read from the env).
    plan_latency: float | None = None
    # Escaping local minima: when the rotation distance has not improved by stall_tolerance rad for
    # stall_steps control steps, the noise grows by stall_noise_scale (until it improves again).
    stall_steps: int = 15
    stall_tolerance: float = 0.05
    stall_noise_scale: float = 1.0
    hold_candidate: bool = True  # one rollout keeps the current targets: a safe fallback always competes
    seed: int = 0
    cost: CostConfig = field(default_factory=CostConfig)

    def validate(self) -> None:
        if self.n_samples < 2:
            raise ConfigError(f"n_samples: need >= 2 rollouts, got {self.n_samples}")
        if self.iterations < 1:
            raise ConfigError(f"iterations: must be >= 1, got {self.iterations}")
        if self.horizon < 1:
            raise ConfigError(f"horizon: must be >= 1 control step, got {self.horizon}")
        if not 2 <= self.n_knots <= self.horizon + 1:
            raise ConfigError(f"n_knots: must be in [2, horizon + 1 = {self.horizon + 1}], got {self.n_knots}")
        if self.noise_std <= 0:
            raise ConfigError(f"noise_std: must be > 0, got {self.noise_std}")
        if not 0.0 <= self.first_knot_noise <= 1.0:
            raise ConfigError(f"first_knot_noise: must be in [0, 1], got {self.first_knot_noise}")
        if self.warm_start not in ("shift", "momentum"):
            raise ConfigError(f"warm_start: must be 'shift' or 'momentum', got {self.warm_start!r}")
        if not 0.0 <= self.momentum_decay <= 1.0:
            raise ConfigError(f"momentum_decay: must be in [0, 1], got {self.momentum_decay}")
        if self.temperature <= 0 or self.label_temperature <= 0:
            raise ConfigError(f"temperature and label_temperature: must be > 0, got {self.temperature}, "
                              f"{self.label_temperature}")
        if not 0 < self.elite_fraction <= 0.5:
            raise ConfigError(f"elite_fraction: must be in (0, 0.5], got {self.elite_fraction}")
        if self.n_threads < 0:
            raise ConfigError(f"n_threads: must be >= 0, got {self.n_threads}")
        if self.plan_timestep_scale < 1:
            raise ConfigError(f"plan_timestep_scale: must be >= 1, got {self.plan_timestep_scale}")
        if self.stall_steps < 1 or self.stall_noise_scale < 1.0:
            raise ConfigError("stall_steps must be >= 1 and stall_noise_scale >= 1")
        if self.plan_latency is not None and not 0.0 <= self.plan_latency <= 1.0:
            raise ConfigError(f"plan_latency: must be in [0, 1] control steps, got {self.plan_latency}")
        if self.plan_solver_iterations is not None and self.plan_solver_iterations < 1:
            raise ConfigError("plan_solver_iterations: must be >= 1")
