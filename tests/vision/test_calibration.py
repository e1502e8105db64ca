"""OpenCV calibration recovers the intrinsics MuJoCo renders with; the YAML sets the sim cameras' fovy."""

from __future__ import annotations

import tempfile

import numpy as np
import pytest

from dexhand.robot.rotations import look_at


def test_checkerboard_calibration_recovers_known_intrinsics(tmp_path, monkeypatch):
    from vision.calibrate import calibrate_grey_images, render_board_views
    from vision.runtime.calibration import load_calibration, pinhole_matrix, save_calibration

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    fovy = 50.0  # not the scene's 40, so a hard-coded answer cannot pass
    cal = calibrate_grey_images(render_board_views(8, fovy, size=200, seed=1))
    assert not any(scratch.iterdir())  # the board texture's folder is gone once the scene is compiled
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


def test_extrinsics_from_a_board_at_a_known_pose_on_the_hand(tmp_path):
    """Images of a board lying at a known pose (perspective warps of the board texture through known
    cameras) give back each camera's pose in the hand frame, through the CLI into a calibration file."""
    import cv2

    from vision.calibrate import MARGIN_SQUARES, TEXEL, calibrate_extrinsics, checkerboard_png, parse_pose
    from vision.cli import main as vision_main
    from vision.runtime.calibration import CameraCalibration, load_calibration, save_calibration
    from vision.runtime.geometry import mujoco_camera

    inner, square, size = (6, 5), 0.02, 200  # 7 x 6 squares: odd x even, so the corner order is unique
    texture = cv2.imread(str(checkerboard_png(tmp_path / "board.png", inner)), cv2.IMREAD_GRAYSCALE)
    # flat on the hand's xy plane, printed side up (board z, into the board, points down), turned 30 deg
    board_pose = "0.03 -0.05 0.0 0 0.9659258 0.2588190 0"
    R_hb, t_hb = parse_pose(board_pose)
    np.testing.assert_allclose(R_hb @ [0, 0, 1], [0, 0, -1], atol=1e-6)
    np.testing.assert_allclose(R_hb @ [1, 0, 0], [np.cos(np.pi / 6), np.sin(np.pi / 6), 0], atol=1e-6)
    # texture pixels -> board metres (origin at the first inner corner)
    px = square / TEXEL
    to_board = np.array([[px, 0, -(MARGIN_SQUARES + 1) * square + 0.5 * px],
                         [0, px, -(MARGIN_SQUARES + 1) * square + 0.5 * px], [0, 0, 1]])
    aim = t_hb + R_hb @ [0.06, 0.05, 0]  # the board's middle
    truth, cals = {}, {}
    (tmp_path / "ext").mkdir()
    for name, eye in (("cam_left", [-0.15, -0.25, 0.3]), ("cam_right", [0.2, -0.25, 0.3]), ("cam_top", [0.0, -0.1, 0.4])):
        truth[name] = cam = mujoco_camera(eye, look_at(np.array(eye), aim), 45.0, size)
        R_cb, t_cb = cam.R_cw @ R_hb, cam.R_cw @ t_hb + cam.t_cw
        H = cam.K @ np.column_stack([R_cb[:, 0], R_cb[:, 1], t_cb]) @ to_board
        image = cv2.warpPerspective(texture, H, (size, size), flags=cv2.INTER_AREA, borderValue=160)
        cv2.imwrite(str(tmp_path / "ext" / f"{name}.png"), image)
        cals[name] = CameraCalibration(size, size, cam.K, np.zeros(5), 0.1)
    save_calibration(tmp_path / "intrinsics.yaml", cals)
    assert vision_main(["calibrate", "--out", str(tmp_path / "full.yaml"), "--extrinsics", str(tmp_path / "ext"),
                        "--intrinsics", str(tmp_path / "intrinsics.yaml"), "--board-pose", board_pose,
                        "--pattern", "6", "5", "--square", str(square)]) == 0
    loaded = load_calibration(tmp_path / "full.yaml")
    grid = np.stack(np.meshgrid([-0.03, 0.0, 0.03], [-0.03, 0.0, 0.03], [0.0, 0.025, 0.05]), -1).reshape(-1, 3)
    workspace = t_hb + R_hb @ [0.05, 0.04, 0] + grid
    for name, cam in truth.items():
        got = loaded[name].geometry()
        angle = np.degrees(np.arccos(np.clip((np.trace(got.R_cw @ cam.R_cw.T) - 1) / 2, -1, 1)))
        assert angle < 1.5 and np.linalg.norm(got.centre - cam.centre) < 0.01, (name, angle, got.centre)
        # what triangulation needs: points where the cube sits (around the board, up to 5 cm above it)
        # project where the true camera projects them (pose errors along the view mostly cancel there)
        assert np.abs(got.project(workspace) - cam.project(workspace)).max() < 0.6, name
    # a camera that cannot see the board is named
    blank = {n: np.full((size, size), 128, np.uint8) for n in cals}
    with pytest.raises(ValueError, match="cam_left"):
        calibrate_extrinsics(blank, cals, (R_hb, t_hb), inner, square)
    with pytest.raises(ValueError, match="7 numbers"):
        parse_pose("0 0 0 1 0 0")


def test_scene_extrinsics_let_the_shipped_estimator_triangulate_in_the_simulated_rig(tmp_path):
    """The simulated rig's calibration file (nominal camera poses) makes the shipped model triangulate the
    cube on a real render of the unrandomized scene, close to the simulator's cube position."""
    from sim.env import HAND_ORIGIN, CubeReorientEnv
    from vision.calibrate import scene_calibration
    from vision.runtime import PoseEstimator
    from vision.runtime.calibration import save_calibration

    save_calibration(tmp_path / "sim.yaml", scene_calibration())
    est = PoseEstimator.load(calibration=tmp_path / "sim.yaml")
    env = CubeReorientEnv(overrides=["randomization.enabled=false"])
    try:
        env.reset(seed=3)
        e = est.estimate_full(env.render_views())
        truth = env.cube_pos - HAND_ORIGIN
    finally:
        env.close()
    assert e.position_source == "triangulated"
    assert np.linalg.norm(e.pos - truth) < 0.01, (e.pos, truth)
