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
import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch as th

from dexhand.distill.config import DistillConfig
from dexhand.distill.shards import ShardWriter, held_out_shards, load_shards, samples_by_iteration
from dexhand.plan import MpcController
from dexhand.plan.configio import load_planner_config
from dexhand.train import checkpoint
from dexhand.train.trainer import Trainer

STATE_FILE = "distill_state.json"
TRAIN_SEED_BASE = 50_000  # collection episodes: far from PPO's small seeds and eval's 10**6 + k


@dataclass
class FitResult:
    samples: int
    train_loss: float  # of the kept epoch (fit.keep)
    val_loss: float  # held-out mse of the kept epoch
    label_variance: float  # of the held-out labels
    val_curve: list[float]  # held-out mse after each epoch
    seconds: float
    checkpoint: Path

    @property
    def val_explained(self) -> float:
        """1 - val mse / label variance: the share of the teacher's held-out labels the student learnt."""
        return 1.0 - self.val_loss / max(self.label_variance, 1e-12)

    @property
    def best_epoch(self) -> int | None:
        return int(np.argmin(self.val_curve)) if self.val_curve else None


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


class Dagger:
    def __init__(self, cfg: DistillConfig, run_dir: Path, resume: bool = False, progress: bool = True) -> None:
        cfg.validate()
        self.cfg, self.run_dir, self.progress = cfg, Path(run_dir), progress
        self.shard_dir = self.run_dir / "shards"
        state_path = self.run_dir / STATE_FILE
        if not resume and (state_path.exists() or checkpoint.latest(self.run_dir)):
            raise FileExistsError(f"{self.run_dir} holds a distillation run: pass --resume or pick a new --run-dir")
        self.state = json.loads(state_path.read_text()) if state_path.is_file() else {"fitted": [], "episodes": 0}
        student_cfg = copy.deepcopy(cfg.student)
        student_cfg.n_envs, student_cfg.vec_backend = 1, "serial"  # only the network and checkpoint format
        student_cfg.ppo.batch_size = student_cfg.ppo.n_steps
        self.trainer = Trainer(student_cfg, self.run_dir, resume=checkpoint.latest(self.run_dir) is not None,
                               progress=False)
        self.student = StudentActor(self.trainer)
        from sim.env import CubeReorientEnv

        planner_cfg = load_planner_config(cfg.planner, cfg.planner_overrides)
        self.envs, self.teachers = [], []
        for i in range(cfg.dagger.n_envs):
            env = CubeReorientEnv(config=copy.deepcopy(cfg.student.env))
            self.envs.append(env)
            self.teachers.append(MpcController(dataclasses.replace(planner_cfg, seed=planner_cfg.seed + i), env=env))
        self.rng = np.random.default_rng(cfg.seed + len(self.state["fitted"]) * 7919 + self.state["episodes"])
        from torch.utils.tensorboard import SummaryWriter

        self.tb = SummaryWriter(str(self.run_dir / "tb" / "distill"))

    # ------------------------------------------------------------------------------ bookkeeping
    def _save_state(self) -> None:
        path = self.run_dir / STATE_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state, indent=1))
        tmp.replace(path)

    def _reset(self, i: int):
        seed = TRAIN_SEED_BASE + self.cfg.seed * 100_000 + self.state["episodes"]
        self.state["episodes"] += 1
        obs, _ = self.envs[i].reset(seed=seed)
        self.teachers[i].reset()
        return obs

    # ------------------------------------------------------------------------------- collection
    def collect(self, iteration: int, n_samples: int) -> dict[str, float]:
        """Gather ``n_samples`` labelled steps with beta(iteration); returns episode statistics."""
        from tqdm import tqdm

        d = self.cfg.dagger
        beta = d.beta(iteration)
        writer = ShardWriter(self.shard_dir, d.shard_size)
        obs = [self._reset(i) for i in range(d.n_envs)]
        steps = [0] * d.n_envs
        finished: list[tuple[int, bool]] = []
        start = time.perf_counter()
        bar = tqdm(total=n_samples, desc=f"dagger iteration {iteration} (beta {beta:.2f})", disable=not self.progress)
        done = 0
        try:
            while done < n_samples:
                for i, env in enumerate(self.envs):
                    teacher_action = self.teachers[i].act()
                    student_action = self.student.act(obs[i]["policy"]) if beta < 1.0 else teacher_action
                    label = self.teachers[i].label if d.label == "weighted" else teacher_action
                    writer.add(obs[i]["policy"], label, iteration)
                    action = teacher_action if self.rng.random() < beta else student_action
                    obs[i], _, terminated, truncated, info = env.step(action)
                    steps[i] += 1
                    done += 1
                    bar.update(1)
                    if terminated or truncated or steps[i] >= d.episode_steps:
                        finished.append((info["consecutive_successes"], bool(info["dropped"])))
                        obs[i], steps[i] = self._reset(i), 0
                    if done >= n_samples:
                        break
        finally:
            writer.flush()
            bar.close()
            self._save_state()
        seconds = time.perf_counter() - start
        stats = {"beta": beta, "samples": done, "seconds": seconds, "episodes": len(finished),
                 "successes_mean": float(np.mean([f[0] for f in finished])) if finished else float("nan"),
                 "drop_rate": float(np.mean([f[1] for f in finished])) if finished else float("nan")}
        for key, value in stats.items():
            self.tb.add_scalar(f"collect/{key}", value, iteration)
        return stats

    # -------------------------------------------------------------------------------------- fit
    def fit(self, iteration: int) -> FitResult:
        """Refit the student's mean action to the teacher's on every shard so far; save a checkpoint."""
        f = self.cfg.fit
        start = time.perf_counter()
        samples = load_shards(self.shard_dir)
        obs, act = samples.obs, samples.action
        if len(obs) < 2:
            raise ValueError(f"no distillation data in {self.shard_dir}")
        self.student.set_normalization(obs)
        x = th.as_tensor(self.student.normalize(obs), dtype=th.float32)
        y = th.as_tensor(np.clip(act, -1.0, 1.0), dtype=th.float32)
        gen = th.Generator().manual_seed(self.cfg.seed + iteration)
        held_out = th.as_tensor(held_out_shards(samples.shard, f.validation_fraction))
        val, train = th.nonzero(held_out)[:, 0], th.nonzero(~held_out)[:, 0]
        n_val = len(val)
        label_variance = float(y[val].var(dim=0).mean()) if n_val > 1 else float("nan")
        params = self.student.parameters()
        opt = th.optim.AdamW(params, lr=f.learning_rate, weight_decay=f.weight_decay)
        sched = th.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=f.epochs)
        train_loss = val_loss = float("nan")
        best: tuple[float, float, list[th.Tensor]] | None = None  # fit.keep=best: (val mse, train mse, weights)
        val_curve: list[float] = []
        th.set_num_threads(self.trainer.update_threads)
        for epoch in range(f.epochs):
            perm = train[th.randperm(len(train), generator=gen)]
            losses = []
            for b in range(0, len(perm), f.batch_size):
                idx = perm[b : b + f.batch_size]
                loss = th.nn.functional.mse_loss(self.student.mean_action(x[idx]), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                losses.append(loss.item())
            sched.step()
            train_loss = float(np.mean(losses))
            if n_val:
                with th.no_grad():
                    val_loss = float(th.nn.functional.mse_loss(self.student.mean_action(x[val]), y[val]))
                val_curve.append(val_loss)
                if f.keep == "best" and (best is None or val_loss < best[0]):
                    best = (val_loss, train_loss, [q.detach().clone() for q in params])
            step = iteration * f.epochs + epoch
            self.tb.add_scalar("fit/train_mse", train_loss, step)
            self.tb.add_scalar("fit/val_mse", val_loss, step)
            self.tb.add_scalar("fit/val_explained_variance", 1.0 - val_loss / max(label_variance, 1e-12), step)
        th.set_num_threads(self.trainer.cfg.torch_threads)
        if best is not None:  # fit.keep=best: the epoch that did best on the held-out shards
            val_loss, train_loss, weights = best
            with th.no_grad():
                for q, w in zip(params, weights):
                    q.copy_(w)
        self.trainer.model.num_timesteps = len(obs)  # checkpoints are named by samples seen
        saved = self.trainer.save()
        if iteration not in self.state["fitted"]:
            self.state["fitted"].append(iteration)
        self._save_state()
        result = FitResult(len(obs), train_loss, val_loss, label_variance, val_curve, time.perf_counter() - start,
                           saved.path)
        best_note = f", best held-out: epoch {result.best_epoch + 1} of {f.epochs}" if val_curve else ""
        print(f"[distill] iteration {iteration}: fit on {result.samples} samples, train mse {train_loss:.4f}, "
              f"val mse {val_loss:.4f} on {n_val} held-out samples (explains {result.val_explained:.1%} of the "
              f"teacher's label variance; kept: the {f.keep} epoch{best_note}) ({result.seconds:.0f} s) -> "
              f"{saved.path}", flush=True)
        return result

    # ------------------------------------------------------------------------------------- loop
    def run(self) -> Path:
        d = self.cfg.dagger
        for iteration in range(d.iterations):
            if iteration in self.state["fitted"]:
                continue
            have = samples_by_iteration(self.shard_dir).get(iteration, 0)
            if have < d.steps_per_iteration:
                stats = self.collect(iteration, d.steps_per_iteration - have)
                print(f"[distill] iteration {iteration}: beta {stats['beta']:.2f}, {stats['samples']} samples in "
                      f"{stats['seconds']:.0f} s, {stats['episodes']} episodes, successes mean "
                      f"{stats['successes_mean']:.2f}, drop rate {stats['drop_rate']:.2f}", flush=True)
            self.fit(iteration)
        found = checkpoint.latest(self.run_dir)
        return found.path if found else self.run_dir

    def refit(self) -> FitResult:
        """Fit the student again, from fresh weights, on the pairs already gathered (say, with new ``fit``
        settings). Labels are the expensive part (a planner solve each); a fit is seconds to minutes.
        """
        gathered = samples_by_iteration(self.shard_dir)
        if not gathered:
            raise ValueError(f"no distillation data to refit in {self.shard_dir}")
        self.student.reset_weights(self.cfg.seed)
        return self.fit(max(gathered))

    def close(self) -> None:
        for teacher in self.teachers:
            teacher.close()
        for env in self.envs:
            env.close()
        self.trainer.close()
        self.tb.close()
