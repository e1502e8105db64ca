"""Vision in the loop: the policy sees the cube pose estimated from the three rendered cameras.

``VisionPosePolicy`` wraps any Policy: each step it renders the env's vision cameras (with visual
randomization), runs the pose estimator, and overwrites the cube position, orientation and
relative rotation in the policy observation before the policy acts. Low-confidence estimates are
rejected and the last accepted pose is kept, as the ROS pose-estimator consumer does.

An estimator with a centre head gets the episode's camera poses as a lab's calibration would give them
(the randomized true poses perturbed by ``vision.config.ExtrinsicsError``, drawn once per episode from
a stream of its own, so the env's random stream is untouched) and triangulates the cube position.
"""

from __future__ import annotations

import numpy as np

from dexhand.robot import rotations


class VisionPosePolicy:
    def __init__(self, policy, env, estimator=None, min_confidence: float = 0.0, extrinsics_error=None,
                 seed: int = 0) -> None:
        from vision.config import ExtrinsicsError
        from vision.runtime import PoseEstimator

        self.policy = policy
        self.env = env.unwrapped if hasattr(env, "unwrapped") else env
        self.estimator = estimator or PoseEstimator.load()
        self.min_confidence = min_confidence
        self.layout = self.env.layout
        self.errors_mm: list[float] = []
        self.errors_deg: list[float] = []
        self._last: tuple[np.ndarray, np.ndarray] | None = None
        self.extrinsics_error = extrinsics_error or ExtrinsicsError()
        self._rng = np.random.default_rng([seed, 11])
        self._geometry: dict | None = None

    def reset(self) -> None:
        self.policy.reset()
        self._last = None
        self._geometry = None  # the cameras move at the env's reset: calibrate again at the first step

    def calibrated_cameras(self) -> dict | None:
        """This episode's camera poses as a calibration gives them (None: the estimator cannot use them)."""
        if not getattr(self.estimator, "has_centre_head", False):
            return None
        if self._geometry is None:
            from sim.env import HAND_ORIGIN
            from vision.cameras import camera_pose
            from vision.runtime.geometry import perturbed

            e, size = self.extrinsics_error, self.estimator.pipeline.config.input_size
            self._geometry = {c: perturbed(camera_pose(self.env.model, self.env.data, c, size, HAND_ORIGIN), self._rng,
                                           e.pos_std, e.angle_std, e.focal_rel_std) for c in self.estimator.cameras}
        return self._geometry

    def act(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        from sim.env import HAND_ORIGIN

        cameras = self.calibrated_cameras()
        views = self.env.render_views()
        pos, quat, confidence = (self.estimator.estimate(views) if cameras is None else
                                 self.estimator.estimate(views, camera_geometry=cameras))
        if confidence >= self.min_confidence or self._last is None:
            self._last = (np.asarray(pos, dtype=np.float64), rotations.normalize(quat))
        pos, quat = self._last
        true_pos = self.env.cube_pos - HAND_ORIGIN
        self.errors_mm.append(float(np.linalg.norm(pos - true_pos) * 1000))
        self.errors_deg.append(float(np.degrees(rotations.distance(quat, self.env.cube_quat))))
        obs = dict(observation)
        p = obs["policy"].copy()
        lay = self.layout
        goal = p[lay["goal_quat"]].astype(np.float64)
        p[lay["cube_pos"]] = pos
        p[lay["cube_quat"]] = quat
        p[lay["relative_quat"]] = rotations.relative(quat, goal)
        obs["policy"] = p
        return self.policy.act(obs)
