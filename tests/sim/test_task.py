import numpy as np
import pytest

from dexhand.robot.goals import upright
from sim import rotations
from sim.config import TaskConfig
from sim.task import FACE_ORIENTATIONS, TaskState, evaluate_step, sample_goal

IDENTITY = np.array([1.0, 0.0, 0.0, 0.0])


def turned(angle: float) -> np.ndarray:
    return rotations.from_axis_angle(np.array([0.0, 0.0, 1.0]), angle)


def test_reward_is_the_decrease_of_rotation_distance():
    cfg = TaskConfig()
    state = TaskState(goal=turned(1.5), previous_distance=1.5)
    out = evaluate_step(cfg, state, turned(0.5), cube_height_drop=0.0)
    assert out.distance == pytest.approx(1.0)
    assert out.reward == pytest.approx(0.5)
    assert not out.success and not out.terminated and not out.truncated


def test_success_adds_bonus_and_counts():
    cfg = TaskConfig()
    state = TaskState(goal=turned(0.5), previous_distance=0.5)
    out = evaluate_step(cfg, state, turned(0.2), cube_height_drop=0.0)  # 0.3 rad < 0.4
    assert out.success
    assert out.reward == pytest.approx(0.2 + cfg.rewards.success_bonus)
    assert state.consecutive_successes == 1 and state.steps_since_goal == 0


def test_just_outside_threshold_is_not_success():
    state = TaskState(goal=turned(0.41), previous_distance=0.41)
    assert not evaluate_step(TaskConfig(), state, IDENTITY, 0.0).success


def test_drop_penalizes_and_terminates():
    cfg = TaskConfig()
    state = TaskState(goal=IDENTITY, previous_distance=0.0)
    out = evaluate_step(cfg, state, IDENTITY, cube_height_drop=cfg.drop_height + 0.01)
    assert out.dropped and out.terminated and not out.success
    assert out.reward == pytest.approx(cfg.rewards.drop_penalty)


def test_fifty_successes_end_the_episode():
    cfg = TaskConfig()
    state = TaskState(goal=IDENTITY, previous_distance=0.0, consecutive_successes=cfg.max_consecutive_successes - 1)
    out = evaluate_step(cfg, state, IDENTITY, 0.0)
    assert out.success and out.terminated


def test_goal_timeout_truncates():
    cfg = TaskConfig(goal_timeout_steps=3)
    state = TaskState(goal=turned(2.0), previous_distance=2.0)
    outs = [evaluate_step(cfg, state, IDENTITY, 0.0) for _ in range(3)]
    assert [o.truncated for o in outs] == [False, False, True]


def test_goal_modes():
    rng = np.random.default_rng(0)
    current = rotations.random_uniform(rng)
    upright_now = upright(current)
    for _ in range(20):
        z_goal = sample_goal("z", rng, current)
        # A face exactly up, the one nearest up now: a yaw about world z of the upright cube.
        up = rotations.to_matrix(z_goal)[2]
        k = int(np.argmax(np.abs(rotations.to_matrix(current)[2])))
        assert abs(up[k]) == pytest.approx(1.0) and np.sign(up[k]) == np.sign(rotations.to_matrix(current)[2, k])
        np.testing.assert_allclose(up, rotations.to_matrix(upright_now)[2], atol=1e-9)
        face = sample_goal("faces", rng)
        assert np.min(rotations.distance(face[None], FACE_ORIENTATIONS)) < 1e-9
    full = np.array([sample_goal("full", rng) for _ in range(2000)])
    # Uniform on SO(3): the mean rotation angle from identity is pi/2 + 2/pi ~ 2.21 rad.
    assert rotations.distance(full, IDENTITY).mean() == pytest.approx(np.pi / 2 + 2 / np.pi, abs=0.05)
    with pytest.raises(ValueError, match="goal mode"):
        sample_goal("sideways", rng)


def test_upright_removes_only_the_tilt():
    rng = np.random.default_rng(5)
    for face in FACE_ORIENTATIONS[:6]:
        yawed = rotations.multiply(rotations.from_axis_angle(np.array([0.0, 0.0, 1.0]), rng.uniform(-3, 3)), face)
        np.testing.assert_allclose(rotations.distance(upright(yawed), yawed), 0.0, atol=1e-6)  # already up
        tilt = rotations.from_axis_angle(np.array([1.0, 0.5, 0.0]) / np.sqrt(1.25), 0.35)
        tilted = rotations.multiply(tilt, yawed)
        # Back to the same face-up orientation, by the tilt's angle and no more.
        assert rotations.distance(upright(tilted), yawed) < 1e-6
        assert rotations.distance(upright(tilted), tilted) == pytest.approx(0.35, abs=1e-6)


def test_near_goals_lie_between_the_min_and_max_angle_of_the_cube():
    rng = np.random.default_rng(3)
    current = rotations.random_uniform(rng)
    for mode in ("z", "full"):
        d = np.array([rotations.distance(current, sample_goal(mode, rng, current, max_angle=1.0, min_angle=0.4))
                      for _ in range(500)])
        assert d.min() >= 0.4 - 1e-9 and d.max() <= 1.0 + 1e-9, mode
        assert d.max() - d.min() > 0.4, mode  # spread over the range, not one fixed angle
    yaw_axis = np.array([0.0, 0.0, 1.0])
    for _ in range(50):  # z goals stay yaws of the cube: the vertical axis is unchanged
        goal = sample_goal("z", rng, current, max_angle=1.0, min_angle=0.4)
        rel = rotations.multiply(goal, rotations.conjugate(current))
        assert abs(abs(rel[0]) - 1.0) < 1e-9 or np.allclose(np.abs(rel[1:]) / np.linalg.norm(rel[1:]), yaw_axis)
    with pytest.raises(ValueError, match="min_angle"):
        sample_goal("z", rng, current, max_angle=0.5, min_angle=0.8)


def test_env_goals_follow_the_max_angle_and_start_outside_the_success_radius():
    from sim.env import CubeReorientEnv

    env = CubeReorientEnv(overrides=["randomization.enabled=false", "task.goal_mode=z", "task.goal_max_angle=0.9"])
    for seed in range(5):
        env.reset(seed=seed)
        assert 0.4 - 1e-6 <= env._task.previous_distance <= 0.9 + 1e-6
    env.set_goal_max_angle(np.pi)
    far = []
    for seed in range(20):
        env.reset(seed=seed)
        far.append(env._task.previous_distance)
    assert max(far) > 0.9
    with pytest.raises(ValueError, match="max angle"):
        env.set_goal_max_angle(0.0)
    env.close()
