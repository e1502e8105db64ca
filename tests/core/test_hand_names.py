"""The model <-> real Shadow Hand name table, checked against the compiled model and REFERENCE.md."""

import math

import pytest

from dexhand.robot import hand_names as hn

# REFERENCE.md section 3: the real hand's joints.
REAL_JOINTS = (
    [f"rh_{f}J{i}" for f in ("FF", "MF", "RF") for i in range(1, 5)]
    + [f"rh_LFJ{i}" for i in range(1, 6)]
    + [f"rh_THJ{i}" for i in range(1, 6)]
    + ["rh_WRJ1", "rh_WRJ2"]
)


@pytest.fixture(scope="module")
def model():
    from sim.config import SceneConfig
    from sim.scene import build_model

    return build_model(SceneConfig())


def test_all_24_model_joints_map_one_to_one_to_real_joints(model):
    model_joints = [model.joint(j).name for j in range(model.njnt) if model.joint(j).name.startswith("robot0:")]
    assert [j.model for j in hn.JOINTS] == model_joints  # same order as the model's qpos
    assert sorted(j.real for j in hn.JOINTS) == sorted(REAL_JOINTS)


@pytest.mark.parametrize(
    ("model_name", "real_name"),
    [("robot0:FFJ3", "rh_FFJ4"), ("robot0:FFJ0", "rh_FFJ1"), ("robot0:LFJ4", "rh_LFJ5"), ("robot0:THJ4", "rh_THJ5"),
     ("robot0:THJ0", "rh_THJ1"), ("robot0:WRJ1", "rh_WRJ2"), ("robot0:WRJ0", "rh_WRJ1"), ("MFJ2", "rh_MFJ3")],
)
def test_off_by_one_numbering(model_name, real_name):
    assert hn.real_joint_name(model_name) == real_name
    assert hn.model_joint_name(real_name) == (model_name if model_name.startswith("robot0:") else "robot0:" + model_name)


def test_unknown_names_are_named_in_the_error():
    with pytest.raises(KeyError, match="robot0:XXJ9"):
        hn.real_joint_name("robot0:XXJ9")
    with pytest.raises(KeyError, match="rh_FFJ9"):
        hn.model_joint_name("rh_FFJ9")


@pytest.mark.parametrize(
    ("real", "deg"),
    [("rh_FFJ1", (0, 90)), ("rh_FFJ2", (0, 90)), ("rh_FFJ3", (-15, 90)), ("rh_FFJ4", (-20, 20)), ("rh_LFJ5", (0, 45)),
     ("rh_THJ1", (-15, 90)), ("rh_THJ2", (-40, 40)), ("rh_THJ3", (-12, 12)), ("rh_THJ4", (0, 70)),
     ("rh_THJ5", (-60, 60)), ("rh_WRJ1", (-40, 28)), ("rh_WRJ2", (-28, 10))],
)
def test_real_ranges(real, deg):
    j = hn.JOINT_BY_REAL[real]
    assert (math.degrees(j.lower), math.degrees(j.upper)) == pytest.approx(deg)


def test_actuators_follow_model_order_and_cover_the_20_controllers(model):
    assert [a.model for a in hn.ACTUATORS] == [model.actuator(i).name for i in range(model.nu)]
    expected = sorted(
        [f"sh_rh_{f}j{i}_position_controller" for f in ("ff", "mf", "rf") for i in (0, 3, 4)]
        + [f"sh_rh_lfj{i}_position_controller" for i in (0, 3, 4, 5)]
        + [f"sh_rh_thj{i}_position_controller" for i in range(1, 6)]
        + ["sh_rh_wrj1_position_controller", "sh_rh_wrj2_position_controller"]
    )
    assert sorted(hn.CONTROLLERS) == expected
    assert hn.ACTUATOR_BY_MODEL["robot0:A_FFJ3"].command_topic == "/sh_rh_ffj4_position_controller/command"


def test_coupled_j0_controllers_drive_j1_plus_j2(model):
    import mujoco
    import numpy as np

    ff = hn.ACTUATOR_BY_MODEL["robot0:A_FFJ1"]
    assert ff.controller == "sh_rh_ffj0_position_controller"
    assert ff.real_joints == ("rh_FFJ1", "rh_FFJ2")
    assert (math.degrees(ff.lower), math.degrees(ff.upper)) == pytest.approx((0, 180))
    # In the model, FFJ0 follows FFJ1 through tendon T_FFJ1c, a band 0.00705*J0 - 0.00805*J1 in [-1, 1] mm;
    # the command scale is the band's centre, so J0 + J1 is within one band half-width of scale * J1.
    d = mujoco.MjData(model)
    a = model.actuator("robot0:A_FFJ1").id
    d.ctrl[a] = 0.6
    mujoco.mj_step(model, d, nstep=1500)
    j1 = d.qpos[model.joint("robot0:FFJ1").qposadr[0]]
    j0 = d.qpos[model.joint("robot0:FFJ0").qposadr[0]]
    assert j1 == pytest.approx(0.6, abs=0.05)
    assert abs((j0 + j1) - ff.scale * j1) <= 0.001 / 0.00705 + 1e-3
    assert np.isfinite(j0)


def test_thumb_distal_joint_is_sign_flipped_and_commands_round_trip():
    import numpy as np

    from dexhand.robot import joint_map

    th = hn.JOINT_BY_MODEL["robot0:THJ0"]
    assert th.sign == -1.0 and hn.ACTUATOR_BY_MODEL["robot0:A_THJ0"].scale == -1.0
    assert all(j.sign == 1.0 for j in hn.JOINTS if j is not th)
    # Model range [-90, 0] deg sits inside the sign-flipped real range [-90, 15] deg.
    i = [a.model for a in hn.ACTUATORS].index("robot0:A_THJ0")
    assert joint_map.MODEL_TARGET_LOWER[i] == pytest.approx(-math.radians(90))
    assert joint_map.MODEL_TARGET_UPPER[i] == pytest.approx(math.radians(15))
    model = np.linspace(-0.5, 0.5, 24)
    real = joint_map.real_joint_positions(model)
    back = joint_map.model_joint_positions(joint_map.REAL_JOINT_NAMES, real)
    np.testing.assert_allclose(back, model)
