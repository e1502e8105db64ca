"""Domain randomization as small composable objects (in the spirit of robogym's randomizers).

Each model randomizer owns a few fields of the compiled ``MjModel``: ``apply`` rewrites them from the
nominal model with freshly sampled factors, ``restore`` puts the nominal values back, and ``params``
reports what was sampled (the asymmetric critic sees it). ``strength`` in [0, 1] shrinks every range
toward the nominal value, which is how curricula and ADR widen randomization.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import mujoco
import numpy as np

from sim import rotations
from sim.config import FrictionRanges, ObservationNoise, RandomizationConfig, SceneConfig
from sim.scene import CUBE_BODY, CUBE_GEOM


def sample_factor(
    rng: np.random.Generator, bounds: tuple[float, float], strength: float, size=None
) -> np.ndarray:
    """Log-uniform multiplier in ``bounds`` pulled toward 1 by ``strength`` (0 gives exactly 1)."""
    low, high = np.log(bounds[0]) * strength, np.log(bounds[1]) * strength
    return np.exp(rng.uniform(low, high, size=size))


def hand_body_ids(model: mujoco.MjModel) -> np.ndarray:
    return np.array([b for b in range(model.nbody) if model.body(b).name.startswith("robot0:")])


def hand_geom_ids(model: mujoco.MjModel) -> np.ndarray:
    return np.array(
        [g for g in range(model.ngeom) if model.body(model.geom_bodyid[g]).name.startswith("robot0:")]
    )


class ModelRandomizer:
    """Base: owns model fields, writes them per episode; ``params`` has ``n_params`` numbers."""

    name = "base"
    n_params = 0

    def apply(
        self, model: mujoco.MjModel, nominal: mujoco.MjModel, rng: np.random.Generator, strength: float
    ) -> None:
        raise NotImplementedError

    def restore(self, model: mujoco.MjModel, nominal: mujoco.MjModel) -> None:
        raise NotImplementedError

    def params(self) -> np.ndarray:
        return self._params

    def reset_params(self) -> None:
        self._params = self.nominal_params()

    def nominal_params(self) -> np.ndarray:
        return np.ones(self.n_params)


class CubeSize(ModelRandomizer):
    """Scales the cube's box size (and mass x f^3, inertia x f^5, as a solid cube's)."""

    name = "cube_size"
    n_params = 1

    def __init__(self, model: mujoco.MjModel, bounds: tuple[float, float]) -> None:
        self.bounds = bounds
        self.geom = model.geom(CUBE_GEOM).id
        self.body = model.body(CUBE_BODY).id
        self.reset_params()

    def _write(self, model, nominal, f: float) -> None:
        g, b = self.geom, self.body
        model.geom_size[g] = nominal.geom_size[g] * f
        model.geom_rbound[g] = nominal.geom_rbound[g] * f
        model.geom_aabb[g, 3:] = nominal.geom_aabb[g, 3:] * f
        model.body_mass[b] = nominal.body_mass[b] * f**3
        model.body_inertia[b] = nominal.body_inertia[b] * f**5
        self._params = np.array([f])

    def apply(self, model, nominal, rng, strength):
        self._write(model, nominal, float(sample_factor(rng, self.bounds, strength)))

    def restore(self, model, nominal):
        self._write(model, nominal, 1.0)


class BodyMass(ModelRandomizer):
    """Multiplies every hand body's mass and inertia by its own factor (the cube's is CubeSize's)."""

    name = "mass"
    n_params = 1

    def __init__(self, model: mujoco.MjModel, bounds: tuple[float, float]) -> None:
        self.bounds = bounds
        self.bodies = hand_body_ids(model)
        self.reset_params()

    def apply(self, model, nominal, rng, strength):
        f = sample_factor(rng, self.bounds, strength, size=len(self.bodies))
        model.body_mass[self.bodies] = nominal.body_mass[self.bodies] * f
        model.body_inertia[self.bodies] = nominal.body_inertia[self.bodies] * f[:, None]
        self._params = np.array([f.mean()])

    def restore(self, model, nominal):
        model.body_mass[self.bodies] = nominal.body_mass[self.bodies]
        model.body_inertia[self.bodies] = nominal.body_inertia[self.bodies]
        self.reset_params()


