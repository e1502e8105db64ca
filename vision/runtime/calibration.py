"""Camera intrinsics/distortion files (OpenCV FileStorage YAML): written by ``dexhand vision calibrate``,
read by the robot-side pipeline (undistortion) and by the simulator side (sets the cameras' fovy).

OpenCV's own YAML format keeps this numpy + opencv only, and the files open in any OpenCV tool.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vision.runtime.geometry import CameraGeometry, pinhole_matrix


@dataclass
class CameraCalibration:
    """One camera's pinhole intrinsics and distortion for images of ``width`` x ``height`` pixels."""

    width: int
    height: int
    camera_matrix: np.ndarray  # 3x3 K
    distortion: np.ndarray  # OpenCV's (k1, k2, p1, p2, k3, ...)
    rms: float = 0.0  # reprojection error of the calibration, pixels
    # Extrinsics, optional: x_cam = R_cam_from_hand @ x + t_cam_from_hand (OpenCV camera axes), x in metres
    # from the hand origin in hand axes (the pose labels' frame). With them the estimator triangulates.
    R_cam_from_hand: np.ndarray | None = None
    t_cam_from_hand: np.ndarray | None = None

    @property
    def has_extrinsics(self) -> bool:
        return self.R_cam_from_hand is not None and self.t_cam_from_hand is not None

    @property
    def fovy(self) -> float:
        """Vertical field of view (deg) of the ideal pinhole camera with this fy (what MuJoCo's fovy means)."""
        return math.degrees(2.0 * math.atan(0.5 * self.height / float(self.camera_matrix[1, 1])))

    def ideal_matrix(self) -> np.ndarray:
        """The distortion-free, centred K that the simulated camera has: undistortion maps onto it."""
        return pinhole_matrix(self.fovy, self.width, self.height)

    def geometry(self) -> CameraGeometry:
        """The undistorted camera (ideal K) at its calibrated pose; needs the extrinsics."""
        if not self.has_extrinsics:
            raise ValueError("this calibration has no extrinsics (R_cam_from_hand, t_cam_from_hand)")
        return CameraGeometry(self.ideal_matrix(), np.asarray(self.R_cam_from_hand, np.float64),
                              np.asarray(self.t_cam_from_hand, np.float64).ravel())


def save_calibration(path: str | Path, cameras: dict[str, CameraCalibration]) -> None:
    fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_WRITE)
    try:
        fs.write("cameras", ",".join(cameras))
        for name, cal in cameras.items():
            fs.startWriteStruct(name, cv2.FileNode_MAP)
            fs.write("width", int(cal.width))
            fs.write("height", int(cal.height))
            fs.write("camera_matrix", np.asarray(cal.camera_matrix, dtype=np.float64))
            fs.write("distortion", np.asarray(cal.distortion, dtype=np.float64).reshape(1, -1))
            fs.write("rms", float(cal.rms))
            fs.write("fovy", float(cal.fovy))
            if cal.has_extrinsics:
                fs.write("R_cam_from_hand", np.asarray(cal.R_cam_from_hand, dtype=np.float64).reshape(3, 3))
                fs.write("t_cam_from_hand", np.asarray(cal.t_cam_from_hand, dtype=np.float64).reshape(3, 1))
            fs.endWriteStruct()
    finally:
        fs.release()


def load_calibration(path: str | Path) -> dict[str, CameraCalibration]:
    """Read a calibration file; errors name the file and the missing field."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"calibration file not found: {path}")
    fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_READ)
    try:
        names_node = fs.getNode("cameras")
        if names_node.empty():
            raise ValueError(f"{path}: no 'cameras' list (not a dexhand calibration file?)")
        out = {}
        for name in names_node.string().split(","):
            node = fs.getNode(name)
            if node.empty():
                raise ValueError(f"{path}: camera {name!r} is listed but has no entry")
            for key in ("width", "height", "camera_matrix", "distortion"):
                if node.getNode(key).empty():
                    raise ValueError(f"{path}: camera {name!r} lacks {key!r}")
            k = node.getNode("camera_matrix").mat()
            if k is None or k.shape != (3, 3):
                raise ValueError(f"{path}: camera {name!r} camera_matrix must be 3x3")
            rms_node = node.getNode("rms")
            R, t = node.getNode("R_cam_from_hand"), node.getNode("t_cam_from_hand")
            if R.empty() != t.empty():
                raise ValueError(f"{path}: camera {name!r} has only one of R_cam_from_hand and t_cam_from_hand")
            R = None if R.empty() else R.mat()
            t = None if t.empty() else t.mat()
            if R is not None and (R.shape != (3, 3) or t.size != 3
                                  or not np.allclose(R @ R.T, np.eye(3), atol=1e-4)):
                raise ValueError(f"{path}: camera {name!r} R_cam_from_hand must be a 3x3 rotation and "
                                 f"t_cam_from_hand 3 numbers")
            out[name] = CameraCalibration(
                width=int(node.getNode("width").real()),
                height=int(node.getNode("height").real()),
                camera_matrix=k.astype(np.float64),
                distortion=node.getNode("distortion").mat().astype(np.float64).ravel(),
                rms=0.0 if rms_node.empty() else float(rms_node.real()),
                R_cam_from_hand=None if R is None else R.astype(np.float64),
                t_cam_from_hand=None if t is None else t.astype(np.float64).ravel(),
            )
        return out
    finally:
        fs.release()
