"""The batched env against the single env: same seeds and actions give bit-identical results.

Short goal timeouts and a wide success radius make episodes end, goals resample and envs auto-reset
inside a few dozen steps, so every branch of the vectorised task logic is compared; full
randomization is on (latency, backlash, pushes, observation noise).
"""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

from sim.batch_env import BatchCubeReorientEnv
from sim.vec_env import DEFAULT_BACKEND, make_vec_env

N = 3
BUSY = ["task.goal_timeout_steps=9", "task.success_threshold=1.2", "task.include_joint_angles=true"]


def assert_same_step(a, b) -> None:
    (obs_a, rew_a, done_a, infos_a), (obs_b, rew_b, done_b, infos_b) = a, b
    for key in obs_b:
        np.testing.assert_array_equal(obs_a[key], obs_b[key], err_msg=key)
    np.testing.assert_array_equal(rew_a, rew_b)
    np.testing.assert_array_equal(done_a, done_b)
    for ia, ib in zip(infos_a, infos_b):
        assert set(ia) == set(ib)
        for key, value in ib.items():
            if key == "terminal_observation":
                for k in value:
                    np.testing.assert_array_equal(ia[key][k], value[k])
            else:
                np.testing.assert_array_equal(ia[key], value, err_msg=key)


def test_batched_equals_single_envs_step_for_step():
    batched = make_vec_env(N, overrides=BUSY, backend="batch", n_workers=2, seed=11)
    single = make_vec_env(N, overrides=BUSY, backend="serial", seed=11)
    try:
        assert isinstance(batched, BatchCubeReorientEnv)
        first_a, first_b = batched.reset(), single.reset()
        for key in first_b:
            np.testing.assert_array_equal(first_a[key], first_b[key])
        rng = np.random.default_rng(1)
        ended = successes = 0
        for _ in range(40):
            actions = rng.uniform(-1, 1, (N, 20)).astype(np.float32)
            a, b = batched.step(actions), single.step(actions)
            assert_same_step(a, b)
            ended += int(b[2].sum())
            successes += sum(i["is_success"] for i in b[3])
        assert ended >= N and successes >= 1  # resets and goal resampling were exercised
        # The env objects see the batch's state (planner / ADR code reads model and data).
        env = batched.env(1)
        np.testing.assert_array_equal(env.data.qpos, single.envs[1].data.qpos)
        np.testing.assert_array_equal(env.data.site_xpos, single.envs[1].data.site_xpos)
        assert batched.get_attr("_episode_steps") == single.get_attr("_episode_steps")
    finally:
        batched.close()
        single.close()


def test_discrete_actions_and_env_methods_match():
    overrides = ["task.action_mode=discrete", "task.goal_timeout_steps=5"]
    batched = make_vec_env(2, overrides=overrides, backend="batch", n_workers=1, seed=4)
    single = make_vec_env(2, overrides=overrides, backend="serial", seed=4)
    try:
        for vec in (batched, single):
            vec.env_method("set_goal_mode", "z", indices=[1])
            vec.reset()
        assert [c.task.goal_mode for c in batched.get_attr("cfg")] == ["full", "z"]
        rng = np.random.default_rng(2)
        for _ in range(12):
            actions = rng.integers(0, 11, (2, 20))
            assert_same_step(batched.step(actions), single.step(actions))
    finally:
        batched.close()
        single.close()


def test_bad_actions_are_named_and_never_reach_mujoco():
    vec = BatchCubeReorientEnv(2, n_threads=1)
    try:
        vec.reset()
        before = vec.batch.state.copy()
        actions = np.zeros((2, 20), dtype=np.float32)
        actions[1, 3] = np.nan
        with pytest.raises(ValueError, match=r"env 1 .*indices \[3\]"):
            vec.step(actions)
        with pytest.raises(ValueError, match="shape"):
            vec.step(np.zeros((3, 20), dtype=np.float32))
        np.testing.assert_array_equal(vec.batch.state, before)
    finally:
        vec.close()


