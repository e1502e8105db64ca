"""``OnnxPolicy``: the exported actor on onnxruntime, with the observation built the simulator's way.

One model description from the robot PC (CPU) to the GPU machine (CUDA): pick the execution
provider with ``providers``. The metadata sidecar (``<model>.json``) says how to build the
observation, scale actions and name joints.
"""

from __future__ import annotations

import hashlib
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
        meta_path = self.path.with_suffix(".json")
        if not isinstance(metadata, dict):
            raise ValueError(f"policy metadata {meta_path} is not a JSON object")
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=options,
                                                providers=list(providers or ["CPUExecutionProvider"]))
        except Exception as exc:  # onnxruntime's own errors (InvalidProtobuf, Fail, ...) as one clear line
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ValueError(f"cannot load the ONNX policy {self.path}: {first}") from exc
        try:
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
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise ValueError(f"policy metadata {meta_path} is malformed ({type(exc).__name__}: {exc})") from exc
        self._check_metadata_matches(meta_path)
        self.reset()

    def _check_metadata_matches(self, meta_path: Path) -> None:
        """The sidecar must describe this graph: its hash when it records one, and the graph's shapes."""
        recorded = self.meta.get("onnx_sha256")
        if recorded is not None and recorded != hashlib.sha256(self.path.read_bytes()).hexdigest():
            raise ValueError(f"policy metadata {meta_path} belongs to another model: its onnx_sha256 does not "
                             f"match {self.path} (export both files together)")
        inputs = {i.name: i.shape for i in self.session.get_inputs()}
        outputs = {o.name: o.shape for o in self.session.get_outputs()}
        problems = []
        if "obs" not in inputs or "action" not in outputs:
            problems.append(f"the graph has inputs {sorted(inputs)} and outputs {sorted(outputs)}, not obs -> action")
        else:
            if inputs["obs"][-1] != self.n_obs:
                problems.append(f"the graph takes {inputs['obs'][-1]} observations, the metadata says {self.n_obs}")
            if outputs["action"][-1] != self.n_actions:
                problems.append(f"the graph gives {outputs['action'][-1]} actions, the metadata says {self.n_actions}")
        if self.recurrent != ("h" in inputs):
            problems.append(f"the metadata says recurrent={self.recurrent}, the graph "
                            f"{'has' if 'h' in inputs else 'has no'} LSTM state inputs")
        elif self.recurrent and inputs["h"][-1] != self.hidden_size:
            problems.append(f"the graph's LSTM has {inputs['h'][-1]} units, the metadata says {self.hidden_size}")
        if problems:
            raise ValueError(f"policy metadata {meta_path} does not belong to {self.path}: {'; '.join(problems)}")

    @classmethod
    def load(cls, path: str | Path, providers: Sequence[str] | None = None) -> OnnxPolicy:
        path = Path(path)
        meta_path = path.with_suffix(".json")
        if not path.is_file():
            raise FileNotFoundError(f"policy model not found: {path}")
        if not meta_path.is_file():
            raise FileNotFoundError(f"policy metadata not found: {meta_path} (exported next to the .onnx)")
        try:
            metadata = json.loads(meta_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"policy metadata {meta_path} is not valid JSON: {exc}") from exc
        return cls(path, metadata, providers)

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
