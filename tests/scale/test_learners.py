"""Data-parallel learners (ml_extras.sync_sgd) in the PPO update and the vision trainer.

One pool of 3 learner processes serves the whole module (spawning costs seconds each here): the
PPO update on K=2 learners equals SB3's ``PPO.train()`` on the same rollout (also when target_kl
stops it early), K=2 + 1 backup runs, and the vision trainer with learners=2 backup=1 lowers its
loss while one learner is killed mid-run. The rollout comes from the real env.
"""

from __future__ import annotations

import copy
import logging
import types

import numpy as np
import pytest
import torch

from ..policy.conftest import tiny_config

POOL_SIZE = 3
TIMEOUT = 30.0  # s; generous for a loaded 2-core machine, short enough not to hang CI


@pytest.fixture(scope="module")
def pool():
    from ml_extras.sync_sgd import WorkerPool

    with WorkerPool(POOL_SIZE) as p:
        yield p
    assert not any(proc.is_alive() for proc in p.processes.values())


@pytest.fixture(scope="module")
def rollout():
    """A PPO with the asymmetric feed-forward policy and one real rollout in its buffer."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.logger import Logger

    from dexhand.train.networks import AsymmetricPolicy
    from dexhand.train.trainer import policy_kwargs
    from sim.vec_env import make_vec_env

    cfg = tiny_config("net.recurrent=false")
    envs = make_vec_env(2, cfg.env, backend="serial", seed=3)
    model = PPO(AsymmetricPolicy, envs, n_steps=32, batch_size=32, n_epochs=2, learning_rate=1e-3,
                ent_coef=0.01, max_grad_norm=0.5, policy_kwargs=policy_kwargs(cfg), seed=3, device="cpu")
    _, callback = model._setup_learn(64, callback=None)
    callback.on_training_start(locals(), globals())
    assert model.collect_rollouts(envs, callback, model.rollout_buffer, n_rollout_steps=model.n_steps)
    model.set_logger(Logger(folder=None, output_formats=[]))
    yield model
    envs.close()


def updated(template, learners: int | None, pool, target_kl: float | None = None, backup: int = 0):
    """A copy of the rollout's model after one update: plain PPO.train() when learners is None."""
    from dexhand.train.distributed import DistributedPPO, LearnerSettings

    model = copy.copy(template)  # shallow: fresh policy, optimizer and buffer below, env shared
    model.policy = copy.deepcopy(template.policy)
    model.rollout_buffer = copy.deepcopy(template.rollout_buffer)
    model.target_kl = target_kl
    if learners is not None:
        DistributedPPO.convert(model, LearnerSettings(learners, backup, timeout=TIMEOUT))
        model.share_pool(pool)
    np.random.seed(7)
    model.train()
    return model, np.random.random()


def flat_params(model) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.policy.parameters()])


@pytest.mark.parametrize("target_kl", [None, 1e-9], ids=["full", "kl_early_stop"])
def test_two_learners_update_equals_sb3_ppo(rollout, pool, target_kl):
    before = flat_params(rollout)
    plain, plain_rng = updated(rollout, None, pool, target_kl)
    dist, dist_rng = updated(rollout, 2, pool, target_kl)
    expected_steps = 4 if target_kl is None else 1  # 64 samples / 32 x 2 epochs; KL stops before the 2nd
    assert len(dist.last_update.steps) == expected_steps
    assert all(len(step.applied) == 2 for step in dist.last_update.steps)
    assert (flat_params(plain) - before).abs().max() > 1e-4  # the update did move the weights
    torch.testing.assert_close(flat_params(dist), flat_params(plain), atol=2e-6, rtol=1e-5)
    assert dist._n_updates == plain._n_updates  # same epoch count (SB3 counts epochs)
    assert dist_rng == plain_rng  # the global RNG consumed the same permutations
    for a, b in zip(dist.policy.optimizer.state.values(), plain.policy.optimizer.state.values()):
        torch.testing.assert_close(a["exp_avg_sq"], b["exp_avg_sq"], atol=1e-9, rtol=1e-4)


def test_backup_learner_update_runs(rollout, pool):
    before = flat_params(rollout)
    model, _ = updated(rollout, 2, pool, backup=1)
    steps = model.last_update.steps
    assert len(steps) == 4 and all(len(step.applied) == 2 for step in steps)
    assert all(tag == step.step for step in steps for tag in step.tags)  # never a stale gradient
    after = flat_params(model)
    assert torch.isfinite(after).all() and (after - before).abs().max() > 1e-4


def test_recurrent_policy_is_refused():
    from dexhand.train.distributed import use_learners

    trainer = types.SimpleNamespace(cfg=tiny_config("net.recurrent=true"), model=None)
    with pytest.raises(ValueError, match="net.recurrent=false"):
        use_learners(trainer, learners=2, backup=1)
    use_learners(trainer, learners=1, backup=0)  # nothing to do: the model is left alone


def test_vision_learner_flags_and_validation():
    from sim.configio import ConfigError
    from vision.cli import build_parser, train_config

    parse = build_parser().parse_args
    cfg = train_config(parse(["train", "--data", "d", "--out", "o", "--learners", "3", "--backup", "2", "epochs=2"]))
    assert (cfg.learners, cfg.backup, cfg.epochs) == (3, 2, 2)
    assert train_config(parse(["train", "--data", "d", "--out", "o", "learners=2"])).learners == 2
    assert train_config(parse(["train", "--data", "d", "--out", "o"])).learners == 1
    for flags, field in ((["--learners", "0"], "learners"), (["--backup", "-1"], "backup"),
                         (["--learners", "4", "batch_size=2"], "batch_size"), (["learner_timeout=0"], "learner_timeout")):
        with pytest.raises(ConfigError, match=field):
            train_config(parse(["train", "--data", "d", "--out", "o", *flags]))


def test_vision_learners_lower_loss_and_survive_a_dead_learner(tmp_path, pool, caplog):
    from ml_extras.sync_sgd import Faults
    from sim.configio import apply_overrides
    from vision.config import GenConfig, TrainConfig
    from vision.data import generate_dataset
    from vision.train import train

    generate_dataset(GenConfig(image_size=64, shard_size=8, episode_steps=10, randomize=False), tmp_path / "data",
                     n=16, seed=11, workers=1)
    cfg = apply_overrides(TrainConfig(), [
        "learners=2", "backup=1", f"learner_timeout={TIMEOUT}", "epochs=12", "batch_size=8", "lr=0.005",
        "val_fraction=0.25", "net_size=32", "channels=[8,16,16,32,32]", "feature_dim=32", "hidden=64",
        "augment.camera_dropout=0", "augment.shift_px=0"])
    with caplog.at_level(logging.WARNING, logger="ml_extras.sync_sgd"):
        result = train(cfg, tmp_path / "data", tmp_path / "run", progress=False, pool=pool,
                       delay_fn=Faults(kill_at={2: 4}))
    assert any("dropped worker 2" in r.getMessage() for r in caplog.records), caplog.text
    losses = result["epoch_losses"]
    assert len(losses) == 12 and losses[-1] < 0.8 * losses[0], losses
    checkpoint = torch.load(tmp_path / "run" / "last.pt", weights_only=False)
    assert checkpoint["epoch"] == 11 and checkpoint["config"]["learners"] == 2
    assert not list((tmp_path / "run").glob(".learners-*"))  # the shared image file is cleaned up