class Friction(ModelRandomizer):
    """Multiplies (slide, torsion, roll) friction of a set of geoms by one factor each."""

    n_params = 3

    def __init__(self, name: str, geoms: np.ndarray, ranges: FrictionRanges) -> None:
        self.name = name
        self.geoms = np.atleast_1d(geoms)
        self.ranges = ranges
        self.reset_params()

    def apply(self, model, nominal, rng, strength):
        f = np.array(
            [sample_factor(rng, getattr(self.ranges, p), strength) for p in ("slide", "torsion", "roll")]
        )
        model.geom_friction[self.geoms] = nominal.geom_friction[self.geoms] * f
        self._params = f

    def restore(self, model, nominal):
        model.geom_friction[self.geoms] = nominal.geom_friction[self.geoms]
        self.reset_params()


class Gravity(ModelRandomizer):
    """Adds N(0, std) m/s^2 to each gravity axis (a tilted or mis-levelled hand)."""

    name = "gravity"
    n_params = 3

    def __init__(self, std: float) -> None:
        self.std = std
        self.reset_params()

    def nominal_params(self) -> np.ndarray:
        return np.zeros(3)

    def apply(self, model, nominal, rng, strength):
        delta = rng.normal(0.0, self.std * strength, size=3)
        model.opt.gravity[:] = nominal.opt.gravity + delta
        self._params = delta

    def restore(self, model, nominal):
        model.opt.gravity[:] = nominal.opt.gravity
        self.reset_params()


class Timestep(ModelRandomizer):
    """dt x (1 + Exp(mean)): the simulated control period jitters like a real loop's."""

    name = "timestep"
    n_params = 1

    def __init__(self, mean_fraction: float) -> None:
        self.mean_fraction = mean_fraction
        self.reset_params()

    def apply(self, model, nominal, rng, strength):
        f = (
            1.0 + rng.exponential(self.mean_fraction * strength)
            if strength > 0 and self.mean_fraction > 0
            else 1.0
        )
        model.opt.timestep = nominal.opt.timestep * f
        self._params = np.array([f])

    def restore(self, model, nominal):
        model.opt.timestep = nominal.opt.timestep
        self.reset_params()


class JointDamping(ModelRandomizer):
    name = "damping"
    n_params = 1

    def __init__(self, model: mujoco.MjModel, dofs: np.ndarray, bounds: tuple[float, float]) -> None:
        self.dofs = dofs
        self.bounds = bounds
        self.reset_params()

    def apply(self, model, nominal, rng, strength):
        f = sample_factor(rng, self.bounds, strength, size=len(self.dofs))
        model.dof_damping[self.dofs] = nominal.dof_damping[self.dofs] * f
        self._params = np.array([f.mean()])

    def restore(self, model, nominal):
        model.dof_damping[self.dofs] = nominal.dof_damping[self.dofs]
        self.reset_params()


class ActuatorGain(ModelRandomizer):
    """Scales each position actuator's kp (gainprm[0] and the matching biasprm[1] = -kp)."""

    name = "actuator_gain"
    n_params = 1

    def __init__(self, model: mujoco.MjModel, bounds: tuple[float, float]) -> None:
        self.bounds = bounds
        self.n = model.nu
        self.reset_params()

    def apply(self, model, nominal, rng, strength):
        f = sample_factor(rng, self.bounds, strength, size=self.n)
        model.actuator_gainprm[:, 0] = nominal.actuator_gainprm[:, 0] * f
        model.actuator_biasprm[:, 1] = nominal.actuator_biasprm[:, 1] * f
        self._params = np.array([f.mean()])

    def restore(self, model, nominal):
        model.actuator_gainprm[:, 0] = nominal.actuator_gainprm[:, 0]
        model.actuator_biasprm[:, 1] = nominal.actuator_biasprm[:, 1]
        self.reset_params()


