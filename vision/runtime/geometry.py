"""Camera geometry for the pose estimator: pinhole projection, the crop/resize of the image pipeline,
and the triangulation of the cube centre from its image position in several calibrated cameras.

Why: a network that regresses the 3-D position directly must learn each camera's projection and
cannot see where a camera really is; located in each image and triangulated with the cameras' known
poses, the same features place the cube about twice as precisely (``vision/models/README.md``).
numpy only (robot side, Python 3.8).
"""

from __future__ import annotations

import math
from typing import Mapping, NamedTuple, Sequence

import numpy as np

from dexhand.robot.rotations import to_matrix

MJ_TO_CV = np.diag([1.0, -1.0, -1.0])  # MuJoCo cameras look along -z, y up; OpenCV's along +z, y down


class CameraGeometry(NamedTuple):
    """Pinhole intrinsics and pose, OpenCV convention: x_cam = R_cw @ x_world + t_cw, pixels = K x_cam."""

    K: np.ndarray
    R_cw: np.ndarray
    t_cw: np.ndarray

    @property
    def centre(self) -> np.ndarray:
        """The camera's optical centre in world coordinates."""
        return -self.R_cw.T @ self.t_cw

    def project(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) world points -> (N, 2) pixel coordinates (pixel-centre convention)."""
        cam = np.asarray(points, np.float64) @ self.R_cw.T + self.t_cw
        uv = cam @ self.K.T
        return uv[:, :2] / uv[:, 2:3]

    def ray(self, pixel: np.ndarray) -> np.ndarray:
        """Unit direction (world) of the ray through ``pixel``."""
        d = self.R_cw.T @ np.linalg.solve(self.K, np.array([pixel[0], pixel[1], 1.0]))
        return d / np.linalg.norm(d)


def pinhole_matrix(fovy_deg: float, width: int, height: int) -> np.ndarray:
    """K of a MuJoCo camera: square pixels, principal point at the image centre (pixel-centre convention)."""
    f = 0.5 * height / math.tan(math.radians(fovy_deg) / 2.0)
    return np.array([[f, 0.0, (width - 1) / 2.0], [0.0, f, (height - 1) / 2.0], [0.0, 0.0, 1.0]])


def mujoco_frame_camera(R_world_cam: np.ndarray, pos: Sequence[float], fovy_deg: float, size: int,
                        origin: Sequence[float] = (0.0, 0.0, 0.0)) -> CameraGeometry:
    """A MuJoCo camera with world orientation ``R_world_cam`` (MuJoCo axes: looks along -z, y up) at
    ``pos``, as seen in ``size`` x ``size`` images, world coordinates taken relative to ``origin``."""
    R_cw = (np.asarray(R_world_cam, np.float64).reshape(3, 3) @ MJ_TO_CV).T
    t_cw = -R_cw @ (np.asarray(pos, np.float64) - np.asarray(origin, np.float64))
    return CameraGeometry(pinhole_matrix(float(fovy_deg), size, size), R_cw, t_cw)


def mujoco_camera(pos: Sequence[float], quat_wxyz: Sequence[float], fovy_deg: float, size: int,
                  origin: Sequence[float] = (0.0, 0.0, 0.0)) -> CameraGeometry:
    """A world-body MuJoCo camera (cam_pos, cam_quat, cam_fovy), as :func:`mujoco_frame_camera`."""
    return mujoco_frame_camera(to_matrix(np.asarray(quat_wxyz, np.float64)), pos, fovy_deg, size, origin)


def crop_box(input_size: int, crop: float) -> tuple[int, int]:
    """(start, kept width) of the pipeline's centre crop, in input pixels (as ``ImagePipeline.prepare``)."""
    keep = int(round(input_size * crop))
    return (input_size - keep) // 2, keep


def pixel_to_net(pixels: np.ndarray, input_size: int, crop: float) -> np.ndarray:
    """Camera pixels -> the network's normalized image coordinates: -1 and +1 at the crop's edges."""
    start, keep = crop_box(input_size, crop)
    return (np.asarray(pixels, np.float64) - start + 0.5) / keep * 2.0 - 1.0


def net_to_pixel(uv: np.ndarray, input_size: int, crop: float) -> np.ndarray:
    """Inverse of :func:`pixel_to_net`."""
    start, keep = crop_box(input_size, crop)
    return (np.asarray(uv, np.float64) + 1.0) / 2.0 * keep + start - 0.5


class Triangulation(NamedTuple):
    point: np.ndarray  # (3,) least-squares closest point to the rays
    residual_px: float  # rms reprojection error of ``point`` in the cameras used (pixels)
    cameras: tuple[str, ...]


def triangulate(observations: Mapping[str, tuple[CameraGeometry, np.ndarray]]) -> Triangulation:
    """The point closest (least squares) to the rays through each camera's observed pixel.

    Needs two cameras or more; raises ValueError otherwise or when the rays are parallel."""
    if len(observations) < 2:
        raise ValueError(f"triangulation needs 2 cameras or more, got {len(observations)}")
    A, b = np.zeros((3, 3)), np.zeros(3)
    for geom, pixel in observations.values():
        d = geom.ray(pixel)
        P = np.eye(3) - np.outer(d, d)
        A += P
        b += P @ geom.centre
    if np.linalg.cond(A) > 1e8:
        raise ValueError("triangulation: the camera rays are (nearly) parallel")
    point = np.linalg.solve(A, b)
    sq = [float(np.sum((geom.project(point[None])[0] - np.asarray(pixel)) ** 2)) for geom, pixel in observations.values()]
    return Triangulation(point, float(np.sqrt(np.mean(sq))), tuple(observations))


def perturbed(geom: CameraGeometry, rng: np.random.Generator, pos_std: float, angle_std: float,
              focal_rel_std: float = 0.0) -> CameraGeometry:
    """``geom`` as a calibration with errors would give it: the centre moved by N(0, pos_std) per axis (m),
    the orientation turned about a random axis by N(0, angle_std) (rad), the focal length scaled by
    1 + N(0, focal_rel_std)."""
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    angle = rng.normal(0.0, angle_std)
    kx = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    turn = np.eye(3) + math.sin(angle) * kx + (1 - math.cos(angle)) * kx @ kx
    R_cw = turn @ geom.R_cw
    centre = geom.centre + rng.normal(0.0, pos_std, 3)
    K = geom.K.copy()
    scale = 1.0 + rng.normal(0.0, focal_rel_std)
    K[0, 0] *= scale
    K[1, 1] *= scale
    return CameraGeometry(K, R_cw, -R_cw @ centre)


def triangulate_centre(uv: np.ndarray, cameras: Mapping[str, CameraGeometry], input_size: int, crop: float,
                       usable: Sequence[bool] | None = None) -> Triangulation | None:
    """The cube centre from the network's per-camera image positions ``uv`` (n_cams, 2; normalized, in
    the order of ``cameras``). Cameras not ``usable`` (e.g. missing) or whose estimate lies outside the
    image are left out; None when fewer than two remain."""
    obs = {}
    for i, (name, geom) in enumerate(cameras.items()):
        if (usable is None or usable[i]) and np.all(np.isfinite(uv[i])) and np.all(np.abs(uv[i]) < 1.0):
            obs[name] = (geom, net_to_pixel(uv[i], input_size, crop))
    if len(obs) < 2:
        return None
    try:
        return triangulate(obs)
    except ValueError:
        return None
