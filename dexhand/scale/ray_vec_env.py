"""``RayVecEnv``: an SB3 VecEnv whose CubeReorient envs live in Ray actors, one batch per actor.

Why Ray: Dactyl-style training needs far more simulation CPUs than one machine has; Ray gives
placement, transport and failure detection on any cluster without home-made networking. The
learner (PPO) stays in the driver process; each actor steps ``envs_per_actor`` envs as one batched
env (``sim.batch_env``), so a step costs one round trip per actor, all actors in flight at once.
The round trip is a fixed cost (1.6 ms measured on a loaded 2-core machine), so actors should hold
enough envs that their physics dwarfs it: one actor ran at 0.80x of the same envs in process with
32 envs per actor and 0.71x with 16 (``dexhand bench scale --actors 1 --n-envs 32``).

Semantics match ``make_vec_env(n, seed=seed)`` (any backend) exactly: env i of the whole VecEnv
is reset with ``seed + i``, auto-reset puts ``terminal_observation`` and ``TimeLimit.truncated`` in
the infos, so for the same seeds and actions both return the same observations.

A dead actor (``ray.exceptions.RayActorError``: killed, out of memory, node lost) does not stop
training: its batch is re-created with fresh envs seeded ``seed + i + restarts * num_envs`` (so a
re-created env never replays another env's seed stream), the ``set_*`` calls made so far
(goal mode, randomization strength) are replayed on it, one line is logged, and the step returns
``done=True`` for those envs with the reset observations and ``info["actor_restarted"] = True``.
The cut episode counts as truncated (``terminal_observation`` = the last observation seen), so
PPO bootstraps its value instead of treating the cut as a failure.

On a real cluster the nodes need this package installed (same as the head node); Ray ships calls
and arrays, not code.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from copy import deepcopy
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvStepReturn

from dexhand.scale.actor import EnvBatch
from sim.config import EnvConfig

log = logging.getLogger(__name__)

ADR_ERROR = ("set_schedule: ADR's shared schedule object cannot cross process boundaries; ADR needs the "
             "thread (or serial) vec backend, not Ray actors (unset ray_address or adr.enabled)")


def connect(address: str, num_cpus: int | None = None) -> bool:
    """Join a Ray cluster at ``address`` ('local' starts one on this machine); True if we started Ray here.

    An already initialized Ray (a test fixture, a notebook) is used as it is and left running.
    """
    import ray

    if ray.is_initialized():
        return False
    if address == "local":
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=True)
    else:
        ray.init(address=address, log_to_driver=True)
    return True


def batch_bounds(n_envs: int, envs_per_actor: int) -> list[range]:
    """Contiguous env ranges, ``envs_per_actor`` each, the last one possibly shorter."""
    if n_envs < 1:
        raise ValueError(f"n_envs must be >= 1, got {n_envs}")
    if envs_per_actor < 1:
        raise ValueError(f"envs_per_actor must be >= 1, got {envs_per_actor}")
    return [range(a, min(a + envs_per_actor, n_envs)) for a in range(0, n_envs, envs_per_actor)]


def fit_cpus_per_actor(n_actors: int, cluster_cpus: float) -> float:
    """One CPU per actor, or an equal share when the cluster has fewer CPUs than actors.

    Sharing beats waiting forever for CPUs a fixed-size cluster will never have; pass
    ``cpus_per_actor`` explicitly on an autoscaling cluster that should grow instead.
    """
    return min(1.0, cluster_cpus / n_actors)


def _short(exc: BaseException) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first[:120]}" if first else type(exc).__name__


class RayVecEnv(VecEnv):
    """``n_envs`` envs in ``ceil(n_envs / envs_per_actor)`` Ray actors (see the module docstring)."""

    def __init__(
        self,
        n_envs: int,
        config: EnvConfig | None = None,
        overrides: Sequence[str] = (),
        envs_per_actor: int = 32,
        seed: int | None = None,
        address: str = "local",
        cpus_per_actor: float | None = None,
        threads_per_actor: int | None = None,
        local_num_cpus: int | None = None,
        ready_timeout_s: float = 300.0,
    ) -> None:
        import ray

        if cpus_per_actor is not None and cpus_per_actor <= 0:
            raise ValueError(f"cpus_per_actor must be > 0, got {cpus_per_actor}")
        self.batches = batch_bounds(n_envs, envs_per_actor)
        self._ray = ray
        self._owns_ray = connect(address, local_num_cpus)
        self._config, self._overrides = config, tuple(overrides)
        self._cpus = cpus_per_actor or fit_cpus_per_actor(len(self.batches), ray.cluster_resources().get("CPU", 1.0))
        self._threads = threads_per_actor or max(1, int(self._cpus))
        self._remote_cls = ray.remote(EnvBatch)
        self._base_seed = seed
        self.restarts = [0 for _ in self.batches]  # per actor, for seeding and the report
        self._setters: list[tuple[str, str, list[int], tuple, dict[str, Any]]] = []
        self._pending: list[Any] | None = None
        self._closed = False
        self.actors = [self._new_actor(k, seed) for k in range(len(self.batches))]
        try:  # every actor is up before training starts, or a clear error instead of a silent wait
            obs_space, act_space = ray.get(self.actors[0].spaces.remote(), timeout=ready_timeout_s)
            ray.get([a.pid.remote() for a in self.actors[1:]], timeout=ready_timeout_s)
        except ray.exceptions.GetTimeoutError:
            free = ray.available_resources().get("CPU", 0.0)
            self._shutdown()
            raise RuntimeError(
                f"Ray actors did not start within {ready_timeout_s:.0f} s: {len(self.batches)} actors x "
                f"{self._cpus:g} CPUs requested, the cluster has {free:g} CPUs free "
                f"(fewer envs, more envs_per_actor, or a bigger cluster)") from None
        super().__init__(n_envs, obs_space, act_space)
        self.keys = list(obs_space.spaces)
        self._last_obs = {k: np.zeros((n_envs, *obs_space[k].shape), obs_space[k].dtype) for k in self.keys}
        self._last_infos: list[dict[str, Any]] = [{} for _ in range(n_envs)]
        if seed is not None:
            self.seed(seed)

    # ------------------------------------------------------------------------- actors
    def _new_actor(self, k: int, seed: int | None):
        batch = self.batches[k]
        first = None if seed is None else seed + batch.start
        return self._remote_cls.options(num_cpus=self._cpus).remote(
            len(batch), self._config, self._overrides, self._threads, first
        )

    def _restart(self, k: int, exc: BaseException):
        """Replace actor k with fresh, reset envs; returns its reset (obs, infos)."""
        ray = self._ray
        try:
            ray.kill(self.actors[k], no_restart=True)
        except Exception:  # already gone
            pass
        self.restarts[k] += 1
        batch = self.batches[k]
        seed = None if self._base_seed is None else self._base_seed + self.restarts[k] * self.num_envs
        self.actors[k] = actor = self._new_actor(k, seed)
        for kind, name, indices, args, kwargs in self._setters:  # goal mode, strengths, ... as before
            local = [i - batch.start for i in indices if i in batch]
            if not local:
                continue
            if kind == "env_method":
                ray.get(actor.env_method.remote(name, local, args, kwargs))
            else:
                ray.get(actor.set_attr.remote(name, args[0], local))
        first = None if seed is None else seed + batch.start
        obs, infos = ray.get(actor.reset.remote(first, [{} for _ in batch]))
        log.warning("[ray] actor %d died (%s); re-created envs %d..%d", k, _short(exc), batch.start, batch.stop - 1)
        return obs, infos

    def _gather(self, futures: list[Any]) -> tuple[list[Any], dict[int, BaseException]]:
        """Results per actor; a dead actor's slot is None and its error is returned (env errors raise)."""
        results: list[Any] = []
        dead: dict[int, BaseException] = {}
        for k, future in enumerate(futures):
            try:
                results.append(self._ray.get(future))
            except self._ray.exceptions.RayActorError as exc:
                results.append(None)
                dead[k] = exc
        return results, dead

    # ------------------------------------------------------------------------- VecEnv API
    def reset(self):
        futures = []
        for k, batch in enumerate(self.batches):
            first = self._seeds[batch.start]
            futures.append(self.actors[k].reset.remote(first, [self._options[i] for i in batch]))
        results, dead = self._gather(futures)
        for k, exc in dead.items():
            results[k] = self._restart(k, exc)
        for k, (obs, infos) in enumerate(results):
            batch = self.batches[k]
            for key in self.keys:
                self._last_obs[key][batch.start:batch.stop] = obs[key]
            for j, i in enumerate(batch):
                self.reset_infos[i] = infos[j]
                self._last_infos[i] = {}
        if self._seeds[0] is not None:
            self._base_seed = self._seeds[0]
        self._reset_seeds()
        self._reset_options()
        return {key: self._last_obs[key].copy() for key in self.keys}

    def seed(self, seed: int | None = None) -> Sequence[int | None]:
        seeds = super().seed(seed)
        self._base_seed = seeds[0]
        return seeds

    def step_async(self, actions: np.ndarray) -> None:
        actions = np.asarray(actions)
        if len(actions) != self.num_envs:
            raise ValueError(f"got actions for {len(actions)} envs, this VecEnv has {self.num_envs}")
        self._pending = [self.actors[k].step.remote(actions[b.start:b.stop]) for k, b in enumerate(self.batches)]

    def step_wait(self) -> VecEnvStepReturn:
        if self._pending is None:
            raise RuntimeError("step_wait() without step_async()")
        futures, self._pending = self._pending, None
        results, dead = self._gather(futures)
        obs = {key: np.empty_like(self._last_obs[key]) for key in self.keys}
        rews = np.zeros(self.num_envs, dtype=np.float32)
        dones = np.zeros(self.num_envs, dtype=bool)
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        for k, batch in enumerate(self.batches):
            s = slice(batch.start, batch.stop)
            if k in dead:
                reset_obs, reset_infos = self._restart(k, dead[k])
                for key in self.keys:
                    obs[key][s] = reset_obs[key]
                dones[s] = True
                for j, i in enumerate(batch):
                    cut = {key: self._last_obs[key][i].copy() for key in self.keys}
                    info = dict(reset_infos[j])
                    info["consecutive_successes"] = self._last_infos[i].get("consecutive_successes", 0)
                    info.update(actor_restarted=True, terminal_observation=cut, **{"TimeLimit.truncated": True})
                    infos[i] = info
                    self.reset_infos[i] = reset_infos[j]
                continue
            b_obs, b_rews, b_dones, b_infos = results[k]
            for key in self.keys:
                obs[key][s] = b_obs[key]
            rews[s], dones[s] = b_rews, b_dones
            infos[s] = b_infos
        for key in self.keys:
            self._last_obs[key][:] = obs[key]
        self._last_infos = infos
        return obs, rews, dones, infos

    def _route(self, indices: VecEnvIndices) -> tuple[list[int], dict[int, list[int]]]:
        """Global indices, and per actor the local indices it holds."""
        wanted = [int(i) for i in self._get_indices(indices)]
        per_actor: dict[int, list[int]] = {}
        for i in wanted:
            if not 0 <= i < self.num_envs:
                raise IndexError(f"env index {i} is out of range for {self.num_envs} envs")
            k = next(k for k, b in enumerate(self.batches) if i in b)
            per_actor.setdefault(k, []).append(i - self.batches[k].start)
        return wanted, per_actor

    def _call(self, indices: VecEnvIndices, call) -> list[Any]:
        """Run ``call(actor, local_indices)`` on the actors holding ``indices``; results in index order."""
        wanted, per_actor = self._route(indices)
        keys = list(per_actor)
        results, dead = self._gather([call(self.actors[k], per_actor[k]) for k in keys])
        for n, k in enumerate(keys):
            if n in dead:  # re-create (setters replayed), then run the call once more
                self._restart(k, dead[n])
                results[n] = self._ray.get(call(self.actors[k], per_actor[k]))
        by_index: dict[int, Any] = {}
        for n, k in enumerate(keys):
            for local, value in zip(per_actor[k], results[n] or [None] * len(per_actor[k])):
                by_index[self.batches[k].start + local] = value
        return [by_index[i] for i in wanted]

    def _remember(self, kind: str, name: str, indices: VecEnvIndices, args: tuple, kwargs: dict[str, Any]) -> None:
        """Keep setter calls to replay on a re-created actor; a later call on the same envs replaces one."""
        wanted = sorted({int(i) for i in self._get_indices(indices)})
        self._setters = [s for s in self._setters if not (s[0] == kind and s[1] == name and set(s[2]) <= set(wanted))]
        self._setters.append((kind, name, wanted, deepcopy(args), deepcopy(kwargs)))

    def env_method(self, method_name: str, *method_args, indices: VecEnvIndices = None, **method_kwargs) -> list[Any]:
        if method_name == "set_schedule":
            raise ValueError(ADR_ERROR)
        results = self._call(indices, lambda a, local: a.env_method.remote(method_name, local, method_args,
                                                                           method_kwargs))
        if method_name.startswith("set_"):
            self._remember("env_method", method_name, indices, method_args, method_kwargs)
        return results

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return self._call(indices, lambda a, local: a.get_attr.remote(attr_name, local))

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        if attr_name == "schedule":
            raise ValueError(ADR_ERROR)
        self._call(indices, lambda a, local: a.set_attr.remote(attr_name, value, local))
        self._remember("set_attr", attr_name, indices, (value,), {})

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        return self._call(indices, lambda a, local: a.env_is_wrapped.remote(wrapper_class, local))

    def get_images(self) -> Sequence[np.ndarray | None]:
        return self.env_method("render")

    def close(self) -> None:
        ray = self._ray
        if self._closed or not ray.is_initialized():
            return
        try:
            ray.get([a.close.remote() for a in self.actors], timeout=30)
        except Exception as exc:  # a dead or stuck actor must not block shutdown
            log.warning("[ray] closing envs: %s", _short(exc))
        self._shutdown()

    def _shutdown(self) -> None:
        self._closed = True
        for actor in self.actors:
            self._ray.kill(actor, no_restart=True)
        if self._owns_ray:
            self._ray.shutdown()
