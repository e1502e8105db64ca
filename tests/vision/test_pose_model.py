"""The keypoint pose network, its losses and schedule, network-resolution data, the recipe's resume
checks, labelled image-file sets (``eval --real``) and confidence gating."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sim.configio import ConfigError, apply_overrides
from vision.config import GenConfig, RecipeConfig, TrainConfig

CAMS = ("cam_left", "cam_right", "cam_top")
KP = ["arch=keypoints", "net_size=32", "channels=[8,8,16]", "strides=[2,1,2]", "keypoints=4", "feature_dim=16",
      "hidden=16"]


def test_spatial_softmax_finds_the_peak():
    from vision.model import SpatialSoftmax

    ss = SpatialSoftmax(9, 9)
    maps = torch.full((1, 2, 9, 9), -50.0)
    maps[0, 0, 2, 6] = 50.0  # row 2 (y), column 6 (x)
    maps[0, 1, 8, 0] = 50.0
    xy = ss(maps).reshape(2, 2)
    grid = torch.linspace(-1, 1, 9)
    torch.testing.assert_close(xy[0], torch.stack([grid[6], grid[2]]), atol=1e-4, rtol=0)
    torch.testing.assert_close(xy[1], torch.stack([grid[0], grid[8]]), atol=1e-4, rtol=0)


def test_keypoint_net_moves_its_keypoints_with_the_image():
    """Spatial information survives: shifting the image content shifts the keypoints the same way."""
    from vision.model import KeypointTrunk

    torch.manual_seed(0)
    trunk = KeypointTrunk(64, (8, 8, 16), (2, 1, 2), 8, keypoints=6).eval()
    with torch.no_grad():
        trunk.softmax.log_temperature.fill_(-6.0)  # sharp, as training makes it; untrained maps are nearly flat
    img = torch.zeros(1, 3, 64, 64)
    img[:, :, 20:30, 16:26] = 1.0
    moved = torch.roll(img, shifts=16, dims=3)  # 16 px to the right

    def keypoints(x):
        return trunk.softmax(trunk.keypoints(trunk.conv(x))).reshape(-1, 2)

    with torch.no_grad():
        before, after = keypoints(img), keypoints(moved)
    dx, dy = (after - before).unbind(-1)
    # keypoints on the square follow it by its shift (16 px = 0.5 in [-1, 1] coordinates), none moves up or
    # down (untrained maps also respond to the image border, which stays put)
    assert (dx - 0.5).abs().lt(0.1).sum() >= 2 and dx.min() > -0.05, dx
    assert dy.abs().max() < 0.1, dy


def test_config_errors_name_the_field():
    with pytest.raises(ConfigError, match="arch"):
        apply_overrides(TrainConfig(), ["arch=resnet"])
    with pytest.raises(ConfigError, match="err_loss"):
        apply_overrides(TrainConfig(), ["err_loss=l2"])
    with pytest.raises(ConfigError, match="channels has 3 entries but strides 2"):
        apply_overrides(TrainConfig(), ["channels=[8,8,16]", "strides=[2,2]"])
    with pytest.raises(ConfigError, match="net_size"):
        apply_overrides(GenConfig(), ["net_size=40"])
    with pytest.raises(ConfigError, match="eval_seed"):
        apply_overrides(RecipeConfig(), ["eval_seed=0", "seed=0"])
    with pytest.raises(ConfigError, match=r"gen.net_size/gen.crop"):
        apply_overrides(RecipeConfig(), ["gen.net_size=96", "train.net_size=64"])


def test_nll_error_head_is_minimised_at_the_mean_error():
    """The Laplace NLL makes the predicted error converge to the expected error (calibrated confidence)."""
    from vision.train import batch_loss

    torch.manual_seed(0)
    cfg = apply_overrides(TrainConfig(), [*KP, "err_loss=nll", "err_weight=1", "rot_weight=0"])

    class Fixed(torch.nn.Module):  # fixed pose outputs, one free error estimate
        def __init__(self):
            super().__init__()
            self.raw = torch.nn.Parameter(torch.zeros(2))

        def forward(self, x):
            b = x.shape[0]
            pos = torch.linspace(0, 0.02, b)[:, None].expand(b, 3).contiguous()  # errors 0..34.6 mm
            rot6d = torch.tensor([1.0, 0, 0, 0, 1, 0]).expand(b, 6)
            return pos, rot6d, torch.nn.functional.softplus(self.raw).expand(b, 2) * 10

    model = Fixed()
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    x = torch.zeros(16, 3, 3, 32, 32)
    pos_true, rmat = torch.zeros(16, 3), torch.eye(3).expand(16, 3, 3)
    for _ in range(400):
        loss, _ = batch_loss(model, x, pos_true, rmat, cfg)
        opt.zero_grad()
        loss.backward()
        opt.step()
    mean_mm = float((torch.linspace(0, 0.02, 16) * 3 ** 0.5 * 1000).mean())
    _, _, err = model(x)
    assert err[0, 0].item() == pytest.approx(mean_mm, rel=0.03)


def test_progress_schedule_warms_up_anneals_and_resumes():
    from vision.train import ProgressSchedule

    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.0)
    clock = [0.0]
    s = ProgressSchedule(opt, 1.0, total_steps=100, warmup=0.1, final=0.02)
    lrs = []
    for _ in range(100):
        s.step()
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs[4] < lrs[9] == pytest.approx(1.0, abs=0.01)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))
    assert lrs[-1] == pytest.approx(0.02)
    # the time limit anneals a run whose step budget is far from done
    t = ProgressSchedule(opt, 1.0, total_steps=10_000, time_limit_s=60, clock=lambda: clock[0])
    clock[0] = 30.0
    t.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.02 + 0.98 * 0.5 * (1 + np.cos(np.pi * (0.5 - 0.03) / 0.97)))
    clock[0] = 60.0
    t.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.02)
    # resume: the state carries the step count
    u = ProgressSchedule(opt, 1.0, total_steps=100, warmup=0.1, final=0.02)
    u.load_state_dict(s.state_dict())
    assert opt.param_groups[0]["lr"] == pytest.approx(lrs[-1])


def test_validation_split_is_stable_as_data_grow():
    from vision.train import split_indices

    val_a, tr_a = split_indices(1000, 0.1, seed=3)
    val_b, tr_b = split_indices(3000, 0.1, seed=3)
    assert set(val_a) == set(val_b[val_b < 1000])  # earlier samples keep their side
    assert not set(val_b) & set(tr_b) and len(val_b) + len(tr_b) == 3000
    assert 0.07 < len(val_b) / 3000 < 0.13
    val, tr = split_indices(4, 0.01, seed=0)
    assert len(val) == 1 and len(tr) == 3


def test_generation_at_network_resolution_is_the_runtime_pipeline(tmp_path):
    """Stored images are exactly what the runtime's pipeline makes of the rendered frame."""
    from vision.data import generate_dataset, generate_samples
    from vision.runtime.pipeline import ImagePipeline, PipelineConfig
    from vision.train import load_prepared

    raw_cfg = GenConfig(image_size=64, shard_size=2, episode_steps=6)
    net_cfg = apply_overrides(raw_cfg, ["net_size=32", "crop=0.75"])
    raw = generate_samples(raw_cfg, seed=5, n=2)
    net = generate_samples(net_cfg, seed=5, n=2)
    pipe = ImagePipeline(PipelineConfig(input_size=64, net_size=32, crop=0.75))
    assert net["images"].shape == (2, 3, 32, 32, 3)
    for i in range(2):
        for j, cam in enumerate(CAMS):
            np.testing.assert_array_equal(net["images"][i, j], pipe.prepare(cam, raw["images"][i, j]))
    np.testing.assert_array_equal(net["pos"], raw["pos"])

    generate_dataset(net_cfg, tmp_path / "d", n=2, seed=1, workers=1)
    ds = load_prepared(tmp_path / "d", pipe)
    assert ds["images"].shape == (2, 3, 32, 32, 3)
    with pytest.raises(ValueError, match="net_size"):
        load_prepared(tmp_path / "d", ImagePipeline(PipelineConfig(input_size=64, net_size=48, crop=0.75)))
    with pytest.raises(ConfigError, match="crop"):  # resuming with other settings would mix two data sets
        generate_dataset(apply_overrides(net_cfg, ["crop=0.8"]), tmp_path / "d", n=4, seed=1, workers=1)


