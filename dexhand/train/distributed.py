"""PPO whose update runs on data-parallel learners: synchronous SGD with backup workers.

:class:`DistributedPPO` is SB3's ``PPO`` with ``train()`` (the update after each rollout)
replaced: every minibatch's gradient is computed by K learner processes (+ B backups) through
``ml_extras.sync_sgd.DataParallelSGD``; the first K gradients to arrive are averaged, clipped to
``max_grad_norm`` and applied here by the policy's own optimizer. Rollouts, logging,
checkpoints and everything else are PPO's.

Exactness: the minibatch order is drawn from numpy's global RNG exactly as
``RolloutBuffer.get`` does, advantages are normalised over the whole minibatch before it is cut
into K + B equal shards, and the loss is SB3's clipped surrogate + ``vf_coef`` x value loss +
``ent_coef`` x entropy loss, each a mean over the shard. With B = 0 and a minibatch size divisible
by K the averaged gradient is the full minibatch's, so one update equals ``PPO.train()`` to float
tolerance (tests/scale/test_learners.py). With B > 0 each step uses the K fastest of K + B shards
(K/(K+B) of the minibatch), and a backup that fell behind computes on an earlier minibatch's
shard with the current parameters; both are unbiased estimates of the update's gradient.

Limits: feed-forward policies only (``AsymmetricPolicy``; recurrent PPO's sequence minibatches
are out of scope), no gSDE. ``target_kl`` is honoured by a no-grad forward pass of each
minibatch here before its step (the learners report only their loss); that pass also yields
SB3's ``train/approx_kl``, ``clip_fraction``, ... logs, which are absent when ``target_kl`` is None.

The learner processes live in one :class:`~ml_extras.sync_sgd.WorkerPool` kept across updates
(spawning costs seconds); each update is one job holding that rollout's arrays. Call
:meth:`DistributedPPO.close_learners` when done (they are also reaped at interpreter exit).

Usage::

    model = DistributedPPO(AsymmetricPolicy, envs, learners=2, backup=1, ...)   # or:
    use_learners(trainer, learners=2, backup=1)   # converts trainer.model (a PPO) in place
"""

from __future__ import annotations

import logging
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.utils import explained_variance
from torch.nn import functional as F

from ml_extras.sync_sgd import DataParallelSGD, TrainResult, WorkerPool

log = logging.getLogger(__name__)


@dataclass
class LearnerSettings:
    """How the update is spread: K learners averaged per step, B backups, stall timeout (s)."""

    learners: int = 2
    backup: int = 0
    timeout: float = 60.0
    startup_timeout: float = 120.0
    threads: int = 1  # torch threads per learner process

    def validate(self) -> None:
        if self.learners < 1:
            raise ValueError(f"learners: must be >= 1, got {self.learners}")
        if self.backup < 0:
            raise ValueError(f"backup: must be >= 0, got {self.backup}")
        if self.timeout <= 0 or self.startup_timeout <= 0:
            raise ValueError("learner timeouts must be > 0 s")

    @property
    def processes(self) -> int:
        return self.learners + self.backup


@dataclass
class RolloutShards:
    """Picklable ``batch_fn(rank, iteration)``: shard ``rank`` (of ``shards``) of minibatch
    ``iteration`` of this update, from the flattened rollout arrays. ``minibatches[m]`` holds the
    sample indices of minibatch m and ``advantages[m]`` their advantages, already normalised over
    the whole minibatch."""

    observations: dict[str, th.Tensor] | th.Tensor
    actions: th.Tensor
    old_values: th.Tensor
    old_log_prob: th.Tensor
    returns: th.Tensor
    minibatches: list[th.Tensor]
    advantages: list[th.Tensor]
    shards: int

    def __call__(self, rank: int, iteration: int) -> dict[str, Any]:
        m = iteration % len(self.minibatches)  # a worker never computes more gradients than steps
        part = np.array_split(np.arange(len(self.minibatches[m])), self.shards)[rank % self.shards]
        return self.select(m, th.from_numpy(part))

    def select(self, m: int, part: th.Tensor | None = None) -> dict[str, Any]:
        """Minibatch ``m`` (positions ``part`` of it, or all) as the loss function's batch."""
        index, adv = self.minibatches[m], self.advantages[m]
        if part is not None:
            index, adv = index[part], adv[part]
        obs = ({k: v[index] for k, v in self.observations.items()} if isinstance(self.observations, dict)
               else self.observations[index])
        return {"observations": obs, "actions": self.actions[index], "old_values": self.old_values[index],
                "old_log_prob": self.old_log_prob[index], "returns": self.returns[index], "advantages": adv}


