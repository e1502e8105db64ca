"""``dexhand bench sim``: how close our envs get to MuJoCo's raw stepping speed, and how they scale.

The four throughput ratios of issue #14, from one run, full randomization, random actions in [-1, 1]:

- per core: the batched env on one thread; every step's physics (same states, same per-substep
  controls) is replayed as raw ``mj_step`` on one MjData, and physics time / env time is reported,
  so the ratio does not depend on the action distribution (target >= 0.85);
- cores: ``make_vec_env(n, n_workers=cores)`` vs ``n_workers=1`` (default backend), next to raw
  MuJoCo's own scaling on the same states (``mujoco.batch`` with 1 vs ``cores`` threads); rounds of
  the two alternate so that other load on the machine hits both alike (target >= 1.8x on 2 cores);
- training: ``dexhand bench train``'s env steps/s while training / pure stepping (target >= 0.9);
- Ray: one actor vs the same envs in process (``dexhand bench scale --actors 1``; target >= 0.8).

Also: the raw mj_step/s ceiling, one env's steps/s, the other backends at all cores, and
gymnasium-robotics' HandManipulateBlock at equal simulated time where its env runs. Each figure
comes with the load average while it was measured: on a shared machine, read them as indicative.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from dexhand.report import format_table


def _steps_per_second(fn, seconds: float) -> float:
    """Call ``fn`` (which returns how many steps it did) until ``seconds`` pass; steps per second."""
    fn()  # warm up
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        done += fn()
    return done / (time.perf_counter() - start)


def raw_ceiling(seconds: float) -> float:
    """mj_step/s of the scene with the cube in hand and random joint targets (no Python per step)."""
    import mujoco

    from sim.env import CubeReorientEnv

    env = CubeReorientEnv(overrides=["randomization.enabled=false"])
    env.reset(seed=0)
    m, d = env.model, env.data
    rng = np.random.default_rng(0)

    def chunk() -> int:
        d.ctrl[:] = np.clip(env._target + rng.uniform(-0.05, 0.05, m.nu), env.ctrl_low, env.ctrl_high)
        mujoco.mj_step(m, d, nstep=env.cfg.scene.substeps)
        return env.cfg.scene.substeps

    return _steps_per_second(chunk, seconds)


def env_rate(randomize: bool, seconds: float) -> float:
    from sim.env import CubeReorientEnv

    env = CubeReorientEnv(overrides=[] if randomize else ["randomization.enabled=false"])
    env.reset(seed=0)
    env.action_space.seed(0)
    actions = [env.action_space.sample() * 0.3 for _ in range(64)]
    state = {"i": 0}

    def chunk() -> int:
        for _ in range(16):
            _, _, term, trunc, _ = env.step(actions[state["i"] % 64])
            state["i"] += 1
            if term or trunc:
                env.reset()
        return 16

    return _steps_per_second(chunk, seconds)


def vec_rate(n_envs: int, backend: str, workers: int, randomize: bool, seconds: float) -> float:
    from sim.vec_env import make_vec_env

    overrides = [] if randomize else ["randomization.enabled=false"]
    vec = make_vec_env(n_envs, overrides=overrides, backend=backend, n_workers=workers, seed=0)
    try:
        vec.reset()
        rng = np.random.default_rng(0)
        actions = rng.uniform(-0.3, 0.3, (n_envs, 20)).astype(np.float32)

        def chunk() -> int:
            for _ in range(4):
                vec.step(actions)
            return 4 * n_envs

        return _steps_per_second(chunk, seconds)
    finally:
        vec.close()


def gymnasium_robotics_rate(seconds: float) -> tuple[float | None, str]:
    """HandManipulateBlock's env steps/s, or why it does not run here."""
    try:
        import gymnasium as gym
        import gymnasium_robotics

        gym.register_envs(gymnasium_robotics)
        env = gym.make("HandManipulateBlock-v1")
        env.reset(seed=0)
        env.action_space.seed(0)

        def chunk() -> int:
            for _ in range(16):
                _, _, term, trunc, _ = env.step(env.action_space.sample())
                if term or trunc:
                    env.reset()
            return 16

        return _steps_per_second(chunk, seconds), "ok"
    except Exception as exc:  # its env code breaks on newer MuJoCo; report, do not crash
        return None, _failure_reason(exc)