def _checkpoint(tmp_path, net_size=32, input_size=64, level=-1):
    """An untrained keypoint model saved as train() saves it."""
    from sim.configio import to_dict
    from vision.train import build_model

    cfg = apply_overrides(TrainConfig(), [*KP, f"net_size={net_size}", f"keypoint_level={level}"])
    torch.manual_seed(1)
    model = build_model(cfg).eval()
    path = tmp_path / "best.pt"
    torch.save({"model": model.state_dict(), "config": to_dict(cfg), "cameras": list(CAMS), "epoch": 0,
                "pipeline": {"input_size": input_size, "net_size": net_size, "crop": 0.8, "color_order": "rgb"},
                "val": {"pred_err_median": [5.0, 5.0]}}, path)
    return path


@pytest.mark.parametrize("level", [-1, 1])
def test_keypoint_model_exports_to_onnx_and_matches_torch(tmp_path, level):
    from vision.export import export_onnx, load_checkpoint, torch_outputs
    from vision.runtime import PoseEstimator

    onnx_path = export_onnx(_checkpoint(tmp_path, level=level), tmp_path / "m.onnx")
    if level == 1:  # keypoint maps at the finer stage: 32 px / 2 / 2 = 8x8 instead of 4x4
        assert load_checkpoint(tmp_path / "best.pt")[0].trunk.softmax.grid.shape == (64, 2)
    model, _ = load_checkpoint(tmp_path / "best.pt")
    est = PoseEstimator.load(onnx_path)
    rng = np.random.default_rng(0)
    x = rng.random((2, 3, 3, 32, 32)).astype(np.float32)
    for ours, theirs in zip(est.run_network(x).values(), torch_outputs(model, x)):
        np.testing.assert_allclose(ours, theirs, atol=1e-4, rtol=1e-4)


