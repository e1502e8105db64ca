"""Quaternion helpers: re-exported from ``dexhand.robot.rotations`` (pure numpy, robot-safe)."""

from dexhand.robot.rotations import (  # noqa: F401
    conjugate,
    distance,
    face_aligned_orientations,
    from_axis_angle,
    from_matrix,
    look_at,
    multiply,
    normalize,
    random_uniform,
    relative,
    to_matrix,
)