class JointLimits(ModelRandomizer):
    """Perturbs each limit of the hand's joints and tendons by a relative N(0, std), kept ordered."""

    name = "joint_limits"
    n_params = 1

    def __init__(self, model: mujoco.MjModel, joints: np.ndarray, std: float) -> None:
        self.joints = joints
        self.std = std
        self.reset_params()

    def nominal_params(self) -> np.ndarray:
        return np.zeros(1)

    @staticmethod
    def _perturb(ranges: np.ndarray, rng, std: float) -> np.ndarray:
        width = ranges[:, 1] - ranges[:, 0]
        noise = np.clip(rng.normal(0.0, std, size=ranges.shape), -2 * std, 2 * std) * width[:, None] * 0.5
        out = ranges + noise
        out[:, 1] = np.maximum(out[:, 1], out[:, 0] + 0.05 * width)
        return out

    def apply(self, model, nominal, rng, strength):
        std = self.std * strength
        model.jnt_range[self.joints] = self._perturb(nominal.jnt_range[self.joints], rng, std)
        model.tendon_range[:] = self._perturb(nominal.tendon_range, rng, std)
        rel = np.abs(model.jnt_range[self.joints] - nominal.jnt_range[self.joints]).mean()
        self._params = np.array([rel])

    def restore(self, model, nominal):
        model.jnt_range[self.joints] = nominal.jnt_range[self.joints]
        model.tendon_range[:] = nominal.tendon_range
        self.reset_params()


@dataclass
class ActionPerturbation:
    """Per-episode action effects: latency (a new target waits some substeps) and backlash."""

    max_latency_steps: float
    backlash_std: float
    n_actuators: int
    backlash: np.ndarray = field(init=False)
    latency_fraction: float = 0.0

    def __post_init__(self) -> None:
        self.backlash = np.zeros(self.n_actuators)

    def sample_episode(self, rng: np.random.Generator, strength: float) -> None:
        self.backlash = np.abs(rng.normal(0.0, self.backlash_std * strength, size=self.n_actuators))
        self.latency_fraction = self.max_latency_steps * strength

    def reset_nominal(self) -> None:
        self.backlash[:] = 0.0
        self.latency_fraction = 0.0

    def delay_substeps(self, rng: np.random.Generator, substeps: int) -> int:
        """How many substeps the previous target still acts before the new one arrives."""
        if self.latency_fraction <= 0:
            return 0
        return int(rng.uniform(0.0, self.latency_fraction) * substeps)

    def apply_backlash(self, previous: np.ndarray, target: np.ndarray) -> np.ndarray:
        """A dead band: the effective target moves only by what exceeds the play."""
        delta = target - previous
        return previous + np.sign(delta) * np.maximum(np.abs(delta) - self.backlash, 0.0)

    def params(self) -> np.ndarray:
        return np.array([self.latency_fraction, self.backlash.mean()])


@dataclass
class RandomForces:
    """Random pushes on the cube: an event starts with probability period/interval each step."""

    std: float
    interval: float
    control_period: float
    strength: float = 0.0

    def force(self, rng: np.random.Generator, cube_mass: float) -> np.ndarray | None:
        if self.strength <= 0 or self.std <= 0:
            return None
        if rng.random() >= min(1.0, self.control_period / self.interval):
            return None
        return rng.normal(0.0, self.std * self.strength * cube_mass, size=3)