def test_recipe_refuses_to_resume_a_run_with_other_settings(tmp_path):
    from vision.recipe import check_resume, parse_stages

    cfg = apply_overrides(RecipeConfig(), [f"run_dir={tmp_path}", *(f"train.{o}" for o in KP)])
    assert not check_resume(cfg.train, tmp_path / "last.pt")
    from sim.configio import to_dict

    torch.save({"config": {**to_dict(cfg.train), "time_limit_s": 1.0}}, tmp_path / "last.pt")
    assert check_resume(cfg.train, tmp_path / "last.pt")  # only the time limit differs: resume
    torch.save({"config": {**to_dict(cfg.train), "lr": 0.5}}, tmp_path / "last.pt")
    with pytest.raises(ConfigError, match=r"train\.lr"):
        check_resume(cfg.train, tmp_path / "last.pt")
    assert parse_stages("train, export") == ["train", "export"]
    from vision.cli import build_parser

    # `dexhand vision recipe` with no --stages runs the whole recipe, the fine-tune included
    assert parse_stages(build_parser().parse_args(["recipe"]).stages) == ["gen", "train", "finetune", "export", "eval"]
    with pytest.raises(ConfigError, match="fly"):
        parse_stages("gen,fly")


def test_real_image_files_score_like_the_renders_they_hold(tmp_path):
    """`eval --real DIR` end to end on rendered images written as PNG files: same figures as in memory."""
    from vision.data import generate_samples
    from vision.evaluate import score_set
    from vision.export import export_onnx
    from vision.real import evaluate_image_set, read_image_set, write_image_set
    from vision.runtime import PoseEstimator

    onnx_path = export_onnx(_checkpoint(tmp_path, input_size=200), tmp_path / "m.onnx")
    s = generate_samples(GenConfig(episode_steps=6), seed=9, n=4)
    folder = write_image_set(tmp_path / "real", s["images"], s["pos"], s["quat"], CAMS)
    back = read_image_set(folder, CAMS)
    np.testing.assert_array_equal(back["images"], s["images"])
    np.testing.assert_allclose(back["pos"], s["pos"], atol=1e-6)
    res = evaluate_image_set(onnx_path, folder)
    mem = score_set(PoseEstimator.load(onnx_path), s)
    assert res["n"] == 4
    for key in ("pos_mm_median", "rot_deg_median", "confidence_mean"):
        assert res["sets"]["files"][key] == pytest.approx(mem[key], rel=1e-4, abs=1e-3)
    assert "files, one camera blacked out" in res["sets"]

    (folder / "00002" / "cam_top.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"sample '00002' has no image for camera 'cam_top'"):
        read_image_set(folder, CAMS)
    lines = (folder / "labels.csv").read_text().splitlines()
    lines[1] = "00000,0,0,0,2,0,0,0"
    (folder / "labels.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match="line 2.*unit quaternion"):
        read_image_set(folder, CAMS)


class StubEstimator:
    """Returns queued (pos, quat, confidence) estimates."""

    def __init__(self, estimates):
        self.estimates = list(estimates)

    def estimate(self, images):
        return self.estimates.pop(0)


def test_low_confidence_poses_are_held_in_the_loop_and_dropped_by_the_ros_consumers():
    from dexhand.ros.convert import confidence_from_covariance, covariance_from_confidence
    from dexhand.vision_loop import VisionPosePolicy

    class Env:
        layout = {"cube_pos": slice(0, 3), "cube_quat": slice(3, 7), "relative_quat": slice(7, 11),
                  "goal_quat": slice(11, 15)}
        cube_pos = np.zeros(3)
        cube_quat = np.array([1.0, 0, 0, 0])

        def render_views(self):
            return {}

    class Recorder:
        def __init__(self):
            self.seen = []

        def reset(self):
            pass

        def act(self, obs):
            self.seen.append(obs["policy"].copy())
            return np.zeros(20)

    good = (np.array([0.01, 0.0, 0.03]), np.array([1.0, 0, 0, 0]), 0.8)
    bad = (np.array([0.5, 0.5, 0.5]), np.array([0.0, 1, 0, 0]), 0.1)
    rec = Recorder()
    loop = VisionPosePolicy(rec, Env(), StubEstimator([good, bad, good]), min_confidence=0.3)
    obs = {"policy": np.zeros(15)}
    obs["policy"][11] = 1.0
    for _ in range(3):
        loop.act(obs)
    for seen in rec.seen:  # the bad estimate never reached the policy: the last good pose was held
        np.testing.assert_allclose(seen[0:3], good[0])
    # the ROS path: the node's confidence travels in the covariance and comes back for the threshold
    for c in (0.05, 0.3, 0.8, 1.0):
        assert confidence_from_covariance(covariance_from_confidence(c)) == pytest.approx(c)
    assert confidence_from_covariance(covariance_from_confidence(0.0)) == 0.0
