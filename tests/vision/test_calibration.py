"""OpenCV calibration recovers the intrinsics MuJoCo renders with; the YAML sets the sim cameras' fovy."""

from __future__ import annotations

import numpy as np


def test_checkerboard_calibration_recovers_known_intrinsics(tmp_path):
    from vision.calibrate import calibrate_grey_images, render_board_views
    from vision.runtime.calibration import load_calibration, pinhole_matrix, save_calibration

    fovy = 50.0  # not the scene's 40, so a hard-coded answer cannot pass
    cal = calibrate_grey_images(render_board_views(8, fovy, size=200, seed=1))
    truth = pinhole_matrix(fovy, 200, 200)
    assert abs(cal.camera_matrix[0, 0] / truth[0, 0] - 1) < 0.02
    assert abs(cal.camera_matrix[1, 1] / truth[1, 1] - 1) < 0.02
    assert np.allclose(cal.camera_matrix[:2, 2], truth[:2, 2], atol=2.5)
    assert abs(cal.fovy - fovy) < 1.0
    assert cal.rms < 0.5

    path = tmp_path / "calib.yaml"
    save_calibration(path, {"cam_top": cal})
    loaded = load_calibration(path)["cam_top"]
    np.testing.assert_allclose(loaded.camera_matrix, cal.camera_matrix)

    from vision.config import GenConfig
    from vision.data import make_env

    env = make_env(GenConfig(randomize=False, calibration=str(path)))
    try:
        cam = env.model.camera("cam_top").id
        assert abs(env.model.cam_fovy[cam] - cal.fovy) < 1e-6
        assert abs(env.nominal.cam_fovy[cam] - cal.fovy) < 1e-6
    finally:
        env.close()


def test_calibration_file_errors_name_the_problem(tmp_path):
    import pytest

    from vision.runtime.calibration import load_calibration

    with pytest.raises(FileNotFoundError, match="calibration file not found"):
        load_calibration(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("%YAML:1.0\n---\nfoo: 1\n")
    with pytest.raises(ValueError, match="no 'cameras'"):
        load_calibration(bad)
