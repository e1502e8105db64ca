"""Triangulated cube position: camera geometry conventions against real renders, triangulation, the
centre head's labels and learning, ONNX weights back into torch, calibrated extrinsics in the runtime."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dexhand.robot.rotations import look_at
from sim.configio import apply_overrides, to_dict
from vision.config import GenConfig, TrainConfig
from vision.runtime.geometry import (
    CameraGeometry,
    mujoco_camera,
    net_to_pixel,
    perturbed,
    pixel_to_net,
    triangulate,
    triangulate_centre,
)

CAMS = ("cam_left", "cam_right", "cam_top")
KP = ["arch=keypoints", "net_size=32", "channels=[8,8,16]", "strides=[2,1,2]", "keypoints=4", "feature_dim=16",
      "hidden=16"]


def _rig(size: int = 200) -> dict[str, CameraGeometry]:
    """Three cameras looking at the origin from about 0.4 m, like the scene's rig."""
    eyes = ([-0.2, -0.3, 0.15], [0.2, -0.3, 0.15], [0.0, -0.25, 0.3])
    return {name: mujoco_camera(eye, look_at(np.array(eye), np.zeros(3)), 45.0, size) for name, eye in zip(CAMS, eyes)}


def test_triangulation_recovers_the_point_and_degrades_gracefully():
    rig = _rig()
    point = np.array([0.01, -0.02, 0.03])
    obs = {c: (g, g.project(point[None])[0]) for c, g in rig.items()}
    tri = triangulate(obs)
    np.testing.assert_allclose(tri.point, point, atol=1e-9)
    assert tri.residual_px < 1e-6
    rng = np.random.default_rng(0)
    noisy = {c: (g, px + rng.normal(0, 0.5, 2)) for c, (g, px) in obs.items()}
    tri = triangulate(noisy)
    assert np.linalg.norm(tri.point - point) < 0.002 and 0.05 < tri.residual_px < 2.0
    with pytest.raises(ValueError, match="2 cameras"):
        triangulate({"cam_left": obs["cam_left"]})
    # from normalized network coordinates, leaving out a camera that is missing or sees nothing
    uv = np.array([pixel_to_net(px, 200, 0.8) for _, px in obs.values()])
    np.testing.assert_allclose(net_to_pixel(uv[0], 200, 0.8), obs["cam_left"][1])
    np.testing.assert_allclose(triangulate_centre(uv, rig, 200, 0.8).point, point, atol=1e-9)
    two = triangulate_centre(uv, rig, 200, 0.8, usable=[True, False, True])
    assert two.cameras == ("cam_left", "cam_top") and np.linalg.norm(two.point - point) < 1e-9
    outside = uv.copy()
    outside[1] = [1.5, 0.0]
    assert triangulate_centre(outside, rig, 200, 0.8, usable=[False, True, True]) is None
    # a calibration error moves the cameras by about what it says
    moved = perturbed(rig["cam_top"], rng, 0.001, 0.0)
    assert 0.0 < np.linalg.norm(moved.centre - rig["cam_top"].centre) < 0.006
    np.testing.assert_allclose(moved.R_cw, rig["cam_top"].R_cw)


