"""DAgger from the sampling-MPC teacher into the feed-forward robot policy (the student).

Each iteration drives ``n_envs`` envs in turn. At every control step the teacher plans on the env's
exact state and labels the student's observation (noisy, latent: what the robot sees) with its
action; the env executes the teacher's action with probability beta, else the student's, so later
iterations gather the states the student itself reaches. After each iteration the student is refit
on every shard so far and saved as a normal training checkpoint (observation normalization
included), which ``dexhand eval``, ``dexhand export`` and PPO's ``init_from`` read.

Resumable: shards are written whole, ``distill_state.json`` records which iterations are fitted, and
the student's weights come back from the latest checkpoint.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import numpy as np
import torch as th

from dexhand.distill.config import DistillConfig
from dexhand.distill.loop import DaggerLoop, FitResult, fit_epochs
from dexhand.distill.shards import load_shards
from dexhand.train import checkpoint
from dexhand.train.trainer import Trainer


class StudentActor:
    """The SB3 policy's actor as a deterministic function of the (normalized) ``policy`` observation."""

    def __init__(self, trainer: Trainer) -> None:
        self.trainer = trainer
        self.policy = trainer.model.policy
        self.rms = trainer.envs.obs_rms["policy"]
        self.clip, self.eps = trainer.envs.clip_obs, trainer.envs.epsilon

    def normalize(self, obs: np.ndarray) -> np.ndarray:
        return np.clip((obs - self.rms.mean) / np.sqrt(self.rms.var + self.eps), -self.clip, self.clip)

    def mean_action(self, obs_norm: th.Tensor) -> th.Tensor:
        p = self.policy
        features = p.pi_features_extractor({"policy": obs_norm})
        return p.action_net(p.mlp_extractor.forward_actor(features))

    def _modules(self) -> tuple[th.nn.Module, ...]:
        p = self.policy
        return p.pi_features_extractor, p.mlp_extractor.policy_net, p.action_net

    def parameters(self) -> list[th.nn.Parameter]:
        return [q for module in self._modules() for q in module.parameters()]

    def reset_weights(self, seed: int) -> None:
        """Fresh actor weights, so a refit owes nothing to earlier fits (whose data may now be held out)."""
        th.manual_seed(seed)
        for module in self._modules():
            for layer in module.modules():
                if hasattr(layer, "reset_parameters"):
                    layer.reset_parameters()

    def act(self, obs: np.ndarray) -> np.ndarray:
        with th.no_grad():
            x = th.as_tensor(self.normalize(obs)[None], dtype=th.float32)
            return self.mean_action(x)[0].numpy().clip(-1.0, 1.0)

    def set_normalization(self, obs: np.ndarray) -> None:
        self.rms.mean = obs.mean(axis=0).astype(np.float64)
        self.rms.var = obs.var(axis=0).astype(np.float64)
        self.rms.count = float(len(obs))


class Dagger(DaggerLoop):
    """DAgger into the SB3 actor: the teacher keeps its own plan; the label is its (weighted) action."""

    def __init__(self, cfg: DistillConfig, run_dir: Path, resume: bool = False, progress: bool = True) -> None:
        run_dir = Path(run_dir)
        student_cfg = copy.deepcopy(cfg.student)
        student_cfg.n_envs, student_cfg.vec_backend = 1, "serial"  # only the network and checkpoint format
        student_cfg.ppo.batch_size = student_cfg.ppo.n_steps
        self.run_dir = run_dir
        existing = self._has_student()
        super().__init__(cfg, run_dir, resume, progress)
        self.trainer = Trainer(student_cfg, self.run_dir, resume=existing, progress=False)
        self.student = StudentActor(self.trainer)

    def _has_student(self) -> bool:
        return checkpoint.latest(self.run_dir) is not None

    def _student_path(self) -> Path:
        found = checkpoint.latest(self.run_dir)
        return found.path if found else self.run_dir

    def _labelled_step(self, i: int, obs: dict[str, np.ndarray], use_teacher: bool
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        teacher = self.teachers[i]
        teacher_action = teacher.act()
        label = teacher.label if self.cfg.dagger.label == "weighted" else teacher_action
        action = teacher_action if use_teacher else self.student.act(obs["policy"])
        return obs["policy"], label, action

    def _fresh_student(self) -> None:
        self.student.reset_weights(self.cfg.seed)

    def fit(self, iteration: int) -> FitResult:
        """Refit the student's mean action to the teacher's on every shard so far; save a checkpoint."""
        start = time.perf_counter()
        samples = load_shards(self.shard_dir)
        if len(samples.obs) < 2:
            raise ValueError(f"no distillation data in {self.shard_dir}")
        self.student.set_normalization(samples.obs)
        x = th.as_tensor(self.student.normalize(samples.obs), dtype=th.float32)
        y = th.as_tensor(np.clip(samples.action, -1.0, 1.0), dtype=th.float32)
        th.set_num_threads(self.trainer.update_threads)
        e = fit_epochs(self.student.mean_action, self.student.parameters(), x, y, samples.shard, self.cfg.fit,
                       self.cfg.seed + iteration, self.tb, iteration)
        th.set_num_threads(self.trainer.cfg.torch_threads)
        self.trainer.model.num_timesteps = len(samples.obs)  # checkpoints are named by samples seen
        saved = self.trainer.save()
        result = FitResult(len(samples.obs), e.train_loss, e.val_loss, e.label_variance, e.val_curve,
                           time.perf_counter() - start, saved.path)
        return self._fitted(iteration, result, "label")

    def close(self) -> None:
        super().close()
        self.trainer.close()