def _failure_reason(exc: BaseException) -> str:
    """One line naming why the peer env failed; a bare assert has no message, so name where it fired."""
    first_line = (str(exc).splitlines() or [""])[0][:160]
    if first_line:
        return f"{type(exc).__name__}: {first_line}"
    import traceback

    frame = traceback.extract_tb(exc.__traceback__)[-1]
    return f"{type(exc).__name__} at {frame.filename.rsplit('site-packages/', 1)[-1]}:{frame.lineno}: {frame.line}"


def _random_actions(n_envs: int, seed: int = 0, pool: int = 64) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.uniform(-1.0, 1.0, (n_envs, 20)).astype(np.float32) for _ in range(pool)]


def _replay(models: list[Any], data: Any, state: np.ndarray, control: np.ndarray) -> tuple[float, float]:
    """One batched step's physics as raw mj_step per env on one MjData: (wall, CPU) seconds in mj_step."""
    import mujoco

    spec = mujoco.mjtState.mjSTATE_INTEGRATION
    wall = cpu = 0.0
    for i, m in enumerate(models):
        seq = control[i]
        mujoco.mj_setState(m, data, state[i], spec)
        changed = np.flatnonzero((seq != seq[0]).any(axis=1))
        split = int(changed[0]) if len(changed) else len(seq)  # the latency's substeps, then the new target
        for a, b in ((0, split), (split, len(seq))):
            if b > a:
                data.ctrl[:] = seq[a]
                w, c = time.perf_counter(), time.thread_time()
                mujoco.mj_step(m, data, nstep=b - a)
                wall += time.perf_counter() - w
                cpu += time.thread_time() - c
    return wall, cpu


def replay_ratio(n_envs: int, seconds: float) -> dict[str, float]:
    """The batched env on one thread vs raw mj_step replaying the same physics (see module doc).

    Each step is replayed right after it ran, so other load on the machine hits both alike; wall
    and CPU (this thread's) times both, the CPU ratio being the less disturbed one. An env reset in
    a step is replayed on its new model (the same scene, other parameters).
    """
    import mujoco

    from sim.batch_env import BatchCubeReorientEnv

    vec = BatchCubeReorientEnv(n_envs, n_threads=1)
    try:
        vec.seed(0)
        vec.reset()
        actions = _random_actions(n_envs)
        for k in range(3):
            vec.step(actions[k])
        data = mujoco.MjData(vec.envs[0].model)
        vec.physics_log = log = []
        steps, load, start = 0, os.getloadavg()[0], time.perf_counter()
        env_wall = env_cpu = phys_wall = phys_cpu = 0.0
        while time.perf_counter() - start < 2 * seconds:  # about half of it is the replay
            w, c = time.perf_counter(), time.thread_time()
            vec.step(actions[steps % len(actions)])
            env_wall += time.perf_counter() - w
            env_cpu += time.thread_time() - c
            state, control = log.pop()
            pw, pc = _replay([e.model for e in vec.envs], data, state, control)
            phys_wall += pw
            phys_cpu += pc
            steps += 1
    finally:
        vec.close()
    return {"n_envs": n_envs, "env_steps_per_s": steps * n_envs / env_wall,
            "ratio_wall": phys_wall / env_wall, "ratio_cpu": phys_cpu / env_cpu, "load": load}


CANDIDATES = ("batch", "shards", "process")  # the backends that step batched envs


