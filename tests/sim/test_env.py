import gymnasium as gym
import numpy as np
import pytest

from sim import rotations


def test_gymnasium_env_checker():
    from gymnasium.utils.env_checker import check_env

    env = gym.make("dexhand/CubeReorient-v0")
    check_env(env.unwrapped, skip_render_check=True)
    env.close()


def test_sb3_env_checker():
    from stable_baselines3.common.env_checker import check_env

    env = gym.make("dexhand/CubeReorient-v0").unwrapped
    check_env(env, warn=True)
    env.close()


@pytest.mark.parametrize("env_id", ["dexhand/CubeReorientZ-v0", "dexhand/CubeReorientFaces-v0",
                                    "dexhand/CubeReorientNominal-v0"])
def test_registered_variants(env_id):
    env = gym.make(env_id)
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    env.close()


def rollout(seed: int, steps: int = 25):
    env = gym.make("dexhand/CubeReorient-v0").unwrapped
    obs, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    trace = [obs["critic"].copy()]
    for _ in range(steps):
        obs, reward, term, trunc, info = env.step(env.action_space.sample() * 0.5)
        trace.append(np.concatenate([obs["critic"], obs["policy"], [reward]]))
        if term or trunc:
            break
    env.close()
    return trace


def test_same_seed_same_trajectory_different_seed_differs():
    a, b, c = rollout(7), rollout(7), rollout(8)
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.allclose(a[1], c[1])


def test_observation_layout_and_info(nominal_env):
    env = nominal_env
    obs, info = env.reset(seed=0)
    lay = env.layout
    p = obs["policy"]
    assert p.shape == (50,)
    np.testing.assert_allclose(p[lay["fingertip_pos"]].reshape(5, 3), env.fingertip_positions(), atol=1e-6)
    np.testing.assert_allclose(p[lay["goal_quat"]], info["goal_quat"], atol=1e-6)
    np.testing.assert_allclose(abs(np.dot(p[lay["cube_quat"]], env.cube_quat)), 1.0, atol=1e-6)
    assert info["rotation_distance"] == pytest.approx(rotations.distance(env.cube_quat, info["goal_quat"]), abs=1e-6)
    assert set(info) >= {"is_success", "consecutive_successes", "dropped", "rotation_distance", "sim_unstable"}
    obs, *_ = env.step(np.full(20, 0.5, dtype=np.float32))
    np.testing.assert_allclose(obs["policy"][lay["previous_action"]], 0.5)


def test_joint_angles_are_optional():
    from sim.env import CubeReorientEnv

    env = CubeReorientEnv(overrides=["task.include_joint_angles=true", "randomization.enabled=false"])
    obs, _ = env.reset(seed=0)
    assert obs["policy"].shape == (74,)
    np.testing.assert_allclose(obs["policy"][env.layout["joint_pos"]], env.data.qpos[env.ids.hand_qpos], atol=1e-6)
    env.close()


@pytest.mark.parametrize(
    ("action", "message"),
    [
        (np.full(20, np.nan), "NaN or inf"),
        (np.r_[np.zeros(19), np.inf], "NaN or inf"),
        (np.zeros(19), "shape"),
        (np.zeros((2, 20)), "shape"),
    ],
)
def test_bad_actions_raise_and_never_reach_mujoco(nominal_env, action, message):
    env = nominal_env
    env.reset(seed=0)
    ctrl, qpos, time = env.data.ctrl.copy(), env.data.qpos.copy(), env.data.time
    with pytest.raises(ValueError, match=message):
        env.step(action)
    np.testing.assert_array_equal(env.data.ctrl, ctrl)
    np.testing.assert_array_equal(env.data.qpos, qpos)
    assert env.data.time == time


def test_step_before_reset_is_an_error():
    from sim.env import CubeReorientEnv

    with pytest.raises(RuntimeError, match="reset"):
        CubeReorientEnv().step(np.zeros(20))


def test_discrete_actions_map_bins_to_relative_targets():
    from sim.env import CubeReorientEnv

    env = CubeReorientEnv(overrides=["task.action_mode=discrete", "randomization.enabled=false"])
    env.reset(seed=0)
    assert env.action_space.nvec.tolist() == [11] * 20
    before = env._target.copy()
    env.step(np.full(20, 5))  # the middle bin is "no change"
    np.testing.assert_allclose(env._target, before)
    env.step(np.full(20, 10))  # the top bin raises every target by action_step (up to its limit)
    np.testing.assert_allclose(env._target, np.minimum(before + env.action_step, env.ctrl_high))
    with pytest.raises(ValueError, match="bins"):
        env.step(np.full(20, 11))
    env.close()


def test_instability_truncates_with_flag_instead_of_crashing(nominal_env):
    env = nominal_env
    env.reset(seed=0)
    env.data.qvel[:] = 1e12  # blow the state up
    obs, reward, term, trunc, info = env.step(np.zeros(20, dtype=np.float32))
    assert trunc and not term and info["sim_unstable"]
    assert np.all(np.isfinite(obs["policy"])) and np.all(np.isfinite(obs["critic"]))
    env.reset(seed=1)  # and the env is usable again
    _, _, _, _, info = env.step(np.zeros(20, dtype=np.float32))
    assert not info["sim_unstable"]


def test_cube_spawns_without_interpenetration_and_rests_in_hand(nominal_env):
    env = nominal_env
    for seed in range(5):
        env.reset(seed=seed)
        d = env.data
        cube = env.ids.cube_geom
        depths = [-c.dist for c in d.contact[: d.ncon] if cube in (c.geom1, c.geom2)]
        assert not depths or max(depths) < 2e-3  # mm-scale contact after landing
        for _ in range(25):  # two seconds holding still: the cube stays in the hand
            _, _, term, _, info = env.step(np.zeros(20, dtype=np.float32))
        assert not info["dropped"]


def test_rendered_images_change_where_the_cube_moves(nominal_env):
    env = nominal_env
    env.reset(seed=0)
    before = env.render_views(64)
    qadr = env.ids.cube_qpos
    env.data.qpos[qadr + 3 : qadr + 7] = rotations.from_axis_angle(np.array([1.0, 0, 0]), np.pi / 2)
    import mujoco

    mujoco.mj_forward(env.model, env.data)
    after = env.render_views(64)
    for cam in before:
        diff = np.abs(before[cam].astype(int) - after[cam].astype(int)).sum(axis=-1) > 30
        assert diff.any(), cam
        ys, xs = np.nonzero(diff)
        # The changed pixels sit around the cube's projection, not all over the image.
        assert diff.mean() < 0.25, cam
    assert before["cam_top"].shape == (64, 64, 3) and before["cam_top"].dtype == np.uint8


def test_goal_option_sets_the_goal(nominal_env):
    goal = rotations.from_axis_angle(np.array([0.0, 1.0, 0.0]), 1.0)
    _, info = nominal_env.reset(seed=0, options={"goal": goal})
    np.testing.assert_allclose(info["goal_quat"], goal)
