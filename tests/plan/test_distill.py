"""DAgger distillation: shards, resume, the student fits the teacher, and the checkpoint evaluates."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch as th

from dexhand.distill.config import DistillConfig
from dexhand.distill.dagger import Dagger
from dexhand.distill.shards import ShardWriter, held_out_shards, load_shards, samples_by_iteration
from dexhand.evaluate import evaluate, load_policy
from dexhand.train import checkpoint
from sim.configio import ConfigError, apply_overrides

TINY = ["dagger.iterations=2", "dagger.steps_per_iteration=24", "dagger.shard_size=10", "dagger.n_envs=2",
        "fit.epochs=40", "fit.learning_rate=0.003", "planner_overrides=[n_samples=6, horizon=3, plan_timestep_scale=2]",
        "student.env.task.goal_mode=z", "student.env.task.include_joint_angles=true",
        "student.curriculum.enabled=false",
        "student.net={recurrent: false, features_dim: 32, pi_layers: [32], vf_layers: [32]}"]


def test_shards_round_trip_and_count_by_iteration(tmp_path):
    w = ShardWriter(tmp_path, shard_size=3)
    for i in range(7):
        w.add(np.full(5, i), np.full(2, -i), iteration=0 if i < 5 else 1)
    w.flush()
    obs, act, it, shard = load_shards(tmp_path)
    assert obs.shape == (7, 5) and np.all(obs[:, 0] == np.arange(7)) and np.all(act[:, 0] == -np.arange(7))
    assert samples_by_iteration(tmp_path) == {0: 5, 1: 2} and list(it) == [0] * 5 + [1] * 2
    assert list(shard) == [0, 0, 0, 1, 1, 2, 2]  # a new iteration starts a new shard
    (tmp_path / "shard_00009.npz").write_bytes(b"not a shard")
    with pytest.raises(ValueError, match="shard_00009.npz"):
        load_shards(tmp_path)


def test_validation_holds_out_whole_shards():
    shard = np.repeat(np.arange(30), 4)
    mask = held_out_shards(shard, 0.1)
    assert sorted(set(shard[mask])) == [9, 19, 29]  # every 10th shard, all of its samples
    assert not held_out_shards(shard, 0.0).any()


def test_recurrent_students_and_bad_betas_are_config_errors():
    with pytest.raises(ConfigError, match="student.net.recurrent"):
        apply_overrides(DistillConfig(), ["student.net.recurrent=true"])
    with pytest.raises(ConfigError, match="beta"):
        apply_overrides(DistillConfig(), ["dagger.beta0=1.5"])


def test_dagger_fits_the_teacher_resumes_and_saves_an_evaluable_student(tmp_path):
    cfg = apply_overrides(DistillConfig(), [*TINY, "dagger.iterations=1"])
    run = tmp_path / "run"
    d = Dagger(cfg, run, progress=False)
    d.run()
    obs, act = load_shards(run / "shards")[:2]
    assert len(obs) == 24
    # The fitted student reproduces the teacher's labels far better than holding still (zero action).
    pred = np.stack([d.student.act(o) for o in obs])
    assert np.mean((pred - np.clip(act, -1, 1)) ** 2) < 0.5 * np.mean(np.clip(act, -1, 1) ** 2)
    d.close()
    with pytest.raises(FileExistsError, match="--resume"):
        Dagger(cfg, run, progress=False)
    # Resume with one more iteration: only the new iteration's samples are gathered, beta halves.
    cfg2 = apply_overrides(DistillConfig(), TINY)
    d2 = Dagger(cfg2, run, resume=True, progress=False)
    d2.run()
    d2.close()
    assert samples_by_iteration(run / "shards") == {0: 24, 1: 24}
    # A refit with other fit settings gathers nothing and saves the student again.
    before = checkpoint.latest(run)
    weights_before = (before.path / "model.zip").read_bytes()
    d3 = Dagger(apply_overrides(DistillConfig(), [*TINY, "fit.epochs=2"]), run, resume=True, progress=False)
    saved = d3.refit().checkpoint
    first = [q.detach().clone() for q in d3.student.parameters()]
    d3.refit()  # from fresh weights each time: the same fit again, not a continuation
    assert all(th.equal(a, b) for a, b in zip(first, d3.student.parameters()))
    d3.close()
    assert samples_by_iteration(run / "shards") == {0: 24, 1: 24} and saved.is_dir()
    assert saved == before.path and (saved / "model.zip").read_bytes() != weights_before  # refit in place
    # With held-out shards (every 5th of the 6: shard 4) and keep=best, the best held-out epoch is saved.
    best = [*TINY, "fit.epochs=12", "fit.learning_rate=0.05", "fit.validation_fraction=0.2", "fit.keep=best"]
    d4 = Dagger(apply_overrides(DistillConfig(), best), run, resume=True, progress=False)
    fit = d4.refit()
    obs4, act4, _, shard4 = load_shards(run / "shards")
    held = shard4 == 4
    with th.no_grad():  # the fit's own measure: the unclipped mean action on normalized observations
        pred = d4.student.mean_action(th.as_tensor(d4.student.normalize(obs4[held]), dtype=th.float32)).numpy()
    assert len(fit.val_curve) == 12 and fit.val_loss == min(fit.val_curve)
    assert np.mean((pred - np.clip(act4[held], -1, 1)) ** 2) == pytest.approx(fit.val_loss, rel=1e-4)
    assert fit.checkpoint == before.path
    d4.close()
    assert json.loads((run / "distill_state.json").read_text())["fitted"] == [0, 1]
    policy = load_policy(run)  # a normal training checkpoint: eval and export read it
    # The eval env builds the observation the student reads (joint angles), whatever the CLI asked.
    report = evaluate(policy, 1, 0, ["task.goal_mode=z"], max_steps=3, progress=False)
    assert report.episodes == 1 and policy.env_requirements == ["task.include_joint_angles=true"]
