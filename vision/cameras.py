"""Camera intrinsics and extrinsics read from the MuJoCo model, in OpenCV's conventions.

MuJoCo cameras look along -z with +y up; OpenCV's look along +z with +y down, so the rotation
world<-camera differs by diag(1, -1, -1).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from vision.runtime.calibration import CameraCalibration
from vision.runtime.geometry import CameraGeometry, mujoco_frame_camera

if TYPE_CHECKING:  # mujoco loads only after sim has chosen the GL backend
    import mujoco


def camera_pose(model: mujoco.MjModel, data: mujoco.MjData, name: str, size: int,
                origin: np.ndarray | None = None) -> CameraGeometry:
    """The camera's current K and pose (call after mj_forward / a step, which set cam_xpos/xmat), with
    world coordinates taken relative to ``origin`` when given (e.g. the hand origin of the pose labels)."""
    cam = model.camera(name).id
    return mujoco_frame_camera(data.cam_xmat[cam], data.cam_xpos[cam], float(model.cam_fovy[cam]), size,
                               (0.0, 0.0, 0.0) if origin is None else origin)


def camera_metadata(model: mujoco.MjModel, data: mujoco.MjData, cameras, size: int) -> dict:
    """JSON-ready intrinsics/extrinsics of the (nominal) cameras, for dataset and model metadata."""
    out = {}
    for name in cameras:
        pose = camera_pose(model, data, name, size)
        cam = model.camera(name).id
        out[name] = {
            "image_size": size,
            "fovy_deg": float(model.cam_fovy[cam]),
            "camera_matrix": pose.K.tolist(),
            "R_cam_from_world_opencv": pose.R_cw.tolist(),
            "t_cam_from_world_opencv": pose.t_cw.tolist(),
            "pos_world": data.cam_xpos[cam].tolist(),
            "quat_world_mujoco_wxyz": model.cam_quat[cam].tolist(),
        }
    return out


def apply_calibration(model: mujoco.MjModel, calibrations: dict[str, CameraCalibration], *more_models) -> None:
    """Set the simulated cameras' fovy from calibrated fy (for every model given, e.g. the env's nominal)."""
    for name, cal in calibrations.items():
        for m in (model, *more_models):
            try:
                cam = m.camera(name).id
            except KeyError:
                raise ValueError(f"calibration names camera {name!r}, which the scene does not have") from None
            m.cam_fovy[cam] = cal.fovy
