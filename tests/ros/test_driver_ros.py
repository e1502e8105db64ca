"""hand_driver against a real master: this test plays the hand (controllers + sensors) and the policy."""

from __future__ import annotations

import math
import subprocess
import threading
import time

import numpy as np
import pytest

from dexhand.robot import joint_map
from dexhand.robot.hand_names import ACTUATORS, CONTROLLERS, JOINTS

pytestmark = pytest.mark.ros
SPEED = 1.0  # rad/s, the rig's speed limit
MAX_INTERVAL = 0.12  # SafetyConfig.max_interval: the most one action may be credited
JOINT_TIMEOUT = 0.3


class FakeHand:
    """Controllers that record commands, and /joint_states + cube pose published while ``feeding``."""

    def __init__(self, rospy) -> None:
        from dexhand_msgs.msg import DriverStatus
        from geometry_msgs.msg import PoseWithCovarianceStamped
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Bool, Float64

        from dexhand.ros.controller_manager_stand_in import ControllerManagerStandIn

        self.rospy, self.JointState, self.CubePose = rospy, JointState, PoseWithCovarianceStamped
        self.manager = ControllerManagerStandIn(rospy, "rh", "position", "/controller_manager")
        self.lock = threading.Lock()
        self.commands: list[list[float]] = [[] for _ in ACTUATORS]
        self.status = None
        self.subs = [rospy.Subscriber(a.command_topic, Float64, self._record(i), queue_size=50)
                     for i, a in enumerate(ACTUATORS)]
        rospy.Subscriber("/dexhand/driver/status", DriverStatus, self._status, queue_size=5)
        self.joint_pub = rospy.Publisher("/joint_states", JointState, queue_size=5)
        self.pose_pub = rospy.Publisher("/dexhand/cube_pose", PoseWithCovarianceStamped, queue_size=5)
        self.action_pub = rospy.Publisher("/dexhand/policy/action", JointState, queue_size=5)
        self.estop_pub = rospy.Publisher("/dexhand/estop", Bool, queue_size=5, latch=False)
        self.Bool = Bool
        self.positions = 0.5 * (np.array([j.lower for j in JOINTS]) + np.array([j.upper for j in JOINTS]))
        self.feeding = True
        self.stop = False
        self.thread = threading.Thread(target=self._feed, daemon=True)
        self.thread.start()

    def _record(self, index):
        def callback(msg):
            with self.lock:
                self.commands[index].append(msg.data)
        return callback

    def _status(self, msg):
        self.status = msg

    def _feed(self):
        while not self.stop:
            if self.feeding:
                js = self.JointState(name=joint_map.REAL_JOINT_NAMES, position=self.positions.tolist())
                js.header.stamp = self.rospy.Time.now()
                self.joint_pub.publish(js)
                pose = self.CubePose()
                pose.pose.pose.orientation.w = 1.0
                pose.pose.covariance[0] = 1e-4
                pose.header.stamp = js.header.stamp
                self.pose_pub.publish(pose)
            time.sleep(0.01)

    def act(self, targets) -> None:
        msg = self.JointState(name=joint_map.ACTUATOR_MODEL_NAMES, position=list(targets))
        msg.header.stamp = self.rospy.Time.now()
        self.action_pub.publish(msg)

    def count(self) -> int:
        with self.lock:
            return min(len(c) for c in self.commands)

    def last(self) -> np.ndarray:
        with self.lock:
            return np.array([c[-1] for c in self.commands])

    def lengths(self) -> list:
        with self.lock:
            return [len(c) for c in self.commands]

    def since(self, lengths) -> list:
        """Per controller, the commands received after ``lengths`` (from lengths())."""
        with self.lock:
            return [c[n:] for c, n in zip(self.commands, lengths)]

    def all_values(self) -> np.ndarray:
        with self.lock:
            return np.concatenate([np.asarray(c, dtype=float) for c in self.commands])


