"""Export: torch vs ONNX parity with the LSTM state carried, FK vs MuJoCo, runtime input checks."""

from __future__ import annotations

import json

import mujoco
import numpy as np
import pytest

from dexhand.deploy import OnnxPolicy, PolicyInputError
from dexhand.deploy.kinematics import FingertipKinematics
from dexhand.evaluate import CheckpointPolicy
from dexhand.export import export, kinematic_chain
from sim.env import HAND_ORIGIN, CubeReorientEnv

from .conftest import recorded_observations


@pytest.fixture(scope="module")
def exported(lstm_run, tmp_path_factory):
    return export(lstm_run, tmp_path_factory.mktemp("onnx") / "policy.onnx")


def test_onnx_matches_torch_over_a_sequence_with_lstm_state(lstm_run, exported):
    torch_policy = CheckpointPolicy(lstm_run)
    onnx_policy = OnnxPolicy.load(exported)
    assert onnx_policy.recurrent
    torch_policy.reset()
    onnx_policy.reset()
    diffs = []
    for obs in recorded_observations(30):
        a = torch_policy.act(obs)
        b = onnx_policy.act_observation(obs["policy"])
        diffs.append(np.abs(a - b).max())
    assert max(diffs) < 1e-4
    assert np.abs(onnx_policy.h).sum() > 0  # the state was carried, not reset each step


def test_metadata_sidecar(exported):
    meta = json.loads(exported.with_suffix(".json").read_text())
    assert meta["n_actions"] == 20 and len(meta["controllers"]) == 20 and len(meta["joint_names"]) == 24
    assert meta["control_period"] == pytest.approx(0.08)
    assert meta["observation_layout"]["fingertip_pos"] == [0, 15]


def test_runtime_builds_the_simulators_observation(exported):
    policy = OnnxPolicy.load(exported)
    env = CubeReorientEnv(overrides=["randomization.enabled=false"])
    obs, info = env.reset(seed=2)
    mujoco.mj_kinematics(env.model, env.data)  # fingertips at the current qpos
    obs = env._observation()
    built = policy.observation(env.data.qpos[env.ids.hand_qpos], env.cube_pos - HAND_ORIGIN, env.cube_quat,
                               info["goal_quat"])
    np.testing.assert_allclose(built, obs["policy"], atol=1e-6)
    targets = policy.act(env.data.qpos[env.ids.hand_qpos], env.cube_pos - HAND_ORIGIN, env.cube_quat,
                         info["goal_quat"])
    assert targets.shape == (20,) and np.all(targets >= policy.ctrl_low) and np.all(targets <= policy.ctrl_high)
    env.close()


def test_fingertip_kinematics_match_mujoco():
    env = CubeReorientEnv(overrides=["randomization.enabled=false"])
    fk = FingertipKinematics(json.loads(json.dumps(kinematic_chain(env.model))))
    rng = np.random.default_rng(0)
    joints = env.ids.hand_qpos
    for _ in range(10):
        q = rng.uniform(env.model.jnt_range[:24, 0], env.model.jnt_range[:24, 1])
        env.data.qpos[joints] = q
        mujoco.mj_kinematics(env.model, env.data)
        np.testing.assert_allclose(fk.positions(q), env.fingertip_positions(), atol=1e-9)
    env.close()


@pytest.mark.parametrize("field", ["joint_positions", "cube_pos", "cube_quat", "goal_quat"])
def test_nan_input_is_a_clear_error_never_a_nan_action(exported, field):
    policy = OnnxPolicy.load(exported)
    args = {"joint_positions": np.zeros(24), "cube_pos": np.zeros(3), "cube_quat": np.array([1.0, 0, 0, 0]),
            "goal_quat": np.array([1.0, 0, 0, 0])}
    args[field] = args[field].copy()
    args[field][0] = np.nan
    with pytest.raises(PolicyInputError, match=field):
        policy.act(**args)
    with pytest.raises(PolicyInputError, match="shape"):
        policy.act_observation(np.zeros(3))
    with pytest.raises(PolicyInputError, match="NaN"):
        policy.act_observation(np.full(policy.n_obs, np.nan))


def test_missing_model_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.onnx"):
        OnnxPolicy.load(tmp_path / "nope.onnx")
