"""``dexhand bench plan``: the planner's cost per control step against MuJoCo's raw ceiling.

Runs the shipped real-time planner (``dexhand/configs/planner/realtime.yaml``) in closed loop on the
randomized z-goal task and reports ms per control step (target <= 80 ms on 2 cores), rollouts/s and
physics steps/s, next to raw ``mj_step``/s on one thread times the rollout threads (the ceiling).
"""

from __future__ import annotations

import time
from typing import Any

import mujoco
import numpy as np

from dexhand.report import format_table


def _raw_steps_per_s(model: mujoco.MjModel, data: mujoco.MjData, seconds: float) -> float:
    """Single-thread mj_step/s of the planning model from the current state, with the current ctrl."""
    scratch = mujoco.MjData(model)
    n, end = 0, time.perf_counter() + seconds
    start = time.perf_counter()
    while time.perf_counter() < end:
        mujoco.mj_copyData(scratch, model, data)
        mujoco.mj_step(model, scratch, nstep=50)
        n += 50
    return n / (time.perf_counter() - start)


def run(seconds: float = 3.0, planner: str = "realtime", overrides: tuple[str, ...] = ()) -> dict[str, Any]:
    from dexhand.plan import MpcController
    from dexhand.plan.configio import load_planner_config
    from sim.env import CubeReorientEnv

    cfg = load_planner_config(planner, overrides)
    env = CubeReorientEnv(overrides=["task.goal_mode=z"])
    ctl = MpcController(cfg, env=env)
    env.reset(seed=10**6)
    ctl.reset()
    ctl.act()  # warm the thread pool
    ctl.seconds.clear()
    stats, end, seed = [], time.perf_counter() + seconds * 5, 10**6
    while time.perf_counter() < end:
        _, _, terminated, truncated, _ = env.step(ctl.act())
        stats.append(ctl.planner.last_stats)
        if terminated or truncated:
            seed += 1
            env.reset(seed=seed)
            ctl.reset()
    planner_model = ctl.planner.model
    ceiling_1 = _raw_steps_per_s(planner_model, env.data, seconds)
    ctl.close()
    env.close()
    ms = 1000.0 * np.array([s.seconds for s in stats])
    total = ms.sum() / 1000.0
    physics = sum(s.physics_steps for s in stats) / total
    threads = ctl.planner.n_threads
    return {
        "planner": planner, "method": cfg.method, "n_samples": cfg.n_samples, "iterations": cfg.iterations,
        "horizon": cfg.horizon, "threads": threads, "control_steps": len(stats),
        "ms_per_step_mean": float(ms.mean()), "ms_per_step_p50": float(np.percentile(ms, 50)),
        "ms_per_step_p99": float(np.percentile(ms, 99)),
        "rollouts_per_s": sum(s.rollouts for s in stats) / total, "physics_steps_per_s": physics,
        "raw_mj_step_per_s_1_thread": ceiling_1, "ceiling_physics_steps_per_s": ceiling_1 * threads,
        "fraction_of_ceiling": physics / (ceiling_1 * threads),
    }


def print_results(r: dict[str, Any]) -> None:
    rows = [
        {"figure": "ms per control step, mean (target <= 80)", "value": r["ms_per_step_mean"]},
        {"figure": "ms per control step, p50", "value": r["ms_per_step_p50"]},
        {"figure": "ms per control step, p99", "value": r["ms_per_step_p99"]},
        {"figure": "rollouts/s", "value": r["rollouts_per_s"]},
        {"figure": "physics steps/s in rollouts", "value": r["physics_steps_per_s"]},
        {"figure": "raw mj_step/s, 1 thread (planning model)", "value": r["raw_mj_step_per_s_1_thread"]},
        {"figure": f"ceiling: raw x {r['threads']} threads", "value": r["ceiling_physics_steps_per_s"]},
        {"figure": "fraction of ceiling", "value": r["fraction_of_ceiling"]},
        {"figure": "control steps measured", "value": r["control_steps"]},
    ]
    print(format_table(rows, title=f"dexhand bench plan: planner '{r['planner']}' ({r['method']}, "
                                   f"{r['n_samples']} samples x {r['iterations']} iterations, horizon "
                                   f"{r['horizon']}, {r['threads']} threads)"))
