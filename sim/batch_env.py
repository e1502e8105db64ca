"""``BatchCubeReorientEnv``: N CubeReorient envs as one object, physics in native threads.

Why: stepping N ``CubeReorientEnv`` objects from Python threads spends the GIL on each env's task
logic, which kept 2 cores at 1.4-1.65x. Here the physics of all N envs is one call into
``mujoco.batch.Batch`` (MuJoCo's own thread pool, no GIL, each env on its own randomized model,
one persistent MjData per env), and the task logic around it runs once per step on (N, ...) arrays.

Exactness: every env is a real ``CubeReorientEnv`` (its model, randomizers, RNG, reset code); a
step draws from each env's RNG in the order ``CubeReorientEnv.step`` does and repeats its arithmetic
operation for operation, so the same seeds and actions give bit-identical observations, rewards
and infos to the single env and to the other ``sim.vec_env`` backends (tests/sim/test_batch_env.py).
Quaternion dot products go through row-wise matmul, which rounds as numpy's 1-D dot (tested);
acos, sin and cos are libm's per element, as in the scalar paths; the rest is element-wise numpy.
What stays per env is what must: one call on each env's RNG for its draws, goal resampling after a
success, and resets (the env's own ``reset``). The per-step Python is then a fixed cost plus a few
microseconds per env: the physics share of a step grows with N (0.84 at 8 envs, 0.92 at 16, 0.95
at 64 on one thread; ``dexhand bench sim``).

Per-env latency and backlash stay: backlash is element-wise, and latency is a per-env control
sequence over the substeps (the previous target for ``delay`` substeps, then the new one), run by
``Batch.rollout`` in the same call. Random pushes are the env's ``xfrc_applied`` row for that step.

The envs' own ``data`` is not updated by a step (the batch holds the state): ``env(i)``,
``get_attr``, ``env_method`` and rendering copy the batch's state into it first, so code that reads
a ``CubeReorientEnv``'s ``model``/``data`` (the planner, ADR hooks) sees the current state.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
from mujoco import batch as mj_batch
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvStepReturn

from sim import rotations
from sim.config import EnvConfig
from sim.env import _BADQACC, _BADQPOS, _BADQVEL, HAND_ORIGIN, CubeReorientEnv

_INTEGRATION = mujoco.mjtState.mjSTATE_INTEGRATION
_CTRL = mujoco.mjtState.mjSTATE_CTRL.value


def _hamilton_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise Hamilton product with the operation order of ``rotations._hamilton`` (exact)."""
    aw, ax, ay, az = a[:, 0], a[:, 1], a[:, 2], a[:, 3]
    bw, bx, by, bz = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    return np.stack(
        (
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ),
        axis=1,
    )


