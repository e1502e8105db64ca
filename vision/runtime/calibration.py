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


@dataclass
class CameraCalibration:
    """One camera's pinhole intrinsics and distortion for images of ``width`` x ``height`` pixels."""

    width: int
    height: int
    camera_matrix: np.ndarray  # 3x3 K
    distortion: np.ndarray  # OpenCV's (k1, k2, p1, p2, k3, ...)
    rms: float = 0.0  # reprojection error of the calibration, pixels

    @property
    def fovy(self) -> float:
        """Vertical field of view (deg) of the ideal pinhole camera with this fy (what MuJoCo's fovy means)."""
        return math.degrees(2.0 * math.atan(0.5 * self.height / float(self.camera_matrix[1, 1])))

    def ideal_matrix(self) -> np.ndarray:
        """The distortion-free, centred K that the simulated camera has: undistortion maps onto it."""
        return pinhole_matrix(self.fovy, self.width, self.height)


def pinhole_matrix(fovy_deg: float, width: int, height: int) -> np.ndarray:
    """K of a MuJoCo camera: square pixels, principal point at the image centre (pixel-centre convention)."""
    f = 0.5 * height / math.tan(math.radians(fovy_deg) / 2.0)
    return np.array([[f, 0.0, (width - 1) / 2.0], [0.0, f, (height - 1) / 2.0], [0.0, 0.0, 1.0]])


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
            out[name] = CameraCalibration(
                width=int(node.getNode("width").real()),
                height=int(node.getNode("height").real()),
                camera_matrix=k.astype(np.float64),
                distortion=node.getNode("distortion").mat().astype(np.float64).ravel(),
                rms=0.0 if rms_node.empty() else float(rms_node.real()),
            )
        return out
    finally:
        fs.release()
