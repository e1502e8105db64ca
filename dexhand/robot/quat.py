"""ROS geometry_msgs/Quaternion field order (x, y, z, w) <-> ours (w, x, y, z).

The maths lives in ``dexhand.robot.rotations`` (shared with the simulator).
"""

from __future__ import annotations

import numpy as np


def from_xyzw(x: float, y: float, z: float, w: float) -> np.ndarray:
    """A ROS geometry_msgs/Quaternion's fields -> (w, x, y, z)."""
    return np.array([w, x, y, z], dtype=np.float64)


def to_xyzw(q: np.ndarray) -> tuple[float, float, float, float]:
    return float(q[1]), float(q[2]), float(q[3]), float(q[0])
