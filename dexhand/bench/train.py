"""``dexhand bench train``: env steps/s while training vs pure stepping of the same envs (target >= 0.9).

Both use the shipped recipe's vectorized envs (``build_envs``), full randomization and random actions
in [-1, 1] for the pure stepping. Training runs ``rollouts`` whole PPO iterations (collection, then
the update); the update's time is measured apart, so the result says which part costs the ratio:
``collection_vs_pure`` (SB3's per-step work: policy forward, normalization, buffer) or
``update_share`` (the PPO update, during which no env steps).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from dexhand.report import format_table

CONFIG = Path(__file__).resolve().parent.parent / "configs" / "shipped.yaml"


def run(seconds: float = 3.0, rollouts: int = 2, overrides: tuple[str, ...] = ()) -> dict[str, Any]:
    from dexhand.train.config import TrainConfig
    from dexhand.train.trainer import Trainer, build_envs
    from sim.configio import load_yaml

    base = load_yaml(TrainConfig, CONFIG, list(overrides))
    steps = rollouts * base.n_envs * base.ppo.n_steps
    cfg = load_yaml(TrainConfig, CONFIG, [*overrides, f"total_timesteps={steps}", "checkpoint_every=1000000000"])
    load = os.getloadavg()[0]
    envs = build_envs(cfg, seed=0)
    envs.reset()
    rng = np.random.default_rng(0)
    actions = [rng.uniform(-1.0, 1.0, (cfg.n_envs, 20)).astype(np.float32) for _ in range(16)]
    done, start, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - start < max(seconds, 1.0):
        envs.step(actions[done // cfg.n_envs % 16])
        done += cfg.n_envs
    pure = done / (time.perf_counter() - start)
    pure_cpu = (time.process_time() - cpu) / done  # CPU seconds (all threads) per env step
    envs.close()
    update_seconds: list[float] = []
    update_cpu: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, Path(tmp), progress=False)
        algo = type(trainer.model)
        update = algo.train  # timed on the class: an instance attribute would be pickled by save()

        def timed_update(model: Any) -> None:
            t0, c0 = time.perf_counter(), time.process_time()
            update(model)
            update_seconds.append(time.perf_counter() - t0)
            update_cpu.append(time.process_time() - c0)

        algo.train = timed_update  # type: ignore[method-assign]
        try:
            cpu = time.process_time()
            result = trainer.train()
            train_cpu = time.process_time() - cpu
        finally:
            algo.train = update  # type: ignore[method-assign]
            trainer.close()
    collect_s = result.seconds - sum(update_seconds)
    collected = result.num_timesteps
    collect_cpu = (train_cpu - sum(update_cpu)) / collected
    # With every core busy all the time (collection and update overlapped perfectly), training can
    # reach at most this fraction of pure stepping: CPU per pure step / CPU per trained step.
    bound = pure_cpu / (collect_cpu + sum(update_cpu) / collected)
    return {"n_envs": cfg.n_envs, "vec_backend": cfg.vec_backend, "n_steps": cfg.ppo.n_steps,
            "pure_stepping_steps_per_s": pure, "training_steps_per_s": result.env_steps_per_s,
            "ratio": result.env_steps_per_s / pure, "training_steps": collected,
            "collection_steps_per_s": collected / collect_s, "collection_vs_pure": collected / collect_s / pure,
            "update_s_per_rollout": float(np.mean(update_seconds)) if update_seconds else 0.0,
            "update_share": sum(update_seconds) / result.seconds,
            "cpu_us_per_step": {"pure": pure_cpu * 1e6, "collection": collect_cpu * 1e6,
                                "update": sum(update_cpu) / collected * 1e6},
            "ratio_bound_all_cores_busy": bound, "load": load, "load_end": os.getloadavg()[0]}


def print_results(r: dict[str, Any]) -> None:
    rows = [
        {"figure": f"pure stepping, {r['n_envs']} envs ({r['vec_backend']}), steps/s", "value": r["pure_stepping_steps_per_s"]},
        {"figure": "during training (rollouts + PPO updates), steps/s", "value": r["training_steps_per_s"]},
        {"figure": "ratio (target >= 0.9)", "value": r["ratio"]},
        {"figure": "  collection alone, steps/s", "value": r["collection_steps_per_s"]},
        {"figure": "  collection / pure stepping (SB3's per-step work)", "value": r["collection_vs_pure"]},
        {"figure": f"  PPO update, s per rollout of {r['n_envs'] * r['n_steps']} steps", "value": r["update_s_per_rollout"]},
        {"figure": "  update's share of training time", "value": r["update_share"]},
        {"figure": "  CPU us per env step: pure / collection / update",
         "value": " / ".join(f"{v:.0f}" for v in r["cpu_us_per_step"].values())},
        {"figure": "  ratio bound with collection and update overlapped on all cores",
         "value": r["ratio_bound_all_cores_busy"]},
    ]
    print(format_table(rows, title=f"dexhand bench train (shipped recipe; load average {r['load']:.1f} -> "
                                   f"{r['load_end']:.1f})"))
