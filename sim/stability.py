"""Measurements behind the timestep choice: contact penetration and energy drift of the scene.

``dexhand bench stability`` prints them for candidate (timestep, substeps) pairs at a fixed
control period; README's "Timestep choice" quotes its output.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from sim.config import EnvConfig
from sim.configio import apply_overrides


@dataclass
class StabilityReport:
    timestep: float
    substeps: int
    max_penetration_mm: float  # deepest cube contact during random manipulation
    mean_penetration_mm: float
    energy_drift_mj: float  # max rise of total energy while the hand holds still (should be <= 0)
    unstable_episodes: int
    drops: int


def measure(
    timestep: float, substeps: int, episodes: int = 4, steps: int = 100, seed: int = 0
) -> StabilityReport:
    """Random relative actions on the nominal scene; penetration from every physics substep."""
    from sim.env import CubeReorientEnv

    cfg = apply_overrides(
        EnvConfig(),
        [f"scene.timestep={timestep}", f"scene.substeps={substeps}", "randomization.enabled=false"],
    )
    env = CubeReorientEnv(cfg)
    m, d = env.model, env.data
    cube_geom = env.ids.cube_geom
    depths: list[float] = []
    unstable = drops = 0
    rng = np.random.default_rng(seed)
    for ep in range(episodes):
        env.reset(seed=seed + ep)
        for _ in range(steps):
            target = np.clip(
                env._target + rng.uniform(-1, 1, m.nu) * env.action_step * 0.5, env.ctrl_low, env.ctrl_high
            )
            env._target = target
            d.ctrl[:] = target
            for _ in range(substeps):
                mujoco.mj_step(m, d)
                n = d.ncon
                if n:
                    c = d.contact[:n]
                    mask = (c.geom1 == cube_geom) | (c.geom2 == cube_geom)
                    if mask.any():
                        depths.append(float(-c.dist[mask].min()))
            if not np.all(np.isfinite(d.qpos)):
                unstable += 1
                break
            if env._start_height - d.qpos[env.ids.cube_qpos + 2] > cfg.task.drop_height:
                drops += 1
                break
    # Energy drift: the hand holds its targets with the cube resting; energy must not grow.
    m.opt.enableflags |= mujoco.mjtEnableBit.mjENBL_ENERGY
    env.reset(seed=seed)
    energies = []
    for _ in range(int(2.0 / (timestep * substeps))):
        mujoco.mj_step(m, d, nstep=substeps)
        energies.append(d.energy.sum())
    energies = np.asarray(energies)
    drift = float(energies[len(energies) // 4 :].max() - energies[len(energies) // 4])
    pen = np.maximum(np.asarray(depths), 0.0) if depths else np.zeros(1)
    env.close()
    return StabilityReport(
        timestep, substeps, 1000 * pen.max(), 1000 * pen.mean(), 1000 * drift, unstable, drops
    )
