"""``dexhand train``: asymmetric PPO (LSTM by default) on batched CubeReorient envs.

Operations a user expects: TensorBoard logs under ``RUN_DIR/tb``, a progress bar, checkpoints
every ``checkpoint_every`` env steps (model, optimizer, normalization, RNG, curriculum and ADR
state), ``--resume`` to continue from the latest one, and Ctrl-C saves before exiting.

Resume is not bit-identical to an uninterrupted run: the envs' physics state mid-episode is not
saved, so a resumed run starts fresh episodes (reseeded with seed + steps done). Weights,
optimizer moments, normalization statistics, RNG streams, curriculum and ADR continue exactly.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch as th
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.utils import set_random_seed
from stable_baselines3.common.vec_env import VecEnv, VecMonitor, VecNormalize

from dexhand.train import checkpoint
from dexhand.train.adr import AutomaticDomainRandomization
from dexhand.train.config import PPOConfig, TrainConfig
from dexhand.train.curriculum import GoalCurriculum
from dexhand.train.finetune import FinetunePPO, init_from_checkpoint
from dexhand.train.networks import AsymmetricLstmPolicy, AsymmetricPolicy
from sim.configio import ConfigError, to_dict
from sim.vec_env import make_vec_env

EPISODE_KEYS = ("consecutive_successes", "dropped")


def algorithm(cfg: TrainConfig):
    if cfg.net.recurrent:
        from sb3_contrib import RecurrentPPO

        return RecurrentPPO, AsymmetricLstmPolicy
    if cfg.finetune.active:  # PPO with critic warm-up and the BC term
        return FinetunePPO, AsymmetricPolicy
    return PPO, AsymmetricPolicy


def algo_kwargs(cfg: TrainConfig) -> dict[str, Any]:
    """The algorithm's settings from the config: PPO's, plus fine-tuning's where it is on."""
    kw = ppo_kwargs(cfg.ppo)
    if algorithm(cfg)[0] is FinetunePPO:
        f = cfg.finetune
        kw.update(critic_warmup_steps=f.critic_warmup_steps, bc_coef=f.bc_coef, bc_decay_steps=f.bc_decay_steps)
    return kw


def policy_kwargs(cfg: TrainConfig) -> dict[str, Any]:
    kw: dict[str, Any] = {
        "features_extractor_kwargs": {"features_dim": cfg.net.features_dim},
        "net_arch": {"pi": list(cfg.net.pi_layers), "vf": list(cfg.net.vf_layers)},
        "log_std_init": cfg.net.log_std_init,
        "activation_fn": th.nn.ELU,
    }
    if cfg.net.recurrent:
        kw["lstm_hidden_size"] = cfg.net.lstm_hidden
    return kw


def ppo_kwargs(p: PPOConfig) -> dict[str, Any]:
    return {"n_steps": p.n_steps, "batch_size": p.batch_size, "n_epochs": p.n_epochs, "learning_rate": p.learning_rate,
            "gamma": p.gamma, "gae_lambda": p.gae_lambda, "clip_range": p.clip_range, "ent_coef": p.ent_coef,
            "vf_coef": p.vf_coef, "max_grad_norm": p.max_grad_norm, "target_kl": p.target_kl}


def build_envs(cfg: TrainConfig, seed: int) -> VecEnv:
    if cfg.ray_address:  # envs in Ray actors (optional 'scale' extra): imported only when asked for
        from dexhand.scale.ray_vec_env import RayVecEnv

        vec: VecEnv = RayVecEnv(cfg.n_envs, cfg.env, envs_per_actor=cfg.envs_per_actor, seed=seed,
                                address=cfg.ray_address)
    else:
        vec = make_vec_env(cfg.n_envs, cfg.env, backend=cfg.vec_backend, n_workers=cfg.n_workers, seed=seed)
    return VecMonitor(vec, info_keywords=EPISODE_KEYS)


