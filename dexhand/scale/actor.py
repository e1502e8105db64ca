"""The worker side of ``RayVecEnv``: one batched env (``sim.batch_env``) per actor.

This class runs inside a Ray actor process (``ray.remote(EnvBatch)``) but holds no Ray code, so it
is a plain object in the driver's tests too. A step is one call for the actor's whole batch: the
task logic runs once on (N, ...) arrays and the physics on MuJoCo's native threads, so the Ray
round trip is paid once per batch. Auto-reset, ``terminal_observation`` and ``TimeLimit.truncated``
come from ``sim.batch_env.BatchCubeReorientEnv`` unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from sim.config import EnvConfig


class EnvBatch:
    """``n_envs`` CubeReorient envs seeded ``seed``, ``seed + 1``, ... (SB3's VecEnv.seed rule)."""

    def __init__(
        self, n_envs: int, config: EnvConfig | None, overrides: Sequence[str], n_threads: int, seed: int | None
    ) -> None:
        import sim  # noqa: F401  (picks the offscreen GL backend before MuJoCo loads in this process)
        from sim.vec_env import make_vec_env

        self.vec = make_vec_env(n_envs, config, overrides, backend="batch", n_workers=n_threads, seed=seed)

    def spaces(self) -> tuple[Any, Any]:
        return self.vec.observation_space, self.vec.action_space

    def pid(self) -> int:
        return os.getpid()

    def reset(self, first_seed: int | None, options: list[dict[str, Any]]):
        """Reset every env (reseeding env j with ``first_seed + j`` when given); obs and reset infos."""
        if first_seed is not None:
            self.vec.seed(first_seed)
        self.vec.set_options(options)
        obs = self.vec.reset()
        return obs, [dict(i) for i in self.vec.reset_infos]

    def step(self, actions: np.ndarray):
        return self.vec.step(actions)

    def env_method(self, name: str, local_indices: list[int], args: tuple, kwargs: dict[str, Any]) -> list[Any]:
        return self.vec.env_method(name, *args, indices=local_indices, **kwargs)

    def get_attr(self, name: str, local_indices: list[int]) -> list[Any]:
        return self.vec.get_attr(name, local_indices)

    def set_attr(self, name: str, value: Any, local_indices: list[int]) -> None:
        self.vec.set_attr(name, value, local_indices)

    def env_is_wrapped(self, wrapper_class: type, local_indices: list[int]) -> list[bool]:
        return self.vec.env_is_wrapped(wrapper_class, local_indices)

    def close(self) -> None:
        self.vec.close()
