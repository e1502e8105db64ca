"""Data generation: deterministic per seed, labels in the hand frame, sharded and resumable."""

from __future__ import annotations

import numpy as np
import pytest

from vision.config import GenConfig

SMALL = GenConfig(image_size=64, shard_size=2, episode_steps=6)


def test_generation_is_deterministic_per_seed():
    from vision.data import generate_samples

    a = generate_samples(SMALL, seed=7, n=3)
    b = generate_samples(SMALL, seed=7, n=3)
    c = generate_samples(SMALL, seed=8, n=3)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert not np.array_equal(a["images"], c["images"])
    assert a["images"].shape == (3, 3, 64, 64, 3) and a["images"].dtype == np.uint8
    # hand-frame labels: near the hand origin, unit quaternions with w >= 0
    assert np.all(np.abs(a["pos"]) < 0.1)
    np.testing.assert_allclose(np.linalg.norm(a["quat"], axis=1), 1.0, atol=1e-5)
    assert np.all(a["quat"][:, 0] >= 0)


def test_dataset_shards_resume_and_metadata(tmp_path):
    import json

    from vision.data import generate_dataset, load_dataset

    meta = generate_dataset(SMALL, tmp_path, n=3, seed=3, workers=1)
    assert meta["shards"] == ["shard_00000.npz", "shard_00001.npz"]
    first = load_dataset(tmp_path)
    assert len(first["pos"]) == 3
    kept = tmp_path / "shard_00000.npz"
    stamp = kept.stat().st_mtime_ns
    (tmp_path / "shard_00001.npz").unlink()
    generate_dataset(SMALL, tmp_path, n=3, seed=3, workers=1)
    assert kept.stat().st_mtime_ns == stamp  # finished shard skipped
    again = load_dataset(tmp_path)
    np.testing.assert_array_equal(first["images"], again["images"])
    # a prefix: only the shards it needs, cut inside the last; more than the folder holds is an error
    head = load_dataset(tmp_path, max_samples=1)
    for k, v in first.items():
        np.testing.assert_array_equal(head[k], v[:1])
    with pytest.raises(ValueError, match="max_samples=4 but the folder holds only 3"):
        load_dataset(tmp_path, max_samples=4)
    saved = json.loads((tmp_path / "metadata.json").read_text())
    cam = saved["camera_nominal"]["cam_top"]
    assert saved["seed"] == 3 and cam["image_size"] == 64 and len(cam["camera_matrix"]) == 3
