"""ROS messages <-> numpy, without cv_bridge (it needs numpy 1.x) or rospy.numpy_msg (numpy < 2.3)."""

from __future__ import annotations

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
