"""DAgger for the plan-carrying student (``student_kind: plan``): the teacher searches around the plan
the executed controller carries, and labels the student's (observation, carried plan) with its plan.

Each control step: the teacher is warm-started from the carried plan (not from its own memory), plans,
and its cost-weighted plan is the label; the env executes the teacher's plan with probability beta,
else the student's, and the executed plan, shifted one step, is what both carry into the next step.
So the teacher's label is a function of what the student sees, and in the states the student drives
it improves on the student's own plan. Shards, resume and held-out validation work as in
``dexhand.distill.dagger``; the student is saved as ``plan_student.pt`` (and one copy per iteration).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch as th

from dexhand.distill.config import DistillConfig
from dexhand.distill.dagger import STATE_FILE, TRAIN_SEED_BASE
from dexhand.distill.plan_student import PLAN_STUDENT_FILE, PlanNet, plan_increments, plan_targets, shift_plan
from dexhand.distill.shards import ShardWriter, held_out_shards, load_shards, samples_by_iteration
from dexhand.plan import MpcController
from dexhand.plan.configio import load_planner_config


@dataclasses.dataclass
class PlanFit:
    samples: int
    train_loss: float
    val_loss: float
    label_variance: float
    seconds: float
    checkpoint: Path

    @property
    def val_explained(self) -> float:
        return 1.0 - self.val_loss / max(self.label_variance, 1e-12)


class PlanDagger:
    def __init__(self, cfg: DistillConfig, run_dir: Path, resume: bool = False, progress: bool = True) -> None:
        cfg.validate()
        from sim.env import CubeReorientEnv

        self.cfg, self.run_dir, self.progress = cfg, Path(run_dir), progress
        self.shard_dir = self.run_dir / "shards"
        state_path = self.run_dir / STATE_FILE
        if not resume and state_path.exists():
            raise FileExistsError(f"{self.run_dir} holds a distillation run: pass --resume or pick a new --run-dir")
        self.state = json.loads(state_path.read_text()) if state_path.is_file() else {"fitted": [], "episodes": 0}
        self.planner_cfg = load_planner_config(cfg.planner, cfg.planner_overrides)
        self.envs, self.teachers = [], []
        for i in range(cfg.dagger.n_envs):
            env = CubeReorientEnv(config=copy.deepcopy(cfg.student.env))
            self.envs.append(env)
            self.teachers.append(MpcController(dataclasses.replace(self.planner_cfg, seed=self.planner_cfg.seed + i),
                                               env=env))
        obs_dim = self.envs[0].observation_space["policy"].shape[0]
        self.net = PlanNet(obs_dim, self.planner_cfg.horizon, self.envs[0].model.nu, tuple(cfg.plan_layers))
        saved = self.run_dir / PLAN_STUDENT_FILE
        if saved.is_file():
            self.net, _ = PlanNet.load(saved)
        self.rng = np.random.default_rng(cfg.seed + len(self.state["fitted"]) * 7919 + self.state["episodes"])
        from torch.utils.tensorboard import SummaryWriter

        self.tb = SummaryWriter(str(self.run_dir / "tb" / "distill"))

    def _save_state(self) -> None:
        path = self.run_dir / STATE_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state, indent=1))
        tmp.replace(path)

    def _reset(self, i: int):
        seed = TRAIN_SEED_BASE + self.cfg.seed * 100_000 + self.state["episodes"]
        self.state["episodes"] += 1
        obs, _ = self.envs[i].reset(seed=seed)
        self.teachers[i].reset()
        return obs, np.zeros((self.net.horizon, self.net.n_actions), np.float32)

    def _student_plan(self, inputs: np.ndarray) -> np.ndarray:
        with th.no_grad():
            out = self.net(th.as_tensor(inputs[None]))[0].numpy()
        return np.clip(out.reshape(self.net.horizon, self.net.n_actions), -1.0, 1.0)

    def collect(self, iteration: int, n_samples: int) -> dict[str, float]:
        from tqdm import tqdm

        d = self.cfg.dagger
        beta = d.beta(iteration)
        writer = ShardWriter(self.shard_dir, d.shard_size)
        starts = [self._reset(i) for i in range(d.n_envs)]
        obs, carried = [s[0] for s in starts], [s[1] for s in starts]
        steps = [0] * d.n_envs
        finished: list[tuple[int, bool]] = []
        start = time.perf_counter()
        bar = tqdm(total=n_samples, desc=f"plan dagger iteration {iteration} (beta {beta:.2f})",
                   disable=not self.progress)
        done = 0
        try:
            while done < n_samples:
                for i, env in enumerate(self.envs):
                    teacher, target, unit = self.teachers[i], env.current_target, env.action_step
                    teacher.planner.warm_start(plan_targets(carried[i], target, unit), target)
                    teacher_action = teacher.act()
                    inputs = np.concatenate([obs[i]["policy"].astype(np.float32), carried[i].ravel()])
                    solves = [teacher.planner.label_plan, *teacher.resolve_label_plans(d.label_solves - 1)]
                    label = np.mean([plan_increments(p, target, unit) for p in solves], axis=0)
                    writer.add(inputs, label.ravel(), iteration)
                    if self.rng.random() < beta:
                        action, executed = teacher_action, plan_increments(teacher.last_plan, target, unit)
                    else:
                        executed = self._student_plan(inputs)
                        action = executed[0]
                    carried[i] = shift_plan(executed)
                    obs[i], _, terminated, truncated, info = env.step(action)
                    steps[i] += 1
                    done += 1
                    bar.update(1)
                    if terminated or truncated or steps[i] >= d.episode_steps:
                        finished.append((info["consecutive_successes"], bool(info["dropped"])))
                        (obs[i], carried[i]), steps[i] = self._reset(i), 0
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

    def fit(self, iteration: int) -> PlanFit:
        """Fit a fresh plan student on every shard so far (whole shards held out); save it."""
        f = self.cfg.fit
        start = time.perf_counter()
        samples = load_shards(self.shard_dir)
        if len(samples.obs) < 2:
            raise ValueError(f"no distillation data in {self.shard_dir}")
        th.manual_seed(self.cfg.seed + iteration)
        net = PlanNet(self.net.obs_dim, self.net.horizon, self.net.n_actions, self.net.layers)
        net.set_normalization(samples.obs)
        x = th.as_tensor(samples.obs, dtype=th.float32)
        y = th.as_tensor(np.clip(samples.action, -1.0, 1.0), dtype=th.float32)
        held_out = th.as_tensor(held_out_shards(samples.shard, f.validation_fraction))
        val, train = th.nonzero(held_out)[:, 0], th.nonzero(~held_out)[:, 0]
        label_variance = float(y[val].var(dim=0).mean()) if len(val) > 1 else float("nan")
        opt = th.optim.AdamW(net.parameters(), lr=f.learning_rate, weight_decay=f.weight_decay)
        sched = th.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=f.epochs)
        gen = th.Generator().manual_seed(self.cfg.seed + iteration)
        train_loss = val_loss = float("nan")
        for epoch in range(f.epochs):
            perm = train[th.randperm(len(train), generator=gen)]
            losses = []
            for b in range(0, len(perm), f.batch_size):
                idx = perm[b : b + f.batch_size]
                loss = th.nn.functional.mse_loss(net(x[idx]), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                losses.append(loss.item())
            sched.step()
            train_loss = float(np.mean(losses))
            if len(val):
                with th.no_grad():
                    val_loss = float(th.nn.functional.mse_loss(net(x[val]), y[val]))
            step = iteration * f.epochs + epoch
            self.tb.add_scalar("fit/train_mse", train_loss, step)
            self.tb.add_scalar("fit/val_mse", val_loss, step)
        self.net = net.eval()
        env_task = self.cfg.student.env.task
        meta = {"goal_mode": env_task.goal_mode, "include_joint_angles": env_task.include_joint_angles,
                "iteration": iteration, "samples": len(samples.obs), "planner": self.cfg.planner,
                "val_explained": 1.0 - val_loss / max(label_variance, 1e-12)}
        path = net.save(self.run_dir / PLAN_STUDENT_FILE, meta)
        shutil.copyfile(path, self.run_dir / f"plan_student_iter{iteration}.pt")
        if iteration not in self.state["fitted"]:
            self.state["fitted"].append(iteration)
        self._save_state()
        result = PlanFit(len(samples.obs), train_loss, val_loss, label_variance, time.perf_counter() - start, path)
        print(f"[distill] iteration {iteration}: plan student fit on {result.samples} samples, train mse "
              f"{train_loss:.4f}, val mse {val_loss:.4f} on {len(val)} held-out samples (explains "
              f"{result.val_explained:.1%} of the teacher's plan variance) ({result.seconds:.0f} s) -> {path}",
              flush=True)
        return result

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
        return self.run_dir / PLAN_STUDENT_FILE

    def refit(self) -> PlanFit:
        gathered = samples_by_iteration(self.shard_dir)
        if not gathered:
            raise ValueError(f"no distillation data to refit in {self.shard_dir}")
        return self.fit(max(gathered))

    def close(self) -> None:
        for teacher in self.teachers:
            teacher.close()
        for env in self.envs:
            env.close()
        self.tb.close()