@dataclass
class PPOLoss:
    """Picklable ``loss_fn(policy, batch)``: SB3 PPO's minibatch loss (clipped surrogate, value
    loss with optional clipping, entropy bonus), every term a mean over the batch."""

    clip_range: float
    clip_range_vf: float | None
    ent_coef: float
    vf_coef: float
    discrete: bool = False

    def terms(self, policy: Any, batch: dict[str, Any]) -> dict[str, th.Tensor]:
        batch = _to_device(batch, policy.device)
        actions = batch["actions"].long().flatten() if self.discrete else batch["actions"]
        values, log_prob, entropy = policy.evaluate_actions(batch["observations"], actions)
        values = values.flatten()
        advantages = batch["advantages"]
        ratio = th.exp(log_prob - batch["old_log_prob"])
        policy_loss = -th.min(advantages * ratio,
                              advantages * th.clamp(ratio, 1 - self.clip_range, 1 + self.clip_range)).mean()
        if self.clip_range_vf is None:
            values_pred = values
        else:
            old = batch["old_values"]
            values_pred = old + th.clamp(values - old, -self.clip_range_vf, self.clip_range_vf)
        value_loss = F.mse_loss(batch["returns"], values_pred)
        entropy_loss = -th.mean(-log_prob) if entropy is None else -th.mean(entropy)
        loss = policy_loss + self.ent_coef * entropy_loss + self.vf_coef * value_loss
        return {"loss": loss, "policy_loss": policy_loss, "value_loss": value_loss, "entropy_loss": entropy_loss,
                "log_ratio": log_prob - batch["old_log_prob"], "ratio": ratio}

    def __call__(self, policy: Any, batch: dict[str, Any]) -> th.Tensor:
        return self.terms(policy, batch)["loss"]


def _to_device(value: Any, device: th.device) -> Any:
    if isinstance(value, dict):
        return {k: _to_device(v, device) for k, v in value.items()}
    return value.to(device)


class ClippedOptimizer:
    """The policy optimizer seen by DataParallelSGD: clips the averaged gradient's norm (as PPO
    does after ``backward``) before each step. Moments and learning rate stay in ``optimizer``."""

    def __init__(self, optimizer: th.optim.Optimizer, params: list[th.nn.Parameter], max_norm: float) -> None:
        self.optimizer, self.params, self.max_norm = optimizer, params, max_norm

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return self.optimizer.param_groups

    def step(self) -> None:
        th.nn.utils.clip_grad_norm_(self.params, self.max_norm)
        self.optimizer.step()


class _EarlyStop(Exception):
    """Raised from the step callback when the next minibatch's KL exceeds 1.5 x target_kl."""


