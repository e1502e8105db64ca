"""``dexhand/CubeReorient-v0``: the Dactyl cube-reorientation task as a Gymnasium environment.

Observations are a Dict with a ``policy`` part (what the real robot can measure, with noise) and a
``critic`` part (the full simulator state plus this episode's randomization parameters) for
asymmetric actor-critic training. Actions are relative joint-position targets for the 20
actuators, continuous in [-1, 1] or discretized into ``task.action_bins`` bins per actuator.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterable
from typing import Any, Protocol

import gymnasium as gym
import mujoco
import numpy as np

from sim import rotations
from sim.config import GOAL_ANGLE_LIMIT, EnvConfig, FrictionRanges
from sim.configio import apply_overrides
from sim.randomizers import (
    FRICTION_PARTS,
    KNOB_GROUP,
    KNOBS,
    ActionPerturbation,
    ObservationNoiseModel,
    RandomForces,
    build_model_randomizers,
    configured_ranges,
)
from sim.scene import CUBE_START, HOME_POSE, VIDEO_CAMERA, VISION_CAMERAS, SceneIds, build_model
from sim.task import GOAL_MODES, StepOutcome, TaskState, evaluate_step, sample_goal
from sim.visual import CameraRenderer, VisualRandomizer, add_pixel_noise

HAND_ORIGIN = CUBE_START  # positions in observations are relative to the cube's rest point
_BADQACC, _BADQPOS, _BADQVEL = (
    int(w)
    for w in (
        mujoco.mjtWarning.mjWARN_BADQACC,
        mujoco.mjtWarning.mjWARN_BADQPOS,
        mujoco.mjtWarning.mjWARN_BADQVEL,
    )
)
SETTLE_STEPS = 3  # control steps with the hand holding still after a reset, so the cube lands


RANDOMIZATION_GROUPS = ("cube_size", "mass", "hand_friction", "cube_friction", "gravity", "timestep", "damping",
                        "actuator_gain", "joint_limits", "visual", "action", "forces", "observation")


class RandomizationSchedule(Protocol):
    """Chooses per-group randomization strengths each episode and hears how the episode went."""

    def episode_strengths(self, rng: np.random.Generator) -> dict[str, float]: ...

    def report(self, strengths: dict[str, float], consecutive_successes: int) -> None: ...


class RangeSchedule(Protocol):
    """Chooses a sampling range per knob (``sim.randomizers.KNOBS``) each episode: automatic domain
    randomization. lo == hi pins a knob (a boundary probe); knobs left out are nominal. ``report`` gets
    the same dict back at the episode's end."""

    def episode_ranges(self, rng: np.random.Generator) -> dict[str, Any]: ...

    def report(self, ranges: dict[str, Any], consecutive_successes: int) -> None: ...


def policy_layout(include_joint_angles: bool, n_joints: int = 24, n_actions: int = 20) -> dict[str, slice]:
    """Where each quantity sits in the ``policy`` observation (exported with the policy)."""
    parts = [
        ("fingertip_pos", 15),
        ("cube_pos", 3),
        ("cube_quat", 4),
        ("goal_quat", 4),
        ("relative_quat", 4),
        ("previous_action", n_actions),
    ]
    if include_joint_angles:
        parts.append(("joint_pos", n_joints))
    layout, start = {}, 0
    for name, size in parts:
        layout[name] = slice(start, start + size)
        start += size
    return layout