def test_camera_geometry_matches_the_renderer():
    """The stored camera parameters project the cube centre onto the cube's pixels in a real
    segmentation render of the same frame, and agree with the simulator's own camera frames."""
    import mujoco

    from sim.env import HAND_ORIGIN
    from sim.scene import CUBE_GEOM
    from vision.cameras import camera_pose
    from vision.data import generate_samples, sample_cameras

    hits, frames = [], []

    def hook(env):
        m, d = env.model, env.data
        with mujoco.Renderer(m, 200, 200) as r:
            r.enable_segmentation_rendering()
            for c in CAMS:
                r.update_scene(d, camera=c)
                seg = r.render()[..., 0]
                frames.append((c, seg == m.geom(CUBE_GEOM).id, camera_pose(m, d, c, 200, HAND_ORIGIN)))

    samples = generate_samples(GenConfig(free_pose_fraction=1.0, episode_steps=4), seed=3, n=2, hook=hook)
    for i, cams in enumerate(sample_cameras(samples, 200)):
        for j, (name, geom) in enumerate(cams.items()):
            c, cube_mask, sim_geom = frames[3 * i + j]
            assert c == name
            np.testing.assert_allclose(geom.R_cw, sim_geom.R_cw, atol=1e-5)
            np.testing.assert_allclose(geom.t_cw, sim_geom.t_cw, atol=1e-5)
            u, v = np.round(geom.project(samples["pos"][i][None].astype(np.float64))[0]).astype(int)
            if 0 <= u < 200 and 0 <= v < 200:
                hits.append(bool(cube_mask[v, u]))
    assert len(hits) >= 4 and all(hits), hits


def _model(centre: bool):
    from vision.train import build_model

    cfg = apply_overrides(TrainConfig(), [*KP, f"centre_head={str(centre).lower()}"])
    torch.manual_seed(1)
    return cfg, build_model(cfg)


def test_onnx_weights_load_back_into_torch(tmp_path):
    """An exported model (BatchNorm folded in) loads into a model with a new centre head: the shared part
    computes the exported function, the head is reported fresh."""
    import onnxruntime as ort

    from vision.export import export_onnx, load_onnx_weights

    cfg, model = _model(False)
    x = torch.rand(8, 3, 3, 32, 32)
    model.train()
    with torch.no_grad():
        model(x)  # non-trivial BatchNorm statistics
    model.eval()
    ck = tmp_path / "best.pt"
    torch.save({"model": model.state_dict(), "config": to_dict(cfg), "cameras": list(CAMS), "epoch": 0,
                "pipeline": {"input_size": 64, "net_size": 32, "crop": 0.8, "color_order": "rgb"},
                "val": {"pred_err_median": [5.0, 5.0]}}, ck)
    onnx_path = export_onnx(ck, tmp_path / "m.onnx")
    _, fresh_model = _model(True)
    fresh = load_onnx_weights(fresh_model, onnx_path, x)
    assert fresh and all(name.startswith("centre.") for name in fresh)
    fresh_model.eval()
    want = ort.InferenceSession(str(onnx_path)).run(None, {"images": x.numpy()})
    with torch.no_grad():
        got = fresh_model(x)
    assert len(got) == 4
    for a, b in zip(want, got):
        np.testing.assert_allclose(a, b.numpy(), atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="not this architecture"):
        load_onnx_weights(_model_flatten(), onnx_path, torch.rand(2, 3, 3, 64, 64))


def _model_flatten():
    from vision.train import build_model

    return build_model(TrainConfig())


