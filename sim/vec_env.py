"""Many CubeReorient envs behind SB3's VecEnv interface: one batched env, threads or processes.

``batch`` (the default, ``sim.batch_env.BatchCubeReorientEnv``): the task logic of all envs runs once
per step on (N, ...) arrays and the physics of all envs is one call into MuJoCo's own thread pool,
which holds no GIL. ``thread``: a pool of Python threads each stepping whole ``CubeReorientEnv``s
(``mj_step`` releases the GIL, the env's Python does not, which held 2 cores to 1.4-1.65x).
``shards``: ``n_workers`` batched envs with one native thread each, stepped by Python threads, so
one shard's task logic overlaps another's physics. ``process``: one process per core, each stepping its slice as a batched env with one thread, one
pipe round trip per process per step (SB3's ``subprocess`` pays one per env). ``serial``: SB3's
DummyVecEnv. All give the same trajectories for the same seed; ``dexhand bench sim`` compares them.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices

from sim.config import EnvConfig

Backend = Literal["batch", "shards", "thread", "process", "subprocess", "serial"]
BACKENDS: tuple[str, ...] = ("batch", "shards", "thread", "process", "subprocess", "serial")
DEFAULT_BACKEND: Backend = "batch"


class ThreadedVecEnv(DummyVecEnv):
    """DummyVecEnv whose step and reset run env slices on a pool of threads."""

    def __init__(self, env_fns: list[Callable[[], gym.Env]], n_threads: int | None = None) -> None:
        super().__init__(env_fns)
        self.n_threads = max(1, min(n_threads or os.cpu_count() or 1, self.num_envs))
        self._slices = _slices(self.num_envs, self.n_threads)
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


def _slices(n_items: int, n_parts: int) -> list[range]:
    bounds = np.linspace(0, n_items, n_parts + 1).astype(int)
    return [range(bounds[i], bounds[i + 1]) for i in range(n_parts)]


def _batch_worker(remote: Any, parent_remote: Any, env_fns: list[Callable[[], gym.Env]],
                  make_batch: Callable[[int], VecEnv] | None = None) -> None:
    """Steps its slice of envs (one batched env, or serially); answers ("ok", payload) or ("error", exception)."""
    parent_remote.close()
    batch = make_batch(len(env_fns)) if make_batch is not None else DummyVecEnv(env_fns)
    while True:
        try:
            cmd, data = remote.recv()
        except EOFError:
            break
        try:
            if cmd == "step":
                batch.step_async(data)
                obs, rews, dones, infos = batch.step_wait()
                remote.send(("ok", (obs, rews, dones, infos, list(batch.reset_infos))))
            elif cmd == "reset":
                seeds, options = data
                for i, (seed, opts) in enumerate(zip(seeds, options)):
                    batch._seeds[i], batch._options[i] = seed, opts
                obs = batch.reset()
                remote.send(("ok", (obs, list(batch.reset_infos))))
            elif cmd == "env_method":
                name, local, args, kwargs = data
                remote.send(("ok", batch.env_method(name, *args, indices=local, **kwargs)))
            elif cmd == "get_attr":
                name, local = data
                remote.send(("ok", batch.get_attr(name, local)))
            elif cmd == "set_attr":
                name, value, local = data
                batch.set_attr(name, value, local)
                remote.send(("ok", None))
            elif cmd == "env_is_wrapped":
                wrapper, local = data
                remote.send(("ok", batch.env_is_wrapped(wrapper, local)))
            elif cmd == "render":
                remote.send(("ok", list(batch.get_images())))
            elif cmd == "close":
                batch.close()
                remote.send(("ok", None))
                break
            else:
                raise ValueError(f"unknown command {cmd!r}")
        except Exception as exc:  # the caller re-raises it, named
            remote.send(("error", exc))
    remote.close()


class ProcessBatchVecEnv(VecEnv):
    """``n_envs`` envs split over ``n_processes`` worker processes (default: one per core).

    Env ``i`` gets seed ``seed + i`` exactly as in the thread and serial backends, so all three
    produce the same trajectories; a worker's exception is re-raised in the caller.
    """

    def __init__(self, env_fns: list[Callable[[], gym.Env]], n_processes: int | None = None,
                 make_batch: Callable[[int], VecEnv] | None = None) -> None:
        n_envs = len(env_fns)
        self.n_processes = max(1, min(n_processes or os.cpu_count() or 1, n_envs))
        self._slices = _slices(n_envs, self.n_processes)
        ctx = mp.get_context("forkserver")
        self._remotes, self._processes = [], []
        for part in self._slices:
            remote, work_remote = ctx.Pipe()
            proc = ctx.Process(target=_batch_worker, args=(work_remote, remote, [env_fns[i] for i in part], make_batch),
                               daemon=True)
            proc.start()
            work_remote.close()
            self._remotes.append(remote)
            self._processes.append(proc)
        self.closed = False
        probe = env_fns[0]()  # the spaces, without a round trip through a worker
        super().__init__(n_envs, probe.observation_space, probe.action_space)
        probe.close()
        self._actions: np.ndarray | None = None

    # --- plumbing
    def _ask(self, messages: list[tuple[int, tuple[str, Any]]]) -> list[Any]:
        answers = []
        try:
            for w, message in messages:
                self._remotes[w].send(message)
            for w, _ in messages:
                answers.append(self._remotes[w].recv())
        except (BrokenPipeError, EOFError, ConnectionResetError) as exc:
            dead = [f"worker {w} (pid {p.pid}, exit code {p.exitcode})"
                    for w, p in enumerate(self._processes) if not p.is_alive()]
            raise RuntimeError(f"ProcessBatchVecEnv: {', '.join(dead) or 'a worker'} died; "
                               "its envs are lost, recreate the VecEnv") from exc
        for status, payload in answers:
            if status == "error":
                raise payload
        return [payload for _, payload in answers]

    def _by_worker(self, indices: VecEnvIndices) -> list[tuple[int, list[int]]]:
        wanted = set(self._get_indices(indices))
        out = []
        for w, part in enumerate(self._slices):
            local = [i - part.start for i in part if i in wanted]
            if local:
                out.append((w, local))
        return out

    def _stack(self, parts: list[Any]) -> Any:
        if isinstance(parts[0], dict):
            return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        return np.concatenate(parts)

    # --- VecEnv API
    def reset(self):
        answers = self._ask([(w, ("reset", ([self._seeds[i] for i in part], [self._options[i] for i in part])))
                             for w, part in enumerate(self._slices)])
        self.reset_infos = [info for _, infos in answers for info in infos]
        self._reset_seeds()
        self._reset_options()
        return self._stack([obs for obs, _ in answers])

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self):
        actions = self._actions
        answers = self._ask([(w, ("step", actions[part.start:part.stop])) for w, part in enumerate(self._slices)])
        self.reset_infos = [info for a in answers for info in a[4]]
        return (
            self._stack([a[0] for a in answers]),
            np.concatenate([a[1] for a in answers]),
            np.concatenate([a[2] for a in answers]),
            [info for a in answers for info in a[3]],
        )

    def env_method(self, method_name: str, *method_args, indices: VecEnvIndices = None, **method_kwargs) -> list[Any]:
        groups = self._by_worker(indices)
        answers = self._ask([(w, ("env_method", (method_name, local, method_args, method_kwargs)))
                             for w, local in groups])
        return [r for a in answers for r in a]

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        answers = self._ask([(w, ("get_attr", (attr_name, local))) for w, local in self._by_worker(indices)])
        return [r for a in answers for r in a]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        self._ask([(w, ("set_attr", (attr_name, value, local))) for w, local in self._by_worker(indices)])

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        answers = self._ask([(w, ("env_is_wrapped", (wrapper_class, local))) for w, local in self._by_worker(indices)])
        return [r for a in answers for r in a]

    def get_images(self) -> Sequence[np.ndarray | None]:
        answers = self._ask([(w, ("render", None)) for w in range(self.n_processes)])
        return [img for a in answers for img in a]

    def close(self) -> None:
        if self.closed:
            return
        if all(proc.is_alive() for proc in self._processes):
            try:
                self._ask([(w, ("close", None)) for w in range(self.n_processes)])
            except RuntimeError:  # one died while closing: the rest are terminated below
                pass
        for proc in self._processes:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()
        self.closed = True


def env_factory(
    config: EnvConfig | None = None, overrides: Sequence[str] = (), **kwargs: Any
) -> Callable[[], gym.Env]:
    """A picklable thunk that builds one CubeReorientEnv (for SubprocVecEnv too)."""
    return _EnvThunk(config, tuple(overrides), kwargs)


def limit_blas_threads() -> None:
    """One BLAS thread in the process that steps envs.

    The env's numpy maths is on tiny arrays; OpenBLAS threads that wake and spin for it steal the
    cores that mj_step runs on (8 envs on 2 threads, 2 BLAS threads -> 1: 2,407 -> 2,873 and
    2,233 -> 2,359 steps/s in two 8,000-step A/B runs; the gain is noisy but never negative here).
    """
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")


class BatchFactory:
    """A picklable ``n -> BatchCubeReorientEnv`` (one thread) for process workers and Ray actors."""

    def __init__(self, config: EnvConfig | None, overrides: Sequence[str] = (), n_threads: int = 1) -> None:
        self.config, self.overrides, self.n_threads = config, tuple(overrides), n_threads

    def __call__(self, n_envs: int) -> VecEnv:
        from sim.batch_env import BatchCubeReorientEnv

        limit_blas_threads()
        return BatchCubeReorientEnv(n_envs, self.config, self.overrides, n_threads=self.n_threads)


class _EnvThunk:
    def __init__(self, config: EnvConfig | None, overrides: tuple[str, ...], kwargs: dict[str, Any]) -> None:
        self.config, self.overrides, self.kwargs = config, overrides, kwargs

    def __call__(self) -> gym.Env:
        from sim.env import CubeReorientEnv

        limit_blas_threads()  # runs where the env lives: this process, a worker, a Ray actor
        return CubeReorientEnv(self.config, self.overrides, **self.kwargs)


def make_vec_env(
    n_envs: int,
    config: EnvConfig | None = None,
    overrides: Sequence[str] = (),
    backend: Backend = DEFAULT_BACKEND,
    n_workers: int | None = None,
    seed: int | None = None,
) -> VecEnv:
    """``n_envs`` environments stepped by ``n_workers`` threads or processes (default: all cores)."""
    if n_envs < 1:
        raise ValueError(f"n_envs must be >= 1, got {n_envs}")
    if backend == "batch":
        from sim.batch_env import BatchCubeReorientEnv

        limit_blas_threads()
        vec: VecEnv = BatchCubeReorientEnv(n_envs, config, overrides, n_threads=n_workers)
        if seed is not None:
            vec.seed(seed)
        return vec
    if backend == "shards":
        from sim.batch_env import ShardedBatchEnv

        limit_blas_threads()
        vec = ShardedBatchEnv(n_envs, config, overrides, n_shards=n_workers)
        if seed is not None:
            vec.seed(seed)
        return vec
    fns = [env_factory(config, overrides) for _ in range(n_envs)]
    if backend == "thread":
        vec = ThreadedVecEnv(fns, n_threads=n_workers)
    elif backend == "process":
        vec = ProcessBatchVecEnv(fns, n_processes=n_workers, make_batch=BatchFactory(config, overrides))
    elif backend == "subprocess":
        vec = SubprocVecEnv(fns, start_method="forkserver")
    elif backend == "serial":
        vec = DummyVecEnv(fns)
    else:
        raise ValueError(f"unknown vec env backend {backend!r}: use one of {', '.join(BACKENDS)}")
    if seed is not None:
        vec.seed(seed)
    return vec
