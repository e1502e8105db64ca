"""Rotation helpers for the vision runtime (numpy only, Python 3.8; quaternions are wxyz).

The 6-D rotation representation lives here; quaternion maths is ``dexhand.robot.rotations``
(robot-safe, shared with the simulator), re-exported under the names the vision code uses.
"""

from __future__ import annotations

import numpy as np

from dexhand.robot.rotations import distance as quat_angle  # noqa: F401
from dexhand.robot.rotations import from_matrix as matrix_to_quat  # noqa: F401


def sixd_to_matrix(sixd: np.ndarray) -> np.ndarray:
    """Continuous 6-D rotation (the matrix's first two columns, stacked) -> rotation matrix.

    Gram-Schmidt on the two columns (Zhou et al. 2019); works on (..., 6) arrays.
    """
    sixd = np.asarray(sixd, dtype=np.float64)
    a, b = sixd[..., :3], sixd[..., 3:]
    x = a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), 1e-9)
    b = b - np.sum(x * b, axis=-1, keepdims=True) * x
    y = b / np.maximum(np.linalg.norm(b, axis=-1, keepdims=True), 1e-9)
    z = np.cross(x, y)
    return np.stack([x, y, z], axis=-1)


def matrix_to_sixd(matrix: np.ndarray) -> np.ndarray:
    m = np.asarray(matrix, dtype=np.float64)
    return np.concatenate([m[..., :, 0], m[..., :, 1]], axis=-1)
