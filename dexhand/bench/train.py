"""``dexhand bench train``: env steps/s while training vs pure stepping of the same envs (target >= 0.9).

Both use the shipped recipe's vectorized envs; training runs a short PPO session (rollouts and
updates), pure stepping drives the same VecEnv with random actions.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from dexhand.report import format_table

CONFIG = Path(__file__).resolve().parent.parent / "configs" / "shipped.yaml"


def run(seconds: float = 3.0, steps: int = 4096) -> dict[str, Any]:
    from dexhand.train.config import TrainConfig
    from dexhand.train.trainer import Trainer, build_envs
    from sim.configio import load_yaml

    cfg = load_yaml(TrainConfig, CONFIG, [f"total_timesteps={steps}", "checkpoint_every=1000000000"])
    envs = build_envs(cfg, seed=0)
    envs.reset()
    actions = np.random.default_rng(0).uniform(-0.3, 0.3, (cfg.n_envs, 20)).astype(np.float32)
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < max(seconds, 1.0):
        envs.step(actions)
        done += cfg.n_envs
    pure = done / (time.perf_counter() - start)
    envs.close()
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, Path(tmp), progress=False)
        result = trainer.train()
        trainer.close()
    return {"n_envs": cfg.n_envs, "pure_stepping_steps_per_s": pure, "training_steps_per_s": result.env_steps_per_s,
            "ratio": result.env_steps_per_s / pure, "training_steps": result.num_timesteps}


def print_results(r: dict[str, Any]) -> None:
    rows = [
        {"figure": f"pure stepping, {r['n_envs']} envs, steps/s", "value": r["pure_stepping_steps_per_s"]},
        {"figure": "during training (rollouts + PPO updates), steps/s", "value": r["training_steps_per_s"]},
        {"figure": "ratio (target >= 0.9)", "value": r["ratio"]},
    ]
    print(format_table(rows, title="dexhand bench train (shipped recipe)"))