def test_a_diverged_env_is_truncated_and_reset_alone():
    vec = BatchCubeReorientEnv(2, n_threads=1, overrides=["randomization.enabled=false"])
    try:
        vec.reset()
        vec._qvel[0, :] = 1e12  # env 0 blows up on its next substep; env 1 is untouched
        obs, rew, done, infos = vec.step(np.zeros((2, 20), dtype=np.float32))
        assert done.tolist() == [True, False]
        assert infos[0]["sim_unstable"] and infos[0]["TimeLimit.truncated"] and rew[0] == 0.0
        assert not infos[1]["sim_unstable"]
        assert np.isfinite(obs["critic"]).all()
        obs, rew, done, infos = vec.step(np.zeros((2, 20), dtype=np.float32))
        assert not done.any() and np.isfinite(obs["policy"]).all()
    finally:
        vec.close()


def test_batch_is_the_default_backend():
    assert DEFAULT_BACKEND == "batch"
    vec = make_vec_env(1, overrides=["randomization.enabled=false"])
    try:
        assert isinstance(vec, BatchCubeReorientEnv)
        assert vec.batch.persistent and vec.batch.nsim == 1
        assert mujoco.mj_stateSize(vec.envs[0].model, mujoco.mjtState.mjSTATE_INTEGRATION) == vec.batch.nstate
    finally:
        vec.close()


def test_row_wise_quaternion_maths_rounds_as_the_single_env():
    from sim import rotations
    from sim.batch_env import _distances, _dots, _relative_rows

    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(2000, 4)), rng.normal(size=(2000, 4))
    np.testing.assert_array_equal(_dots(a, b), [float(x @ y) for x, y in zip(a, b)])
    np.testing.assert_array_equal(np.sqrt(_dots(a, a)), [np.linalg.norm(x) for x in a])
    np.testing.assert_array_equal(_distances(a, b), [rotations.distance(x, y) for x, y in zip(a, b)])
    np.testing.assert_array_equal(_relative_rows(a, b), [rotations.relative(x, y) for x, y in zip(a, b)])


def test_shards_equal_single_envs_and_route_by_index():
    sharded = make_vec_env(5, overrides=BUSY, backend="shards", n_workers=2, seed=7)
    single = make_vec_env(5, overrides=BUSY, backend="serial", seed=7)
    try:
        assert [len(s) for s in sharded.slices] == [2, 3]
        for vec in (sharded, single):
            vec.env_method("set_goal_mode", "z", indices=[4, 1])
        first_a, first_b = sharded.reset(), single.reset()
        for key in first_b:
            np.testing.assert_array_equal(first_a[key], first_b[key])
        modes = [c.task.goal_mode for c in sharded.get_attr("cfg", indices=[4, 0, 1])]
        assert modes == ["z", "full", "z"]  # the caller's order, across shards
        rng = np.random.default_rng(3)
        for _ in range(15):
            actions = rng.uniform(-1, 1, (5, 20)).astype(np.float32)
            assert_same_step(sharded.step(actions), single.step(actions))
        np.testing.assert_array_equal(sharded.env(3).data.qpos, single.envs[3].data.qpos)
    finally:
        sharded.close()
        single.close()


def test_bench_replay_reproduces_the_batched_physics():
    """``dexhand bench sim``'s replay ratio times the same physics the env ran: raw mj_step from the
    logged state and per-substep controls lands on the batch's next state exactly."""
    from dexhand.bench.simulation import _replay

    vec = BatchCubeReorientEnv(2, n_threads=1, overrides=["randomization.action_latency_steps=1"])
    try:
        vec.seed(0)
        vec.reset()
        vec.physics_log = log = []
        vec.step(np.random.default_rng(0).uniform(-1, 1, (2, 20)).astype(np.float32))
        state, control = log[0]
        assert (control[:, 0] != control[:, -1]).any()  # a latency split was exercised
        data = mujoco.MjData(vec.envs[0].model)
        for i, env in enumerate(vec.envs):
            wall, cpu = _replay([env.model], data, state[i:i + 1], control[i:i + 1])
            assert wall > 0 and cpu >= 0
            np.testing.assert_array_equal(data.qpos, vec._qpos[i])
    finally:
        vec.close()