def _dots(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise dot products, rounded as numpy's 1-D ``a @ b`` (tests/sim/test_batch_env.py checks)."""
    return (a[:, None, :] @ b[:, :, None])[:, 0, 0]


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``rotations.distance`` for (N, 4) rows, bit-identical to its scalar path (libm's acos)."""
    dot = np.abs(_dots(a, b)) / np.sqrt(_dots(a, a) * _dots(b, b))
    return np.array([2.0 * math.acos(min(1.0, d)) for d in dot.tolist()])


def _relative_rows(current: np.ndarray, goal: np.ndarray) -> np.ndarray:
    """``rotations.relative`` for (N, 4) rows, bit-identical to its 1-D path."""
    rel = _hamilton_rows(goal, current * np.array([1.0, -1.0, -1.0, -1.0]))
    return np.where(rel[:, :1] >= 0, rel, -rel)


class BatchCubeReorientEnv(VecEnv):
    """``n_envs`` CubeReorient envs (SB3 VecEnv) whose physics runs on ``n_threads`` native threads.

    Env ``i`` is seeded ``seed + i`` by ``seed()`` as in every SB3 VecEnv; auto-reset puts
    ``terminal_observation`` and ``TimeLimit.truncated`` in the infos.
    """

    def __init__(
        self,
        n_envs: int,
        config: EnvConfig | None = None,
        overrides: Iterable[str] = (),
        n_threads: int | None = None,
    ) -> None:
        if n_envs < 1:
            raise ValueError(f"n_envs must be >= 1, got {n_envs}")
        overrides = tuple(overrides)
        self.envs = [CubeReorientEnv(config, overrides) for _ in range(n_envs)]
        first = self.envs[0]
        self.n_threads = max(1, min(n_threads or os.cpu_count() or 1, n_envs))
        self.batch = mj_batch.Batch(first.model, n_envs, nthread=self.n_threads, persistent=True)
        self.batch.set_models([e.model for e in self.envs])
        self._pool = ThreadPoolExecutor(self.n_threads, thread_name_prefix="dexhand-reset") if self.n_threads > 1 else None
        ids = first.ids
        self.ids = ids
        self.substeps = first.cfg.scene.substeps
        self.nu = first.model.nu
        self.ctrl_low, self.ctrl_high = first.ctrl_low, first.ctrl_high
        self.action_step = first.action_step  # ctrl ranges are not randomized: one row serves all
        self._state = self.batch.state  # (N, nstate) integration state rows
        self._qpos = self.batch.bind("qpos")
        self._qvel = self.batch.bind("qvel")
        self._xfrc = self.batch.bind("xfrc_applied")
        self._site_xpos = self.batch.bind("site_xpos")
        self._warnings = self.batch.warning  # (N, nwarning, 2): [lastinfo, number]
        self._unstable_warnings = [_BADQACC, _BADQPOS, _BADQVEL]
        n = n_envs
        self._target = np.zeros((n, self.nu))
        self._previous_action = np.zeros((n, self.nu))
        self._backlash = np.zeros((n, self.nu))
        self._start_height = np.zeros(n)
        self._scene_params = np.zeros((n, first.n_scene_params))
        # Task state (the envs' TaskState objects get it back in _sync_task).
        self._goal = np.zeros((n, 4))
        self._goal[:, 0] = 1.0
        self._prev_distance = np.zeros(n)
        self._successes = np.zeros(n, dtype=np.int64)
        self._since_goal = np.zeros(n, dtype=np.int64)
        self._episode_steps = np.zeros(n, dtype=np.int64)
        # Observation noise, per env: its strength's stds and this episode's offsets.
        self._noise_on = np.zeros(n, dtype=bool)
        self._std = {key: np.zeros(n) for key in ("fingertip_pos", "cube_pos", "joint_pos", "cube_quat")}
        self._offset = {"fingertip_pos": np.zeros((n, 15)), "cube_pos": np.zeros((n, 3)),
                        "joint_pos": np.zeros((n, len(ids.hand_qpos))), "cube_quat": np.zeros((n, 4))}
        self._control = np.empty((n, self.substeps, self.nu))
        self._substep_index = np.arange(self.substeps)[None, :, None]
        self._actions: np.ndarray | None = None
        self._data_stale = np.zeros(n, dtype=bool)  # env.data behind the batch's state
        self._task_stale = np.zeros(n, dtype=bool)  # env._task and counters behind the arrays
        # A list here receives (state rows, control sequence) before each physics call: what
        # ``dexhand bench sim`` replays as raw mj_step to measure the physics share of a step.
        self.physics_log: list[tuple[np.ndarray, np.ndarray]] | None = None
        super().__init__(n_envs, first.observation_space, first.action_space)

    # ------------------------------------------------------------------------ bookkeeping
    def _adopt(self, i: int) -> None:
        """Env i was just reset on its own MjData: load its state, episode constants and task."""
        env = self.envs[i]
        mujoco.mj_getState(env.model, env.data, self._state[i], _INTEGRATION)
        self._target[i] = env._target
        self._previous_action[i] = env._previous_action
        self._backlash[i] = env.action_perturbation.backlash
        self._start_height[i] = env._start_height
        self._scene_params[i] = env._scene_params
        task = env._task
        self._goal[i] = task.goal
        self._prev_distance[i] = task.previous_distance
        self._successes[i] = task.consecutive_successes
        self._since_goal[i] = task.steps_since_goal
        self._episode_steps[i] = env._episode_steps
        noise = env.obs_noise
        self._noise_on[i] = noise.strength > 0
        for key, std in self._std.items():
            std[i] = getattr(noise.cfg, key)[1] * noise.strength  # as ObservationNoiseModel computes it
        for key, offset in self._offset.items():
            offset[i] = noise.offsets[key]
        self._data_stale[i] = self._task_stale[i] = False

    def _sync_task(self, i: int) -> None:
        """Write env i's step bookkeeping back to the env object (its TaskState, target, counters)."""
        if not self._task_stale[i]:
            return
        env, task = self.envs[i], self.envs[i]._task
        task.goal = self._goal[i].copy()
        task.previous_distance = float(self._prev_distance[i])
        task.consecutive_successes = int(self._successes[i])
        task.steps_since_goal = int(self._since_goal[i])
        env._episode_steps = int(self._episode_steps[i])
        env._target = self._target[i].copy()
        env._previous_action = self._previous_action[i].copy()
        self._task_stale[i] = False

    def _reset_envs(self, indices: Sequence[int], kwargs: Sequence[dict[str, Any]]) -> list[tuple[Any, Any]]:
        """Run each env's own ``reset`` (randomization, cube placement, settling) and adopt it.

        Resets run on a thread pool when there are several: their settling steps release the GIL.
        """
        def one(k: int) -> tuple[Any, Any]:
            return self.envs[indices[k]].reset(**kwargs[k])

        if self._pool is not None and len(indices) > 1:
            results = list(self._pool.map(one, range(len(indices))))
        else:
            results = [one(k) for k in range(len(indices))]
        for i in indices:
            self._adopt(i)
        self.batch.set_models([e.model for e in self.envs])  # reset rewrote randomized fields
        return results

    def sync(self, indices: VecEnvIndices = None) -> None:
        """Bring these envs' objects up to date: ``data`` (whole MjData), TaskState, target, counters."""
        for i in self._get_indices(indices):
            self._sync_task(i)
            if self._data_stale[i]:
                self.batch.get_data(i, self.envs[i].data)
                self._data_stale[i] = False

    def env(self, i: int) -> CubeReorientEnv:
        """Env i with its ``data`` and task state current (for code that reads ``model``/``data``).

        For reading (a planner's rollouts from its state, ADR hooks, rendering): the batch holds the
        state, so calling ``step``/``reset`` on this object directly is not seen by the batch; step
        through the VecEnv. The object stays valid across steps; call ``env(i)`` again to refresh.
        """
        self.sync([i])
        return self.envs[i]

    # ------------------------------------------------------------------------ VecEnv API
    def reset(self):
        kwargs = []
        for i in range(self.num_envs):
            kw: dict[str, Any] = {"seed": self._seeds[i]}
            if self._options[i]:
                kw["options"] = self._options[i]
            kwargs.append(kw)
        results = self._reset_envs(range(self.num_envs), kwargs)
        self.reset_infos = [info for _, info in results]
        self._reset_seeds()
        self._reset_options()
        return {k: np.stack([obs[k] for obs, _ in results]) for k in self.observation_space.spaces}

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def _units(self, actions: Any) -> np.ndarray:
        """``CubeReorientEnv._action_to_unit`` for (N, nu) actions."""
        a = np.asarray(actions)
        shape = (self.num_envs, *self.action_space.shape)
        if a.shape != shape:
            raise ValueError(f"actions have shape {a.shape}, expected {shape}")
        task = self.envs[0].cfg.task
        if task.action_mode == "discrete":
            if not np.issubdtype(a.dtype, np.integer):
                if not np.all(np.isfinite(a)):
                    raise ValueError("action contains NaN or inf")
                if not np.all(a == np.round(a)):
                    raise ValueError("discrete action must hold integer bin indices")
            bins = task.action_bins
            if np.any(a < 0) or np.any(a >= bins):
                raise ValueError(f"discrete action bins must be in [0, {bins - 1}]")
            return a.astype(np.float64) / (bins - 1) * 2.0 - 1.0
        a = a.astype(np.float64)
        finite = np.isfinite(a)
        if not finite.all():
            env_i = int(np.flatnonzero(~finite.all(axis=1))[0])
            bad = np.flatnonzero(~finite[env_i]).tolist()
            raise ValueError(f"action of env {env_i} contains NaN or inf at indices {bad}")
        return np.clip(a, -1.0, 1.0)

    def step_wait(self) -> VecEnvStepReturn:
        if self._actions is None:
            raise RuntimeError("step_wait() without step_async()")
        actions, self._actions = self._actions, None
        unit = self._units(actions)
        n, envs, ids, substeps = self.num_envs, self.envs, self.ids, self.substeps
        if any(env._task is None for env in envs):
            raise RuntimeError("call reset() before step()")

        # Targets: relative to the last commanded target, then each env's backlash dead band.
        previous = self._target
        desired = np.clip(previous + unit * self.action_step, self.ctrl_low, self.ctrl_high)
        delta = desired - previous
        new_target = previous + np.sign(delta) * np.maximum(np.abs(delta) - self._backlash, 0.0)

        # Per env, the RNG draws of CubeReorientEnv.step in its order: push, then latency.
        delays = np.zeros(n, dtype=np.int64)
        pushed = []
        for i, env in enumerate(envs):
            rng = env.np_random
            force = env.forces.force(rng, env._cube_mass)
            if force is not None:
                self._xfrc[i, ids.cube_body, :3] = force
                pushed.append(i)
            delays[i] = env.action_perturbation.delay_substeps(rng, substeps)
        np.copyto(self._control, np.where(self._substep_index < delays[:, None, None],
                                          previous[:, None, :], new_target[:, None, :]))
        before = self._warnings[:, self._unstable_warnings, 1].sum(axis=1)
        if self.physics_log is not None:
            self.physics_log.append((self._state.copy(), self._control.copy()))
        try:
            self.batch.rollout(substeps, control=self._control, control_spec=_CTRL, record=())
        except mj_batch.SimulationError as exc:  # MuJoCo raised: those envs kept their state
            before[exc.ids] = -1  # treated as unstable below
        for i in pushed:
            self._xfrc[i, ids.cube_body, :3] = 0.0
        self._data_stale[:] = True
        self._task_stale[:] = True
        self._target = new_target
        self._previous_action = unit
        self._episode_steps += 1
        qpos = self._qpos
        unstable = (self._warnings[:, self._unstable_warnings, 1].sum(axis=1) > before) | ~np.isfinite(qpos).all(axis=1)
        stable = ~unstable

        # Task (sim.task.evaluate_step on arrays, operation for operation).
        cfg = envs[0].cfg
        task_cfg, rw = cfg.task, cfg.task.rewards
        cq = ids.cube_qpos
        raw_quat = qpos[:, cq + 3:cq + 7]
        cube_quat = raw_quat / np.sqrt(_dots(raw_quat, raw_quat))[:, None]
        drops = self._start_height - qpos[:, cq + 2]
        distance = _distances(cube_quat, self._goal)
        reward = rw.rotation_progress * (self._prev_distance - distance)
        dropped = (drops > task_cfg.drop_height) & stable
        success = ~dropped & (distance < task_cfg.success_threshold) & stable
        reward = np.where(success, reward + rw.success_bonus, reward)
        reward = np.where(dropped, reward + rw.drop_penalty, reward)
        reward[unstable] = 0.0
        distance = np.where(stable, distance, self._prev_distance)  # an unstable step reports the last
        self._prev_distance = distance.copy()
        self._since_goal = np.where(stable, np.where(success, 0, self._since_goal + 1), self._since_goal)
        self._successes = self._successes + success
        terminated = dropped | ((self._successes >= task_cfg.max_consecutive_successes) & stable)
        truncated = (stable & ~terminated & (self._since_goal >= task_cfg.goal_timeout_steps)) | unstable
        truncated |= stable & (self._episode_steps >= cfg.max_episode_steps)
        for i in np.flatnonzero(success & ~terminated):  # next goal, from the env's RNG (before its noise)
            env = envs[i]
            self._goal[i] = env._sample_goal(env.np_random, cube_quat[i])
            self._prev_distance[i] = rotations.distance(cube_quat[i], self._goal[i])
        dones = terminated | truncated
        for i in np.flatnonzero(dones & stable):
            env = envs[i]
            if env.schedule is not None:
                env.schedule.report(env._episode_strengths, int(self._successes[i]))

        obs = self._observations(cube_quat, unstable)
        goals = self._goal.copy()
        rewards = reward.astype(np.float32)
        time_limit = truncated & ~terminated
        infos = [
            {"is_success": s, "consecutive_successes": c, "dropped": d, "rotation_distance": r,
             "sim_unstable": u, "goal_quat": g, "TimeLimit.truncated": t}
            for s, c, d, r, u, g, t in zip(success.tolist(), self._successes.tolist(), dropped.tolist(),
                                           distance.tolist(), unstable.tolist(), goals, time_limit.tolist())
        ]
        done_ids = np.flatnonzero(dones).tolist()
        if done_ids:
            for i in done_ids:
                infos[i]["terminal_observation"] = {k: v[i].copy() for k, v in obs.items()}
                self._sync_task(i)
            results = self._reset_envs(done_ids, [{} for _ in done_ids])
            for i, (reset_obs, reset_info) in zip(done_ids, results):
                for k in obs:
                    obs[k][i] = reset_obs[k]
                self.reset_infos[i] = reset_info
        return obs, rewards, dones, infos

    def _observations(self, cube_quat: np.ndarray, unstable: np.ndarray) -> dict[str, np.ndarray]:
        """``CubeReorientEnv._observation`` for all envs: per-env noise draws, vectorised maths."""
        n, ids, envs = self.num_envs, self.ids, self.envs
        for i in np.flatnonzero(unstable):  # as the single env: reset data, observe that
            env = envs[i]
            self.batch.reset([int(i)])
            mujoco.mj_resetData(env.model, env.data)
            mujoco.mj_getState(env.model, env.data, self._state[i], _INTEGRATION)
            cube_quat[i] = env._cube_quat()
        qpos, qvel, goals = self._qpos, self._qvel, self._goal
        tips = (self._site_xpos[:, ids.fingertip_sites] - HAND_ORIGIN).reshape(n, -1)
        cq = ids.cube_qpos
        cube_pos = qpos[:, cq:cq + 3] - HAND_ORIGIN
        joints = qpos[:, ids.hand_qpos]
        for i in np.flatnonzero(unstable):  # derived fields of the reset data, as the env reads them
            tips[i] = envs[i].fingertip_positions().ravel()
        include_joints = envs[0].cfg.task.include_joint_angles
        noisy_tips, noisy_pos, noisy_quat = tips, cube_pos, cube_quat
        noisy_joints = joints
        noisy = np.flatnonzero(self._noise_on)
        if len(noisy):
            # One draw per env, in the env's order: the quaternion's axis (3) and angle (1) when its
            # std is > 0, then fingertips (15), cube position (3), joints; rng.normal(0, std, k) is
            # 0.0 + std x standard_normal(k), so one standard_normal call gives the same numbers.
            c = envs[0].obs_noise.cfg
            quat_draws = 4 if c.cube_quat[1] > 0 else 0
            n_tips, n_joints = tips.shape[1], joints.shape[1]
            k = quat_draws + n_tips + 3 + (n_joints if include_joints else 0)
            z = np.empty((len(noisy), k))
            for row, i in enumerate(noisy):
                z[row] = envs[i].np_random.standard_normal(k)
            std, off = self._std, self._offset
            quat = _hamilton_rows(off["cube_quat"][noisy], cube_quat[noisy])
            if quat_draws:
                axis, angle = z[:, :3], 0.0 + std["cube_quat"][noisy] * z[:, 3]
                norm = np.sqrt(axis[:, 0] * axis[:, 0] + axis[:, 1] * axis[:, 1] + axis[:, 2] * axis[:, 2])
                half = (0.5 * angle).tolist()  # libm's sin and cos, as rotations.from_axis_angle
                sin = np.array([math.sin(h) for h in half]) / norm
                step = np.column_stack([np.array([math.cos(h) for h in half]), axis * sin[:, None]])
                quat = _hamilton_rows(step, quat)
            col = quat_draws
            noisy_quat = cube_quat.copy()
            noisy_quat[noisy] = quat
            noisy_tips = tips.copy()
            noisy_tips[noisy] = (tips[noisy] + off["fingertip_pos"][noisy]
                                 + (0.0 + std["fingertip_pos"][noisy, None] * z[:, col:col + n_tips]))
            col += n_tips
            noisy_pos = cube_pos.copy()
            noisy_pos[noisy] = cube_pos[noisy] + off["cube_pos"][noisy] + (0.0 + std["cube_pos"][noisy, None] * z[:, col:col + 3])
            col += 3
            if include_joints:
                noisy_joints = joints.copy()
                noisy_joints[noisy] = (joints[noisy] + off["joint_pos"][noisy]
                                       + (0.0 + std["joint_pos"][noisy, None] * z[:, col:]))
        noisy_quat = noisy_quat * np.where(noisy_quat[:, :1] >= 0, 1.0, -1.0)
        parts = [noisy_tips, noisy_pos, noisy_quat, goals, _relative_rows(noisy_quat, goals), self._previous_action]
        if include_joints:
            parts.append(noisy_joints)
        cv = ids.cube_qvel
        critic = [joints, qvel[:, ids.hand_qvel], cube_pos, cube_quat, qvel[:, cv:cv + 6], goals,
                  _relative_rows(cube_quat, goals), tips, self._previous_action, self._scene_params]
        return {
            "policy": np.concatenate(parts, axis=1).astype(np.float32),
            "critic": np.concatenate(critic, axis=1).astype(np.float32),
        }

    # ------------------------------------------------------------------------ per-env access
    def env_method(self, method_name: str, *method_args, indices: VecEnvIndices = None, **method_kwargs) -> list[Any]:
        targets = list(self._get_indices(indices))
        self.sync(targets)
        return [getattr(self.envs[i], method_name)(*method_args, **method_kwargs) for i in targets]

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        targets = list(self._get_indices(indices))
        self.sync(targets)
        return [getattr(self.envs[i], attr_name) for i in targets]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        for i in self._get_indices(indices):
            setattr(self.envs[i], attr_name, value)

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]

    def get_images(self) -> Sequence[np.ndarray | None]:
        self.sync()
        return [env.render() for env in self.envs]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        for env in self.envs:
            env.close()


class ShardedBatchEnv(VecEnv):
    """``n_envs`` envs as ``n_shards`` batched envs (one native thread each), stepped by Python threads.

    Why: in one ``BatchCubeReorientEnv`` the task logic runs on one core while the physics threads
    wait for it. Here each shard's physics releases the GIL while another shard's task logic holds
    it, so the task logic overlaps the physics instead of adding to it. Shard ``k`` holds a
    contiguous slice of envs; seeds, trajectories and infos are those of the unsharded env.
    """

    def __init__(self, n_envs: int, config: EnvConfig | None = None, overrides: Iterable[str] = (),
                 n_shards: int | None = None) -> None:
        overrides = tuple(overrides)
        n_shards = max(1, min(n_shards or os.cpu_count() or 1, n_envs))
        bounds = np.linspace(0, n_envs, n_shards + 1).astype(int)
        self.slices = [range(int(bounds[k]), int(bounds[k + 1])) for k in range(n_shards)]
        self.shards = [BatchCubeReorientEnv(len(s), config, overrides, n_threads=1) for s in self.slices]
        self.envs = [env for shard in self.shards for env in shard.envs]
        self._pool = ThreadPoolExecutor(n_shards, thread_name_prefix="dexhand-shard")
        self._actions: np.ndarray | None = None
        first = self.shards[0]
        super().__init__(n_envs, first.observation_space, first.action_space)

    def _each(self, fn) -> list[Any]:
        if len(self.shards) == 1:
            return [fn(0)]
        return list(self._pool.map(fn, range(len(self.shards))))  # re-raises a shard's exception

    def _route(self, indices: VecEnvIndices) -> list[tuple[int, list[int]]]:
        wanted = list(self._get_indices(indices))
        out = []
        for k, s in enumerate(self.slices):
            local = [i - s.start for i in wanted if i in s]
            if local:
                out.append((k, local))
        order = [i for k, local in out for i in (self.slices[k].start + j for j in local)]
        if order != wanted:  # results come back grouped by shard: keep the caller's order
            self._order = [order.index(i) for i in wanted]
        else:
            self._order = None
        return out

    def _ordered(self, results: list[Any]) -> list[Any]:
        return results if self._order is None else [results[j] for j in self._order]

    def reset(self):
        for k, s in enumerate(self.slices):
            shard = self.shards[k]
            shard._seeds = [self._seeds[i] for i in s]
            shard._options = [self._options[i] for i in s]
        parts = self._each(lambda k: self.shards[k].reset())
        self.reset_infos = [info for shard in self.shards for info in shard.reset_infos]
        self._reset_seeds()
        self._reset_options()
        return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self) -> VecEnvStepReturn:
        if self._actions is None:
            raise RuntimeError("step_wait() without step_async()")
        actions, self._actions = self._actions, None
        if actions.shape[0] != self.num_envs:
            raise ValueError(f"actions have shape {actions.shape}, expected ({self.num_envs}, ...)")
        parts = self._each(lambda k: self.shards[k].step(actions[self.slices[k].start:self.slices[k].stop]))
        self.reset_infos = [info for shard in self.shards for info in shard.reset_infos]
        obs = {key: np.concatenate([p[0][key] for p in parts]) for key in parts[0][0]}
        return (obs, np.concatenate([p[1] for p in parts]), np.concatenate([p[2] for p in parts]),
                [info for p in parts for info in p[3]])

    def env(self, i: int) -> CubeReorientEnv:
        k = next(k for k, s in enumerate(self.slices) if i in s)
        return self.shards[k].env(i - self.slices[k].start)

    def sync(self, indices: VecEnvIndices = None) -> None:
        for k, local in self._route(indices):
            self.shards[k].sync(local)

    def env_method(self, method_name: str, *method_args, indices: VecEnvIndices = None, **method_kwargs) -> list[Any]:
        routes = self._route(indices)
        out = [r for k, local in routes
               for r in self.shards[k].env_method(method_name, *method_args, indices=local, **method_kwargs)]
        return self._ordered(out)

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        routes = self._route(indices)
        return self._ordered([r for k, local in routes for r in self.shards[k].get_attr(attr_name, local)])

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        for k, local in self._route(indices):
            self.shards[k].set_attr(attr_name, value, local)

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]

    def get_images(self) -> Sequence[np.ndarray | None]:
        return [img for shard in self.shards for img in shard.get_images()]

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        for shard in self.shards:
            shard.close()