class CubeReorientEnv(gym.Env):
    """Shadow Hand turning a cube to goal orientations (Dactyl semantics; see ``sim.config``)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 12.5}

    def __init__(
        self,
        config: EnvConfig | None = None,
        overrides: Iterable[str] = (),
        render_mode: str | None = None,
        render_camera: str = VIDEO_CAMERA,
    ) -> None:
        cfg = apply_overrides(config or EnvConfig(), overrides)
        self.cfg = cfg
        self.render_mode = render_mode
        self.render_camera = render_camera
        self.model = build_model(cfg.scene)
        self.nominal = copy.copy(self.model)
        self.data = mujoco.MjData(self.model)
        self._warning_counts = self.data.warning.number  # a live view: no per-step struct copy
        self.ids = SceneIds.from_model(self.model)
        self.metadata = {**self.metadata, "render_fps": 1.0 / cfg.scene.control_period}

        rcfg = cfg.randomization
        self.model_randomizers = build_model_randomizers(self.model, rcfg)
        self.visual_randomizer = VisualRandomizer(self.model, rcfg.visual)
        self.action_perturbation = ActionPerturbation(
            rcfg.action_latency_steps, rcfg.backlash_std, self.model.nu
        )
        self.forces = RandomForces(
            rcfg.random_force_std, rcfg.random_force_interval, cfg.scene.control_period
        )
        self.obs_noise = ObservationNoiseModel(rcfg.observation_noise, len(self.ids.hand_qpos))

        nu = self.model.nu
        self.ctrl_low = self.model.actuator_ctrlrange[:, 0].copy()
        self.ctrl_high = self.model.actuator_ctrlrange[:, 1].copy()
        self.action_step = cfg.task.action_scale * 0.5 * (self.ctrl_high - self.ctrl_low)
        if cfg.task.action_mode == "discrete":
            self.action_space = gym.spaces.MultiDiscrete(np.full(nu, cfg.task.action_bins))
        else:
            self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(nu,), dtype=np.float32)
        self.layout = policy_layout(cfg.task.include_joint_angles, len(self.ids.hand_qpos), nu)
        n_policy = max(s.stop for s in self.layout.values())
        self.n_scene_params = sum(r.n_params for r in self.model_randomizers) + 2
        n_critic = 2 * len(self.ids.hand_qpos) + 13 + 8 + 15 + nu + self.n_scene_params
        self.observation_space = gym.spaces.Dict(
            {
                "policy": gym.spaces.Box(-np.inf, np.inf, shape=(n_policy,), dtype=np.float32),
                "critic": gym.spaces.Box(-np.inf, np.inf, shape=(n_critic,), dtype=np.float32),
            }
        )
        self._cube_mass = float(self.model.body_mass[self.ids.cube_body])
        self._previous_action = np.zeros(nu)
        self._target = np.zeros(nu)
        self._scene_params = np.zeros(self.n_scene_params)
        self._task: TaskState | None = None
        self._start_height = float(CUBE_START[2])
        self._episode_steps = 0
        self._renderers: dict[tuple[int, int, bool], CameraRenderer] = {}
        self._pixel_noise_std = 0.0
        # Optional per-group strengths per episode (automatic domain randomization sets this).
        self.schedule: RandomizationSchedule | RangeSchedule | None = None
        self._episode_strengths: dict[str, Any] = {}
        self._knobs_changed = False  # a range schedule rewrote the randomizers' ranges

    # ------------------------------------------------------------- training-time adjustments
    def set_goal_mode(self, mode: str) -> None:
        """Change how new goals are drawn (curricula call this through VecEnv.env_method)."""
        if mode not in GOAL_MODES:
            raise ValueError(f"unknown goal mode {mode!r}: use one of {', '.join(GOAL_MODES)}")
        self.cfg.task.goal_mode = mode

    def set_goal_max_angle(self, angle: float) -> None:
        """Goals within ``angle`` rad of the cube (a curriculum's easy stages); pi is Dactyl's task."""
        if not 0.0 < angle <= GOAL_ANGLE_LIMIT:
            raise ValueError(f"goal max angle {angle} rad is outside (0, pi]")
        self.cfg.task.goal_max_angle = float(angle)

    def _sample_goal(self, rng: np.random.Generator, cube_quat: np.ndarray) -> np.ndarray:
        task = self.cfg.task
        # Near goals start just outside the success radius, so none is reached without moving.
        return sample_goal(task.goal_mode, rng, cube_quat, max_angle=task.goal_max_angle,
                           min_angle=min(task.success_threshold, task.goal_max_angle))

    def set_randomization_strength(self, strength: float) -> None:
        if not 0.0 <= strength <= 1.0:
            raise ValueError(f"randomization strength {strength} is outside [0, 1]")
        self.cfg.randomization.strength = float(strength)

    def set_schedule(self, schedule: RandomizationSchedule | RangeSchedule | None) -> None:
        """Per-group strengths or per-knob ranges each episode (ADR); takes effect at the next reset."""
        self.schedule = schedule

    def _set_knobs(self, ranges: dict[str, tuple[float, float]], rng: np.random.Generator | None) -> dict[str, Any]:
        """Write each knob into the randomizers: a factor's range, a spread's value (drawn uniformly in
        [lo, hi] when ``rng`` is given, else hi: the configured value). Returns what was written."""
        values: dict[str, Any] = {}
        for knob, kind in KNOBS.items():
            lo, hi = ranges[knob]
            if kind == "factor":
                values[knob] = (float(lo), float(hi))
            else:
                values[knob] = float(rng.uniform(lo, hi)) if (rng is not None and hi > lo) else float(hi)
        r = {x.name: x for x in self.model_randomizers}
        for knob in ("cube_size", "mass", "damping", "actuator_gain"):
            r[knob].bounds = values[knob]
        for group in ("hand_friction", "cube_friction"):
            r[group].ranges = FrictionRanges(*(values[f"{group}.{p}"] for p in FRICTION_PARTS))
        r["gravity"].std = values["gravity"]
        r["timestep"].mean_fraction = values["timestep"]
        r["joint_limits"].std = values["joint_limits"]
        self.action_perturbation.max_latency_steps = min(values["action.latency"], 1.0)
        self.action_perturbation.backlash_std = values["action.backlash"]
        self.forces.std = values["forces"]
        return values

    def _randomize_ranges(self, rng: np.random.Generator, ranges: dict[str, Any]) -> None:
        """This episode's randomization from per-knob ranges (a range schedule: ADR)."""
        rcfg = self.cfg.randomization
        switch = {"visual": rcfg.visuals, "action": rcfg.action, "forces": rcfg.forces,
                  "observation": rcfg.observation}
        nominal = {k: (1.0, 1.0) if kind == "factor" else (0.0, 0.0) for k, kind in KNOBS.items()}
        chosen = {k: tuple(ranges[k]) if (k in ranges and switch.get(KNOB_GROUP[k], rcfg.physics)) else nominal[k]
                  for k in KNOBS}
        values = self._set_knobs(chosen, rng)
        self._knobs_changed = True
        for randomizer in self.model_randomizers:
            randomizer.apply(self.model, self.nominal, rng, 1.0)
        s = values["visual"]
        if s > 0:
            self.visual_randomizer.apply(self.model, self.nominal, rng, s)
        else:
            self.visual_randomizer.restore(self.model, self.nominal)
        self._pixel_noise_std = rcfg.visual.pixel_noise_std * s
        self.action_perturbation.sample_episode(rng, 1.0)
        self.forces.strength = 1.0
        s = values["observation"]
        if s > 0:
            self.obs_noise.sample_episode(rng, s)
        else:
            self.obs_noise.reset_nominal()

    # ----------------------------------------------------------------------------------- reset
    def _randomize(self, rng: np.random.Generator) -> None:
        """Sample this episode's randomization; each group's strength may come from the schedule."""
        rcfg = self.cfg.randomization
        if self.schedule is not None and rcfg.enabled and hasattr(self.schedule, "episode_ranges"):
            self._episode_strengths = self.schedule.episode_ranges(rng)
            self._randomize_ranges(rng, self._episode_strengths)
            self._finish_randomize()
            return
        if self._knobs_changed:  # back to the config's ranges after a range schedule
            self._set_knobs(configured_ranges(rcfg), None)
            self._knobs_changed = False
        base = rcfg.strength if rcfg.enabled else 0.0
        chosen = self.schedule.episode_strengths(rng) if (self.schedule is not None and rcfg.enabled) else {}
        self._episode_strengths = chosen

        def strength(name: str, group_on: bool) -> float:
            return chosen.get(name, base) if (rcfg.enabled and group_on) else 0.0

        for randomizer in self.model_randomizers:
            s = strength(randomizer.name, rcfg.physics)
            if s > 0:
                randomizer.apply(self.model, self.nominal, rng, s)
            else:
                randomizer.restore(self.model, self.nominal)
        s = strength("visual", rcfg.visuals)
        if s > 0:
            self.visual_randomizer.apply(self.model, self.nominal, rng, s)
        else:
            self.visual_randomizer.restore(self.model, self.nominal)
        self._pixel_noise_std = rcfg.visual.pixel_noise_std * s
        s = strength("action", rcfg.action)
        if s > 0:
            self.action_perturbation.sample_episode(rng, s)
        else:
            self.action_perturbation.reset_nominal()
        self.forces.strength = strength("forces", rcfg.forces)
        s = strength("observation", rcfg.observation)
        if s > 0:
            self.obs_noise.sample_episode(rng, s)
        else:
            self.obs_noise.reset_nominal()
        self._finish_randomize()

    def _finish_randomize(self) -> None:
        self._cube_mass = float(self.model.body_mass[self.ids.cube_body])
        self._scene_params = np.concatenate(
            [r.params() for r in self.model_randomizers] + [self.action_perturbation.params()]
        )

    def _place_cube(self, rng: np.random.Generator) -> None:
        """Cube on the palm in a random face-up orientation, raised until nothing interpenetrates."""
        d, ids = self.data, self.ids
        face = sample_goal("faces", rng)
        quat = rotations.multiply(sample_goal("z", rng), face)
        pos = CUBE_START.copy()
        pos[:2] += rng.uniform(-0.005, 0.005, 2)
        pos[2] = CUBE_START[2] + self.model.geom_size[ids.cube_geom][0] - 0.0275
        d.qpos[ids.cube_qpos : ids.cube_qpos + 3] = pos
        d.qpos[ids.cube_qpos + 3 : ids.cube_qpos + 7] = quat
        for _ in range(50):
            mujoco.mj_forward(self.model, d)
            if d.ncon == 0 or d.contact.dist[: d.ncon].min() > -1e-4:
                break
            d.qpos[ids.cube_qpos + 2] += 0.002

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        rng = self.np_random
        self._randomize(rng)
        mujoco.mj_resetData(self.model, self.data)
        for joint, angle in HOME_POSE.items():
            self.data.qpos[self.model.joint("robot0:" + joint).qposadr[0]] = angle
        self._place_cube(rng)
        self._target = self.data.qpos[self.ids.actuated_qpos].clip(self.ctrl_low, self.ctrl_high)
        self.data.ctrl[:] = self._target
        mujoco.mj_step(self.model, self.data, nstep=SETTLE_STEPS * self.cfg.scene.substeps)
        self._start_height = float(self.data.qpos[self.ids.cube_qpos + 2])
        self._previous_action = np.zeros(self.model.nu)
        cube_quat = self._cube_quat()
        goal = self._sample_goal(rng, cube_quat)
        if options and "goal" in options:
            goal = rotations.normalize(np.asarray(options["goal"], dtype=np.float64))
        self._task = TaskState(goal=goal, previous_distance=float(rotations.distance(cube_quat, goal)))
        self._episode_steps = 0
        return self._observation(), self._info(None, unstable=False)

    # ------------------------------------------------------------------------------------ step
    def _action_to_unit(self, action: Any) -> np.ndarray:
        """Validate an action and map it to [-1, 1]^20; bad input never reaches MuJoCo."""
        a = np.asarray(action)
        if a.shape != self.action_space.shape:
            raise ValueError(f"action has shape {a.shape}, expected {self.action_space.shape}")
        if self.cfg.task.action_mode == "discrete":
            if not np.issubdtype(a.dtype, np.integer):
                if not np.all(np.isfinite(a)):
                    raise ValueError("action contains NaN or inf")
                if not np.all(a == np.round(a)):
                    raise ValueError("discrete action must hold integer bin indices")
            bins = self.cfg.task.action_bins
            if np.any(a < 0) or np.any(a >= bins):
                raise ValueError(f"discrete action bins must be in [0, {bins - 1}]")
            return a.astype(np.float64) / (bins - 1) * 2.0 - 1.0
        a = a.astype(np.float64)
        if not np.all(np.isfinite(a)):
            bad = np.flatnonzero(~np.isfinite(a)).tolist()
            raise ValueError(f"action contains NaN or inf at indices {bad}")
        return np.clip(a, -1.0, 1.0)

    def step(self, action: Any):
        if self._task is None:
            raise RuntimeError("call reset() before step()")
        unit = self._action_to_unit(action)
        m, d, ids = self.model, self.data, self.ids
        rng = self.np_random
        substeps = self.cfg.scene.substeps
        # Relative to the last commanded target (not the measured position, which sags under load).
        desired = np.clip(self._target + unit * self.action_step, self.ctrl_low, self.ctrl_high)
        new_target = self.action_perturbation.apply_backlash(self._target, desired)

        force = self.forces.force(rng, self._cube_mass)
        if force is not None:
            d.xfrc_applied[ids.cube_body, :3] = force
        delay = self.action_perturbation.delay_substeps(rng, substeps)
        warnings_before = self._instability_count()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if delay:
                d.ctrl[:] = self._target
                mujoco.mj_step(m, d, nstep=delay)
            d.ctrl[:] = new_target
            mujoco.mj_step(m, d, nstep=substeps - delay)
        if force is not None:
            d.xfrc_applied[ids.cube_body, :3] = 0.0
        self._target = new_target
        self._previous_action = unit
        self._episode_steps += 1

        # MuJoCo resets the data itself on a divergent state and counts a warning: compare counts.
        unstable = self._instability_count() > warnings_before or not np.all(np.isfinite(d.qpos))
        if unstable:
            mujoco.mj_resetData(m, d)  # keep the env usable; the episode ends here
            outcome = StepOutcome(0.0, False, False, False, True, float(self._task.previous_distance))
            return self._observation(), 0.0, False, True, self._info(outcome, unstable=True)

        cube_quat = self._cube_quat()
        drop = self._start_height - float(d.qpos[ids.cube_qpos + 2])
        outcome = evaluate_step(self.cfg.task, self._task, cube_quat, drop)
        if outcome.success and not outcome.terminated:
            self._task.goal = self._sample_goal(rng, cube_quat)
            self._task.previous_distance = float(rotations.distance(cube_quat, self._task.goal))
        truncated = outcome.truncated or self._episode_steps >= self.cfg.max_episode_steps
        if (outcome.terminated or truncated) and self.schedule is not None:
            self.schedule.report(self._episode_strengths, self._task.consecutive_successes)
        return (
            self._observation(),
            outcome.reward,
            outcome.terminated,
            truncated,
            self._info(outcome, unstable=False),
        )

    def _instability_count(self) -> int:
        n = self._warning_counts
        return int(n[_BADQACC] + n[_BADQPOS] + n[_BADQVEL])

    # ---------------------------------------------------------------------------- observations
    def _cube_quat(self) -> np.ndarray:
        q = self.data.qpos[self.ids.cube_qpos + 3 : self.ids.cube_qpos + 7]
        return q / np.linalg.norm(q)

    def fingertip_positions(self) -> np.ndarray:
        """Fingertip sites relative to the hand origin, (5, 3), noiseless.

        MuJoCo computes positions at the start of a step, so after ``step`` these lag ``qpos`` by one
        physics substep (8 ms), like a sensor's latency; no extra kinematics pass in the hot loop.
        """
        return self.data.site_xpos[self.ids.fingertip_sites] - HAND_ORIGIN

    def _observation(self) -> dict[str, np.ndarray]:
        d, ids, rng, noise = self.data, self.ids, self.np_random, self.obs_noise
        task = self._task
        tips = self.fingertip_positions().ravel()
        cube_pos = d.qpos[ids.cube_qpos : ids.cube_qpos + 3] - HAND_ORIGIN
        cube_quat = self._cube_quat()
        joints = d.qpos[ids.hand_qpos]
        noisy_quat = noise.quaternion(cube_quat, rng)
        noisy_quat = noisy_quat * (1.0 if noisy_quat[0] >= 0 else -1.0)
        parts = [
            noise.vector("fingertip_pos", tips, rng),
            noise.vector("cube_pos", cube_pos, rng),
            noisy_quat,
            task.goal,
            rotations.relative(noisy_quat, task.goal),
            self._previous_action,
        ]
        if self.cfg.task.include_joint_angles:
            parts.append(noise.vector("joint_pos", joints, rng))
        critic = [
            joints,
            d.qvel[ids.hand_qvel],
            cube_pos,
            cube_quat,
            d.qvel[ids.cube_qvel : ids.cube_qvel + 6],
            task.goal,
            rotations.relative(cube_quat, task.goal),
            tips,
            self._previous_action,
            self._scene_params,
        ]
        return {
            "policy": np.concatenate(parts).astype(np.float32),
            "critic": np.concatenate(critic).astype(np.float32),
        }

    def _info(self, outcome: StepOutcome | None, unstable: bool) -> dict[str, Any]:
        task = self._task
        return {
            "is_success": bool(outcome.success) if outcome else False,
            "consecutive_successes": task.consecutive_successes,
            "dropped": bool(outcome.dropped) if outcome else False,
            "rotation_distance": float(outcome.distance) if outcome else task.previous_distance,
            "sim_unstable": unstable,
            "goal_quat": task.goal.copy(),
        }

    # ------------------------------------------------------------------------------- rendering
    @property
    def cube_quat(self) -> np.ndarray:
        return self._cube_quat()

    @property
    def goal(self) -> np.ndarray:
        """This step's goal orientation (privileged controllers such as the planner read it)."""
        return self._task.goal.copy()

    @property
    def previous_action(self) -> np.ndarray:
        """The last action applied, in [-1, 1] (the ``previous_action`` the observation carries)."""
        return self._previous_action.copy()

    @property
    def current_target(self) -> np.ndarray:
        """The joint targets last commanded (relative actions move from here)."""
        return self._target.copy()

    @property
    def cube_pos(self) -> np.ndarray:
        return self.data.qpos[self.ids.cube_qpos : self.ids.cube_qpos + 3].copy()

    def _renderer(self, width: int, height: int, show_goal: bool = False) -> CameraRenderer:
        key = (width, height, show_goal)
        if key not in self._renderers:
            self._renderers[key] = CameraRenderer(self.model, width, height, show_goal=show_goal)
        return self._renderers[key]

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        s = self.cfg.scene
        self.data.mocap_quat[0] = self._task.goal if self._task is not None else (1.0, 0.0, 0.0, 0.0)
        return self._renderer(s.video_width, s.video_height, show_goal=True).render(
            self.data, self.render_camera
        )

    def render_views(
        self, size: int | None = None, cameras: Iterable[str] = VISION_CAMERAS
    ) -> dict[str, np.ndarray]:
        """The vision cameras' images (uint8, size x size x 3) with pixel noise when randomized."""
        size = size or self.cfg.scene.vision_image_size
        renderer = self._renderer(size, size)
        std = self._pixel_noise_std
        return {c: add_pixel_noise(renderer.render(self.data, c), std, self.np_random) for c in cameras}

    def close(self) -> None:
        for renderer in self._renderers.values():
            renderer.close()
        self._renderers.clear()
