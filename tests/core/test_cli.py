import subprocess
import sys

import numpy as np


def test_demo_writes_a_video_and_prints_metrics(tmp_path):
    video = tmp_path / "demo.mp4"
    out = subprocess.run(
        [sys.executable, "-m", "dexhand.cli", "demo", "--episodes", "1", "--max-steps", "8", "--video", str(video)],
        capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert "consecutive successes" in out.stdout
    import imageio.v2 as imageio

    frames = [frame for frame in imageio.get_reader(video)]  # len() of an ffmpeg reader is inf
    assert len(frames) == 8
    assert frames[0].shape == (360, 480, 3)
    assert np.abs(frames[0].astype(int) - frames[-1].astype(int)).mean() > 0.5  # the hand moved


def test_bad_override_is_one_clear_line(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "dexhand.cli", "demo", "task.goal_mod=z", "--video", str(tmp_path / "x.mp4")],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 2
    assert "task.goal_mod" in out.stderr and "Traceback" not in out.stderr


def test_bench_flags_for_one_benchmark_are_refused_elsewhere_and_checked():
    import pytest

    from dexhand.bench import ros
    from dexhand.cli import main

    with pytest.raises(SystemExit, match="--pose-source applies to 'dexhand bench ros' only"):
        main(["bench", "policy", "--pose-source", "estimator"])
    with pytest.raises(ValueError, match="pose_source"):
        ros.run(seconds=1, pose_source="lidar")
