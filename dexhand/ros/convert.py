"""ROS messages <-> numpy, without cv_bridge (it needs numpy 1.x) or rospy.numpy_msg (numpy < 2.3)."""

from __future__ import annotations

import math

import numpy as np

from dexhand.robot import quat

ENCODINGS = {"rgb8": False, "bgr8": True}  # encoding -> whether channels must be reversed to RGB


def image_to_msg(image: np.ndarray, stamp, frame_id: str = ""):
    """HxWx3 uint8 RGB -> sensor_msgs/Image (rgb8)."""
    from sensor_msgs.msg import Image

    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be HxWx3 uint8, got {image.shape} {image.dtype}")
    msg = Image()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.height, msg.width = int(image.shape[0]), int(image.shape[1])
    msg.encoding = "rgb8"
    msg.is_bigendian = 0
    msg.step = 3 * msg.width
    msg.data = np.ascontiguousarray(image).tobytes()
    return msg


def msg_to_image(msg) -> np.ndarray:
    """sensor_msgs/Image (rgb8 or bgr8) -> HxWx3 uint8 RGB; other encodings raise naming them."""
    if msg.encoding not in ENCODINGS:
        raise ValueError(f"image encoding {msg.encoding!r} not supported (use rgb8 or bgr8)")
    need = msg.step * msg.height
    if msg.step < 3 * msg.width or len(msg.data) < need:
        raise ValueError(f"image data has {len(msg.data)} bytes, expected {need} (step {msg.step})")
    rows = np.frombuffer(msg.data, dtype=np.uint8, count=need).reshape(msg.height, msg.step)
    image = rows[:, : 3 * msg.width].reshape(msg.height, msg.width, 3)
    return np.ascontiguousarray(image[:, :, ::-1] if ENCODINGS[msg.encoding] else image)


def fill_pose(pose, position: np.ndarray, orientation_wxyz: np.ndarray) -> None:
    pose.position.x, pose.position.y, pose.position.z = (float(v) for v in position)
    q = pose.orientation
    q.x, q.y, q.z, q.w = quat.to_xyzw(orientation_wxyz)


def pose_from_msg(pose) -> tuple[np.ndarray, np.ndarray]:
    """geometry_msgs/Pose -> (position (3,), quaternion wxyz (4,))."""
    p, q = pose.position, pose.orientation
    return np.array([p.x, p.y, p.z]), quat.from_xyzw(q.x, q.y, q.z, q.w)


# The cube pose travels as geometry_msgs/PoseWithCovarianceStamped; the estimator's confidence c in
# (0, 1] is carried by the covariance: position variance REF_POSITION_VAR / c (1 cm std at c = 1) and
# orientation variance REF_ORIENTATION_VAR / c (0.1 rad std at c = 1) on the diagonal, so that
# c = REF_POSITION_VAR / covariance[0]. A confidence of 0 gives an infinite variance.
REF_POSITION_VAR = 1e-4
REF_ORIENTATION_VAR = 1e-2
MAX_CUBE_DISTANCE = 1.0  # m from the hand origin: anything farther is not a cube in the hand


def covariance_from_confidence(confidence: float) -> list:
    c = float(confidence)
    cov = [0.0] * 36
    pos = REF_POSITION_VAR / c if c > 0 else float("inf")
    rot = REF_ORIENTATION_VAR / c if c > 0 else float("inf")
    for i in range(3):
        cov[7 * i] = pos
        cov[7 * (i + 3)] = rot
    return cov


def confidence_from_covariance(covariance) -> float:
    """The estimator's confidence back from a covariance (0 for NaN, inf or non-positive variance)."""
    var = float(covariance[0])
    if not math.isfinite(var) or var <= 0:
        return 0.0
    return min(1.0, REF_POSITION_VAR / var)


def fill_cube_pose(msg, position: np.ndarray, orientation_wxyz: np.ndarray, confidence: float) -> None:
    """Fill a PoseWithCovarianceStamped (header left to the caller)."""
    fill_pose(msg.pose.pose, position, orientation_wxyz)
    msg.pose.covariance = covariance_from_confidence(confidence)


def pose_fault(pose) -> str:
    """Why a geometry_msgs/Pose is not a plausible cube pose ('' when it is)."""
    p, q = pose.position, pose.orientation
    values = [p.x, p.y, p.z, q.x, q.y, q.z, q.w]
    if not all(math.isfinite(v) for v in values):
        return f"non-finite pose values {values}"
    if math.sqrt(p.x * p.x + p.y * p.y + p.z * p.z) > MAX_CUBE_DISTANCE:
        return f"cube position ({p.x:.3g}, {p.y:.3g}, {p.z:.3g}) m is over {MAX_CUBE_DISTANCE} m from the hand"
    norm = math.sqrt(q.x * q.x + q.y * q.y + q.z * q.z + q.w * q.w)
    if abs(norm - 1.0) > 0.1:
        return f"orientation quaternion has norm {norm:.3g}, not 1"
    return ""
