from __future__ import annotations

from pathlib import Path

import pytest

from dexhand.train.config import TrainConfig
from sim.configio import apply_overrides

TINY = [
    "n_envs=2", "n_workers=2", "checkpoint_every=256", "env.randomization.enabled=false", "env.task.goal_mode=z",
    "curriculum.enabled=false", "ppo.n_steps=64", "ppo.batch_size=64", "ppo.n_epochs=2",
    "net.features_dim=32", "net.lstm_hidden=32", "net.pi_layers=[32]", "net.vf_layers=[32]",
]


def recorded_observations(n: int, overrides: tuple[str, ...] = (), seed: int = 4) -> list[dict]:
    """Observations along ``n`` steps of small random actions on the nominal simulator."""
    import numpy as np

    from sim.env import CubeReorientEnv

    env = CubeReorientEnv(overrides=["randomization.enabled=false", *overrides])
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(0)
    out = [obs]
    for _ in range(n - 1):
        obs, *_ = env.step(rng.uniform(-0.5, 0.5, 20).astype(np.float32))
        out.append(obs)
    env.close()
    return out


def tiny_config(*overrides: str) -> TrainConfig:
    return apply_overrides(TrainConfig(), [*TINY, *overrides])


@pytest.fixture(scope="session")
def lstm_run(tmp_path_factory) -> Path:
    """A tiny LSTM run (2 rollouts), shared by the export and evaluation tests."""
    from dexhand.train.trainer import Trainer

    run = tmp_path_factory.mktemp("lstm_run")
    trainer = Trainer(tiny_config("net.recurrent=true", "total_timesteps=256"), run, progress=False)
    trainer.train()
    trainer.close()
    return run