class DactylCallback(BaseCallback):
    """Curriculum and ADR bookkeeping, task metrics in TensorBoard, periodic checkpoints."""

    def __init__(self, trainer: Trainer) -> None:
        super().__init__()
        self.trainer = trainer
        self.episodes: list[tuple[float, bool]] = []
        self._last_save = 0
        self._rollout_start = time.perf_counter()
        self._rollout_steps = 0

    def _on_training_start(self) -> None:
        self._last_save = self.model.num_timesteps

    def _on_rollout_start(self) -> None:
        th.set_num_threads(self.trainer.cfg.torch_threads)  # the envs need the cores now
        self._rollout_start = time.perf_counter()
        self._rollout_steps = self.model.num_timesteps

    def _on_step(self) -> bool:
        t = self.trainer
        for info, done in zip(self.locals["infos"], self.locals["dones"]):
            if not done or "episode" not in info:
                continue
            successes = float(info["consecutive_successes"])
            self.episodes.append((successes, bool(info["dropped"])))
            if t.curriculum is not None and t.curriculum.record(successes):
                t.apply_curriculum()
                print(f"\n[curriculum] step {self.model.num_timesteps}: stage {t.curriculum.stage}, "
                      f"goals '{t.curriculum.goal_mode}' within {t.curriculum.goal_max_angle:.2f} rad, "
                      f"randomization {t.curriculum.strength}")
        if self.model.num_timesteps - self._last_save >= t.cfg.checkpoint_every:
            saved = t.save()
            self._last_save = self.model.num_timesteps
            if not t.progress:  # logs get one line per checkpoint instead of a progress bar
                recent = t.recent_successes[-100:]
                mean = f"{np.mean(recent):.2f}" if recent else "n/a"
                print(f"[train] step {self.model.num_timesteps}: saved {saved.path.name}, consecutive successes "
                      f"(last {len(recent)} episodes) mean {mean}", flush=True)
        return True

    def _on_rollout_end(self) -> None:
        t = self.trainer
        th.set_num_threads(t.update_threads)  # the envs idle during the update: give it every core
        rollout_time = time.perf_counter() - self._rollout_start
        self.logger.record("time/rollout_env_steps_per_s",
                           (self.model.num_timesteps - self._rollout_steps) / max(rollout_time, 1e-9))
        if self.episodes:
            succ = np.array([e[0] for e in self.episodes])
            self.logger.record("task/consecutive_successes_mean", float(succ.mean()))
            self.logger.record("task/consecutive_successes_median", float(np.median(succ)))
            self.logger.record("task/drop_rate", float(np.mean([e[1] for e in self.episodes])))
            self.logger.record("task/episodes", len(self.episodes))
            t.recent_successes.extend(succ.tolist())
            self.episodes.clear()
        if t.curriculum is not None:
            self.logger.record("curriculum/stage", t.curriculum.stage)
            self.logger.record("curriculum/goal_max_angle", t.curriculum.goal_max_angle)
        if t.adr is not None:
            for tag, value in t.adr.scalars().items():  # every bound, the entropy, the changes
                self.logger.record(tag, value)


