"""Unit-quaternion maths (w, x, y, z) for robot-side code, which cannot import ``sim`` (MuJoCo).

Same conventions as ``sim.rotations``: Hamilton product, scalar first.
"""

from __future__ import annotations

import numpy as np


def normalize(q: np.ndarray) -> np.ndarray:
    q = np.asarray(q, dtype=np.float64)
    n = float(np.linalg.norm(q))
    if not np.isfinite(n) or n < 1e-9:
        raise ValueError(f"quaternion {q.tolist()} has no direction (norm {n})")
    return q / n


def multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    aw, ax, ay, az = a
    bw, bx, by, bz = b
    return np.array(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ]
    )


def conjugate(q: np.ndarray) -> np.ndarray:
    return np.array([q[0], -q[1], -q[2], -q[3]])


def distance(a: np.ndarray, b: np.ndarray) -> float:
    """Rotation angle (rad, 0..pi) between two orientations; q and -q are the same rotation."""
    dot = abs(float(np.dot(normalize(a), normalize(b))))
    return 2.0 * float(np.arccos(min(1.0, dot)))


def about_z(angle: float) -> np.ndarray:
    return np.array([np.cos(angle / 2), 0.0, 0.0, np.sin(angle / 2)])


def uniform(rng: np.random.Generator) -> np.ndarray:
    """A uniformly random rotation (a normalised 4-D Gaussian is uniform on the 3-sphere)."""
    return normalize(rng.normal(size=4))


def from_xyzw(x: float, y: float, z: float, w: float) -> np.ndarray:
    """A ROS geometry_msgs/Quaternion's fields -> (w, x, y, z)."""
    return np.array([w, x, y, z], dtype=np.float64)


def to_xyzw(q: np.ndarray) -> tuple[float, float, float, float]:
    return float(q[1]), float(q[2]), float(q[3]), float(q[0])