def wait_for(predicate, timeout: float, what: str) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.01)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture(scope="module")
def rig(ros_master, test_node, tmp_path_factory):
    from dexhand.ros.launcher import node_command, stop_process

    rospy = test_node
    hand = FakeHand(rospy)
    rospy.set_param("/hand_driver/safety", {"max_speed": SPEED, "joint_state_timeout": JOINT_TIMEOUT,
                                            "cube_pose_timeout": 0.5, "action_timeout": 5.0, "range_margin": 0.0})
    rospy.set_param("/hand_driver/action_source", rospy.get_name())
    log = open(tmp_path_factory.mktemp("driver") / "hand_driver.log", "wb")
    driver = subprocess.Popen(node_command("hand_driver", "__name:=hand_driver", "_controller_wait:=10"),
                              env=ros_master.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    # Up = registered, found the 20 controllers and connected: its status topic reaches us.
    wait_for(lambda: hand.status is not None or driver.poll() is not None, 30, "the driver's first status")
    assert driver.poll() is None, f"hand_driver exited with {driver.returncode}; see {log.name}"
    wait_for(lambda: all(s.get_num_connections() > 0 for s in hand.subs), 10, "driver -> controller connections")
    wait_for(lambda: hand.action_pub.get_num_connections() > 0, 10, "policy -> driver connection")
    # A publisher learns of a new subscriber a little after the subscriber does: repeat a hold action
    # until every controller has received a command, as a hand's bringup waits for its first command.
    hold = joint_map.model_targets_from_commands(joint_map.commands_from_joint_positions(hand.positions))

    def all_controllers_commanded() -> bool:
        hand.act(hold)
        time.sleep(0.1)
        return hand.count() > 0

    wait_for(all_controllers_commanded, 10, "a first command on every controller")
    wait_for(lambda: hand.status.state == "running", 5, "driver running")
    yield hand
    hand.stop = True
    stop_process(driver)
    log.close()


def test_forwards_actions_clamped_and_speed_limited(rig):
    start = rig.last() if rig.count() else joint_map.commands_from_joint_positions(rig.positions)
    time.sleep(0.2)  # a full max_interval of credit
    n = rig.count()
    near = joint_map.model_targets_from_commands(start) + 0.02  # <= SPEED x MAX_INTERVAL for every joint
    rig.act(near)
    wait_for(lambda: rig.count() > n, 2, "commands for an in-range action")
    expected = np.clip(joint_map.commands_from_model_targets(near), joint_map.COMMAND_LOWER, joint_map.COMMAND_UPPER)
    assert rig.last() == pytest.approx(expected, abs=1e-9)  # coupled J0: scale x model target
    time.sleep(0.2)
    n = rig.count()
    rig.act(np.full(20, 3.0))  # out of range but plausible: clamped, at the speed limit
    wait_for(lambda: rig.count() > n, 2, "commands for an out-of-range action")
    out = rig.last()
    assert np.all(out <= joint_map.COMMAND_UPPER + 1e-9)
    assert np.max(np.abs(out - expected)) == pytest.approx(SPEED * MAX_INTERVAL, abs=1e-9)


def test_speed_limit_holds_under_a_flood_of_actions(rig):
    """200 actions/s pushing every joint to its far limit move it at SPEED rad/s, not per message."""
    start = rig.last()
    lower, upper = joint_map.MODEL_TARGET_LOWER, joint_map.MODEL_TARGET_UPPER
    began = time.monotonic()
    n = rig.count()
    while time.monotonic() - began < 0.5:
        rig.act(np.where(start > 0.5 * (joint_map.COMMAND_LOWER + joint_map.COMMAND_UPPER), lower, upper))
        time.sleep(0.005)
    elapsed = time.monotonic() - began
    wait_for(lambda: rig.count() > n + 20, 3, "commands during the flood")
    time.sleep(0.2)
    moved = np.abs(rig.last() - start).max()
    assert moved <= SPEED * (elapsed + 0.2 + MAX_INTERVAL) + 1e-6, f"moved {moved:.3f} rad in {elapsed:.2f} s"
    assert moved >= SPEED * 0.2  # it did move, at about the speed limit


def test_actions_from_a_second_node_are_refused_and_counted(rig, ros_master):
    """Another node floods the action topic with +-1e9 at 100 Hz: nothing of it reaches a controller."""
    import sys

    code = (
        "import rospy, time\n"
        "from sensor_msgs.msg import JointState\n"
        "from dexhand.robot import joint_map\n"
        "rospy.init_node('intruder')\n"
        "pub = rospy.Publisher('/dexhand/policy/action', JointState, queue_size=10)\n"
        "time.sleep(1.0)\n"
        "for i in range(150):\n"
        "    pub.publish(JointState(name=joint_map.ACTUATOR_MODEL_NAMES, position=[(-1) ** i * 1e9] * 20))\n"
        "    time.sleep(0.01)\n"
    )
    before, n, held = rig.status.foreign_actions, rig.count(), rig.last()
    subprocess.run([sys.executable, "-c", code], env=ros_master.env, check=True, timeout=60)
    wait_for(lambda: rig.status.foreign_actions >= before + 100, 3, "the driver to count the foreign actions")
    assert rig.count() == n and np.allclose(rig.last(), held)
    assert rig.status.action_source == rospy_name()
    assert np.all(np.isfinite(rig.all_values()))


def rospy_name() -> str:
    import rospy

    return rospy.get_name()


def test_nan_and_inf_never_reach_a_controller(rig):
    before = rig.status.rejected_actions
    n = rig.count()
    bad = np.zeros(20)
    bad[3], bad[7] = math.nan, math.inf
    rig.act(bad)
    wait_for(lambda: rig.status.rejected_actions > before, 2, "the driver to report the rejected action")
    assert rig.count() == n
    assert np.all(np.isfinite(rig.all_values()))


def test_stale_joint_states_make_the_driver_hold(rig):
    rig.feeding = False
    try:
        took = wait_for(lambda: rig.status.state == "holding", 3, "holding after joint_states stop")
        assert took < JOINT_TIMEOUT + 0.5
        assert "joint_states" in rig.status.reason
        n, held = rig.count(), rig.last()
        rig.act(np.zeros(20))
        time.sleep(0.3)
        assert rig.count() == n or np.allclose(rig.last(), held)  # nothing new, or the hold targets again
    finally:
        rig.feeding = True
    wait_for(lambda: rig.status.state == "running", 3, "running again once joint_states return")


def test_estop_topic_and_service(rig):
    pytest.importorskip("std_srvs", reason="the e-stop service needs Debian's python3-std-srvs")
    import rospy
    from std_srvs.srv import Trigger

    held = rig.last()  # the driver's last commands: what it holds (and re-sends) on entering e-stop
    rig.estop_pub.publish(rig.Bool(True))
    wait_for(lambda: rig.status.state == "estop", 2, "e-stop from the topic")
    # The re-sent hold travels on 20 other connections than the status and may land after it: every
    # command from here on must be the hold, none the action's.
    lengths = rig.lengths()
    rig.act(np.zeros(20))
    time.sleep(0.3)
    for index, values in enumerate(rig.since(lengths)):
        assert values == pytest.approx([held[index]] * len(values), abs=1e-9), \
            f"an action reached {ACTUATORS[index].controller} during e-stop"
    rospy.wait_for_service("/hand_driver/release", timeout=5)
    assert rospy.ServiceProxy("/hand_driver/release", Trigger)().success
    wait_for(lambda: rig.status.state == "running", 2, "running after release")
    assert "engaged" in rospy.ServiceProxy("/hand_driver/estop", Trigger)().message
    wait_for(lambda: rig.status.state == "estop", 2, "e-stop from the service")
    rig.estop_pub.publish(rig.Bool(False))
    wait_for(lambda: rig.status.state == "running", 2, "running after topic release")


def test_refuses_loaded_but_stopped_position_controllers(rig, ros_master, test_node):
    """controller_manager lists the 20 position controllers, stopped, and a trajectory controller running."""
    from dexhand.ros.controller_manager_stand_in import ControllerManagerStandIn
    from dexhand.ros.launcher import node_command

    ControllerManagerStandIn(test_node, "rh", "trajectory", "/cm_stopped")
    done = subprocess.run(node_command("hand_driver", "__name:=driver_stopped", "_controller_manager_ns:=/cm_stopped",
                                       "joint_states:=/stopped/joint_states"),
                          env=ros_master.env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "loaded but not running" in done.stderr and "sh_rh_ffj0_position_controller (stopped)" in done.stderr


def stop_switching_rig(driver, log, cm) -> None:
    """Stop the driver (it restores the controllers on the way out), close its log, drop the stand-in."""
    from dexhand.ros.launcher import stop_process

    stop_process(driver)
    log.close()
    for service in cm.services:
        service.shutdown("test done")


def start_switching_driver(ros_master, name: str, namespace: str, log_path):
    from dexhand.ros.launcher import node_command

    log = open(log_path, "wb")
    driver = subprocess.Popen(node_command("hand_driver", f"__name:={name}", f"_controller_manager_ns:={namespace}",
                                           "_switch_controllers:=true", f"joint_states:=/{name}/joint_states",
                                           f"dexhand/driver/status:=/{name}/status"),
                              env=ros_master.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return driver, log


def test_switches_controllers_and_restores_them(rig, ros_master, test_node, tmp_path):
    """switch_controllers: stop the trajectory controllers, start the position ones; undo it on exit."""
    from dexhand_msgs.msg import DriverStatus

    from dexhand.ros.controller_manager_stand_in import ControllerManagerStandIn

    cm = ControllerManagerStandIn(test_node, "rh", "trajectory", "/cm_switch")
    statuses = []
    sub = test_node.Subscriber("/driver_switch/status", DriverStatus, statuses.append, queue_size=5)
    driver, log = start_switching_driver(ros_master, "driver_switch", "/cm_switch", tmp_path / "driver_switch.log")
    try:
        # Up (switched, checked, connected to the rig's controllers): its status reaches us. Stopping it
        # any earlier is the next test.
        wait_for(lambda: statuses or driver.poll() is not None, 30, "the switching driver's first status")
        assert driver.poll() is None, (tmp_path / "driver_switch.log").read_text()[-2000:]
        assert cm.switches == 1
        assert cm.states["sh_rh_ffj0_position_controller"] == "running"
        assert cm.states["rh_trajectory_controller"] == "stopped" and cm.states["rh_wr_trajectory_controller"] == "stopped"
        assert sorted(cm.calls[0][1]) == ["rh_trajectory_controller", "rh_wr_trajectory_controller"]
        assert len(cm.calls[0][0]) == 20
    finally:
        sub.unregister()
        stop_switching_rig(driver, log, cm)
    text = (tmp_path / "driver_switch.log").read_text()
    assert cm.switches == 2, text[-2000:]
    assert cm.states["rh_trajectory_controller"] == "running"
    assert cm.states["sh_rh_ffj0_position_controller"] == "stopped"
    assert "controllers restored" in text


def test_a_stop_while_switching_still_restores_the_controllers(rig, ros_master, test_node, tmp_path):
    """SIGINT lands while the switch_controller reply is on its way: the switch is still undone.

    (rospy's SIGINT handler shuts the node down in the middle of the call: the driver used to see "no
    response", die with a traceback and leave the position controllers running.)
    """
    import signal

    from dexhand.ros.controller_manager_stand_in import ControllerManagerStandIn

    class StopOnSwitch(ControllerManagerStandIn):
        driver = None

        def on_switch(self, req):
            if self.switches == 0 and self.driver is not None:
                self.driver.send_signal(signal.SIGINT)
                time.sleep(0.3)  # the signal is in before the reply goes out
            return super().on_switch(req)

    cm = StopOnSwitch(test_node, "rh", "trajectory", "/cm_stop_switch")
    driver, log = start_switching_driver(ros_master, "driver_stop_switch", "/cm_stop_switch",
                                         tmp_path / "driver_stop_switch.log")
    cm.driver = driver
    try:
        driver.wait(timeout=40)
    finally:
        stop_switching_rig(driver, log, cm)
    text = (tmp_path / "driver_stop_switch.log").read_text()
    assert cm.switches == 2, text[-2000:]
    assert cm.states["rh_trajectory_controller"] == "running" and cm.states["rh_wr_trajectory_controller"] == "running"
    assert all(cm.states[c] == "stopped" for c in CONTROLLERS)
    assert "controllers restored" in text and "Traceback" not in text, text[-2000:]
    assert driver.returncode == 0, text[-2000:]


@pytest.mark.parametrize("controllers", [
    [*CONTROLLERS, "sh_rh_xxj9_position_controller"],
    list(CONTROLLERS[1:]),
], ids=["unknown-controller", "missing-controller"])
def test_refuses_to_start_on_controller_mismatch(ros_master, controllers):
    from dexhand.ros.launcher import node_command

    listing = "[" + ",".join(controllers) + "]"
    done = subprocess.run(node_command("hand_driver", "__name:=driver_mismatch", f"_controllers:={listing}"),
                          env=ros_master.env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "refusing to start" in done.stderr
    assert ("sh_rh_xxj9_position_controller" in done.stderr) or (CONTROLLERS[0] in done.stderr)
