"""``OnnxPolicy``: the exported actor on onnxruntime, with the observation built the simulator's way.

One model description from the robot PC (CPU) to the GPU machine (CUDA): pick the execution
provider with ``providers``. The metadata sidecar (``<model>.json``) says how to build the
observation, scale actions and name joints.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from dexhand.deploy.kinematics import FingertipKinematics
from dexhand.robot.rotations import normalize, relative


class PolicyInputError(ValueError):
    """An input to the policy is missing, misshapen or not finite."""


def _finite(name: str, value: Any, shape: tuple) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape != shape:
        raise PolicyInputError(f"{name} has shape {arr.shape}, expected {shape}")
    if not np.all(np.isfinite(arr)):
        raise PolicyInputError(f"{name} contains NaN or inf: {arr.tolist()}")
    return arr


class OnnxPolicy:
    """Exported actor + metadata. ``act`` maps robot measurements to joint-position targets."""

    def __init__(self, model_path: str | Path, metadata: dict[str, Any], providers: Sequence[str] | None = None) -> None:
        import onnxruntime as ort

        self.path = Path(model_path)
        self.meta = metadata
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(self.path), sess_options=options,
                                            providers=list(providers or ["CPUExecutionProvider"]))
        self.recurrent = bool(metadata["recurrent"])
        self.hidden_size = int(metadata.get("lstm_hidden", 0))
        self.layout = {k: slice(v[0], v[1]) for k, v in metadata["observation_layout"].items()}
        self.n_obs = int(metadata["n_observation"])
        self.n_actions = int(metadata["n_actions"])
        self.action_step = np.asarray(metadata["action_step"], dtype=np.float64)
        self.ctrl_low = np.asarray(metadata["ctrl_low"], dtype=np.float64)
        self.ctrl_high = np.asarray(metadata["ctrl_high"], dtype=np.float64)
        self.actuated = np.asarray(metadata["actuated_joint_index"], dtype=int)
        self.kinematics = FingertipKinematics(metadata["kinematics"])
        self.reset()

    @classmethod
    def load(cls, path: str | Path, providers: Sequence[str] | None = None) -> OnnxPolicy:
        path = Path(path)
        meta_path = path.with_suffix(".json")
        if not path.is_file():
            raise FileNotFoundError(f"policy model not found: {path}")
        if not meta_path.is_file():
            raise FileNotFoundError(f"policy metadata not found: {meta_path} (exported next to the .onnx)")
        return cls(path, json.loads(meta_path.read_text()), providers)

    def reset(self) -> None:
        """Start of an episode: zero LSTM state and previous action, targets from the next joints."""
        self.h = np.zeros((1, 1, self.hidden_size), dtype=np.float32)
        self.c = np.zeros((1, 1, self.hidden_size), dtype=np.float32)
        self.previous_action = np.zeros(self.n_actions)
        self.target: np.ndarray | None = None

    def act_observation(self, observation: np.ndarray) -> np.ndarray:
        """Raw policy observation (the simulator's ``obs['policy']``) -> action in [-1, 1]."""
        obs = _finite("observation", observation, (self.n_obs,)).astype(np.float32)[None]
        feeds = {"obs": obs}
        if self.recurrent:
            feeds["h"], feeds["c"] = self.h, self.c
            action, self.h, self.c = self.session.run(["action", "h_out", "c_out"], feeds)
        else:
            (action,) = self.session.run(["action"], feeds)
        action = np.asarray(action[0], dtype=np.float64)
        if not np.all(np.isfinite(action)):  # never hand a NaN to the driver
            raise PolicyInputError("the policy produced a non-finite action; hold the hand")
        return action

    def observation(self, joint_positions: np.ndarray, cube_pos: np.ndarray, cube_quat: np.ndarray,
                    goal_quat: np.ndarray) -> np.ndarray:
        """Assemble the policy observation exactly as ``sim.env`` does (noise-free)."""
        joints = _finite("joint_positions", joint_positions, (self.kinematics.n_joints,))
        pos = _finite("cube_pos", cube_pos, (3,))
        quat = normalize(_finite("cube_quat", cube_quat, (4,)))
        quat = quat if quat[0] >= 0 else -quat
        goal = normalize(_finite("goal_quat", goal_quat, (4,)))
        obs = np.zeros(self.n_obs)
        lay = self.layout
        obs[lay["fingertip_pos"]] = self.kinematics.positions(joints).ravel()
        obs[lay["cube_pos"]] = pos
        obs[lay["cube_quat"]] = quat
        obs[lay["goal_quat"]] = goal
        obs[lay["relative_quat"]] = relative(quat, goal)
        obs[lay["previous_action"]] = self.previous_action
        if "joint_pos" in lay:
            obs[lay["joint_pos"]] = joints
        return obs

    def act(self, joint_positions: np.ndarray, cube_pos: np.ndarray, cube_quat: np.ndarray,
            goal_quat: np.ndarray) -> np.ndarray:
        """Measurements (model joint order, metres from the hand origin, wxyz) -> 20 absolute targets."""
        obs = self.observation(joint_positions, cube_pos, cube_quat, goal_quat)
        action = self.act_observation(obs)
        if self.target is None:
            self.target = np.clip(np.asarray(joint_positions, dtype=np.float64)[self.actuated],
                                  self.ctrl_low, self.ctrl_high)
        self.target = np.clip(self.target + action * self.action_step, self.ctrl_low, self.ctrl_high)
        self.previous_action = action
        return self.target.copy()
