"""What every DAgger student shares: the run folder's state, envs each with its own teacher, the
beta-mixture collection loop into shards, the supervised epochs with held-out shards, and resume.

A student kind (``dexhand.distill.dagger.Dagger``, ``dexhand.distill.plan_dagger.PlanDagger``) says what
one labelled step is (``_labelled_step``), how it starts an episode (``_start_episode``) and how it fits
(``fit``). Resumable: shards are written whole, ``distill_state.json`` records the fitted iterations and
the episodes used, and the student comes back from what ``fit`` saved.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch as th

from dexhand.distill.config import DistillConfig, FitConfig
from dexhand.distill.shards import ShardWriter, held_out_shards, samples_by_iteration
from dexhand.plan import MpcController
from dexhand.plan.configio import load_planner_config
from sim.configio import ConfigError

STATE_FILE = "distill_state.json"
TRAIN_SEED_BASE = 50_000  # collection episodes: far from PPO's small seeds and eval's 10**6 + k


def explained(val_loss: float, label_variance: float) -> float:
    """1 - val mse / label variance: the share of the teacher's held-out labels the student learnt."""
    return 1.0 - val_loss / max(label_variance, 1e-12)


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
        return explained(self.val_loss, self.label_variance)

    @property
    def best_epoch(self) -> int | None:
        return int(np.argmin(self.val_curve)) if self.val_curve else None


@dataclass
class Epochs:
    train_loss: float
    val_loss: float
    label_variance: float
    val_curve: list[float]
    n_val: int


