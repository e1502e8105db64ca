"""Training: a short run turns the cube (holding still cannot pass); checkpoints restore what they claim."""

from __future__ import annotations

import numpy as np
import torch as th

from dexhand.demo import run_episode
from dexhand.evaluate import CheckpointPolicy
from dexhand.policies import HoldPolicy, RandomSmoothPolicy
from dexhand.train import checkpoint
from dexhand.train.curriculum import CurriculumConfig, GoalCurriculum
from dexhand.train.trainer import Trainer

from .conftest import tiny_config

NEAR_GOALS = ["randomization.enabled=false", "task.goal_mode=z", "task.goal_max_angle=0.6"]


def near_goal_scores(policy, episodes: int = 10, steps: int = 60) -> tuple[float, float]:
    """(mean successes, mean return) on z goals 0.4-0.6 rad from the cube: the goal always starts outside
    the success radius, so holding still scores no success and a return near 0."""
    from sim.env import CubeReorientEnv

    env = CubeReorientEnv(overrides=NEAR_GOALS)
    successes = total = 0.0
    for ep in range(episodes):
        obs, _ = env.reset(seed=100 + ep)
        policy.reset()
        for _ in range(steps):
            obs, reward, term, trunc, info = env.step(policy.act(obs))
            total += reward
            if term or trunc:
                break
        successes += info["consecutive_successes"]
    env.close()
    return successes / episodes, total / episodes


def test_short_training_turns_the_cube_where_holding_still_cannot(tmp_path):
    cfg = tiny_config("net.recurrent=false", "total_timesteps=6144", "ppo.n_steps=256", "ppo.batch_size=128",
                      "ppo.n_epochs=4", "net.features_dim=64", "net.pi_layers=[64]", "net.vf_layers=[64]",
                      "ppo.learning_rate=0.001", "seed=1", "env.task.goal_max_angle=0.6")
    trainer = Trainer(cfg, tmp_path, progress=False)
    trainer.train()
    trainer.close()
    trained = near_goal_scores(CheckpointPolicy(tmp_path))
    hold = near_goal_scores(HoldPolicy())
    random = near_goal_scores(RandomSmoothPolicy(seed=0, scale=1.0))
    # Successes need the cube turned toward the goal: holding still gets none.
    assert trained[0] >= hold[0] + 0.5, (trained, hold)
    # Return = rotation progress + 5 per success - 20 per drop: beats holding still and flailing (drops).
    assert trained[1] > max(hold[1], random[1]) + 2.0, (trained, hold, random)


def test_resume_restores_weights_optimizer_normalizer_and_schedules(tmp_path):
    cfg = tiny_config("net.recurrent=true", "total_timesteps=256", "adr.enabled=true", "curriculum.enabled=true",
                      "env.randomization.enabled=true",
                      "curriculum.stages=[z, faces]", "curriculum.strength_per_stage=[0.0, 1.0]")
    first = Trainer(cfg, tmp_path, progress=False)
    first.curriculum.stage = 1  # pretend the curriculum advanced
    first.adr.bounds["gravity"][1] = 0.3
    first.train()
    params = {k: v.clone() for k, v in first.model.policy.state_dict().items()}
    opt_state = first.model.policy.optimizer.state_dict()
    obs_mean = first.envs.obs_rms["policy"].mean.copy()
    torch_rng = th.get_rng_state().clone()
    first.close()

    second = Trainer(cfg, tmp_path, resume=True, progress=False)
    assert second.resumed and second.model.num_timesteps == 256
    for k, v in second.model.policy.state_dict().items():
        assert th.equal(v, params[k]), k
    restored = second.model.policy.optimizer.state_dict()
    for key, state in opt_state["state"].items():
        assert th.equal(restored["state"][key]["exp_avg"], state["exp_avg"])
    np.testing.assert_array_equal(second.envs.obs_rms["policy"].mean, obs_mean)
    assert second.curriculum.stage == 1 and second.adr.bounds["gravity"][1] == 0.3
    assert th.equal(th.get_rng_state(), torch_rng)
    assert second.envs.get_attr("cfg")[0].task.goal_mode == "faces"  # the curriculum re-applied
    result = second.train(512)
    assert result.num_timesteps == 512
    assert checkpoint.latest(tmp_path).path.name == "step_0000000512"
    second.close()


def test_resume_applies_the_configs_ppo_settings(tmp_path):
    """`--resume ppo.learning_rate=...` must change the run, not be silently replaced by the checkpoint's."""
    cfg = tiny_config("net.recurrent=false", "total_timesteps=128")
    first = Trainer(cfg, tmp_path, progress=False)
    first.train()
    params = {k: v.clone() for k, v in first.model.policy.state_dict().items()}
    first.close()
    changed = tiny_config("net.recurrent=false", "ppo.learning_rate=0.000123", "ppo.n_steps=96", "ppo.n_epochs=3")
    second = Trainer(changed, tmp_path, resume=True, progress=False)
    assert second.model.n_steps == 96 and second.model.rollout_buffer.buffer_size == 96
    assert second.model.n_epochs == 3 and second.model.lr_schedule(1.0) == 0.000123
    for k, v in second.model.policy.state_dict().items():
        assert th.equal(v, params[k]), k  # the weights still come from the checkpoint
    result = second.train(128 + 2 * 96)
    assert result.num_timesteps == 128 + 2 * 96
    assert second.model.policy.optimizer.param_groups[0]["lr"] == 0.000123
    second.close()


