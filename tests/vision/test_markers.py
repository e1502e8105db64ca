"""The ArUco baseline recovers rendered cube poses (this also checks K/extrinsics from the model)."""

from __future__ import annotations

import tempfile

import numpy as np

from vision.config import GenConfig


def test_marker_baseline_recovers_rendered_poses(tmp_path, monkeypatch):
    """Under full visual randomization (camera jitter, lights, colours, pixel noise); the marker
    texture's temporary folder is gone once the scene is compiled."""
    from sim.scene import VISION_CAMERAS
    from vision.cameras import camera_pose
    from vision.data import generate_samples, make_env
    from vision.markers import MarkerPoseEstimator, MarkerSceneRenderer
    from vision.runtime.rotations import quat_angle

    cfg = GenConfig(randomize=True, free_pose_fraction=0.5)
    env = make_env(cfg)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    renderer = MarkerSceneRenderer(env, cfg.image_size)
    assert not any(tmp_path.iterdir())
    errors = []

    def hook(e):
        images = renderer.render(e, VISION_CAMERAS)
        cams = {c: camera_pose(e.model, e.data, c, cfg.image_size) for c in VISION_CAMERAS}
        est = MarkerPoseEstimator(float(e.model.geom_size[e.ids.cube_geom][0])).estimate(images, cams)
        assert est is not None, "no marker detected"
        errors.append((np.linalg.norm(est.pos_world - e.cube_pos) * 1000, np.degrees(quat_angle(est.quat, e.cube_quat))))

    try:
        generate_samples(cfg, seed=5, n=6, env=env, hook=hook)
    finally:
        renderer.close()
        env.close()
    errors = np.array(errors)
    assert np.median(errors[:, 0]) < 3.0, errors
    assert np.median(errors[:, 1]) < 3.0, errors
    assert np.percentile(errors[:, 1], 90) < 10.0, errors
