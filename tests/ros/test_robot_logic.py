"""The robot-side logic the nodes wrap: safety filter, driver state machine, names, goals, stand-ins."""

from __future__ import annotations

import numpy as np
import pytest

from dexhand.robot import joint_map, rotations
from dexhand.robot.driver import (
    ESTOP,
    HOLDING,
    RUNNING,
    WAITING,
    ControllerMismatch,
    DriverCore,
    check_controllers,
)
from dexhand.robot.goals import GoalConfig, GoalManagerCore
from dexhand.robot.hand_names import ACTUATORS, CONTROLLERS, JOINTS
from dexhand.robot.safety import CommandFilter, SafetyConfig
from dexhand.robot.stand_ins import HoldPolicy, RandomPolicy, load_policy

REAL = joint_map.REAL_JOINT_NAMES
COUPLED = next(i for i, a in enumerate(ACTUATORS) if len(a.real_joints) == 2)


def home_positions() -> np.ndarray:
    """Mid-range angles for the 24 joints (model order)."""
    return 0.5 * (np.array([j.lower for j in JOINTS]) + np.array([j.upper for j in JOINTS]))


def test_filter_rejects_nonfinite_clamps_and_limits_steps():
    f = CommandFilter(np.array([0.0, -1.0]), np.array([1.0, 1.0]), max_step=0.1)
    last = np.array([0.5, 0.0])
    assert f.apply(np.array([np.nan, 0.0]), last).values is None
    assert "indices [1]" in f.apply(np.array([0.5, np.inf]), last).rejected
    out = f.apply(np.array([5.0, -0.02]), last)
    assert out.values.tolist() == pytest.approx([0.6, -0.02]) and out.clamped == 1
    near_limit = f.apply(np.array([2.0, 0.0]), np.array([0.95, 0.0]))
    assert near_limit.values[0] == pytest.approx(1.0)


def test_safety_config_names_bad_values():
    with pytest.raises(ValueError, match="max_step"):
        SafetyConfig(max_step=float("nan"))


def test_driver_states_and_conversions():
    cfg = SafetyConfig(max_step=10.0)
    core = DriverCore(cfg)
    names, targets = joint_map.ACTUATOR_MODEL_NAMES, np.full(20, 0.1)
    assert core.on_action(names, targets, 0.0) is None and core.state == WAITING
    q = home_positions()
    core.on_joint_state(REAL, q, 0.0)
    core.on_cube_pose(0.0)
    # The first hold targets are the measured pose; a coupled command is J1 + J2.
    coupled = ACTUATORS[COUPLED].real_joints
    expected = q[joint_map.JOINT_INDEX[coupled[0]]] + q[joint_map.JOINT_INDEX[coupled[1]]]
    assert core.hold_commands()[COUPLED] == pytest.approx(expected)
    out = core.on_action(names, targets, 0.01)
    assert core.state == RUNNING
    assert out[COUPLED] == pytest.approx(0.1 * ACTUATORS[COUPLED].scale)
    assert core.on_action(list(reversed(names)), targets, 0.02) is None  # names out of order
    # Joint states stop: hold, refuse actions, keep the last safe targets.
    assert core.on_action(names, np.full(20, 0.2), 0.02 + cfg.joint_state_timeout + 0.01) is None
    assert core.state == HOLDING and "joint_states stale" in core.reason
    assert core.hold_commands() == pytest.approx(out)
    core.estop(True)
    core.on_joint_state(REAL, q, 1.0)
    core.on_cube_pose(1.0)
    assert core.on_action(names, targets, 1.0) is None and core.state == ESTOP
    core.estop(False)
    assert core.on_action(names, targets, 1.01) is not None and core.state == RUNNING


def test_controller_check_names_the_mismatch():
    check_controllers(CONTROLLERS)
    with pytest.raises(ControllerMismatch, match="sh_rh_xxj9_position_controller"):
        check_controllers([*CONTROLLERS, "sh_rh_xxj9_position_controller"])
    with pytest.raises(ControllerMismatch, match="not found on the robot: sh_rh_ffj0"):
        check_controllers(CONTROLLERS[:4] + CONTROLLERS[5:])


def test_joint_state_missing_joint_is_named():
    with pytest.raises(KeyError, match="rh_WRJ2"):
        joint_map.model_joint_positions(REAL[1:], np.zeros(23))



def about_z(angle: float) -> np.ndarray:
    return rotations.from_axis_angle(np.array([0.0, 0.0, 1.0]), angle)


def test_goal_manager_counts_successes_and_resets_on_drop():
    core = GoalManagerCore(GoalConfig(mode="z", seed=1))
    cube = about_z(0.0)
    assert core.update(np.zeros(3), cube, 0.0) == "goal_set"
    assert core.update(np.zeros(3), core.goal, 0.1) == "success"
    assert core.update(np.zeros(3), core.goal, 0.2) == "success"
    assert core.consecutive_successes == 2
    assert core.update(np.array([0.0, 0.0, -0.2]), cube, 0.3) == "drop"
    assert core.consecutive_successes == 0 and core.episode == 1
    core.set_goal(about_z(2.5), 0.4)
    assert core.update(np.zeros(3), cube, 0.4 + 33.0) == "timeout"


def test_stand_in_policies_stay_in_range():
    q = home_positions()
    hold = HoldPolicy()
    first = hold.act(q, np.zeros(3), about_z(0), about_z(1))
    assert hold.act(q + 0.1, np.zeros(3), about_z(0), about_z(1)) == pytest.approx(first)
    rand = RandomPolicy(seed=0)
    outs = np.array([rand.act(q, np.zeros(3), about_z(0), about_z(1)) for _ in range(50)])
    assert np.all(outs >= joint_map.MODEL_TARGET_LOWER - 1e-12) and np.all(outs <= joint_map.MODEL_TARGET_UPPER + 1e-12)
    assert np.ptp(outs, axis=0).max() > 0.01
    with pytest.raises(ValueError, match="shape"):
        hold.reset() or hold.act(q[:20], np.zeros(3), about_z(0), about_z(1))
    with pytest.raises(ValueError, match="'hold', 'random'"):
        load_policy("bogus")


def test_image_conversion_round_trip():
    pytest.importorskip("sensor_msgs")
    from dexhand.ros.convert import image_to_msg, msg_to_image

    image = np.random.default_rng(0).integers(0, 255, (4, 5, 3), dtype=np.uint8)
    msg = image_to_msg(image, stamp=None)
    assert np.array_equal(msg_to_image(msg), image)
    msg.encoding, msg.data = "bgr8", image[:, :, ::-1].tobytes()
    assert np.array_equal(msg_to_image(msg), image)
    msg.encoding = "mono8"
    with pytest.raises(ValueError, match="mono8"):
        msg_to_image(msg)
