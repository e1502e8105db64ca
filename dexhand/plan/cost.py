"""The planner's objective on rollout states: named terms from ``CostConfig``, vectorised over plans."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dexhand.plan.config import CostConfig
from sim import rotations


@dataclass
class CostContext:
    """What the cost needs to know about the episode: the goal and where the cube settled."""

    goal: np.ndarray  # (4,) quaternion
    cube_rest: np.ndarray  # (3,) cube position at the episode start (world frame)
    success_threshold: float = 0.4  # rad: the task's (TaskConfig.success_threshold)


@dataclass
class CubeTrajectory:
    """Cube poses (and the targets that made them) at the end of each planned control step."""

    pos: np.ndarray  # (n, horizon, 3)
    quat: np.ndarray  # (n, horizon, 4)
    linvel: np.ndarray  # (n, horizon, 3)
    targets: np.ndarray  # (n, horizon, nu) joint targets, one per control step
    start_target: np.ndarray  # (nu,) the target in force before the plan


def cost_terms(cfg: CostConfig, ctx: CostContext, traj: CubeTrajectory) -> dict[str, np.ndarray]:
    """Each term, weighted, per plan and step: (n, horizon) arrays whose sum is the running cost."""
    distance = rotations.distance(traj.quat, ctx.goal)
    height_loss = ctx.cube_rest[2] - traj.pos[..., 2]
    steps = np.diff(np.concatenate([np.broadcast_to(traj.start_target, traj.targets[:, :1].shape),
                                    traj.targets], axis=1), axis=1)
    return {
        "rotation": cfg.rotation * distance,
        "closeness": -cfg.closeness / (distance + 0.1),
        "success": -cfg.success * (distance < ctx.success_threshold),
        "position": cfg.position * np.linalg.norm(traj.pos - ctx.cube_rest, axis=-1),
        "velocity": cfg.velocity * np.linalg.norm(traj.linvel, axis=-1),
        "drop": cfg.drop * (height_loss > cfg.drop_margin),
        "control_rate": cfg.control_rate * np.mean(steps**2, axis=-1),
    }


def total_cost(cfg: CostConfig, ctx: CostContext, traj: CubeTrajectory) -> np.ndarray:
    """Horizon mean of the running cost plus ``terminal`` x the last step's: one number per plan."""
    running = sum(cost_terms(cfg, ctx, traj).values())
    return running.mean(axis=1) + cfg.terminal * running[:, -1]
