"""``dexhand bench scale``: rollout steps/s against the number of Ray actors (weak scaling).

Each actor steps ``envs_per_actor`` envs (default 32; full randomization, random actions in [-1, 1])
as one batched env on one thread and one CPU, so adding an actor adds work the way adding a cluster
node would; ideal scaling is linear in actors up to the cores Ray has. Actor counts are 1, 2, 4, ...
up to the machine's cores, or ``--actors 1,2,4,8,16``. Two in-process baselines show what Ray
costs: the same batched env with one actor's envs on one thread, and with the largest run's envs on
all cores. Without ``--address`` a local Ray instance is started here (and stopped at the end)
unless Ray is already running; with it (or RAY_ADDRESS) the actors go to that cluster.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from dexhand.report import format_table


def _rate(vec, n_envs: int, seconds: float) -> float:
    """Env steps/s of ``vec`` driven with random actions in [-1, 1] for ``seconds`` (after a warm-up)."""
    vec.reset()
    rng = np.random.default_rng(0)
    actions = [rng.uniform(-1.0, 1.0, (n_envs, 20)).astype(np.float32) for _ in range(16)]
    for k in range(3):
        vec.step(actions[k])
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        vec.step(actions[done // n_envs % 16])
        done += n_envs
    return done / (time.perf_counter() - start)


def _interleaved(vecs: dict[str, Any], n_envs: int, seconds: float, rounds: int = 6) -> dict[str, float]:
    """Steps/s of each VecEnv (``n_envs`` each), measured in alternating short rounds so that other
    load on the machine hits them alike."""
    rng = np.random.default_rng(0)
    actions = [rng.uniform(-1.0, 1.0, (n_envs, 20)).astype(np.float32) for _ in range(16)]
    done = {k: 0 for k in vecs}
    spent = {k: 0.0 for k in vecs}
    for vec in vecs.values():
        vec.reset()
        for k in range(3):
            vec.step(actions[k])
    for _ in range(rounds):
        for key, vec in vecs.items():
            start = time.perf_counter()
            while time.perf_counter() - start < seconds / rounds:
                vec.step(actions[done[key] // n_envs % 16])
                done[key] += n_envs
            spent[key] += time.perf_counter() - start
    return {k: done[k] / spent[k] for k in vecs}


def default_actor_counts(cores: int) -> list[int]:
    counts, k = [], 1
    while k < cores:
        counts.append(k)
        k *= 2
    return [*counts, cores]


def run(seconds: float = 3.0, n_envs: int | None = None, actor_counts: list[int] | None = None,
        address: str | None = None) -> dict[str, Any]:
    """``n_envs`` is the number of envs per actor here (default 32); ``address`` a Ray cluster's."""
    import ray
    from tqdm import tqdm

    from dexhand.scale.ray_vec_env import RayVecEnv
    from sim.vec_env import make_vec_env

    cores = os.cpu_count() or 1
    per_actor = n_envs or 32
    counts = actor_counts or default_actor_counts(cores)
    started = not ray.is_initialized()
    if started and address:
        ray.init(address=address, log_to_driver=False)
    elif started:
        ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False)
    cluster_cpus = ray.cluster_resources().get("CPU", cores)
    load = os.getloadavg()[0]
    curve = []
    try:
        # The overhead figure: one actor and the same envs in process, in alternating rounds.
        one_actor = RayVecEnv(per_actor, envs_per_actor=per_actor, seed=0, threads_per_actor=1)
        local_one = make_vec_env(per_actor, n_workers=1, seed=0)
        try:
            paired = _interleaved({"ray": one_actor, "local": local_one}, per_actor, 2 * seconds)
        finally:
            one_actor.close()
            local_one.close()
        for actors in tqdm(counts, desc="bench scale", unit="config", leave=False):
            vec = RayVecEnv(actors * per_actor, envs_per_actor=per_actor, seed=0, threads_per_actor=1)
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
    biggest = min(counts[-1], cores) * per_actor  # the most envs this machine's cores can step
    local_all = make_vec_env(biggest, n_workers=cores, seed=0)
    try:
        all_cores = _rate(local_all, biggest, seconds)
    finally:
        local_all.close()
    return {"cores": cores, "cluster_cpus": cluster_cpus, "envs_per_actor": per_actor, "seconds": seconds,
            "load": load, "load_end": os.getloadavg()[0], "curve": curve,
            "local_thread_1_thread": {"envs": per_actor, "steps_per_s": paired["local"]},
            "local_thread_all_cores": {"envs": biggest, "threads": cores, "steps_per_s": all_cores},
            "ray_1_actor_paired_steps_per_s": paired["ray"],
            "ray_1_actor_vs_local_1_thread": paired["ray"] / paired["local"]}


def print_results(r: dict[str, Any]) -> None:
    rows = [{"setup": f"Ray, {p['actors']} actor(s)", "envs": p["envs"], "steps/s": p["steps_per_s"],
             "speedup": p["speedup"], "per-actor efficiency": p["efficiency"]} for p in r["curve"]]
    one, every = r["local_thread_1_thread"], r["local_thread_all_cores"]
    rows.append({"setup": "in process (batched env), 1 thread", "envs": one["envs"], "steps/s": one["steps_per_s"],
                 "speedup": "", "per-actor efficiency": ""})
    rows.append({"setup": f"in process (batched env), {every['threads']} threads", "envs": every["envs"],
                 "steps/s": every["steps_per_s"], "speedup": "", "per-actor efficiency": ""})
    print(format_table(rows, title=f"dexhand bench scale ({r['cores']} local cores, {r['cluster_cpus']:g} Ray CPUs, "
                                   f"{r['envs_per_actor']} envs per actor, full randomization, {r['seconds']:g} s "
                                   f"per point, load average {r['load']:.1f} -> {r['load_end']:.1f})"))
    print(f"Ray overhead at 1 actor: {r['ray_1_actor_vs_local_1_thread']:.2f}x the in-process rate "
          f"({r['ray_1_actor_paired_steps_per_s']:.0f} vs {r['local_thread_1_thread']['steps_per_s']:.0f} steps/s, "
          "measured in alternating rounds; target >= 0.8)")