def core_scaling(n_envs: int, seconds: float, rounds: int = 10) -> dict[str, Any]:
    """Each batched backend at ``cores`` workers vs the default backend at 1, and raw mujoco.batch
    at ``cores`` threads vs 1 on the same states and controls.

    All measurements alternate in ``rounds`` short rounds, so that other load hits them alike.
    """
    from mujoco import batch as mj_batch

    from sim.vec_env import DEFAULT_BACKEND, make_vec_env

    cores = os.cpu_count() or 1
    load = os.getloadavg()[0]
    reference = make_vec_env(n_envs, backend=DEFAULT_BACKEND, n_workers=1, seed=0)
    vecs = {"1 worker": reference}
    for backend in CANDIDATES:
        vecs[backend] = make_vec_env(n_envs, backend=backend, n_workers=cores, seed=0)
    actions = _random_actions(n_envs)
    done = {k: 0 for k in vecs}
    spent = {k: 0.0 for k in vecs}
    raw_done = {1: 0, cores: 0}
    raw_spent = {1: 0.0, cores: 0.0}
    log: list[Any] = []
    try:
        for vec in vecs.values():
            vec.reset()
            vec.step(actions[0])
        reference.physics_log = log
        for k in range(16):
            reference.step(actions[k % len(actions)])
        reference.physics_log = None
        models = [env.model for env in reference.envs]
        batches = {t: mj_batch.Batch(models[0], n_envs, nthread=t, persistent=True) for t in (1, cores)}
        for b in batches.values():
            b.set_models(models)
        substeps = log[0][1].shape[1]
        chunk = seconds / rounds / (len(vecs) + 2)
        for _ in range(rounds):
            for key, vec in vecs.items():
                start = time.perf_counter()
                while time.perf_counter() - start < chunk:
                    vec.step(actions[done[key] // n_envs % len(actions)])
                    done[key] += n_envs
                spent[key] += time.perf_counter() - start
            for t, b in batches.items():
                start = time.perf_counter()
                while time.perf_counter() - start < chunk:
                    state, control = log[raw_done[t] // n_envs % len(log)]
                    b.state[:] = state
                    b.rollout(substeps, control=control, record=())
                    raw_done[t] += n_envs
                raw_spent[t] += time.perf_counter() - start
    finally:
        for vec in vecs.values():
            vec.close()
    rate = {k: done[k] / spent[k] for k in vecs}
    raw = {t: raw_done[t] / raw_spent[t] for t in raw_done}
    scaling = {k: rate[k] / rate["1 worker"] for k in CANDIDATES}
    return {"n_envs": n_envs, "cores": cores, "backend": DEFAULT_BACKEND, "steps_per_s": rate,
            "scaling": scaling, "best_backend": max(scaling, key=scaling.get), "default_scaling": scaling[DEFAULT_BACKEND],
            "raw_mujoco_1_thread": raw[1], "raw_mujoco_all_threads": raw[cores], "raw_scaling": raw[cores] / raw[1],
            "default_scaling_vs_raw": scaling[DEFAULT_BACKEND] / (raw[cores] / raw[1]),
            "load": load, "load_end": os.getloadavg()[0]}


def run(seconds: float = 3.0, n_envs: int | None = None, training: bool = True, ray: bool = True) -> dict[str, Any]:
    from sim.config import SceneConfig

    scene = SceneConfig()
    cores = os.cpu_count() or 1
    n_envs = n_envs or 8 * cores
    substeps, period = scene.substeps, scene.control_period
    load_start = os.getloadavg()[0]
    ceiling = raw_ceiling(seconds)
    nominal_1 = env_rate(False, seconds)
    random_1 = env_rate(True, seconds)
    per_core = replay_ratio(n_envs, seconds)
    per_core_1 = replay_ratio(1, seconds)
    scaling = core_scaling(n_envs, 4 * seconds)
    backends = {b: vec_rate(n_envs, b, cores, True, seconds) for b in ("thread", "subprocess")}
    train_figures = ray_figures = None
    if training:
        from dexhand.bench import train as bench_train

        train_figures = bench_train.run(seconds)
    if ray:
        try:
            from dexhand.bench import scale as bench_scale

            ray_figures = bench_scale.run(seconds, actor_counts=[1])
        except ImportError as exc:  # the optional 'scale' extra
            ray_figures = {"error": f"Ray is not installed ({exc.name})"}
    gr_rate, gr_status = gymnasium_robotics_rate(seconds)
    return {
        "timestep": scene.timestep,
        "substeps": substeps,
        "control_period_s": period,
        "cores": cores,
        "n_envs": n_envs,
        "load_average_start": load_start,
        "load_average_end": os.getloadavg()[0],
        "raw_mj_step_per_s": ceiling,
        "ceiling_control_steps_per_s": ceiling / substeps,
        "env_steps_per_s_nominal_1env": nominal_1,
        "env_steps_per_s_randomized_1env": random_1,
        "fraction_of_ceiling_randomized": random_1 * substeps / ceiling,
        "per_core_replay": per_core,
        "per_core_replay_1env": per_core_1,
        "core_scaling": scaling,
        "backends_all_cores": backends,
        "training": train_figures,
        "ray": ray_figures,
        "gymnasium_robotics_steps_per_s": gr_rate,
        "gymnasium_robotics_status": gr_status,
        # Its control period is 0.04 s: two of its steps cover one of ours.
        "gymnasium_robotics_per_0.08s": None if gr_rate is None else gr_rate * 0.04 / period,
    }


def targets(r: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's four ratios against their targets."""
    rows = []

    def add(name: str, value: float | None, target: float, load: float | None) -> None:
        rows.append({"figure": name, "measured": value if value is not None else "n/a", "target": f">= {target:g}",
                     "met": "" if value is None else ("yes" if value >= target else "no"),
                     "load": "" if load is None else f"{load:.1f}"})

    pc = r["per_core_replay"]
    add(f"per core: physics / env time, {pc['n_envs']} envs, 1 thread (wall)", pc["ratio_wall"], 0.85, pc["load"])
    add("  same, CPU time of the stepping thread", pc["ratio_cpu"], 0.85, pc["load"])
    one = r["per_core_replay_1env"]
    add("  same, 1 env (wall)", one["ratio_wall"], 0.85, one["load"])
    sc = r["core_scaling"]
    add(f"cores: {sc['n_envs']} envs, {sc['cores']} workers vs 1 (default: {sc['backend']})", sc["default_scaling"],
        1.8, sc["load"])
    for backend, value in sc["scaling"].items():
        if backend != sc["backend"]:
            add(f"  {backend} backend, {sc['cores']} workers vs default at 1", value, 1.8, sc["load"])
    add(f"  raw MuJoCo, same states, {sc['cores']} threads vs 1 (the machine's ceiling)", sc["raw_scaling"], 1.8,
        sc["load"])
    add("  default backend's scaling / raw MuJoCo's", sc["default_scaling_vs_raw"], 0.96, sc["load"])
    t = r.get("training")
    if t:
        add("training / pure stepping (shipped recipe)", t["ratio"], 0.9, t.get("load"))
    ray = r.get("ray")
    if ray and "error" not in ray:
        add("Ray: 1 actor / in-process", ray["ray_1_actor_vs_local_1_thread"], 0.8, ray.get("load"))
    return rows


def print_results(r: dict[str, Any]) -> None:
    sc, pc = r["core_scaling"], r["per_core_replay"]
    rows = [
        {"figure": "raw mj_step/s (1 core, scene ceiling)", "value": r["raw_mj_step_per_s"]},
        {"figure": f"ceiling in control steps/s ({r['substeps']} substeps)", "value": r["ceiling_control_steps_per_s"]},
        {"figure": "env steps/s, 1 env, randomization off", "value": r["env_steps_per_s_nominal_1env"]},
        {"figure": "env steps/s, 1 env, full randomization", "value": r["env_steps_per_s_randomized_1env"]},
        {"figure": "  as a fraction of the ceiling", "value": r["fraction_of_ceiling_randomized"]},
        {"figure": f"batched env, {pc['n_envs']} envs, 1 thread, steps/s", "value": pc["env_steps_per_s"]},
        {"figure": f"{sc['n_envs']} envs, {sc['backend']}, 1 worker, steps/s", "value": sc["steps_per_s"]["1 worker"]},
    ]
    for backend in CANDIDATES:
        rows.append({"figure": f"{sc['n_envs']} envs, {backend}, {sc['cores']} workers, steps/s",
                     "value": sc["steps_per_s"][backend]})
    rows.append({"figure": f"raw MuJoCo, same states, 1 / {sc['cores']} threads, steps/s",
                 "value": f"{sc['raw_mujoco_1_thread']:.0f} / {sc['raw_mujoco_all_threads']:.0f}"})
    for backend, rate in r["backends_all_cores"].items():
        rows.append({"figure": f"{r['n_envs']} envs, {backend} backend, {r['cores']} workers, steps/s", "value": rate})
    if r["gymnasium_robotics_steps_per_s"] is not None:
        rows.append({"figure": "gymnasium-robotics HandManipulateBlock steps/s (0.04 s)",
                     "value": r["gymnasium_robotics_steps_per_s"]})
        rows.append({"figure": "  same, per 0.08 s of simulated time", "value": r["gymnasium_robotics_per_0.08s"]})
    else:
        rows.append({"figure": "gymnasium-robotics HandManipulateBlock", "value": "does not run: " + r["gymnasium_robotics_status"]})
    print(format_table(rows, title=f"dexhand bench sim (timestep {r['timestep']} s x {r['substeps']} substeps, "
                                   f"{r['cores']} cores, load average {r['load_average_start']:.1f} -> "
                                   f"{r['load_average_end']:.1f})"))
    print(format_table(targets(r), title="issue #14 ratios (load: 1-min load average when measured)"))
