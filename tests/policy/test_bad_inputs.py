"""Bad inputs to ``dexhand eval`` / ``demo`` are one clear line naming the file, never a traceback."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from argparse import Namespace

import pytest

from dexhand.cli import _policy_env_overrides, main
from dexhand.deploy import OnnxPolicy
from dexhand.evaluate import CheckpointPolicy, OnnxObservationPolicy, evaluate
from dexhand.export import export
from dexhand.policies import HoldPolicy
from dexhand.train.trainer import Trainer

from .conftest import tiny_config


@pytest.fixture(scope="module")
def lstm_onnx(lstm_run, tmp_path_factory):
    return export(lstm_run, tmp_path_factory.mktemp("lstm_onnx") / "policy.onnx")


@pytest.fixture(scope="module")
def ff_onnx(tmp_path_factory):
    run = tmp_path_factory.mktemp("ff_run")
    trainer = Trainer(tiny_config("net.recurrent=false", "total_timesteps=128"), run, progress=False)
    trainer.train()
    trainer.close()
    return export(run, tmp_path_factory.mktemp("ff_onnx") / "policy.onnx")


def copy_pair(onnx, tmp_path, name="model"):
    out = tmp_path / f"{name}.onnx"
    shutil.copy(onnx, out)
    shutil.copy(onnx.with_suffix(".json"), out.with_suffix(".json"))
    return out


def cli_error(capsys, *argv) -> str:
    rc = main(list(argv))
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


def test_zero_episodes_is_a_clear_error(capsys, tmp_path):
    with pytest.raises(ValueError, match="at least 1 episode"):
        evaluate(HoldPolicy(), episodes=0, seed=0, overrides=[], progress=False)
    with pytest.raises(ValueError, match="control step"):
        evaluate(HoldPolicy(), episodes=1, seed=0, overrides=[], max_steps=0, progress=False)
    assert "episodes" in cli_error(capsys, "eval", "hold", "--episodes", "0", "--plot", str(tmp_path / "h.png"))


def test_corrupt_onnx_names_the_file(capsys, lstm_onnx, tmp_path):
    bad = copy_pair(lstm_onnx, tmp_path)
    bad.write_bytes(b"not a protobuf" * 10)
    with pytest.raises(ValueError, match="cannot load the ONNX policy"):
        OnnxPolicy.load(bad)
    assert str(bad) in cli_error(capsys, "eval", str(bad), "--episodes", "1", "--plot", str(tmp_path / "h.png"))


def test_malformed_sidecar_names_the_file(capsys, lstm_onnx, tmp_path):
    bad = copy_pair(lstm_onnx, tmp_path)
    bad.with_suffix(".json").write_text('{"recurrent": true, ')  # cut short
    assert str(bad.with_suffix(".json")) in cli_error(capsys, "eval", str(bad), "--episodes", "1")
    bad.with_suffix(".json").write_text(json.dumps({"recurrent": True}))  # valid JSON, fields missing
    with pytest.raises(ValueError, match=f"{bad.with_suffix('.json')} is malformed"):
        OnnxPolicy.load(bad)


def test_a_sidecar_from_another_model_is_refused(capsys, lstm_onnx, ff_onnx, tmp_path):
    mixed = copy_pair(ff_onnx, tmp_path)
    shutil.copy(lstm_onnx.with_suffix(".json"), mixed.with_suffix(".json"))  # the LSTM's sidecar next to the FF graph
    err = cli_error(capsys, "eval", str(mixed), "--episodes", "1")
    assert "belongs to another model" in err and str(mixed.with_suffix(".json")) in err
    # A sidecar without a hash (older exports) is still checked against the graph's shapes.
    meta = json.loads(mixed.with_suffix(".json").read_text())
    del meta["onnx_sha256"]
    mixed.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="does not belong to .*recurrent=True"):
        OnnxPolicy.load(mixed)
    OnnxPolicy.load(copy_pair(ff_onnx, tmp_path, "intact"))  # the matching pair loads


def test_a_checkpoint_defaults_to_the_goals_it_was_trained_for_as_its_export_does(lstm_run, lstm_onnx, tmp_path):
    args = Namespace(overrides=[], no_randomization=False, goals=None)
    from_ckpt = _policy_env_overrides(CheckpointPolicy(lstm_run), args)
    from_onnx = _policy_env_overrides(OnnxObservationPolicy(lstm_onnx), args)
    assert from_ckpt == from_onnx == ["task.goal_mode=z"]  # the tiny run trains on z goals; the env default is full
    assert _policy_env_overrides(CheckpointPolicy(lstm_run), Namespace(overrides=[], no_randomization=False,
                                                                         goals="faces")) == ["task.goal_mode=faces"]
    out = tmp_path / "eval.json"
    assert main(["eval", str(lstm_run), "--episodes", "1", "--max-steps", "2", "--no-progress", "--json", str(out),
                 "--plot", str(tmp_path / "h.png")]) == 0
    assert json.loads(out.read_text())["goal_mode"] == "z"


def test_demo_renders_a_checkpoint_in_a_fresh_process(lstm_run, tmp_path):
    """Loading a checkpoint must not import MuJoCo before ``sim`` picks the GL backend (an EGL error)."""
    env = {k: v for k, v in os.environ.items() if k not in ("MUJOCO_GL", "PYOPENGL_PLATFORM")}
    video = tmp_path / "demo.gif"
    proc = subprocess.run([sys.executable, "-m", "dexhand.cli", "demo", "--policy", str(lstm_run), "--episodes", "1",
                           "--max-steps", "3", "--video", str(video)], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert video.stat().st_size > 0