def test_checkpoint_pointer_only_moves_after_a_complete_write(tmp_path, lstm_run):
    found = checkpoint.latest(lstm_run)
    assert found is not None and found.model.is_file() and found.normalizer.is_file() and found.state.is_file()
    assert not list((lstm_run / "checkpoints").glob("*.tmp"))


def test_curriculum_advances_on_success():
    cur = GoalCurriculum(CurriculumConfig(stages=["z", "faces", "full"], strength_per_stage=[0.0, 0.5, 1.0],
                                          advance_at=2.0, window=4))
    assert [cur.record(1.0) for _ in range(4)] == [False] * 4 and cur.goal_mode == "z"
    # The window mean reaches 2.0 at the second 3.0: (1 + 1 + 3 + 3) / 4.
    assert [cur.record(3.0) for _ in range(2)] == [False, True]
    assert cur.goal_mode == "faces" and cur.strength == 0.5 and len(cur.recent) == 0
    for _ in range(20):
        cur.record(10.0)
    assert cur.goal_mode == "full"  # and stays at the last stage


def test_curriculum_widens_the_goal_angle_and_the_trainer_applies_it(tmp_path):
    import math

    import pytest

    from sim.configio import ConfigError

    cur = GoalCurriculum(CurriculumConfig(stages=["z", "z"], strength_per_stage=[0.0, 0.0], advance_at=1.0,
                                          window=2, goal_angle_per_stage=[0.8, math.pi]))
    assert cur.goal_max_angle == 0.8
    assert [cur.record(2.0) for _ in range(2)] == [False, True] and cur.goal_max_angle == math.pi
    assert GoalCurriculum(CurriculumConfig()).goal_max_angle == math.pi  # default: the full task
    with pytest.raises(ConfigError, match="goal_angle_per_stage"):
        CurriculumConfig(stages=["z"], strength_per_stage=[0.0], goal_angle_per_stage=[0.5, 1.0]).validate()
    cfg = tiny_config("net.recurrent=false", "curriculum.enabled=true", "curriculum.stages=[z, z]",
                      "curriculum.strength_per_stage=[0.0, 0.0]", "curriculum.goal_angle_per_stage=[0.7, 3.1416]")
    trainer = Trainer(cfg, tmp_path, progress=False)
    assert [c.task.goal_max_angle for c in trainer.envs.get_attr("cfg")] == [0.7, 0.7]
    trainer.curriculum.stage = 1
    trainer.apply_curriculum()
    assert [c.task.goal_max_angle for c in trainer.envs.get_attr("cfg")] == [math.pi, math.pi]
    trainer.close()


def test_env_applies_schedule_strengths_per_group():
    from sim.env import CubeReorientEnv

    class OnlyGravity:
        reports: list[int] = []

        def episode_strengths(self, rng):
            return {name: 0.0 for name in ("cube_size", "mass", "hand_friction", "cube_friction", "timestep",
                                           "damping", "actuator_gain", "joint_limits", "visual", "action",
                                           "forces", "observation")} | {"gravity": 1.0}

        def report(self, strengths, successes):
            self.reports.append(successes)

    env = CubeReorientEnv(overrides=["task.goal_timeout_steps=2"])
    env.set_schedule(OnlyGravity())
    env.reset(seed=0)
    np.testing.assert_array_equal(env.model.body_mass, env.nominal.body_mass)
    assert not np.allclose(env.model.opt.gravity, env.nominal.opt.gravity)
    assert env.obs_noise.strength == 0.0
    env.step(np.zeros(20, dtype=np.float32))
    env.step(np.zeros(20, dtype=np.float32))
    assert len(OnlyGravity.reports) == 1  # the episode end was reported
    env.close()


def test_checkpoint_policy_runs_an_episode(lstm_run):
    from sim.env import CubeReorientEnv

    env = CubeReorientEnv(overrides=["randomization.enabled=false"])
    result = run_episode(env, CheckpointPolicy(lstm_run), seed=0, max_steps=10)
    assert result.steps >= 1
    env.close()


def test_sigterm_saves_a_checkpoint_that_resume_continues(tmp_path):
    """A scheduler's SIGTERM (or plain ``kill``) must not lose the steps since the last interval."""
    import signal
    import subprocess
    import sys
    import time

    from .conftest import TINY

    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "dexhand.cli", "train", "smoke", "--run-dir", str(run_dir), "--no-progress",
           *TINY, "net.recurrent=false", "total_timesteps=1000000", "checkpoint_every=1000000"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while not list((run_dir / "tb").rglob("events.out.tfevents.*")):  # learning has begun
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read() if proc.poll() else ""
            time.sleep(0.2)
        time.sleep(2.0)  # a few rollouts
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, out
    assert "interrupted: saved" in out, out
    saved = checkpoint.latest(run_dir)
    assert saved is not None and saved.load_state()["num_timesteps"] > 0
