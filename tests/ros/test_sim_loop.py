"""The closed loop on sim_hand via sim_demo.launch: nodes up, ~12.5 Hz actions, the hand moves; NaN
cube poses and joint states make the policy skip cycles but not die; killing the policy node makes
the driver hold within its watchdog timeout and the respawned policy brings it back to running; a
dead required node makes the launch exit non-zero."""

from __future__ import annotations

import subprocess
import threading
import time

import numpy as np
import pytest

pytestmark = [pytest.mark.ros, pytest.mark.slow]
NODES = ("/sim_hand", "/hand_driver", "/policy", "/goal_manager")
ACTION_TIMEOUT = 0.4  # config/driver.yaml safety.action_timeout


@pytest.fixture(scope="module")
def sim_loop(ros_master, test_node, tmp_path_factory):
    from dexhand.ros.launcher import roslaunch, stop_process, wait_for_nodes

    log = tmp_path_factory.mktemp("sim_demo") / "roslaunch.log"
    launch = roslaunch(ros_master.env, "sim_demo.launch", ["policy:=random"], log=log)
    try:
        wait_for_nodes(ros_master.uri, NODES, timeout=60, launch=launch)
    except RuntimeError as exc:
        stop_process(launch)
        raise AssertionError(f"{exc}; roslaunch exit {launch.returncode}; log:\n{log.read_text()[-3000:]}") from exc
    yield launch, log
    stop_process(launch)


