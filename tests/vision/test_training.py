"""A tiny real training run lowers the error on a fixed set; ONNX export matches torch; the runtime
rejects bad input with errors that name the problem."""

from __future__ import annotations

import numpy as np
import pytest

from vision.config import GenConfig, TrainConfig

CAMS = ("cam_left", "cam_right", "cam_top")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from sim.configio import apply_overrides
    from vision.data import generate_dataset
    from vision.export import export_onnx
    from vision.train import train

    root = tmp_path_factory.mktemp("vision")
    generate_dataset(GenConfig(shard_size=8, episode_steps=10, randomize=False), root / "data", n=16, seed=11,
                     workers=1)
    cfg = apply_overrides(TrainConfig(), ["epochs=40", "batch_size=8", "lr=0.005", "val_fraction=0.25",
                                          "channels=[8,16,16,32,32]", "feature_dim=32", "hidden=64",
                                          "augment.camera_dropout=0", "augment.shift_px=0"])
    result = train(cfg, root / "data", root / "run", command="test", progress=False)
    onnx_path = export_onnx(root / "run" / "best.pt", root / "model.onnx")
    return cfg, root, result, onnx_path


def test_tiny_training_lowers_error_on_fixed_set(trained):
    import torch

    from vision.runtime.pipeline import ImagePipeline, PipelineConfig
    from vision.train import build_model, evaluate_torch, load_prepared

    cfg, root, _, _ = trained
    ds = load_prepared(root / "data", ImagePipeline(PipelineConfig(net_size=cfg.net_size, crop=cfg.crop)))
    torch.manual_seed(cfg.seed)
    before = evaluate_torch(build_model(cfg), ds["images"], ds["pos"], ds["quat"])
    model = build_model(cfg)
    model.load_state_dict(torch.load(root / "run" / "last.pt", weights_only=False)["model"])
    after = evaluate_torch(model, ds["images"], ds["pos"], ds["quat"])
    assert after["pos_mm_median"] < 0.7 * before["pos_mm_median"], (before, after)
    assert after["rot_deg_median"] < 0.7 * before["rot_deg_median"], (before, after)


def test_onnx_matches_torch_and_runtime(trained):
    from vision.data import load_dataset
    from vision.export import load_checkpoint, torch_outputs
    from vision.runtime import PoseEstimator
    from vision.runtime.rotations import matrix_to_quat, sixd_to_matrix

    _, root, result, onnx_path = trained
    model, _ = load_checkpoint(root / "run" / "best.pt")
    est = PoseEstimator.load(onnx_path)
    raw = load_dataset(root / "data")
    images = {c: raw["images"][0, j] for j, c in enumerate(CAMS)}
    x, present = est.pipeline.batch(images, est.cameras)
    assert present.all()
    for ours, theirs in zip(est.run_network(x).values(), torch_outputs(model, x)):
        np.testing.assert_allclose(ours, theirs, atol=1e-4, rtol=1e-4)
    pos, quat, conf = est.estimate(images)
    t_pos, t_rot, _ = torch_outputs(model, x)
    np.testing.assert_allclose(pos, t_pos[0], atol=1e-5)
    np.testing.assert_allclose(quat, matrix_to_quat(sixd_to_matrix(t_rot[0])), atol=1e-4)
    assert pos.shape == (3,) and quat.shape == (4,) and 0.0 <= conf <= 1.0


def test_runtime_rejects_bad_input(trained):
    from vision.runtime import PoseEstimator

    est = PoseEstimator.load(trained[3])
    good = {c: np.zeros((200, 200, 3), np.uint8) for c in CAMS}
    with pytest.raises(ValueError, match=r"cam_top.*200x200 pixels, got 100x100"):
        est.estimate({**good, "cam_top": np.zeros((100, 100, 3), np.uint8)})
    with pytest.raises(ValueError, match=r"cam_left.*dtype uint8, got float32"):
        est.estimate({**good, "cam_left": np.zeros((200, 200, 3), np.float32)})
    with pytest.raises(ValueError, match=r"cam_right.*HxWx3.*\(200, 200, 4\)"):
        est.estimate({**good, "cam_right": np.zeros((200, 200, 4), np.uint8)})
    with pytest.raises(ValueError, match=r"missing camera image\(s\) \['cam_top'\]"):
        est.estimate({c: good[c] for c in CAMS[:2]})
    with pytest.raises(ValueError, match="unknown camera"):
        est.estimate({**good, "cam_video": good["cam_top"]})
    with pytest.raises(FileNotFoundError, match="pose model not found"):
        PoseEstimator.load(trained[1] / "missing.onnx")
    degraded = est.estimate_full({c: good[c] for c in CAMS[:2]}, allow_missing=True)
    assert degraded.cameras_used == CAMS[:2] and np.all(np.isfinite(degraded.pos))


