"""The simulator's configuration: scene, task and randomization, as dataclasses loadable from YAML.

Every tunable figure of the simulated Dactyl task lives here once (REFERENCE.md section 1 gives
their sources). Load with ``sim.configio.load_yaml(EnvConfig, path, overrides)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from sim.configio import ConfigError

GoalMode = Literal["full", "faces", "face_up", "z"]  # dexhand.robot.goals.GOAL_MODES
# Largest goal angle a config may ask for (rad): pi, with room for a YAML's 3.1416.
GOAL_ANGLE_LIMIT = math.pi + 1e-3


def _check_range(name: str, rng: tuple[float, float], lowest: float | None = None) -> None:
    low, high = rng
    if not low <= high:
        raise ConfigError(f"{name}: low {low} > high {high}")
    if lowest is not None and low < lowest:
        raise ConfigError(f"{name}: low {low} is below {lowest}")


@dataclass
class SceneConfig:
    """Physical scene: timestep, cube and contacts, cameras."""

    timestep: float = 0.008  # s; robogym's choice. README "Timestep choice" has the measurements
    substeps: int = 10  # physics steps per control step: 0.008 x 10 = 0.08 s (Dactyl's 12.5 Hz)
    cube_size: float = 0.055  # m, edge length
    cube_density: float = 567.0  # kg/m^3, as in the OpenAI block model
    cube_friction: tuple[float, float, float] = (1.0, 0.005, 0.0001)
    # Stiffer than MuJoCo's default (0.02, 1) so fingers do not sink into the cube.
    cube_solref: tuple[float, float] = (0.016, 1.0)  # 2 x timestep, the stiffest MuJoCo allows
    cube_solimp: tuple[float, float, float, float, float] = (0.95, 0.99, 0.001, 0.5, 2.0)
    solver_iterations: int = 20
    vision_image_size: int = 200
    video_width: int = 480
    video_height: int = 360

    def validate(self) -> None:
        if self.timestep <= 0 or self.timestep > 0.02:
            raise ConfigError(f"scene.timestep: {self.timestep} is outside (0, 0.02] s")
        if self.substeps < 1:
            raise ConfigError(f"scene.substeps: must be >= 1, got {self.substeps}")
        if not 0.02 <= self.cube_size <= 0.1:
            raise ConfigError(f"scene.cube_size: {self.cube_size} m is outside [0.02, 0.1]")

    @property
    def control_period(self) -> float:
        return self.timestep * self.substeps


@dataclass
class RewardConfig:
    """Named reward terms (robogym's Dactyl rewards)."""

    rotation_progress: float = 1.0  # x decrease of rotation distance (rad) each step
    success_bonus: float = 5.0
    drop_penalty: float = -20.0


@dataclass
class TaskConfig:
    """Dactyl task semantics: goals, success, drop, timeouts, action and observation layout."""

    goal_mode: GoalMode = "full"
    success_threshold: float = 0.4  # rad of rotation distance
    max_consecutive_successes: int = 50
    goal_timeout_steps: int = 400  # control steps allowed per goal (robogym default)
    # Goals within this rotation (rad) of the cube; pi (Dactyl) leaves the goal mode's distribution
    # as it is. Curricula start small (curriculum.goal_angle_per_stage).
    goal_max_angle: float = math.pi
    drop_height: float = 0.08  # m below the cube's start height that counts as a drop
    action_mode: Literal["continuous", "discrete"] = "continuous"
    action_bins: int = 11
    # Relative targets: target = previous target + action x scale x half the control range.
    action_scale: float = 0.25
    include_joint_angles: bool = False  # Dactyl's policy saw fingertips, not joint angles
    rewards: RewardConfig = field(default_factory=RewardConfig)

    def validate(self) -> None:
        if not 0 < self.success_threshold <= 3.15:  # just above pi: every orientation counts (tests)
            raise ConfigError(f"task.success_threshold: {self.success_threshold} rad is outside (0, 3.15]")
        if self.action_bins < 2:
            raise ConfigError(f"task.action_bins: need >= 2 bins, got {self.action_bins}")
        if not 0 < self.goal_max_angle <= GOAL_ANGLE_LIMIT:
            raise ConfigError(f"task.goal_max_angle: {self.goal_max_angle} rad is outside (0, pi]")
        if self.goal_timeout_steps < 1:
            raise ConfigError("task.goal_timeout_steps: must be >= 1")
        if self.action_scale <= 0:
            raise ConfigError("task.action_scale: must be > 0")


@dataclass
class FrictionRanges:
    """Multipliers for MuJoCo's (slide, torsion, roll) friction coefficients."""

    slide: tuple[float, float] = (0.7, 1.3)
    torsion: tuple[float, float] = (0.5, 1.5)
    roll: tuple[float, float] = (0.5, 1.5)


@dataclass
class ObservationNoise:
    """Additive Gaussian noise std: per episode (a correlated offset) and per step."""

    fingertip_pos: tuple[float, float] = (0.001, 0.002)  # m
    joint_pos: tuple[float, float] = (0.1, 0.1)  # rad
    cube_pos: tuple[float, float] = (0.005, 0.001)  # m
    cube_quat: tuple[float, float] = (0.1, 0.09)  # rad of rotation about a random axis


@dataclass
class VisualRandomization:
    """Ranges for camera, light and colour randomization of rendered images."""

    camera_pos_std: float = 0.01  # m
    camera_angle_std: float = 0.03  # rad
    fovy_std: float = 2.0  # deg
    light_diffuse: tuple[float, float] = (0.4, 1.0)
    light_pos_std: float = 0.3  # m
    color_jitter: float = 0.25  # max change of each rgb channel of hand / floor / sky
    cube_tint: float = 0.15  # max change of the cube's material colour (keeps faces tellable)
    pixel_noise_std: float = 4.0  # of 255, added after rendering


@dataclass
class RandomizationConfig:
    """Domain randomization (REFERENCE.md's robogym defaults). ``strength`` scales every range."""

    enabled: bool = True
    strength: float = 1.0  # 0 = nominal simulator, 1 = full ranges; curricula/ADR move it
    cube_size: tuple[float, float] = (0.95, 1.05)  # multiplier
    mass: tuple[float, float] = (0.5, 1.5)  # body mass and inertia multiplier
    hand_friction: FrictionRanges = field(default_factory=FrictionRanges)
    cube_friction: FrictionRanges = field(
        default_factory=lambda: FrictionRanges((0.5, 1.5), (0.2, 5.0), (0.2, 5.0))
    )
    gravity_std: float = 0.4  # m/s^2 per axis
    timestep_noise: float = 0.05  # mean of exponential noise, as a fraction of the timestep
    damping: tuple[float, float] = (1 / 1.5, 1.5)
    actuator_gain: tuple[float, float] = (0.5, 2.0)  # kp multiplier
    joint_limit_std: float = 0.15  # relative std of joint limits and tendon ranges
    backlash_std: float = 0.01  # rad; per-actuator dead band |N(0, std)| on the position target
    random_force_std: float = 1.0  # m/s^2 x cube mass
    random_force_interval: float = 0.8  # s, mean time between force events
    action_latency_steps: float = 1.0  # max delay of a new action, in control steps
    observation_noise: ObservationNoise = field(default_factory=ObservationNoise)
    visual: VisualRandomization = field(default_factory=VisualRandomization)
    physics: bool = True  # switches for whole groups
    forces: bool = True
    observation: bool = True
    action: bool = True
    visuals: bool = True

    def validate(self) -> None:
        if not 0.0 <= self.strength <= 1.0:
            raise ConfigError(f"randomization.strength: {self.strength} is outside [0, 1]")
        for name in ("cube_size", "mass", "damping", "actuator_gain"):
            _check_range(f"randomization.{name}", getattr(self, name), lowest=1e-3)
        for group in ("hand_friction", "cube_friction"):
            for part in ("slide", "torsion", "roll"):
                _check_range(f"randomization.{group}.{part}", getattr(getattr(self, group), part), 0.0)
        if self.action_latency_steps < 0 or self.action_latency_steps > 1:
            raise ConfigError("randomization.action_latency_steps: must be in [0, 1]")


@dataclass
class EnvConfig:
    """Everything one CubeReorient environment needs."""

    scene: SceneConfig = field(default_factory=SceneConfig)
    task: TaskConfig = field(default_factory=TaskConfig)
    randomization: RandomizationConfig = field(default_factory=RandomizationConfig)
    max_episode_steps: int = 2000  # hard cap on control steps (160 s)

    def validate(self) -> None:
        if self.max_episode_steps < 1:
            raise ConfigError("max_episode_steps: must be >= 1")
