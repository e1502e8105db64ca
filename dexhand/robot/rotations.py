"""Quaternion helpers (w, x, y, z order, as MuJoCo) used by the task, noise and vision code.

Pure numpy, Python 3.8 syntax: the robot PC runtimes use these too (``sim.rotations`` re-exports them).
"""

from __future__ import annotations

import math

import numpy as np


def _hamilton(aw, ax, ay, az, bw, bx, by, bz):
    return (
        aw * bw - ax * bx - ay * by - az * bz,
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
    )


def normalize(q: np.ndarray) -> np.ndarray:
    q = np.asarray(q, dtype=np.float64)
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product a * b (apply b first, then a)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim == 1 and b.ndim == 1:  # the env's hot path: plain float maths beats array dispatch
        return np.array(_hamilton(*a.tolist(), *b.tolist()))
    return np.stack(_hamilton(*np.moveaxis(a, -1, 0), *np.moveaxis(b, -1, 0)), axis=-1)


def conjugate(q: np.ndarray) -> np.ndarray:
    q = np.asarray(q, dtype=np.float64)
    return q * np.array([1.0, -1.0, -1.0, -1.0])


def relative(current: np.ndarray, goal: np.ndarray) -> np.ndarray:
    """The rotation taking ``current`` to ``goal`` (goal = rel * current), w >= 0."""
    current = np.asarray(current, dtype=np.float64)
    goal = np.asarray(goal, dtype=np.float64)
    if current.ndim == 1 and goal.ndim == 1:
        cw, cx, cy, cz = current.tolist()
        rel = _hamilton(*goal.tolist(), cw, -cx, -cy, -cz)
        return np.array(rel) if rel[0] >= 0 else -np.array(rel)
    rel = multiply(goal, conjugate(current))
    return rel * np.where(rel[..., :1] < 0, -1.0, 1.0)


def distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rotation angle (rad, in [0, pi]) between two orientations; q and -q are the same."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim == 1 and b.ndim == 1:
        dot = abs(float(a @ b)) / math.sqrt(float(a @ a) * float(b @ b))
        return 2.0 * math.acos(min(1.0, dot))
    dot = np.abs(np.sum(normalize(a) * normalize(b), axis=-1))
    return 2.0 * np.arccos(np.clip(dot, -1.0, 1.0))


def from_axis_angle(axis: np.ndarray, angle: np.ndarray | float) -> np.ndarray:
    if np.ndim(angle) == 0 and np.ndim(axis) == 1:  # hot path (per-step noise): scalar maths
        x, y, z = (float(v) for v in axis)
        norm = math.sqrt(x * x + y * y + z * z)
        s = math.sin(0.5 * float(angle)) / norm
        return np.array([math.cos(0.5 * float(angle)), x * s, y * s, z * s])
    axis = np.asarray(axis, dtype=np.float64)
    axis = axis / np.linalg.norm(axis, axis=-1, keepdims=True)
    half = 0.5 * np.asarray(angle, dtype=np.float64)[..., None]
    return np.concatenate([np.cos(half), np.sin(half) * axis], axis=-1)


def random_uniform(rng: np.random.Generator, n: int | None = None) -> np.ndarray:
    """Uniform on SO(3) (normalized 4-D Gaussian)."""
    shape = (4,) if n is None else (n, 4)
    q = normalize(rng.normal(size=shape))
    return q * np.where(q[..., :1] < 0, -1.0, 1.0)


def to_matrix(q: np.ndarray) -> np.ndarray:
    w, x, y, z = np.moveaxis(normalize(q), -1, 0)
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
            np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
            np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
        ],
        axis=-2,
    )


def from_matrix(m: np.ndarray) -> np.ndarray:
    """Rotation matrix (3x3) to unit quaternion with w >= 0 (Shepperd's method)."""
    m = np.asarray(m, dtype=np.float64)
    trace = np.trace(m)
    if trace > 0:
        s = 2.0 * np.sqrt(trace + 1.0)
        q = [0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s]
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = [(m[2, 1] - m[1, 2]) / s, 0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s]
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = [(m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s]
    else:
        s = 2.0 * np.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = [(m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s]
    q = normalize(np.array(q))
    return q if q[0] >= 0 else -q


def face_aligned_orientations() -> np.ndarray:
    """The 24 rotations of the cube group (every face up, four yaws each), shape (24, 4)."""
    mats = []
    axes = np.eye(3)
    for i in range(3):
        for si in (1, -1):
            for j in range(3):
                if j == i:
                    continue
                for sj in (1, -1):
                    x = si * axes[i]
                    y = sj * axes[j]
                    mats.append(np.stack([x, y, np.cross(x, y)], axis=1))
    return np.array([from_matrix(m) for m in mats])


def look_at(
    eye: np.ndarray, target: np.ndarray, up: tuple[float, float, float] = (0.0, 0.0, 1.0)
) -> np.ndarray:
    """Quaternion of a MuJoCo camera at ``eye`` looking at ``target`` (camera looks along -z)."""
    up = np.asarray(up, dtype=np.float64)
    forward = np.asarray(target, float) - np.asarray(eye, float)
    forward /= np.linalg.norm(forward)
    z = -forward
    x = np.cross(up, z)
    if np.linalg.norm(x) < 1e-6:  # looking straight down/up: pick any horizontal x
        x = np.cross(np.array([0.0, 1.0, 0.0]), z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    return from_matrix(np.stack([x, y, z], axis=1))