def test_shipped_model_loads_within_size_budget():
    from vision.runtime import DEFAULT_MODEL, PoseEstimator

    assert DEFAULT_MODEL.is_file() and DEFAULT_MODEL.stat().st_size <= 50 * 2**20
    est = PoseEstimator.load()
    assert est.metadata["command"].startswith(("dexhand vision train", "dexhand vision recipe"))
    pos, quat, conf = est.estimate({c: np.full((200, 200, 3), 90, np.uint8) for c in CAMS})
    assert pos.shape == (3,) and abs(np.linalg.norm(quat) - 1) < 1e-6 and 0 <= conf <= 1


def test_recipe_finetune_stage_adds_the_centre_head(tmp_path):
    """gen -> train -> finetune (centre head, from the train stage's best weights) -> export: the exported
    model has the uv output and its weights file, and the finetune stage resumes rather than restarts.
    The train stage keeps to the first samples (``max_samples``) while the fine-tune reads the whole set."""
    import torch

    from sim.configio import ConfigError, apply_overrides
    from vision.config import RecipeConfig
    from vision.recipe import run_recipe
    from vision.runtime import PoseEstimator

    kp = ["arch=keypoints", "net_size=32", "channels=[8,8,16]", "strides=[2,1,2]", "keypoints=4", "feature_dim=16",
          "hidden=16", "epochs=2", "batch_size=4", "val_fraction=0.25", "time_limit_s=0", "threads=1", "schedule=cosine"]
    cfg = apply_overrides(RecipeConfig(), [
        f"data_dir={tmp_path / 'data'}", f"run_dir={tmp_path / 'run'}", f"finetune_dir={tmp_path / 'ft'}",
        f"export={tmp_path / 'm.onnx'}", "n=12", "gen.shard_size=4", "gen.episode_steps=6", "gen.image_size=64",
        "gen.net_size=32", "gen.crop=0.8", "workers=1", *(f"train.{o}" for o in kp),
        "train.max_samples=8", "finetune=[centre_head=true, epochs=3, max_samples=0]"])
    result = run_recipe(cfg, ["gen", "train", "finetune", "export"], command="test", progress=False)
    assert result["export"] == str(tmp_path / "m.onnx")
    ck = torch.load(tmp_path / "ft" / "last.pt", weights_only=False)
    assert ck["config"]["centre_head"] and ck["config"]["init_from"] == str(tmp_path / "run" / "best.pt")
    assert "tri_mm_median" in ck["val"] and ck["epoch"] == 2
    assert ck["n_train"] + ck["n_val"] == 12
    assert sum(torch.load(tmp_path / "run" / "best.pt", weights_only=False)[k] for k in ("n_train", "n_val")) == 8
    est = PoseEstimator.load(tmp_path / "m.onnx")
    assert est.has_centre_head and (tmp_path / "m.pt").is_file()
    # resumed, not restarted: with the epochs raised only the new epoch runs; other settings are refused
    run_recipe(apply_overrides(cfg, ["finetune=[centre_head=true, epochs=4, max_samples=0]"]), ["finetune"],
               progress=False)
    assert torch.load(tmp_path / "ft" / "last.pt", weights_only=False)["epoch"] == 3
    with pytest.raises(ConfigError, match="train.lr"):
        run_recipe(apply_overrides(cfg, ["finetune=[centre_head=true, epochs=4, lr=0.1, max_samples=0]"]),
                   ["finetune"], progress=False)
    # a stage that asks for more samples than the folder holds names the problem instead of training on fewer
    with pytest.raises(ValueError, match="max_samples=20 but the folder holds only 12"):
        run_recipe(apply_overrides(cfg, [f"run_dir={tmp_path / 'run2'}", "train.max_samples=20"]), ["train"],
                   progress=False)
