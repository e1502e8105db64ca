"""Vision in the loop: the policy's cube pose comes from the shipped estimator on rendered images."""

from __future__ import annotations

import numpy as np

from dexhand.robot import rotations
from dexhand.vision_loop import VisionPosePolicy


class Recorder:
    def __init__(self) -> None:
        self.seen: list[np.ndarray] = []

    def reset(self) -> None:
        pass

    def act(self, observation):
        self.seen.append(observation["policy"].copy())
        return np.zeros(20, dtype=np.float32)


def test_estimated_pose_replaces_the_simulators_in_the_policy_input():
    from sim.env import CubeReorientEnv
    from vision.runtime import PoseEstimator

    env = CubeReorientEnv(overrides=["randomization.enabled=false"])
    estimator = PoseEstimator.load()
    recorder = Recorder()
    policy = VisionPosePolicy(recorder, env, estimator)
    obs, _ = env.reset(seed=0)
    policy.reset()
    policy.act(obs)
    cameras = policy.calibrated_cameras()  # a centre-head model triangulates with the calibrated rig
    assert (cameras is not None) == estimator.has_centre_head
    pos, quat, _ = estimator.estimate(env.render_views(), camera_geometry=cameras)
    seen = recorder.seen[0]
    lay = env.layout
    np.testing.assert_allclose(seen[lay["cube_pos"]], pos, atol=1e-6)
    np.testing.assert_allclose(seen[lay["cube_quat"]], rotations.normalize(quat), atol=1e-6)
    np.testing.assert_allclose(seen[lay["relative_quat"]], rotations.relative(rotations.normalize(quat),
                               obs["policy"][lay["goal_quat"]]), atol=1e-5)
    # Everything else is the simulator's observation, untouched.
    np.testing.assert_array_equal(seen[lay["fingertip_pos"]], obs["policy"][lay["fingertip_pos"]])
    assert len(policy.errors_mm) == 1 and policy.errors_mm[0] >= 0
    env.close()