def fit_epochs(predict: Callable[[th.Tensor], th.Tensor], params: list[th.nn.Parameter], x: th.Tensor,
               y: th.Tensor, shard: np.ndarray, f: FitConfig, seed: int, tb: Any, iteration: int) -> Epochs:
    """MSE regression of ``predict(x)`` on ``y`` with AdamW and a cosine schedule; whole shards are held
    out (``fit.validation_fraction``). With ``fit.keep=best`` the best held-out epoch's weights stay."""
    held_out = th.as_tensor(held_out_shards(shard, f.validation_fraction))
    val, train = th.nonzero(held_out)[:, 0], th.nonzero(~held_out)[:, 0]
    label_variance = float(y[val].var(dim=0).mean()) if len(val) > 1 else float("nan")
    opt = th.optim.AdamW(params, lr=f.learning_rate, weight_decay=f.weight_decay)
    sched = th.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=f.epochs)
    gen = th.Generator().manual_seed(seed)
    train_loss = val_loss = float("nan")
    best: tuple[float, float, list[th.Tensor]] | None = None  # (val mse, train mse, weights)
    val_curve: list[float] = []
    for epoch in range(f.epochs):
        perm = train[th.randperm(len(train), generator=gen)]
        losses = []
        for b in range(0, len(perm), f.batch_size):
            idx = perm[b : b + f.batch_size]
            loss = th.nn.functional.mse_loss(predict(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        sched.step()
        train_loss = float(np.mean(losses))
        if len(val):
            with th.no_grad():
                val_loss = float(th.nn.functional.mse_loss(predict(x[val]), y[val]))
            val_curve.append(val_loss)
            if f.keep == "best" and (best is None or val_loss < best[0]):
                best = (val_loss, train_loss, [q.detach().clone() for q in params])
        step = iteration * f.epochs + epoch
        tb.add_scalar("fit/train_mse", train_loss, step)
        tb.add_scalar("fit/val_mse", val_loss, step)
        tb.add_scalar("fit/val_explained_variance", explained(val_loss, label_variance), step)
    if best is not None:
        val_loss, train_loss, weights = best
        with th.no_grad():
            for q, w in zip(params, weights):
                q.copy_(w)
    return Epochs(train_loss, val_loss, label_variance, val_curve, len(val))


class DaggerLoop:
    def __init__(self, cfg: DistillConfig, run_dir: Path, resume: bool = False, progress: bool = True) -> None:
        from sim.env import CubeReorientEnv

        cfg.validate()
        self.cfg, self.run_dir, self.progress = cfg, Path(run_dir), progress
        self.shard_dir = self.run_dir / "shards"
        state_path = self.run_dir / STATE_FILE
        if not resume and (state_path.exists() or self._has_student()):
            raise FileExistsError(f"{self.run_dir} holds a distillation run: pass --resume or pick a new --run-dir")
        self.state = json.loads(state_path.read_text()) if state_path.is_file() else {"fitted": [], "episodes": 0}
        self.planner_cfg = load_planner_config(cfg.planner, cfg.planner_overrides)
        if self.planner_cfg.fixed_noise and cfg.dagger.label_solves > 1:
            raise ConfigError("dagger.label_solves: with the planner's fixed_noise every search from the same start "
                              "is the same; use label_solves=1 (or more n_samples)")
        self.envs, self.teachers = [], []
        for i in range(cfg.dagger.n_envs):
            env = CubeReorientEnv(config=copy.deepcopy(cfg.student.env))
            self.envs.append(env)
            # Fresh noise: a seed per env. Fixed noise: one noise set for all, so the label is one function of
            # the state and warm start whichever env a pair comes from.
            seed = self.planner_cfg.seed + (0 if self.planner_cfg.fixed_noise else i)
            self.teachers.append(MpcController(dataclasses.replace(self.planner_cfg, seed=seed), env=env))
        self.rng = np.random.default_rng(cfg.seed + len(self.state["fitted"]) * 7919 + self.state["episodes"])
        from torch.utils.tensorboard import SummaryWriter

        self.tb = SummaryWriter(str(self.run_dir / "tb" / "distill"))

    # --------------------------------------------------------------------- what a student kind says
    def _has_student(self) -> bool:
        """Whether the run folder already holds a fitted student."""
        raise NotImplementedError

    def _student_path(self) -> Path:
        """Where the fitted student is (what ``dexhand eval`` reads)."""
        raise NotImplementedError

    def _start_episode(self, i: int) -> None:
        """Env ``i`` was just reset."""

    def _labelled_step(self, i: int, obs: dict[str, np.ndarray], use_teacher: bool
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(student input, teacher label, action to execute) at env ``i``'s current state."""
        raise NotImplementedError

    def _fresh_student(self) -> None:
        """Before a refit: start the student from fresh weights."""

    def fit(self, iteration: int) -> FitResult:
        raise NotImplementedError

    # ------------------------------------------------------------------------------ bookkeeping
    def _save_state(self) -> None:
        path = self.run_dir / STATE_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state, indent=1))
        tmp.replace(path)

    def _reset(self, i: int) -> dict[str, np.ndarray]:
        seed = TRAIN_SEED_BASE + self.cfg.seed * 100_000 + self.state["episodes"]
        self.state["episodes"] += 1
        obs, _ = self.envs[i].reset(seed=seed)
        self.teachers[i].reset()
        self._start_episode(i)
        return obs

    def _fitted(self, iteration: int, result: FitResult, what: str) -> FitResult:
        if iteration not in self.state["fitted"]:
            self.state["fitted"].append(iteration)
        self._save_state()
        best_note = f", best held-out: epoch {result.best_epoch + 1} of {len(result.val_curve)}" if result.val_curve else ""
        print(f"[distill] iteration {iteration}: fit on {result.samples} samples, train mse {result.train_loss:.4f}, "
              f"val mse {result.val_loss:.4f} (explains {result.val_explained:.1%} of the teacher's {what} "
              f"variance on held-out shards; kept: the {self.cfg.fit.keep} epoch{best_note}) ({result.seconds:.0f} s) "
              f"-> {result.checkpoint}", flush=True)
        return result

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
                    inputs, label, action = self._labelled_step(i, obs[i], self.rng.random() < beta)
                    writer.add(inputs, label, iteration)
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
        stats = {"beta": beta, "samples": done, "seconds": time.perf_counter() - start, "episodes": len(finished),
                 "successes_mean": float(np.mean([f[0] for f in finished])) if finished else float("nan"),
                 "drop_rate": float(np.mean([f[1] for f in finished])) if finished else float("nan")}
        for key, value in stats.items():
            self.tb.add_scalar(f"collect/{key}", value, iteration)
        return stats

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
        return self._student_path()

    def refit(self) -> FitResult:
        """Fit the student again, from fresh weights, on the pairs already gathered (say, with new ``fit``
        settings). Labels are the expensive part (a planner solve each); a fit is seconds to minutes.
        """
        gathered = samples_by_iteration(self.shard_dir)
        if not gathered:
            raise ValueError(f"no distillation data to refit in {self.shard_dir}")
        self._fresh_student()
        return self.fit(max(gathered))

    def close(self) -> None:
        for teacher in self.teachers:
            teacher.close()
        for env in self.envs:
            env.close()
        self.tb.close()
