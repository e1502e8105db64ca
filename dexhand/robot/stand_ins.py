"""Stand-in policies with the policy runtime's interface, for rigs without a trained policy.

Interface (``dexhand.deploy.OnnxPolicy``): ``reset()`` and ``act(joint_positions (24,) model order,
cube_pos (3,), cube_quat (4,) wxyz, goal_quat (4,) wxyz) -> (20,)`` absolute model actuator targets.
"""

from __future__ import annotations

import numpy as np

from dexhand.robot import joint_map


def _check_inputs(joint_positions: np.ndarray) -> np.ndarray:
    q = np.asarray(joint_positions, dtype=np.float64)
    if q.shape != (len(joint_map.REAL_JOINT_NAMES),):
        raise ValueError(f"joint_positions has shape {q.shape}, expected ({len(joint_map.REAL_JOINT_NAMES)},)")
    return q


def _measured_targets(q: np.ndarray) -> np.ndarray:
    """Actuator targets that hold the measured pose."""
    return joint_map.model_targets_from_commands(joint_map.commands_from_joint_positions(q)).clip(
        joint_map.MODEL_TARGET_LOWER, joint_map.MODEL_TARGET_UPPER)


class HoldPolicy:
    """Holds the pose measured at the first act() after reset: the hand stays still."""

    def __init__(self) -> None:
        self.targets: np.ndarray | None = None

    def reset(self) -> None:
        self.targets = None

    def act(self, joint_positions, cube_pos, cube_quat, goal_quat) -> np.ndarray:
        if self.targets is None:
            self.targets = _measured_targets(_check_inputs(joint_positions))
        return self.targets.copy()


class RandomPolicy:
    """Smooth random motion around the first measured pose: exercises the whole loop gently."""

    def __init__(self, amplitude: float = 0.1, smoothing: float = 0.9, seed: int = 0) -> None:
        self.amplitude, self.smoothing = amplitude, smoothing
        self.rng = np.random.default_rng(seed)
        self.center: np.ndarray | None = None
        self.state = np.zeros(len(joint_map.ACTUATOR_MODEL_NAMES))

    def reset(self) -> None:
        self.center = None
        self.state[:] = 0.0

    def act(self, joint_positions, cube_pos, cube_quat, goal_quat) -> np.ndarray:
        if self.center is None:
            self.center = _measured_targets(_check_inputs(joint_positions))
        noise = self.rng.uniform(-1.0, 1.0, self.state.shape)
        self.state = self.smoothing * self.state + (1.0 - self.smoothing) * noise
        offset = self.amplitude * self.state / (1.0 - self.smoothing) * 0.5
        return (self.center + offset).clip(joint_map.MODEL_TARGET_LOWER, joint_map.MODEL_TARGET_UPPER)


def load_policy(spec: str, seed: int = 0):
    """'hold' | 'random' | a path to an exported .onnx policy (through dexhand.deploy)."""
    if spec == "hold":
        return HoldPolicy()
    if spec == "random":
        return RandomPolicy(seed=seed)
    if not spec.endswith(".onnx"):
        raise ValueError(f"policy {spec!r}: use 'hold', 'random' or a path to an .onnx file")
    try:
        from dexhand.deploy import OnnxPolicy
    except ImportError as exc:
        raise RuntimeError(f"policy {spec!r} needs the policy runtime dexhand.deploy.OnnxPolicy, "
                           f"which does not import here: {exc}") from exc
    return OnnxPolicy.load(spec)
