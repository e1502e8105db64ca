"""Classical baseline and labelling tool: ArUco markers on the cube's faces + multi-camera solvePnP.

Each camera's detected marker corners give 2D-3D correspondences (corners in the cube frame from
``vision.marker_cube``). The camera with the most markers gives an initial pose (SQPnP); a joint
Levenberg-Marquardt over the reprojection error of every camera refines it. On a real rig with
calibrated cameras this is how images get pose labels; here it is compared with the CNN on renders
of the same states (lettered cube for the CNN, marker cube for the baseline).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vision.marker_cube import aruco_dictionary, marker_corners_cube
from vision.runtime.geometry import CameraGeometry
from vision.runtime.rotations import matrix_to_quat, quat_angle


@dataclass
class MarkerPose:
    pos_world: np.ndarray  # cube centre, world frame
    quat: np.ndarray  # wxyz
    n_markers: int  # detections used, summed over cameras
    n_cameras: int
    rms_px: float  # reprojection error


class MarkerPoseEstimator:
    """Cube pose from ArUco detections in one or more calibrated cameras."""

    def __init__(self, cube_half: float) -> None:
        self.corners = marker_corners_cube(cube_half)
        params = cv2.aruco.DetectorParameters()
        params.cornerRefinementMethod = cv2.aruco.CORNER_REFINE_SUBPIX
        self.detector = cv2.aruco.ArucoDetector(aruco_dictionary(), params)

    def detect(self, image_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(object points (k, 3) in the cube frame, image points (k, 2)) of the known markers seen."""
        corners, ids, _ = self.detector.detectMarkers(cv2.cvtColor(image_rgb, cv2.COLOR_RGB2GRAY))
        obj, img = [], []
        if ids is not None:
            for c, i in zip(corners, ids.ravel()):
                if int(i) in self.corners:
                    obj.append(self.corners[int(i)])
                    img.append(c.reshape(4, 2))
        if not obj:
            return np.zeros((0, 3)), np.zeros((0, 2))
        return np.concatenate(obj), np.concatenate(img).astype(np.float64)

    def estimate(self, images: dict[str, np.ndarray], cameras: dict[str, CameraGeometry]) -> MarkerPose | None:
        """Pose from the images of the named cameras; None when no marker is seen."""
        obs = {c: self.detect(images[c]) for c in images}
        obs = {c: o for c, o in obs.items() if len(o[0])}
        if not obs:
            return None
        best = None
        for cam in sorted(obs, key=lambda c: -len(obs[c][0])):
            obj, img = obs[cam]
            pose = cameras[cam]
            ok, rvec, tvec = cv2.solvePnP(obj, img, pose.K, None, flags=cv2.SOLVEPNP_SQPNP)
            if not ok:
                continue
            R_co = cv2.Rodrigues(rvec)[0]
            R_wo = pose.R_cw.T @ R_co
            t_wo = pose.R_cw.T @ (tvec.ravel() - pose.t_cw)
            R_wo, t_wo, rms = self._refine(R_wo, t_wo, obs, cameras)
            if best is None or rms < best[2]:
                best = (R_wo, t_wo, rms)
        if best is None:
            return None
        R_wo, t_wo, rms = best
        return MarkerPose(t_wo, matrix_to_quat(R_wo), sum(len(o[0]) // 4 for o in obs.values()), len(obs), rms)

    @staticmethod
    def _refine(R_wo, t_wo, obs, cameras) -> tuple[np.ndarray, np.ndarray, float]:
        from scipy.optimize import least_squares

        def residuals(x):
            R = cv2.Rodrigues(x[:3])[0]
            res = []
            for cam, (obj, img) in obs.items():
                res.append((cameras[cam].project(obj @ R.T + x[3:]) - img).ravel())
            return np.concatenate(res)

        x0 = np.concatenate([cv2.Rodrigues(R_wo)[0].ravel(), t_wo])
        sol = least_squares(residuals, x0, method="lm" if len(residuals(x0)) >= 6 else "trf")
        rms = float(np.sqrt(np.mean(sol.fun ** 2)))
        return cv2.Rodrigues(sol.x[:3])[0], sol.x[3:], rms


class MarkerSceneRenderer:
    """Renders the marker-textured cube in exactly the state (and visual randomization) of an env."""

    def __init__(self, env, size: int) -> None:
        import mujoco

        from sim.visual import CameraRenderer
        from vision.marker_cube import marker_model

        self.model = marker_model(env.cfg.scene)
        self.data = mujoco.MjData(self.model)
        self.renderer = CameraRenderer(self.model, size, size)
        self.size = size

    def render(self, env, cameras) -> dict[str, np.ndarray]:
        import mujoco

        m, src = self.model, env.model
        for name in ("cam_pos", "cam_quat", "cam_fovy", "light_pos", "light_dir", "light_diffuse", "geom_rgba",
                     "geom_size", "mat_rgba"):
            getattr(m, name)[:] = getattr(src, name)
        self.data.qpos[:] = env.data.qpos
        mujoco.mj_forward(m, self.data)
        return {c: self.renderer.render(self.data, c) for c in cameras}

    def close(self) -> None:
        self.renderer.close()


def compare_with_cnn(model_path: Path | None, n: int = 100, seed: int = 2000, randomize: bool = True) -> dict[str, Any]:
    """Both estimators on the same ``n`` states: CNN on lettered-cube renders, markers on marker-cube renders."""
    from sim.env import HAND_ORIGIN
    from sim.scene import VISION_CAMERAS
    from vision.cameras import camera_pose
    from vision.config import GenConfig
    from vision.data import generate_samples, make_env
    from vision.runtime import PoseEstimator

    cfg = GenConfig(randomize=randomize)
    env = make_env(cfg)
    marker_renderer = MarkerSceneRenderer(env, cfg.image_size)
    half = float(env.model.geom_size[env.ids.cube_geom][0])
    baseline = MarkerPoseEstimator(half)
    cnn = PoseEstimator.load(model_path)
    rows: list[dict[str, float]] = []

    def hook(e) -> None:
        images = marker_renderer.render(e, VISION_CAMERAS)
        cams = {c: camera_pose(e.model, e.data, c, cfg.image_size) for c in VISION_CAMERAS}
        baseline.corners = marker_corners_cube(float(e.model.geom_size[e.ids.cube_geom][0]))
        est = baseline.estimate(images, cams)
        truth_pos, truth_quat = e.cube_pos - HAND_ORIGIN, e.cube_quat
        rows.append({"seen": est is not None,
                     "pos_mm": np.nan if est is None else float(np.linalg.norm(est.pos_world - e.cube_pos) * 1000),
                     "rot_deg": np.nan if est is None else float(np.degrees(quat_angle(est.quat, truth_quat))),
                     "n_cameras": 0 if est is None else est.n_cameras, "truth_pos": truth_pos, "truth_quat": truth_quat})

    try:
        samples = generate_samples(cfg, seed, n, env=env, hook=hook)
    finally:
        marker_renderer.close()
        env.close()
    cnn_pos, cnn_rot = [], []
    for i in range(n):
        pos, quat, _ = cnn.estimate({c: samples["images"][i, j] for j, c in enumerate(VISION_CAMERAS)})
        cnn_pos.append(np.linalg.norm(pos - samples["pos"][i]) * 1000)
        cnn_rot.append(np.degrees(quat_angle(quat, samples["quat"][i])))
    seen = np.array([r["seen"] for r in rows])
    mp = np.array([r["pos_mm"] for r in rows])[seen]
    mr = np.array([r["rot_deg"] for r in rows])[seen]
    multi = np.array([r["n_cameras"] for r in rows]) >= 2
    return {
        "n": n, "seed": seed, "randomized": randomize,
        "marker_detected_fraction": float(seen.mean()),
        "marker_multi_camera_fraction": float(multi.mean()),
        "marker_pos_mm_median": _pct(mp, 50), "marker_pos_mm_p90": _pct(mp, 90),
        "marker_rot_deg_median": _pct(mr, 50), "marker_rot_deg_p90": _pct(mr, 90),
        "cnn_pos_mm_median": _pct(cnn_pos, 50), "cnn_pos_mm_p90": _pct(cnn_pos, 90),
        "cnn_rot_deg_median": _pct(cnn_rot, 50), "cnn_rot_deg_p90": _pct(cnn_rot, 90),
    }


def _pct(values, q: float) -> float:
    values = np.asarray(values, dtype=float)
    return float(np.percentile(values, q)) if len(values) else float("nan")


def print_comparison(r: dict[str, Any]) -> None:
    from dexhand.report import format_table

    rows = [
        {"estimator": "ArUco + solvePnP (marker cube)", "pos mm median": r["marker_pos_mm_median"],
         "pos mm p90": r["marker_pos_mm_p90"], "rot deg median": r["marker_rot_deg_median"],
         "rot deg p90": r["marker_rot_deg_p90"], "coverage": r["marker_detected_fraction"]},
        {"estimator": "CNN (lettered cube)", "pos mm median": r["cnn_pos_mm_median"], "pos mm p90": r["cnn_pos_mm_p90"],
         "rot deg median": r["cnn_rot_deg_median"], "rot deg p90": r["cnn_rot_deg_p90"], "coverage": 1.0},
    ]
    print(format_table(rows, title=f"dexhand vision markers: {r['n']} states, seed {r['seed']}, randomization "
                                   f"{'on' if r['randomized'] else 'off'}; marker poses from >= 2 cameras: "
                                   f"{r['marker_multi_camera_fraction']:.0%}"))
    print("marker errors are over the frames where at least one marker was detected (coverage)")