def test_closed_loop_runs_at_control_rate_and_moves_the_hand(sim_loop, test_node):
    from dexhand_msgs.msg import DriverStatus, TaskStatus
    from sensor_msgs.msg import JointState

    rospy = test_node
    actions, joints, status, task = [], [], {}, {}
    lock = threading.Lock()

    def on_action(msg):
        with lock:
            actions.append(time.monotonic())

    subs = [rospy.Subscriber("/dexhand/policy/action", JointState, on_action, queue_size=20),
            rospy.Subscriber("/joint_states", JointState, lambda m: joints.append(np.array(m.position)), queue_size=1),
            rospy.Subscriber("/dexhand/driver/status", DriverStatus, lambda m: status.update(msg=m), queue_size=1),
            rospy.Subscriber("/dexhand/task_status", TaskStatus, lambda m: task.update(msg=m), queue_size=1)]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (status.get("msg") and status["msg"].state == "running"):
        time.sleep(0.1)
    assert status.get("msg") is not None and status["msg"].state == "running", f"driver status: {status.get('msg')}"
    with lock:
        actions.clear()
    first_joints = joints[-1].copy()
    window = 4.0
    time.sleep(window)
    with lock:
        stamps = list(actions)
    rate = (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 else 0.0
    assert rate >= 10.0, f"policy actions at {rate:.1f} Hz over {window} s (expected ~12.5)"
    assert status["msg"].commands_sent > 0 and status["msg"].state == "running"
    assert np.abs(joints[-1] - first_joints).max() > 0.005, "the simulated hand did not follow the commands"
    assert task.get("msg") is not None and np.isfinite(task["msg"].rotation_distance)
    for sub in subs:
        sub.unregister()


def wait_state(states, wanted: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if states and states[-1][1].state == wanted:
            return True
        time.sleep(0.02)
    return False


def test_nan_pose_and_joint_state_make_the_policy_skip_not_die(sim_loop, test_node):
    import rosnode
    from dexhand_msgs.msg import PolicyDiagnostics
    from geometry_msgs.msg import PoseWithCovarianceStamped
    from sensor_msgs.msg import JointState

    from dexhand.robot import joint_map

    rospy = test_node
    diag = {}
    actions = []
    subs = [rospy.Subscriber("/dexhand/policy/diagnostics", PolicyDiagnostics, lambda m: diag.update(msg=m), queue_size=5),
            rospy.Subscriber("/dexhand/policy/action", JointState, lambda m: actions.append(time.monotonic()),
                             queue_size=20)]
    pose_pub = rospy.Publisher("/dexhand/cube_pose_gt", PoseWithCovarianceStamped, queue_size=5)
    joint_pub = rospy.Publisher("/joint_states", JointState, queue_size=5)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (diag.get("msg") is None or pose_pub.get_num_connections() < 3):
        time.sleep(0.05)
    skipped = diag["msg"].skipped_cycles
    nan = float("nan")
    began = time.monotonic()
    while time.monotonic() - began < 1.5:
        pose = PoseWithCovarianceStamped()
        pose.header.stamp = rospy.Time.now()
        pose.pose.pose.position.x = nan
        pose.pose.pose.orientation.w = nan
        pose_pub.publish(pose)
        joint_pub.publish(JointState(name=joint_map.REAL_JOINT_NAMES, position=[nan] * 24))
        time.sleep(0.03)
    time.sleep(0.5)
    assert diag["msg"].skipped_cycles > skipped, "NaN inputs did not make the policy skip a cycle"
    assert rosnode.rosnode_ping("/policy", max_count=1), "the policy node died on NaN inputs"
    del actions[:]
    time.sleep(1.5)
    assert len(actions) >= 10, f"only {len(actions)} actions in 1.5 s after the NaN inputs stopped"
    for sub in subs:
        sub.unregister()


def test_killing_the_policy_makes_the_driver_hold(sim_loop, test_node):
    import rosnode
    from dexhand_msgs.msg import DriverStatus

    rospy = test_node
    states = []
    sub = rospy.Subscriber("/dexhand/driver/status", DriverStatus, lambda m: states.append((time.monotonic(), m)),
                           queue_size=50)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (states and states[-1][1].state == "running"):
        time.sleep(0.05)
    assert states and states[-1][1].state == "running"
    killed_at = time.monotonic()
    assert rosnode.kill_nodes(["/policy"])[0] == ["/policy"]
    while time.monotonic() < killed_at + 5 and states[-1][1].state != "holding":
        time.sleep(0.02)
    held_at, held = states[-1]
    assert held.state == "holding", f"driver state after killing the policy: {held.state}"
    assert "policy actions" in held.reason
    assert held_at - killed_at <= ACTION_TIMEOUT + 0.5
    sent = held.commands_sent
    time.sleep(0.5)
    assert states[-1][1].commands_sent == sent or states[-1][1].state == "running"  # nothing new reaches the hand
    # The launch respawns the policy (policy_respawn, 1 s): the loop runs again by itself.
    assert wait_state(states, "running", 30), f"driver after the policy's respawn: {states[-1][1]}"
    sub.unregister()


def test_a_dead_required_node_makes_the_launch_fail(sim_loop):
    """Last in this module: it ends the launch. checked_launch exits 1 where roslaunch exits 0."""
    import rosnode

    launch, log = sim_loop
    assert rosnode.kill_nodes(["/goal_manager"])[0] == ["/goal_manager"]
    assert launch.wait(timeout=60) == 1
    assert "required node died: goal_manager" in log.read_text()


def test_a_node_that_fails_at_start_is_reported(ros_master):
    """The pose estimator without a usable vision model exits 1 with a message that says why."""
    from dexhand.ros.launcher import node_command

    done = subprocess.run(node_command("pose_estimator", "__name:=estimator_check", "_model:=/nonexistent/model"),
                          env=ros_master.env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "pose_estimator:" in done.stderr and ("vision" in done.stderr or "/nonexistent/model" in done.stderr)


def test_stop_process_kills_descendants_in_sessions_of_their_own():
    # roslaunch puts each node in its own session; killing roslaunch's group alone left them running.
    import contextlib
    import os
    import signal
    import subprocess
    import sys
    import time

    from dexhand.ros.launcher import _stat, descendants, stop_process

    code = ("import os, signal, subprocess, sys, time\n"
            "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
            "subprocess.Popen([sys.executable, '-c', 'import signal, time; "
            "signal.signal(signal.SIGINT, signal.SIG_IGN); time.sleep(60)'], start_new_session=True)\n"
            "time.sleep(60)\n")
    parent = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    deadline = time.monotonic() + 10
    while not descendants(parent.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    (child, _), = descendants(parent.pid)
    stop_process(parent, timeout=0.5)
    time.sleep(0.2)
    assert parent.poll() is not None
    try:
        fields = _stat(child)  # None once reaped; "Z" while a zombie awaiting its reaper
        assert fields is None or fields[0] == "Z", f"child {child} still running (state {fields[0]})"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)
