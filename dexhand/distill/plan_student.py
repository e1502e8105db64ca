"""A student that carries a plan, as the planner does: its input is the observation plus the plan it made
one control step earlier (shifted), its output the whole plan over the planner's horizon.

Why: the planner's action is mostly its own plan carried from step to step, which no observation shows
(from the observation alone a student explains 16% of the teacher's held-out label variance; given the
teacher's warm start as well, 54%; `dexhand/models/README.md`). A student that carries its own plan
sees that memory, and the teacher, warm-started from the very plan the student carries, labels the
improvement. The plan is kept as per-step target increments in action units, each in [-1, 1] (the env's
per-step target limit), so its first row is the env's action.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch as th

PLAN_STUDENT_FILE = "plan_student.pt"


def plan_increments(plan: np.ndarray, start_target: np.ndarray, action_step: np.ndarray) -> np.ndarray:
    """Absolute targets (horizon, nu) -> per-step changes in action units, clipped to [-1, 1]."""
    steps = np.diff(np.concatenate([start_target[None], plan], axis=0), axis=0) / action_step
    return np.clip(steps, -1.0, 1.0).astype(np.float32)


def plan_targets(increments: np.ndarray, start_target: np.ndarray, action_step: np.ndarray) -> np.ndarray:
    """Per-step changes in action units -> absolute targets (horizon, nu) from ``start_target``."""
    return start_target + np.cumsum(increments * action_step, axis=0)


def shift_plan(increments: np.ndarray) -> np.ndarray:
    """The warm start for the next control step: drop the step just sent, then hold (as the planner does)."""
    return np.concatenate([increments[1:], np.zeros_like(increments[:1])], axis=0)


class PlanNet(th.nn.Module):
    """MLP (observation, carried plan) -> plan, with the input normalization it was fit with.

    ``residual``: the output is the carried plan plus the MLP's correction, so the network need not
    learn to copy the 200-number plan through its layers and all of it goes to the correction (on the
    first plan run's 20,000 pairs: 14.3% of the held-out correction's variance against 9.1%).
    """

    def __init__(self, obs_dim: int, horizon: int, n_actions: int, layers: tuple[int, ...] = (512, 256, 256),
                 residual: bool = False) -> None:
        super().__init__()
        self.obs_dim, self.horizon, self.n_actions, self.layers = obs_dim, horizon, n_actions, tuple(layers)
        self.residual = bool(residual)
        in_dim = obs_dim + horizon * n_actions
        mods: list[th.nn.Module] = []
        for width in layers:
            mods += [th.nn.Linear(in_dim, width), th.nn.Tanh()]
            in_dim = width
        mods.append(th.nn.Linear(in_dim, horizon * n_actions))
        if self.residual:  # start from "carry the plan unchanged"
            with th.no_grad():
                mods[-1].weight.mul_(0.1)
                mods[-1].bias.zero_()
        self.mlp = th.nn.Sequential(*mods)
        self.register_buffer("mean", th.zeros(obs_dim + horizon * n_actions))
        self.register_buffer("std", th.ones(obs_dim + horizon * n_actions))

    def set_normalization(self, inputs: np.ndarray) -> None:
        self.mean.copy_(th.as_tensor(inputs.mean(axis=0)))
        self.std.copy_(th.as_tensor(inputs.std(axis=0) + 1e-3))

    def forward(self, inputs: th.Tensor) -> th.Tensor:
        out = self.mlp((inputs - self.mean) / self.std)
        return out + inputs[:, self.obs_dim:] if self.residual else out

    def plan(self, inputs: np.ndarray) -> np.ndarray:
        """One (observation, carried plan) input -> the plan (horizon, nu), clipped to the per-step limit."""
        with th.no_grad():
            out = self(th.as_tensor(np.asarray(inputs, np.float32)[None]))[0].numpy()
        return np.clip(out.reshape(self.horizon, self.n_actions), -1.0, 1.0)

    def save(self, path: Path, meta: dict) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        th.save({"state_dict": self.state_dict(), "obs_dim": self.obs_dim, "horizon": self.horizon,
                 "n_actions": self.n_actions, "layers": list(self.layers), "residual": self.residual,
                 "meta": meta}, tmp)
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: Path) -> tuple[PlanNet, dict]:
        blob = th.load(path, map_location="cpu", weights_only=False)
        net = cls(blob["obs_dim"], blob["horizon"], blob["n_actions"], tuple(blob["layers"]),
                  bool(blob.get("residual", False)))
        net.load_state_dict(blob["state_dict"])
        net.eval()
        return net, blob["meta"]


class PlanStudentPolicy:
    """The plan student as a ``dexhand.policies.Policy``: the carried plan is its recurrent state."""

    def __init__(self, path: Path) -> None:
        path = Path(path)
        if path.is_dir():
            path = path / PLAN_STUDENT_FILE
        if not path.is_file():
            raise FileNotFoundError(f"plan student not found: {path}")
        self.net, meta = PlanNet.load(path)
        self.goal_mode = meta.get("goal_mode")
        self.env_requirements = [f"task.include_joint_angles={str(meta.get('include_joint_angles', False)).lower()}"]
        self.reset()

    def reset(self) -> None:
        self.carried = np.zeros((self.net.horizon, self.net.n_actions), np.float32)

    def plan(self, policy_obs: np.ndarray) -> np.ndarray:
        """The whole plan (horizon, nu) for this step; does not advance the carried state."""
        return self.net.plan(np.concatenate([np.asarray(policy_obs, np.float32), self.carried.ravel()]))

    def act(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        plan = self.plan(observation["policy"])
        self.carried = shift_plan(plan)
        return plan[0].astype(np.float32)


def is_plan_student(path: Path) -> bool:
    path = Path(path)
    return (path.name.startswith("plan_student") and path.suffix == ".pt") or (path.is_dir() and (path / PLAN_STUDENT_FILE).is_file())

