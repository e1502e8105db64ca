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

import shutil
import time
from pathlib import Path

import numpy as np
import torch as th

from dexhand.distill.config import DistillConfig
from dexhand.distill.loop import DaggerLoop, FitResult, explained, fit_epochs
from dexhand.distill.plan_student import PLAN_STUDENT_FILE, PlanNet, plan_increments, plan_targets, shift_plan
from dexhand.distill.shards import load_shards


class PlanDagger(DaggerLoop):
    def __init__(self, cfg: DistillConfig, run_dir: Path, resume: bool = False, progress: bool = True) -> None:
        super().__init__(cfg, run_dir, resume, progress)
        env = self.envs[0]
        self.net = PlanNet(env.observation_space["policy"].shape[0], self.planner_cfg.horizon, env.model.nu,
                           tuple(cfg.plan_layers), cfg.plan_residual)
        if self._has_student():
            self.net, _ = PlanNet.load(self._student_path())
        self.carried = [self._empty_plan() for _ in self.envs]

    def _empty_plan(self) -> np.ndarray:
        return np.zeros((self.planner_cfg.horizon, self.envs[0].model.nu), np.float32)

    def _has_student(self) -> bool:
        return self._student_path().is_file()

    def _student_path(self) -> Path:
        return self.run_dir / PLAN_STUDENT_FILE

    def _start_episode(self, i: int) -> None:
        self.carried[i] = self._empty_plan()  # an episode starts holding still

    def _labelled_step(self, i: int, obs: dict[str, np.ndarray], use_teacher: bool
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        env, teacher, carried = self.envs[i], self.teachers[i], self.carried[i]
        target, unit = env.current_target, env.action_step
        teacher.planner.warm_start(plan_targets(carried, target, unit), target)
        teacher_action = teacher.act()
        inputs = np.concatenate([obs["policy"].astype(np.float32), carried.ravel()])
        solves = [teacher.planner.label_plan, *teacher.resolve_label_plans(self.cfg.dagger.label_solves - 1)]
        label = np.mean([plan_increments(p, target, unit) for p in solves], axis=0)
        if use_teacher:
            action, executed = teacher_action, plan_increments(teacher.last_plan, target, unit)
        else:
            executed = self.net.plan(inputs)
            action = executed[0]
        self.carried[i] = shift_plan(executed)
        return inputs, label.ravel(), action

    def fit(self, iteration: int) -> FitResult:
        """Fit a fresh plan student on every shard so far; save it (and a copy for this iteration)."""
        start = time.perf_counter()
        samples = load_shards(self.shard_dir)
        if len(samples.obs) < 2:
            raise ValueError(f"no distillation data in {self.shard_dir}")
        th.manual_seed(self.cfg.seed + iteration)
        net = PlanNet(self.net.obs_dim, self.net.horizon, self.net.n_actions, self.net.layers, self.cfg.plan_residual)
        net.set_normalization(samples.obs)
        x = th.as_tensor(samples.obs, dtype=th.float32)
        y = th.as_tensor(np.clip(samples.action, -1.0, 1.0), dtype=th.float32)
        e = fit_epochs(net, list(net.parameters()), x, y, samples.shard, self.cfg.fit, self.cfg.seed + iteration,
                       self.tb, iteration)
        self.net = net.eval()
        task = self.cfg.student.env.task
        meta = {"goal_mode": task.goal_mode, "include_joint_angles": task.include_joint_angles,
                "iteration": iteration, "samples": len(samples.obs), "planner": self.cfg.planner,
                "label_solves": self.cfg.dagger.label_solves,
                "val_explained": explained(e.val_loss, e.label_variance)}
        path = net.save(self._student_path(), meta)
        shutil.copyfile(path, self.run_dir / f"plan_student_iter{iteration}.pt")
        result = FitResult(len(samples.obs), e.train_loss, e.val_loss, e.label_variance, e.val_curve,
                           time.perf_counter() - start, path)
        return self._fitted(iteration, result, "plan")