@dataclass
class TrainResult:
    run_dir: Path
    num_timesteps: int
    seconds: float
    env_steps_per_s: float
    mean_consecutive_successes: float
    checkpoint: Path


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (kill, a cluster scheduler's pre-emption) saves a checkpoint as Ctrl-C does."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class Trainer:
    def __init__(self, cfg: TrainConfig, run_dir: Path, resume: bool = False, progress: bool = True) -> None:
        self.cfg, self.run_dir, self.progress = cfg, Path(run_dir), progress
        self.curriculum = GoalCurriculum(cfg.curriculum) if cfg.curriculum.enabled else None
        self.adr = AutomaticDomainRandomization(cfg.adr, cfg.env.randomization) if cfg.adr.enabled else None
        self.recent_successes: list[float] = []
        self.update_threads = cfg.update_threads or os.cpu_count() or 1
        th.set_num_threads(cfg.torch_threads)
        found = checkpoint.latest(self.run_dir) if resume else None
        if resume and found is None:
            print(f"[train] no checkpoint in {self.run_dir}: starting a new run")
        state = found.load_state() if found else None
        if found is None and cfg.finetune.active and not cfg.init_from:
            raise ConfigError("finetune.*: fine-tuning starts from other weights; set init_from=RUN_OR_CHECKPOINT_DIR "
                              "(or turn finetune.critic_warmup_steps and finetune.bc_coef off)")
        done = state["num_timesteps"] if state else 0
        set_random_seed(cfg.seed + done)
        envs = build_envs(cfg, seed=cfg.seed + done)
        if found and found.normalizer.is_file():
            self.envs = VecNormalize.load(str(found.normalizer), envs)
            self.envs.training = True
        else:
            self.envs = VecNormalize(envs, norm_obs=cfg.normalize_observations, norm_reward=False, clip_obs=10.0)
        algo, policy = algorithm(cfg)
        if found:
            # The config's PPO settings win over the checkpoint's, so `--resume ppo.learning_rate=1e-4`
            # does what it says; weights, optimizer moments and step count come from the checkpoint.
            self.model = algo.load(found.model, env=self.envs, device=cfg.device,
                                   tensorboard_log=str(self.run_dir / "tb"), **algo_kwargs(cfg))
            if isinstance(self.model, FinetunePPO) and state.get("finetune"):
                self.model.load_reference(state["finetune"])
            if self.curriculum and state.get("curriculum"):
                self.curriculum.load_state_dict(state["curriculum"])
            if self.adr and state.get("adr"):
                self.adr.load_state_dict(state["adr"])
            checkpoint.restore_rng(state["rng"])
            print(f"[train] resumed from {found.path} at {self.model.num_timesteps} steps")
        else:
            self.model = algo(
                policy, self.envs, **algo_kwargs(cfg),
                policy_kwargs=policy_kwargs(cfg), tensorboard_log=str(self.run_dir / "tb"), seed=cfg.seed,
                device=cfg.device, verbose=0,
            )
            if cfg.init_from:  # a fresh run from other weights (a distilled student); resumed runs skip this
                print(f"[train] {init_from_checkpoint(self.model, self.envs, cfg.init_from)}")
            if isinstance(self.model, FinetunePPO):
                self.model.set_reference()  # the BC target: the initial actor and its observation statistics
        self.resumed = found is not None
        self.apply_curriculum()
        if self.adr is not None:
            self.envs.env_method("set_schedule", self.adr)

    def apply_curriculum(self) -> None:
        if self.curriculum is None:
            return
        self.envs.env_method("set_goal_mode", self.curriculum.goal_mode)
        self.envs.env_method("set_goal_max_angle", self.curriculum.goal_max_angle)
        if self.adr is None:
            self.envs.env_method("set_randomization_strength", self.curriculum.strength)

    def trainer_state(self) -> dict[str, Any]:
        return {
            "curriculum": self.curriculum.state_dict() if self.curriculum else None,
            "adr": self.adr.state_dict() if self.adr else None,
            "finetune": (self.model.reference_state()
                         if isinstance(self.model, FinetunePPO) and self.model.reference is not None else None),
        }

    def save(self) -> checkpoint.Checkpoint:
        import yaml

        return checkpoint.save(self.run_dir, self.model, self.envs, self.trainer_state(),
                               yaml.safe_dump(to_dict(self.cfg), sort_keys=False))

    def train(self, total_timesteps: int | None = None) -> TrainResult:
        total = total_timesteps or self.cfg.total_timesteps
        remaining = total - self.model.num_timesteps
        start_steps, start = self.model.num_timesteps, time.perf_counter()
        callback = DactylCallback(self)
        try:
            with _sigterm_as_interrupt():
                if remaining > 0:
                    self.model.learn(remaining, callback=callback, reset_num_timesteps=not self.resumed,
                                     progress_bar=self.progress, tb_log_name="ppo")
        except KeyboardInterrupt:
            saved = self.save()
            print(f"\n[train] interrupted: saved {saved.path}; continue with --resume")
            raise
        seconds = time.perf_counter() - start
        saved = self.save()
        recent = self.recent_successes[-100:]
        return TrainResult(self.run_dir, self.model.num_timesteps, seconds,
                           (self.model.num_timesteps - start_steps) / max(seconds, 1e-9),
                           float(np.mean(recent)) if recent else 0.0, saved.path)

    def close(self) -> None:
        self.envs.close()
