"""Gymnasium registration of the dexhand environments."""

from __future__ import annotations

import gymnasium as gym

ENV_IDS = {
    "dexhand/CubeReorient-v0": {},
    "dexhand/CubeReorientZ-v0": {"task.goal_mode": "z"},
    "dexhand/CubeReorientFaces-v0": {"task.goal_mode": "faces"},
    "dexhand/CubeReorientFaceUp-v0": {"task.goal_mode": "face_up"},  # Dactyl's locked-cube goals
    "dexhand/CubeReorientNominal-v0": {"randomization.enabled": False},
}


def register_envs() -> None:
    for env_id, overrides in ENV_IDS.items():
        if env_id in gym.registry:
            continue
        gym.register(
            id=env_id,
            entry_point="sim.env:CubeReorientEnv",
            kwargs={"overrides": [f"{k}={v}" for k, v in overrides.items()]},
        )