class ObservationNoiseModel:
    """Gaussian noise on the policy's inputs: a per-episode offset plus fresh per-step noise."""

    def __init__(self, cfg: ObservationNoise, n_joints: int) -> None:
        self.cfg = cfg
        self.n_joints = n_joints
        self.strength = 0.0
        self.offsets = {
            "fingertip_pos": np.zeros(15),
            "joint_pos": np.zeros(n_joints),
            "cube_pos": np.zeros(3),
            "cube_quat": np.array([1.0, 0, 0, 0]),
        }

    def sample_episode(self, rng: np.random.Generator, strength: float) -> None:
        self.strength = strength
        c = self.cfg
        self.offsets = {
            "fingertip_pos": rng.normal(0, c.fingertip_pos[0] * strength, 15),
            "joint_pos": rng.normal(0, c.joint_pos[0] * strength, self.n_joints),
            "cube_pos": rng.normal(0, c.cube_pos[0] * strength, 3),
            "cube_quat": _random_small_rotation(rng, c.cube_quat[0] * strength),
        }

    def reset_nominal(self) -> None:
        self.sample_episode(np.random.default_rng(0), 0.0)

    def vector(self, key: str, value: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.strength <= 0:
            return value
        step_std = getattr(self.cfg, key)[1] * self.strength
        return value + self.offsets[key] + rng.normal(0.0, step_std, value.shape)

    def quaternion(self, quat: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.strength <= 0:
            return quat
        step = _random_small_rotation(rng, self.cfg.cube_quat[1] * self.strength)
        return rotations.multiply(step, rotations.multiply(self.offsets["cube_quat"], quat))


def _random_small_rotation(rng: np.random.Generator, std: float) -> np.ndarray:
    if std <= 0:
        return np.array([1.0, 0.0, 0.0, 0.0])
    return rotations.from_axis_angle(rng.normal(size=3), rng.normal(0.0, std))


def build_model_randomizers(model: mujoco.MjModel, cfg: RandomizationConfig) -> list[ModelRandomizer]:
    """The per-episode physics randomizers, in a fixed order (the critic's parameter layout)."""
    hand_geoms = hand_geom_ids(model)
    hand_joints = np.array([j for j in range(model.njnt) if model.joint(j).name.startswith("robot0:")])
    hand_dofs = np.array([model.jnt_dofadr[j] for j in hand_joints])
    return [
        CubeSize(model, cfg.cube_size),
        BodyMass(model, cfg.mass),
        Friction("hand_friction", hand_geoms, cfg.hand_friction),
        Friction("cube_friction", np.array([model.geom(CUBE_GEOM).id]), cfg.cube_friction),
        Gravity(cfg.gravity_std),
        Timestep(cfg.timestep_noise),
        JointDamping(model, hand_dofs, cfg.damping),
        ActuatorGain(model, cfg.actuator_gain),
        JointLimits(model, hand_joints, cfg.joint_limit_std),
    ]


# The scalar knobs of the randomization groups, each with a sampling range [lo, hi] per episode when a
# range schedule (automatic domain randomization) drives the env. "factor": a multiplier (nominal 1), the
# episode's factors drawn log-uniformly in [lo, hi] (per element where the randomizer draws per body,
# joint or actuator); "spread": a std, mean or scale (nominal 0), the episode's value drawn uniformly in
# [lo, hi]. lo == hi pins the knob (an ADR boundary probe).
FRICTION_PARTS = ("slide", "torsion", "roll")
KNOBS: dict[str, str] = {
    "cube_size": "factor",
    "mass": "factor",
    **{f"hand_friction.{p}": "factor" for p in FRICTION_PARTS},
    **{f"cube_friction.{p}": "factor" for p in FRICTION_PARTS},
    "damping": "factor",
    "actuator_gain": "factor",
    "gravity": "spread",  # std of the per-axis offset, m/s^2
    "timestep": "spread",  # mean of the exponential dt noise, fraction of dt
    "joint_limits": "spread",  # relative std of the joint and tendon limits
    "action.latency": "spread",  # max action delay, control steps (at most 1)
    "action.backlash": "spread",  # std of the per-actuator dead band, rad
    "forces": "spread",  # std of the random pushes, m/s^2 x cube mass
    "observation": "spread",  # scale of every observation-noise std (1: the configured ones)
    "visual": "spread",  # scale of every visual randomization (1: the configured ones)
}
KNOB_GROUP = {k: k.split(".")[0] for k in KNOBS}  # knob -> the group switch / strength name it belongs to


def configured_ranges(cfg: RandomizationConfig) -> dict[str, tuple[float, float]]:
    """Each knob's hand-written range from the config (what ``strength=1`` samples)."""
    out: dict[str, tuple[float, float]] = {
        "cube_size": tuple(cfg.cube_size),
        "mass": tuple(cfg.mass),
        "damping": tuple(cfg.damping),
        "actuator_gain": tuple(cfg.actuator_gain),
        "gravity": (0.0, cfg.gravity_std),
        "timestep": (0.0, cfg.timestep_noise),
        "joint_limits": (0.0, cfg.joint_limit_std),
        "action.latency": (0.0, cfg.action_latency_steps),
        "action.backlash": (0.0, cfg.backlash_std),
        "forces": (0.0, cfg.random_force_std),
        "observation": (0.0, 1.0),
        "visual": (0.0, 1.0),
    }
    for group in ("hand_friction", "cube_friction"):
        for part in FRICTION_PARTS:
            out[f"{group}.{part}"] = tuple(getattr(getattr(cfg, group), part))
    return {k: (float(v[0]), float(v[1])) for k, v in out.items()}


def scene_params_size(model: mujoco.MjModel, cfg: RandomizationConfig) -> int:
    return sum(r.n_params for r in build_model_randomizers(model, cfg)) + 2  # + action latency, backlash


__all__ = [
    "KNOBS",
    "ActionPerturbation",
    "ModelRandomizer",
    "ObservationNoiseModel",
    "RandomForces",
    "SceneConfig",
    "build_model_randomizers",
    "configured_ranges",
    "sample_factor",
]