class DistributedPPO(PPO):
    """SB3 PPO whose minibatch gradients come from K learners + B backups (module docstring)."""

    def __init__(self, *args: Any, learners: int = 2, backup: int = 0, learner_timeout: float = 60.0,
                 learner_threads: int = 1, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._attach(LearnerSettings(learners, backup, learner_timeout, threads=learner_threads))

    @classmethod
    def convert(cls, model: PPO, settings: LearnerSettings) -> DistributedPPO:
        """Turn an existing (built or loaded) PPO into a DistributedPPO in place and return it."""
        if type(model) is not PPO and not isinstance(model, DistributedPPO):
            raise TypeError(f"learners: only stable_baselines3.PPO (feed-forward) can be distributed, got "
                            f"{type(model).__name__}; recurrent PPO is not supported (set net.recurrent=false)")
        model.__class__ = cls
        assert isinstance(model, DistributedPPO)
        model._attach(settings)
        return model

    def _attach(self, settings: LearnerSettings) -> None:
        settings.validate()
        if self.use_sde:
            raise ValueError("learners: gSDE (use_sde) is not supported by the distributed update")
        if getattr(self, "_learner_pool", None) is not None:
            self.close_learners()
        self.learner_settings = settings
        self.last_update: TrainResult | None = None  # what the learners did in the latest update
        self._learner_pool: WorkerPool | None = None
        self._pool_finalizer: Any = None

    def _excluded_save_params(self) -> list[str]:
        # checkpoints stay plain-PPO loadable: no processes, no learner settings
        return [*super()._excluded_save_params(), "learner_settings", "last_update", "_learner_pool",
                "_pool_finalizer"]

    def share_pool(self, pool: WorkerPool) -> None:
        """Run the updates on an existing pool (its owner closes it; close_learners leaves it)."""
        self.close_learners()
        self._learner_pool = pool

    def close_learners(self) -> None:
        """Stop the learner processes this model spawned (a later update spawns them again)."""
        if self._pool_finalizer is not None:
            self._pool_finalizer()  # runs WorkerPool.close once
        self._learner_pool, self._pool_finalizer = None, None

    def _pool(self) -> WorkerPool:
        if self._learner_pool is None:
            s = self.learner_settings
            self._learner_pool = WorkerPool(s.processes, threads=s.threads)
            self._pool_finalizer = weakref.finalize(self, self._learner_pool.close)
        return self._learner_pool

    # ----- the update --------------------------------------------------------------------------
    def _rollout_arrays(self) -> dict[str, Any]:
        """The buffer flattened to (n_steps * n_envs, ...) torch tensors, as ``get`` would do it,
        without drawing from the global RNG."""
        buf = self.rollout_buffer
        state = np.random.get_state()
        next(buf.get(batch_size=None))  # flattens in place (once); restores the RNG draw below
        np.random.set_state(state)
        obs = buf.observations
        observations = ({k: th.tensor(v) for k, v in obs.items()} if isinstance(obs, dict) else th.tensor(obs))
        return {"observations": observations, "actions": th.tensor(buf.actions),
                "old_values": th.tensor(buf.values.flatten()), "old_log_prob": th.tensor(buf.log_probs.flatten()),
                "advantages": th.tensor(buf.advantages.flatten()), "returns": th.tensor(buf.returns.flatten())}

    def _minibatch_plan(self, n: int, advantages: th.Tensor) -> tuple[list[th.Tensor], list[th.Tensor], int]:
        """Every epoch's minibatch indices (same permutations as ``RolloutBuffer.get``) and their
        normalised advantages; returns also the minibatches per epoch."""
        minibatches, normalised = [], []
        for _ in range(self.n_epochs):
            perm = np.random.permutation(n)
            for start in range(0, n, self.batch_size):
                index = th.from_numpy(perm[start:start + self.batch_size])
                adv = advantages[index]
                if self.normalize_advantage and len(adv) > 1:
                    adv = (adv - adv.mean()) / (adv.std() + 1e-8)
                minibatches.append(index)
                normalised.append(adv)
        return minibatches, normalised, len(range(0, n, self.batch_size))

    def train(self) -> None:
        """One PPO update on the current rollout, each minibatch gradient from the learners."""
        s = self.learner_settings
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        clip_range = float(self.clip_range(self._current_progress_remaining))
        clip_range_vf = (float(self.clip_range_vf(self._current_progress_remaining))
                         if self.clip_range_vf is not None else None)
        data = self._rollout_arrays()
        n = len(data["actions"])
        rng_before = np.random.get_state()
        minibatches, advantages, per_epoch = self._minibatch_plan(n, data["advantages"])
        if min(len(m) for m in minibatches) < s.processes:
            raise ValueError(f"learners: a minibatch of {min(len(m) for m in minibatches)} samples cannot be "
                             f"split over {s.processes} learners (batch_size={self.batch_size})")
        loss_fn = PPOLoss(clip_range, clip_range_vf, float(self.ent_coef), float(self.vf_coef),
                          discrete=isinstance(self.action_space, spaces.Discrete))
        shards = RolloutShards(data["observations"], data["actions"], data["old_values"], data["old_log_prob"],
                               data["returns"], minibatches, advantages, s.processes)
        optimizer = ClippedOptimizer(self.policy.optimizer, list(self.policy.parameters()), self.max_grad_norm)
        stats: dict[str, list[float]] = {k: [] for k in ("policy_loss", "value_loss", "entropy_loss",
                                                          "clip_fraction", "approx_kl")}

        def kl_allows(m: int) -> bool:
            """SB3's early stop: measure minibatch m at the current parameters before its step."""
            if self.target_kl is None:
                return True
            with th.no_grad():
                terms = loss_fn.terms(self.policy, shards.select(m))
            kl = float(th.mean(th.exp(terms["log_ratio"]) - 1 - terms["log_ratio"]))
            for key in ("policy_loss", "value_loss", "entropy_loss"):
                stats[key].append(float(terms[key]))
            stats["clip_fraction"].append(float(th.mean((th.abs(terms["ratio"] - 1) > clip_range).float())))
            stats["approx_kl"].append(kl)
            return kl <= 1.5 * self.target_kl

        def on_step(step: int, _model: th.nn.Module) -> None:
            if step + 1 < len(minibatches) and not kl_allows(step + 1):
                raise _EarlyStop

        total = len(minibatches)
        learners = DataParallelSGD(self.policy, optimizer, loss_fn, shards, workers=s.learners, backup=s.backup,
                                   mode="sync", worker_timeout=s.timeout, startup_timeout=s.startup_timeout,
                                   worker_threads=s.threads, seed=int(self.seed or 0), pool=self._pool())
        with learners:
            try:
                if kl_allows(0):
                    learners.train(total, on_step=on_step)
            except _EarlyStop:
                pass
        done = learners.step_count
        if done < total:  # early stop: the global RNG as if only the epochs started had drawn
            epochs_started = done // per_epoch + 1
            np.random.set_state(rng_before)
            for _ in range(epochs_started):
                np.random.permutation(n)
            self._n_updates += epochs_started
            if self.verbose >= 1:
                print(f"Early stopping at step {epochs_started - 1} due to reaching max kl: "
                      f"{stats['approx_kl'][-1]:.2f}")
        else:
            self._n_updates += self.n_epochs

        self.last_update = learners.result
        steps = learners.result.steps
        explained_var = explained_variance(self.rollout_buffer.values.flatten(), self.rollout_buffer.returns.flatten())
        for key, values in stats.items():
            if values:
                name = {"policy_loss": "policy_gradient_loss"}.get(key, key)
                self.logger.record(f"train/{name}", np.mean(values))
        if steps:
            self.logger.record("train/loss", steps[-1].mean_loss)
            self.logger.record("train/learner_step_s", float(np.mean([r.seconds for r in steps])))
        self.logger.record("train/explained_variance", explained_var)
        self.logger.record("train/learners_dropped", len(learners.result.dropped))
        self.logger.record("train/learner_grads_discarded", learners.result.discarded_late)
        if hasattr(self.policy, "log_std"):
            self.logger.record("train/std", th.exp(self.policy.log_std).mean().item())
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/clip_range", clip_range)
        if clip_range_vf is not None:
            self.logger.record("train/clip_range_vf", clip_range_vf)


def use_learners(trainer: Any, learners: int, backup: int = 0, timeout: float = 60.0) -> None:
    """Make ``trainer.model`` (a ``dexhand.train.trainer.Trainer``'s PPO) update on K learners + B
    backups; learners=1 with backup=0 leaves it untouched. Call ``trainer.model.close_learners()``
    when done (``Trainer.close``)."""
    if learners == 1 and backup == 0:
        return
    if trainer.cfg.net.recurrent:
        raise ValueError("--learners/--backup: the data-parallel PPO update supports the feed-forward policy "
                         "only; set net.recurrent=false")
    DistributedPPO.convert(trainer.model, LearnerSettings(learners, backup, timeout, threads=trainer.cfg.torch_threads))