def test_the_estimator_triangulates_with_calibrated_extrinsics(tmp_path):
    """Centre head exported with a ``uv`` output; given calibrated cameras (per call or from a calibration
    file with extrinsics) the estimator's position is the triangulated one, else the network's."""
    from vision.export import export_onnx
    from vision.runtime import PoseEstimator
    from vision.runtime.calibration import CameraCalibration, load_calibration, save_calibration

    cfg, model = _model(True)
    rig = _rig(64)
    target = np.array([0.004, -0.006, 0.01])
    with torch.no_grad():  # a head that always answers the projection of ``target`` in each camera
        for head, geom in zip(model.centre, rig.values()):
            head[2].weight.zero_()
            head[2].bias.copy_(torch.from_numpy(pixel_to_net(geom.project(target[None])[0], 64, 0.8)))
    ck = tmp_path / "best.pt"
    torch.save({"model": model.eval().state_dict(), "config": to_dict(cfg), "cameras": list(CAMS), "epoch": 0,
                "pipeline": {"input_size": 64, "net_size": 32, "crop": 0.8, "color_order": "rgb"},
                "val": {"pred_err_median": [5.0, 5.0]}}, ck)
    onnx_path = export_onnx(ck, tmp_path / "m.onnx")
    images = {c: np.full((64, 64, 3), 90 + 40 * j, np.uint8) for j, c in enumerate(CAMS)}

    est = PoseEstimator.load(onnx_path)
    assert est.has_centre_head
    plain = est.estimate_full(images)
    assert plain.position_source == "network"
    tri = est.estimate_full(images, camera_geometry=rig)
    assert tri.position_source == "triangulated" and tri.reprojection_px < 1e-3
    np.testing.assert_allclose(tri.pos, target, atol=1e-5)
    two = est.estimate_full({c: images[c] for c in CAMS[1:]}, allow_missing=True, camera_geometry=rig)
    assert two.position_source == "triangulated" and two.cameras_used == CAMS[1:]
    np.testing.assert_allclose(two.pos, target, atol=1e-5)
    with pytest.raises(ValueError, match="cam_top"):
        est.estimate_full(images, camera_geometry={c: rig[c] for c in CAMS[:2]})

    # the same cameras from a calibration file with extrinsics
    cals = {c: CameraCalibration(64, 64, g.K, np.zeros(5), 0.1, g.R_cw, g.t_cw) for c, g in rig.items()}
    save_calibration(tmp_path / "calib.yaml", cals)
    loaded = load_calibration(tmp_path / "calib.yaml")
    assert all(cal.has_extrinsics for cal in loaded.values())
    est = PoseEstimator.load(onnx_path, calibration=tmp_path / "calib.yaml")
    np.testing.assert_allclose(est.estimate_full(images).pos, target, atol=1e-4)
    bad = dict(cals)
    bad["cam_top"] = CameraCalibration(64, 64, rig["cam_top"].K, np.zeros(5), 0.1, 2 * np.eye(3), np.zeros(3))
    save_calibration(tmp_path / "bad.yaml", bad)
    with pytest.raises(ValueError, match="cam_top.*rotation"):
        load_calibration(tmp_path / "bad.yaml")


def test_centre_head_learns_where_the_cube_is(tmp_path):
    """A short real training run: the centre head places the cube in each image far better than the
    untrained head and than always answering the mean position (the 'hold still' of this head)."""
    from vision.data import generate_dataset
    from vision.runtime.pipeline import ImagePipeline, PipelineConfig
    from vision.train import build_model, load_prepared, train

    generate_dataset(GenConfig(shard_size=8, episode_steps=10, randomize=False, free_pose_fraction=0.5),
                     tmp_path / "data", n=16, seed=12, workers=1)
    cfg = apply_overrides(TrainConfig(), [*KP, "net_size=64", "centre_head=true", "epochs=50", "batch_size=8",
                                          "lr=0.005", "val_fraction=0.25", "augment.camera_dropout=0"])
    train(cfg, tmp_path / "data", tmp_path / "run", command="test", progress=False)
    ds = load_prepared(tmp_path / "data", ImagePipeline(PipelineConfig(net_size=64, crop=cfg.crop)))
    x = torch.from_numpy(ImagePipeline.to_input(ds["images"]))

    def pixel_error(m) -> float:
        with torch.no_grad():
            uv = m.eval()(x)[3].numpy()
        return float(np.median(np.linalg.norm(uv - ds["uv"], axis=-1)) * 32)

    torch.manual_seed(cfg.seed)
    before = pixel_error(build_model(cfg))
    model = build_model(cfg)
    model.load_state_dict(torch.load(tmp_path / "run" / "last.pt", weights_only=False)["model"])
    after = pixel_error(model)
    mean_guess = float(np.median(np.linalg.norm(ds["uv"] - ds["uv"].mean(0), axis=-1)) * 32)
    assert after < 0.5 * before and after < 0.6 * mean_guess, (before, after, mean_guess)
