"""RayVecEnv on one local Ray instance (2 CPUs): same data as the local VecEnv, routing, actor loss.

One Ray instance serves the whole module (starting Ray costs ~15 s here); the env tests share one
RayVecEnv of 3 envs in 2 actors (2 + 1, so the uneven split is covered) and release its CPUs before
the training test builds its own.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest

from dexhand.train.config import TrainConfig
from sim.configio import ConfigError, apply_overrides

from ..policy.conftest import tiny_config

ray = pytest.importorskip("ray")

N_ENVS, PER_ACTOR = 3, 2
OVERRIDES = ["task.goal_timeout_steps=4"]  # episodes end inside the test, so auto-reset is compared too


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def random_actions(rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(-1, 1, (N_ENVS, 20)).astype(np.float32)


def test_batches_cover_every_env_once():
    from dexhand.scale.ray_vec_env import batch_bounds, fit_cpus_per_actor

    assert batch_bounds(5, 2) == [range(0, 2), range(2, 4), range(4, 5)]
    assert batch_bounds(2, 4) == [range(0, 2)]
    with pytest.raises(ValueError, match="envs_per_actor"):
        batch_bounds(4, 0)
    assert fit_cpus_per_actor(2, 16.0) == 1.0 and fit_cpus_per_actor(4, 2.0) == 0.5


def test_config_validates_ray_fields():
    cfg = apply_overrides(TrainConfig(), ["ray_address=local", "envs_per_actor=2"])
    assert (cfg.ray_address, cfg.envs_per_actor) == ("local", 2)
    with pytest.raises(ConfigError, match="envs_per_actor"):
        apply_overrides(TrainConfig(), ["envs_per_actor=0"])
    with pytest.raises(ConfigError, match="ADR"):
        apply_overrides(TrainConfig(), ["ray_address=local", "adr.enabled=true"])
    with pytest.raises(ConfigError, match="ray_address"):
        apply_overrides(TrainConfig(), ["ray_address= "])


def wait_until_dead(actor, timeout_s: float = 30.0) -> None:
    """``ray.kill`` returns before the actor is gone; a step sent meanwhile would still be answered."""
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            ray.get(actor.pid.remote(), timeout=5)
        except ray.exceptions.RayActorError:
            return
        except ray.exceptions.GetTimeoutError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"actor still answers {timeout_s:.0f} s after ray.kill")


@pytest.fixture(scope="class")
def vec(local_ray):
    """Shared by TestRayVecEnv, closed after it (its 2 actors hold both CPUs); each test reseeds it."""
    from dexhand.scale.ray_vec_env import RayVecEnv

    env = RayVecEnv(N_ENVS, overrides=OVERRIDES, envs_per_actor=PER_ACTOR, seed=0)
    yield env
    env.close()


class TestRayVecEnv:
    def test_same_observations_as_local_vec_env_step_for_step(self, vec):
        from sim.vec_env import make_vec_env

        local = make_vec_env(N_ENVS, overrides=OVERRIDES, backend="thread", seed=5)  # randomization on
        assert len(vec.actors) == 2
        vec.seed(5)
        for v in (vec, local):
            v.env_method("set_goal_mode", "full")
        remote_obs, local_obs = vec.reset(), local.reset()
        for key in local_obs:
            np.testing.assert_array_equal(remote_obs[key], local_obs[key])
        # Routing keeps the caller's index order across actors.
        np.testing.assert_array_equal(vec.get_attr("cube_pos", [2, 0]), local.get_attr("cube_pos", [2, 0]))
        rng = np.random.default_rng(0)
        saw_reset = False
        for _ in range(6):
            actions = random_actions(rng)
            r_obs, r_rew, r_done, r_infos = vec.step(actions)
            l_obs, l_rew, l_done, l_infos = local.step(actions)
            for key in l_obs:
                np.testing.assert_array_equal(r_obs[key], l_obs[key])
            np.testing.assert_array_equal(r_rew, l_rew)
            np.testing.assert_array_equal(r_done, l_done)
            for r_info, l_info in zip(r_infos, l_infos):
                assert r_info.keys() == l_info.keys()
                assert r_info["consecutive_successes"] == l_info["consecutive_successes"]
                if "terminal_observation" in l_info:
                    saw_reset = True
                    assert r_info["TimeLimit.truncated"] == l_info["TimeLimit.truncated"]
                    for key in l_obs:
                        np.testing.assert_array_equal(r_info["terminal_observation"][key],
                                                      l_info["terminal_observation"][key])
        assert saw_reset
        local.close()

    def test_env_method_and_attributes_reach_the_env_they_name(self, vec):
        vec.env_method("set_goal_mode", "z")
        assert vec.env_method("set_goal_mode", "faces", indices=[2]) == [None]
        assert [cfg.task.goal_mode for cfg in vec.get_attr("cfg")] == ["z", "z", "faces"]
        before = vec.get_attr("render_camera", 1)
        vec.set_attr("render_camera", "cam_top", indices=[0, 2])
        assert vec.get_attr("render_camera") == ["cam_top", *before, "cam_top"]
        full = vec.get_attr("cfg", 0)[0].randomization.strength
        vec.env_method("set_randomization_strength", 0.25, indices=[1, 2])
        assert [cfg.randomization.strength for cfg in vec.get_attr("cfg")] == [full, 0.25, 0.25]
        with pytest.raises(ValueError, match="thread"):
            vec.env_method("set_schedule", object())
        with pytest.raises(IndexError, match="out of range"):
            vec.get_attr("cfg", [3])
        with pytest.raises(ValueError, match="NaN"):  # an env's own error is raised, not taken for a dead actor
            vec.step(np.full((N_ENVS, 20), np.nan, dtype=np.float32))
        assert vec.restarts == [0, 0]

    def test_killed_actor_is_recreated_and_the_run_continues(self, vec, caplog):
        from sim.env import CubeReorientEnv

        vec.seed(7)
        vec.env_method("set_goal_mode", "z")
        vec.env_method("set_randomization_strength", 0.5)
        vec.reset()
        rng = np.random.default_rng(1)
        before, _, _, infos = vec.step(random_actions(rng))
        restarts = list(vec.restarts)
        ray.kill(vec.actors[1])  # holds env 2
        wait_until_dead(vec.actors[1])
        with caplog.at_level(logging.WARNING, logger="dexhand.scale.ray_vec_env"):
            obs, rew, done, infos = vec.step(random_actions(rng))
        assert vec.restarts == [restarts[0], restarts[1] + 1]
        # Only our logger: Ray may log an earlier test's unhandled task error late, under its own name.
        lines = [r.getMessage() for r in caplog.records if r.name == "dexhand.scale.ray_vec_env"]
        assert len(lines) == 1 and lines[0].startswith("[ray] actor 1 died (") and "re-created envs 2..2" in lines[0]
        assert done.tolist() == [False, False, True]
        assert infos[2]["actor_restarted"] and infos[2]["TimeLimit.truncated"]
        assert not any("actor_restarted" in i for i in infos[:2])
        np.testing.assert_array_equal(infos[2]["terminal_observation"]["policy"], before["policy"][2])
        # A fresh env seeded seed + i + restarts * n_envs, with the goal mode set before the loss replayed.
        fresh = CubeReorientEnv(overrides=OVERRIDES)
        fresh.set_goal_mode("z")
        fresh.set_randomization_strength(0.5)
        expected, _ = fresh.reset(seed=7 + 2 + vec.restarts[1] * N_ENVS)
        np.testing.assert_array_equal(obs["policy"][2], expected["policy"])
        assert [(c.task.goal_mode, c.randomization.strength) for c in vec.get_attr("cfg")] == [("z", 0.5)] * 3
        obs, _, _, infos = vec.step(random_actions(rng))
        assert np.isfinite(obs["policy"]).all() and not any("actor_restarted" in i for i in infos)

    def test_actors_that_cannot_start_give_a_clear_error(self, vec):
        from dexhand.scale.ray_vec_env import RayVecEnv

        with pytest.raises(RuntimeError, match="did not start within"):
            RayVecEnv(1, envs_per_actor=1, cpus_per_actor=8, ready_timeout_s=1)


def test_trainer_collects_rollouts_from_ray_actors(local_ray, tmp_path):
    from dexhand.scale.ray_vec_env import RayVecEnv
    from dexhand.train.trainer import Trainer

    # 3 actors on 2 CPUs: they share the CPUs instead of waiting for a third.
    cfg = tiny_config("ray_address=local", "n_envs=3", "envs_per_actor=1", "net.recurrent=false",
                      "total_timesteps=384", "curriculum.enabled=true")
    trainer = Trainer(cfg, tmp_path, progress=False)
    try:
        remote = trainer.envs.unwrapped
        assert isinstance(remote, RayVecEnv) and len(remote.actors) == 3
        # The curriculum's settings went through env_method to the actors.
        assert [c.task.goal_mode for c in remote.get_attr("cfg")] == [trainer.curriculum.goal_mode] * 3
        result = trainer.train()
    finally:
        trainer.close()
    assert result.num_timesteps == 384  # two rollouts of 3 envs x 64 steps
    assert result.checkpoint.exists()
    assert ray.is_initialized()  # the fixture's Ray instance is not the trainer's to shut down
