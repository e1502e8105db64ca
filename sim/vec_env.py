"""Many CubeReorient envs behind SB3's VecEnv interface, stepped by threads or by subprocesses.

MuJoCo's ``mj_step`` releases the GIL, so a few threads each stepping a slice of the envs run the
physics in parallel without the pickling cost of subprocess pipes. ``dexhand bench sim`` compares
both on the machine at hand; ``make_vec_env`` defaults to the faster one there (threads).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv

from sim.config import EnvConfig

Backend = Literal["thread", "subprocess", "serial"]


class ThreadedVecEnv(DummyVecEnv):
    """DummyVecEnv whose step and reset run env slices on a pool of threads."""

    def __init__(self, env_fns: list[Callable[[], gym.Env]], n_threads: int | None = None) -> None:
        super().__init__(env_fns)
        self.n_threads = max(1, min(n_threads or os.cpu_count() or 1, self.num_envs))
        bounds = np.linspace(0, self.num_envs, self.n_threads + 1).astype(int)
        self._slices = [range(bounds[i], bounds[i + 1]) for i in range(self.n_threads)]
        self._pool = ThreadPoolExecutor(max_workers=self.n_threads, thread_name_prefix="dexhand-env")

    def _step_slice(self, indices: range) -> None:
        for i in indices:
            obs, self.buf_rews[i], terminated, truncated, self.buf_infos[i] = self.envs[i].step(
                self.actions[i]
            )
            self.buf_dones[i] = terminated or truncated
            self.buf_infos[i]["TimeLimit.truncated"] = truncated and not terminated
            if self.buf_dones[i]:
                self.buf_infos[i]["terminal_observation"] = obs
                obs, self.reset_infos[i] = self.envs[i].reset()
            self._save_obs(i, obs)

    def _run(self, fn: Callable[[range], None]) -> None:
        if self.n_threads == 1:
            fn(self._slices[0])
            return
        for future in [self._pool.submit(fn, s) for s in self._slices]:
            future.result()  # re-raises a worker's exception here

    def step_wait(self):
        self._run(self._step_slice)
        return (
            self._obs_from_buf(),
            np.copy(self.buf_rews),
            np.copy(self.buf_dones),
            [dict(i) for i in self.buf_infos],
        )

    def _reset_slice(self, indices: range) -> None:
        for i in indices:
            options = {"options": self._options[i]} if self._options[i] else {}
            obs, self.reset_infos[i] = self.envs[i].reset(seed=self._seeds[i], **options)
            self._save_obs(i, obs)

    def reset(self):
        self._run(self._reset_slice)
        self._reset_seeds()
        self._reset_options()
        return self._obs_from_buf()

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        super().close()


def env_factory(
    config: EnvConfig | None = None, overrides: Sequence[str] = (), **kwargs: Any
) -> Callable[[], gym.Env]:
    """A picklable thunk that builds one CubeReorientEnv (for SubprocVecEnv too)."""
    return _EnvThunk(config, tuple(overrides), kwargs)


class _EnvThunk:
    def __init__(self, config: EnvConfig | None, overrides: tuple[str, ...], kwargs: dict[str, Any]) -> None:
        self.config, self.overrides, self.kwargs = config, overrides, kwargs

    def __call__(self) -> gym.Env:
        from sim.env import CubeReorientEnv

        return CubeReorientEnv(self.config, self.overrides, **self.kwargs)


def make_vec_env(
    n_envs: int,
    config: EnvConfig | None = None,
    overrides: Sequence[str] = (),
    backend: Backend = "thread",
    n_workers: int | None = None,
    seed: int | None = None,
) -> VecEnv:
    """``n_envs`` environments stepped by ``n_workers`` threads or processes (default: all cores)."""
    if n_envs < 1:
        raise ValueError(f"n_envs must be >= 1, got {n_envs}")
    fns = [env_factory(config, overrides) for _ in range(n_envs)]
    if backend == "thread":
        vec: VecEnv = ThreadedVecEnv(fns, n_threads=n_workers)
    elif backend == "subprocess":
        vec = SubprocVecEnv(fns, start_method="forkserver")
    elif backend == "serial":
        vec = DummyVecEnv(fns)
    else:
        raise ValueError(f"unknown vec env backend {backend!r}: use 'thread', 'subprocess' or 'serial'")
    if seed is not None:
        vec.seed(seed)
    return vec
