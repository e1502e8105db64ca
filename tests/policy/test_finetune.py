"""PPO fine-tuning from other weights: init_from, critic warm-up, the decaying BC term, finetune.yaml."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch as th

from dexhand.evaluate import CheckpointPolicy
from dexhand.train import checkpoint
from dexhand.train.finetune import FinetunePPO, is_actor
from dexhand.train.trainer import Trainer
from sim.configio import ConfigError

from .conftest import recorded_observations, tiny_config

Z_OBS = ("task.goal_mode=z",)

FF = ("net.recurrent=false",)


@pytest.fixture(scope="module")
def student(tmp_path_factory) -> Path:
    """A small feed-forward run standing in for a distilled student (trained weights, observation stats)."""
    run = tmp_path_factory.mktemp("student")
    trainer = Trainer(tiny_config(*FF, "total_timesteps=256", "seed=3"), run, progress=False)
    trainer.train()
    trainer.close()
    return run


def actor_params(model) -> dict[str, th.Tensor]:
    return {k: v.detach().clone() for k, v in model.policy.state_dict().items() if is_actor(k)}


def critic_params(model) -> dict[str, th.Tensor]:
    return {k: v.detach().clone() for k, v in model.policy.state_dict().items() if not is_actor(k)}


def test_init_from_starts_with_the_students_actor_outputs(student, tmp_path):
    trainer = Trainer(tiny_config(*FF, f"init_from={student}", "seed=11"), tmp_path / "ft", progress=False)
    assert not trainer.resumed and trainer.model.num_timesteps == 0
    trainer.save()  # before any update
    trainer.close()
    before, after = CheckpointPolicy(student), CheckpointPolicy(tmp_path / "ft")
    np.testing.assert_array_equal(after.mean, before.mean)  # the observation statistics came along
    diffs = [np.abs(before.act(o) - after.act(o)).max() for o in recorded_observations(20, Z_OBS, seed=7)]
    assert max(diffs) == 0.0
    fresh = Trainer(tiny_config(*FF, "seed=11"), tmp_path / "fresh", progress=False)  # without init_from: differs
    fresh.save()
    fresh.close()
    assert max(np.abs(before.act(o) - CheckpointPolicy(tmp_path / "fresh").act(o)).max() for o in recorded_observations(20, Z_OBS, seed=7)) > 0


def test_critic_warmup_trains_the_value_function_only(student, tmp_path):
    cfg = tiny_config(*FF, f"init_from={student}", "total_timesteps=256", "finetune.critic_warmup_steps=100000",
                      "env.randomization.enabled=true", "adr.enabled=true")  # with ADR on, as the stage runs
    trainer = Trainer(cfg, tmp_path, progress=False)
    assert isinstance(trainer.model, FinetunePPO)
    actor, critic = actor_params(trainer.model), critic_params(trainer.model)
    trainer.train()
    for k, v in actor_params(trainer.model).items():
        assert th.equal(v, actor[k]), k
    assert any(not th.equal(v, critic[k]) for k, v in critic_params(trainer.model).items())
    trainer.close()
    # After the warm-up the actor learns: the same run continued past it moves the actor.
    later = Trainer(tiny_config(*FF, "total_timesteps=512", "finetune.critic_warmup_steps=256",
                                "env.randomization.enabled=true", "adr.enabled=true"), tmp_path, resume=True,
                    progress=False)
    later.train()
    assert any(not th.equal(v, actor[k]) for k, v in actor_params(later.model).items())
    later.close()


def test_bc_term_is_logged_decays_and_the_reference_survives_resume(student, tmp_path):
    from dexhand.train.curve import read_scalars

    cfg = tiny_config(*FF, f"init_from={student}", "total_timesteps=512", "finetune.bc_coef=1.0",
                      "finetune.bc_decay_steps=512")
    trainer = Trainer(cfg, tmp_path, progress=False)
    reference = {k: v.clone() for k, v in trainer.model.reference.state_dict().items()}
    trainer.train()
    trainer.close()
    scalars = read_scalars(tmp_path / "tb", ("train/bc_coef", "train/bc_loss"))
    coefs = [v for _, v in scalars["train/bc_coef"]]
    # 128 env steps per rollout: updates at 128, 256, 384 (and 512, whose logs SB3 writes with a next rollout).
    assert coefs == pytest.approx([0.75, 0.5, 0.25]), coefs
    assert len(scalars["train/bc_loss"]) == 3 and max(v for _, v in scalars["train/bc_loss"]) > 0
    resumed = Trainer(cfg, tmp_path, resume=True, progress=False)  # the BC target comes from the checkpoint
    for k, v in resumed.model.reference.state_dict().items():
        assert th.equal(v, reference[k]), k
    resumed.close()


def test_a_resumed_run_ignores_init_from(student, tmp_path):
    own = Trainer(tiny_config(*FF, "total_timesteps=128"), tmp_path, progress=False)
    own.train()
    weights = actor_params(own.model)
    own.close()
    resumed = Trainer(tiny_config(*FF, f"init_from={student}"), tmp_path, resume=True, progress=False)
    for k, v in actor_params(resumed.model).items():
        assert th.equal(v, weights[k]), k
    resumed.close()


def test_init_from_errors_name_the_path(student, tmp_path):
    missing = tmp_path / "no_such_run"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        Trainer(tiny_config(*FF, f"init_from={missing}"), tmp_path / "a", progress=False)
    with pytest.raises(ValueError, match=f"init_from {checkpoint.latest(student).path}.*does not fit"):
        Trainer(tiny_config(*FF, f"init_from={student}", "net.pi_layers=[16]"), tmp_path / "b", progress=False)
    with pytest.raises(ValueError, match="does not fit"):  # an LSTM's actor is not a feed-forward one
        Trainer(tiny_config("net.recurrent=true", f"init_from={student}"), tmp_path / "c", progress=False)
    with pytest.raises(ConfigError, match="init_from"):
        Trainer(tiny_config(*FF, "finetune.bc_coef=1.0", "finetune.bc_decay_steps=10"), tmp_path / "d",
                progress=False)
    with pytest.raises(ConfigError, match="feed-forward"):
        tiny_config("net.recurrent=true", "finetune.critic_warmup_steps=10")


def test_finetune_yaml():
    from dexhand.cli import _config_path
    from dexhand.train.config import TrainConfig
    from sim.configio import load_yaml

    cfg = load_yaml(TrainConfig, _config_path("finetune"), ["init_from=runs/distill"])
    shipped = load_yaml(TrainConfig, _config_path("shipped"))
    assert cfg.init_from == "runs/distill" and not cfg.net.recurrent and cfg.net == shipped.net
    assert cfg.env.task.goal_mode == "z" and cfg.env.randomization.enabled and cfg.env.randomization.strength == 1.0
    assert cfg.adr.enabled and cfg.ppo.learning_rate == pytest.approx(1e-4)
    assert (cfg.finetune.critic_warmup_steps, cfg.finetune.bc_coef, cfg.finetune.bc_decay_steps) == (50_000, 1.0,
                                                                                                     1_000_000)
