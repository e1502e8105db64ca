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


def test_filter_rejects_nonfinite_clamps_and_limits_speed():
    f = CommandFilter(np.array([0.0, -1.0]), np.array([1.0, 1.0]), max_speed=np.array([1.0, 2.0]), max_interval=0.12)
    last = np.array([0.5, 0.0])
    assert f.apply(np.array([np.nan, 0.0]), last, 0.08).values is None
    assert "indices [1]" in f.apply(np.array([0.5, np.inf]), last, 0.08).rejected
    out = f.apply(np.array([5.0, -0.02]), last, 0.1)  # 1 rad/s x 0.1 s = 0.1 rad
    assert out.values.tolist() == pytest.approx([0.6, -0.02]) and out.clamped == 1
    # Speed, not step: 100 actions 1 ms apart move a joint 0.1 rad, not 100 x the per-message step.
    moving = last.copy()
    for _ in range(100):
        moving = f.apply(np.array([1.0, -1.0]), moving, 0.001).values
    assert moving == pytest.approx([0.6, -0.2])
    # A long pause credits at most max_interval.
    assert f.apply(np.array([1.0, 0.0]), last, 10.0).values[0] == pytest.approx(0.62)
    near_limit = f.apply(np.array([2.0, 0.0]), np.array([0.95, 0.0]), 0.1)
    assert near_limit.values[0] == pytest.approx(1.0)


def test_safety_config_names_bad_values():
    with pytest.raises(ValueError, match="max_speed"):
        SafetyConfig(max_speed=float("nan"))
    with pytest.raises(ValueError, match="range_margin"):
        SafetyConfig(range_margin=-0.1)


def test_default_speed_limits_cover_the_policy_at_12_5_hz():
    cfg = SafetyConfig()
    speeds = cfg.speed_limits(joint_map.COMMAND_LOWER, joint_map.COMMAND_UPPER)
    policy_step = 0.25 * 0.5 * (joint_map.COMMAND_UPPER - joint_map.COMMAND_LOWER)  # per 0.08 s step
    assert np.all(speeds * 0.08 >= policy_step) and np.all(speeds * 0.08 <= 1.5 * policy_step)
    assert speeds.max() < 7.0  # a coupled J0 (0..180 deg) at most ~6.1 rad/s
    assert SafetyConfig(max_speed=2.0).speed_limits(joint_map.COMMAND_LOWER, joint_map.COMMAND_UPPER).tolist() == [2.0] * 20


def test_default_range_margin_keeps_every_joint_off_its_end_stops():
    """Actions at and beyond both limits of every joint end up range_margin (3 deg) inside them."""
    margin = SafetyConfig().range_margin
    assert margin == pytest.approx(np.radians(3.0), abs=1e-4)
    core = DriverCore(SafetyConfig(max_speed=1e3))
    names, t = joint_map.ACTUATOR_MODEL_NAMES, 0.0
    core.on_joint_state(REAL, home_positions(), t)
    for target in (joint_map.MODEL_TARGET_UPPER, joint_map.MODEL_TARGET_LOWER,
                   joint_map.MODEL_TARGET_UPPER + 0.5, joint_map.MODEL_TARGET_LOWER - 0.5):
        for _ in range(3):  # reach it at the speed limit
            t += 0.1
            core.on_joint_state(REAL, home_positions(), t)
            core.on_cube_pose(t)
            out = core.on_action(names, target, t, "/policy")
        assert out is not None
        assert np.all(out >= joint_map.COMMAND_LOWER + margin - 1e-9)
        assert np.all(out <= joint_map.COMMAND_UPPER - margin + 1e-9)
        # ...and exactly at the margin on the side pushed against (the scale of THJ0 is negative).
        pushed_up = (np.asarray(target) * joint_map.COMMAND_SCALE) > 0.5 * (joint_map.COMMAND_LOWER + joint_map.COMMAND_UPPER)
        bound = np.where(pushed_up, joint_map.COMMAND_UPPER - margin, joint_map.COMMAND_LOWER + margin)
        assert out == pytest.approx(bound, abs=1e-9)


def test_actions_from_one_source_and_faults_named():
    core = DriverCore(SafetyConfig(max_speed=1e3))
    names = joint_map.ACTUATOR_MODEL_NAMES
    core.on_joint_state(REAL, home_positions(), 0.0)
    core.on_cube_pose(0.0)
    assert core.on_action(names, np.full(20, 0.1), 0.01, "/policy") is not None
    assert core.action_source == "/policy"  # the first sender
    assert core.on_action(names, np.full(20, 0.2), 0.02, "/intruder") is None
    assert core.counters.foreign_actions == 1 and "/intruder" in core.counters.last_rejection
    assert core.counters.rejected_actions == 0
    huge = np.full(20, 0.1)
    huge[4] = -1e308
    assert core.on_action(names, huge, 0.03, "/policy") is None
    assert "implausible" in core.counters.last_rejection and "indices [4]" in core.counters.last_rejection
    fixed = DriverCore(SafetyConfig(), action_source="/lh/policy")
    assert fixed.accepts("/lh/policy") and not fixed.accepts("/policy")


def test_state_changes_are_reported_with_reasons():
    changes = []
    core = DriverCore(SafetyConfig(), on_change=lambda *c: changes.append(c))
    core.on_joint_state(REAL, home_positions(), 0.0)
    core.on_cube_pose(0.0)
    core.on_action(joint_map.ACTUATOR_MODEL_NAMES, np.full(20, 0.1), 0.0, "/policy")
    core.update(1.0)
    core.estop(True)
    core.update(1.0)
    assert [c[:2] for c in changes] == [("waiting", "running"), ("running", "holding"), ("holding", "estop")]
    assert "joint_states stale" in changes[1][2] and changes[2][2] == "e-stop engaged"
    core.set_fault("diagnostics", "rh_FFJ1: motor fault")
    core.estop(False)
    core.update(1.0)
    assert core.state == HOLDING and "motor fault" in core.reason


def test_driver_states_and_conversions():
    cfg = SafetyConfig(max_speed=1e3, range_margin=0.0)
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


def test_joint_state_nan_is_named_as_such():
    q = home_positions()
    q[3] = np.nan
    with pytest.raises(joint_map.NonFiniteJointState, match="non-finite angles: rh_FFJ3=nan"):
        joint_map.model_joint_positions(REAL, q)


def test_left_hand_names():
    from dexhand.robot.hand_names import controller_names, joint_names

    assert controller_names("lh")[0] == "sh_lh_wrj2_position_controller" and joint_names("lh")[0] == "lh_WRJ2"
    assert joint_map.model_joint_positions(joint_names("lh"), home_positions(), "lh") == pytest.approx(
        joint_map.model_joint_positions(REAL, home_positions()))
    with pytest.raises(ValueError, match="hand prefix"):
        controller_names("xh")



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


def test_a_source_sending_only_garbage_goes_stale_and_the_driver_holds():
    core = DriverCore(SafetyConfig())
    names = joint_map.ACTUATOR_MODEL_NAMES
    t = 0.0
    core.on_joint_state(REAL, home_positions(), t)
    core.on_cube_pose(t)
    core.on_action(names, np.full(20, 0.1), t, "/policy")
    core.update(t)
    assert core.state == "running"
    bad = np.full(20, np.nan)
    while t < 2.0:  # fresh sensors, but nothing usable from the policy
        t += 0.02
        core.on_joint_state(REAL, home_positions(), t)
        core.on_cube_pose(t)
        assert core.on_action(names, bad, t, "/policy") is None
    core.update(t)
    assert core.state == HOLDING and "policy actions" in core.reason
