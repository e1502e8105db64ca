"""``dexhand bench sim``: how close our env gets to MuJoCo's raw stepping speed, and how it scales.

Figures, from one run: the scene's raw mj_step/s ceiling (one core); our env's steps/s with
randomization off and on for one env; N envs over all cores with threads and with subprocesses;
the full-randomization rate as a fraction of the ceiling (substeps counted); 1 -> 2 core scaling;
and gymnasium-robotics' HandManipulateBlock at equal simulated time, where its env runs.
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


def run(seconds: float = 3.0, n_envs: int | None = None) -> dict[str, Any]:
    from sim.config import SceneConfig

    scene = SceneConfig()
    cores = os.cpu_count() or 1
    n_envs = n_envs or 4 * cores
    substeps, period = scene.substeps, scene.control_period
    ceiling = raw_ceiling(seconds)
    nominal_1 = env_rate(False, seconds)
    random_1 = env_rate(True, seconds)
    thread_1core = vec_rate(n_envs, "thread", 1, True, seconds)
    thread_all = vec_rate(n_envs, "thread", cores, True, seconds)
    process_1core = vec_rate(n_envs, "process", 1, True, seconds)
    process_all = vec_rate(n_envs, "process", cores, True, seconds)
    subproc_all = vec_rate(n_envs, "subprocess", cores, True, seconds)
    gr_rate, gr_status = gymnasium_robotics_rate(seconds)
    results = {
        "timestep": scene.timestep,
        "substeps": substeps,
        "control_period_s": period,
        "cores": cores,
        "n_envs": n_envs,
        "raw_mj_step_per_s": ceiling,
        "ceiling_control_steps_per_s": ceiling / substeps,
        "env_steps_per_s_nominal_1env": nominal_1,
        "env_steps_per_s_randomized_1env": random_1,
        "fraction_of_ceiling_randomized": random_1 * substeps / ceiling,
        "vec_thread_1core": thread_1core,
        "vec_thread_all_cores": thread_all,
        "vec_subprocess_all_cores": subproc_all,
        "thread_scaling_1_to_all": thread_all / thread_1core,
        "vec_process_1core": process_1core,
        "vec_process_all_cores": process_all,
        "process_scaling_1_to_all": process_all / process_1core,
        "gymnasium_robotics_steps_per_s": gr_rate,
        "gymnasium_robotics_status": gr_status,
        # Its control period is 0.04 s: two of its steps cover one of ours.
        "gymnasium_robotics_per_0.08s": None if gr_rate is None else gr_rate * 0.04 / period,
    }
    return results


def print_results(r: dict[str, Any]) -> None:
    rows = [
        {"figure": "raw mj_step/s (1 core, scene ceiling)", "value": r["raw_mj_step_per_s"]},
        {"figure": f"ceiling in control steps/s ({r['substeps']} substeps)", "value": r["ceiling_control_steps_per_s"]},
        {"figure": "env steps/s, 1 env, randomization off", "value": r["env_steps_per_s_nominal_1env"]},
        {"figure": "env steps/s, 1 env, full randomization", "value": r["env_steps_per_s_randomized_1env"]},
        {"figure": "fraction of ceiling (randomized, per core; target >= 0.85)",
         "value": r["fraction_of_ceiling_randomized"]},
        {"figure": f"{r['n_envs']} envs, threads, 1 core", "value": r["vec_thread_1core"]},
        {"figure": f"{r['n_envs']} envs, threads, {r['cores']} cores", "value": r["vec_thread_all_cores"]},
        {"figure": f"{r['n_envs']} envs, subprocesses, {r['cores']} cores", "value": r["vec_subprocess_all_cores"]},
        {"figure": f"thread scaling 1 -> {r['cores']} cores", "value": r["thread_scaling_1_to_all"]},
        {"figure": f"{r['n_envs']} envs, process batches, 1 process", "value": r["vec_process_1core"]},
        {"figure": f"{r['n_envs']} envs, process batches, {r['cores']} processes", "value": r["vec_process_all_cores"]},
        {"figure": f"process scaling 1 -> {r['cores']} cores (target >= 1.8x at 2)",
         "value": r["process_scaling_1_to_all"]},
    ]
    if r["gymnasium_robotics_steps_per_s"] is not None:
        rows.append({"figure": "gymnasium-robotics HandManipulateBlock steps/s (0.04 s)",
                     "value": r["gymnasium_robotics_steps_per_s"]})
        rows.append({"figure": "  same, per 0.08 s of simulated time", "value": r["gymnasium_robotics_per_0.08s"]})
    else:
        rows.append({"figure": "gymnasium-robotics HandManipulateBlock", "value": "does not run: " + r["gymnasium_robotics_status"]})
    print(format_table(rows, title=f"dexhand bench sim (timestep {r['timestep']} s x {r['substeps']} substeps)"))
