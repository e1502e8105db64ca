"""Robot-side policy runtime: ONNX inference, forward kinematics, observation assembly (numpy only).

Runs on the robot PC (ROS Noetic, Python 3.8): no torch, no mujoco.
"""

from __future__ import annotations

from dexhand.deploy.onnx_policy import OnnxPolicy, PolicyInputError

__all__ = ["OnnxPolicy", "PolicyInputError"]
