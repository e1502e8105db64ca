"""``dexhand bench scale``: rollout steps/s against the number of Ray actors (weak scaling).

Each actor steps ``envs_per_actor`` envs (full randomization, one thread, one CPU), so adding an
actor adds work the way adding a cluster node would; ideal scaling is linear in actors up to the
cores Ray has. Actor counts are 1, 2, 4, ... up to the machine's cores. Two in-process baselines
show what Ray costs: the threaded VecEnv with one actor's envs on one thread, and with the largest
run's envs on all cores. The local Ray instance is started here (and stopped at the end) unless Ray
is already running.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from dexhand.report import format_table


def _rate(vec, n_envs: int, seconds: float) -> float:
    """Env steps/s of ``vec`` driven with fixed random actions for ``seconds`` (after a warm-up)."""
    vec.reset()
    actions = np.random.default_rng(0).uniform(-0.3, 0.3, (n_envs, 20)).astype(np.float32)
    for _ in range(3):
        vec.step(actions)
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        vec.step(actions)
        done += n_envs
    return done / (time.perf_counter() - start)


def default_actor_counts(cores: int) -> list[int]:
    counts, k = [], 1
    while k < cores:
        counts.append(k)
        k *= 2
    return [*counts, cores]


def run(seconds: float = 3.0, n_envs: int | None = None, actor_counts: list[int] | None = None) -> dict[str, Any]:
    """``n_envs`` is the number of envs per actor here (default 4)."""
    import ray
    from tqdm import tqdm

    from dexhand.scale.ray_vec_env import RayVecEnv
    from sim.vec_env import make_vec_env

    cores = os.cpu_count() or 1
    per_actor = n_envs or 4
    counts = actor_counts or default_actor_counts(cores)
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False)
    curve = []
    try:
        for actors in tqdm(counts, desc="bench scale", unit="config", leave=False):
            vec = RayVecEnv(actors * per_actor, envs_per_actor=per_actor, seed=0)
            try:
                curve.append({"actors": actors, "envs": actors * per_actor,
                              "steps_per_s": _rate(vec, actors * per_actor, seconds)})
            finally:
                vec.close()
    finally:
        if started:
            ray.shutdown()
    base = curve[0]["steps_per_s"]
    for point in curve:
        point["speedup"] = point["steps_per_s"] / base
        point["efficiency"] = point["speedup"] / point["actors"]
    biggest = counts[-1] * per_actor
    local_one = make_vec_env(per_actor, backend="thread", n_workers=1, seed=0)
    local_all = make_vec_env(biggest, backend="thread", n_workers=cores, seed=0)
    try:
        one_thread = _rate(local_one, per_actor, seconds)
        all_cores = _rate(local_all, biggest, seconds)
    finally:
        local_one.close()
        local_all.close()
    return {"cores": cores, "envs_per_actor": per_actor, "seconds": seconds, "curve": curve,
            "local_thread_1_thread": {"envs": per_actor, "steps_per_s": one_thread},
            "local_thread_all_cores": {"envs": biggest, "threads": cores, "steps_per_s": all_cores},
            "ray_1_actor_vs_local_1_thread": base / one_thread}


def print_results(r: dict[str, Any]) -> None:
    rows = [{"setup": f"Ray, {p['actors']} actor(s)", "envs": p["envs"], "steps/s": p["steps_per_s"],
             "speedup": p["speedup"], "per-actor efficiency": p["efficiency"]} for p in r["curve"]]
    one, every = r["local_thread_1_thread"], r["local_thread_all_cores"]
    rows.append({"setup": "local threaded VecEnv, 1 thread", "envs": one["envs"], "steps/s": one["steps_per_s"],
                 "speedup": "", "per-actor efficiency": ""})
    rows.append({"setup": f"local threaded VecEnv, {every['threads']} threads", "envs": every["envs"],
                 "steps/s": every["steps_per_s"], "speedup": "", "per-actor efficiency": ""})
    print(format_table(rows, title=f"dexhand bench scale ({r['cores']} cores, {r['envs_per_actor']} envs per actor, "
                                   f"full randomization, {r['seconds']:g} s per point)"))
    print(f"Ray overhead at 1 actor: {r['ray_1_actor_vs_local_1_thread']:.2f}x the in-process rate")
