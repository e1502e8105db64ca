"""``hand_driver`` node: policy actions -> the real hand's position controllers, through the safety layer.

Subscribes: ``~action_topic`` (sensor_msgs/JointState: model actuator names, absolute targets, stamp
= capture time of the images behind it), /joint_states, ``~cube_pose_topic`` (dexhand_msgs/CubePose,
watchdog only), /dexhand/estop (std_msgs/Bool: true engages, false releases).
Services: ``~estop`` and ``~release`` (std_srvs/Trigger). Publishes one std_msgs/Float64 per
controller (``/sh_rh_<joint>_position_controller/command``), /dexhand/driver/status and, per
forwarded action, its image-stamp -> command latency in s on /dexhand/driver/latency (Float64).
Before driving, it looks up which controllers listen on command topics (or reads ``~controllers``)
and refuses to start unless they are exactly the name table's.
"""

from __future__ import annotations

import sys
import threading
import time

from dexhand.robot.driver import (
    CONTROLLER_ORDER,
    ESTOP,
    HOLDING,
    ControllerMismatch,
    DriverCore,
    check_controllers,
    controllers_from_topics,
)
from dexhand.robot.hand_names import CONTROLLERS
from dexhand.robot.safety import SafetyConfig
from dexhand.ros.params import config_from_params


def discover_controllers(wait: float) -> set[str]:
    """Controllers with a subscriber on their command topic, polled until all known ones or ``wait`` s."""
    import rosgraph
    import rospy

    master = rosgraph.Master(rospy.get_name())
    deadline = time.monotonic() + wait
    found: set[str] = set()
    while not rospy.is_shutdown():
        _, subscribers, _ = master.getSystemState()
        found = controllers_from_topics(topic for topic, nodes in subscribers if nodes)
        if found >= set(CONTROLLERS) or time.monotonic() > deadline:
            return found
        time.sleep(0.2)
    return found


class HandDriverNode:
    def __init__(self) -> None:
        import rospy
        from dexhand_msgs.msg import CubePose, DriverStatus
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Bool, Float64

        self.rospy = rospy
        self.lock = threading.Lock()
        safety = config_from_params(SafetyConfig, "~safety")
        self.core = DriverCore(safety, use_cube_pose=bool(rospy.get_param("~use_cube_pose", True)))
        self.Float64, self.DriverStatus = Float64, DriverStatus
        self.last_latency = float("nan")
        self.command_pubs = [
            rospy.Publisher("/" + c + "/command", Float64, queue_size=1, tcp_nodelay=True) for c in CONTROLLER_ORDER
        ]
        self.status_pub = rospy.Publisher("/dexhand/driver/status", DriverStatus, queue_size=5)
        self.latency_pub = rospy.Publisher("/dexhand/driver/latency", Float64, queue_size=20)
        rospy.Subscriber("/joint_states", JointState, self.on_joint_state, queue_size=1, tcp_nodelay=True)
        rospy.Subscriber(rospy.get_param("~cube_pose_topic", "/dexhand/cube_pose"), CubePose,
                         self.on_cube_pose, queue_size=1, tcp_nodelay=True)
        rospy.Subscriber(rospy.get_param("~action_topic", "/dexhand/policy/action"), JointState,
                         self.on_action, queue_size=1, tcp_nodelay=True)
        rospy.Subscriber("/dexhand/estop", Bool, lambda msg: self.set_estop(bool(msg.data), "topic"), queue_size=10)
        self._advertise_services()
        rate = float(rospy.get_param("~watchdog_rate", 25.0))
        self.timer = rospy.Timer(rospy.Duration(1.0 / rate), self.on_timer)

    def _advertise_services(self) -> None:
        try:
            from std_srvs.srv import Trigger, TriggerResponse
        except ImportError:
            self.rospy.logwarn("std_srvs is not installed (Debian: python3-std-srvs): the e-stop is on the "
                               "/dexhand/estop topic only")
            return
        self.rospy.Service("~estop", Trigger, lambda _: TriggerResponse(True, self.set_estop(True, "service")))
        self.rospy.Service("~release", Trigger, lambda _: TriggerResponse(True, self.set_estop(False, "service")))

    # --------------------------------------------------------------------------- callbacks
    def now(self) -> float:
        return self.rospy.get_time()

    def on_joint_state(self, msg) -> None:
        try:
            with self.lock:
                self.core.on_joint_state(msg.name, msg.position, self.now())
        except (KeyError, ValueError) as exc:
            self.rospy.logwarn_throttle(2.0, f"hand_driver: ignoring joint state: {exc}")

    def on_cube_pose(self, msg) -> None:
        with self.lock:
            self.core.on_cube_pose(self.now())

    def on_action(self, msg) -> None:
        with self.lock:
            commands = self.core.on_action(msg.name, msg.position, self.now())
            if commands is None:
                self.rospy.logwarn_throttle(2.0, f"hand_driver: holding, action refused: "
                                                 f"{self.core.counters.last_rejection}")
                return
            self.publish_commands(commands)
            if not msg.header.stamp.is_zero():
                self.last_latency = (self.rospy.Time.now() - msg.header.stamp).to_sec()
                self.latency_pub.publish(self.Float64(self.last_latency))

    def set_estop(self, engaged: bool, source: str) -> str:
        with self.lock:
            self.core.estop(engaged)
            self.core.update(self.now())
            if engaged:
                hold = self.core.hold_commands()
                if hold is not None:
                    self.publish_commands(hold)
            self.publish_status()
        text = f"e-stop {'engaged' if engaged else 'released'} ({source})"
        (self.rospy.logwarn if engaged else self.rospy.loginfo)("hand_driver: " + text)
        return text

    def on_timer(self, _event) -> None:
        with self.lock:
            changed = self.core.update(self.now())
            if changed:
                self.rospy.loginfo(f"hand_driver: {self.core.state} {self.core.reason}".rstrip())
                if self.core.state in (HOLDING, ESTOP):
                    hold = self.core.hold_commands()
                    if hold is not None:
                        self.publish_commands(hold)
            self.publish_status()

    # --------------------------------------------------------------------------- outputs
    def publish_commands(self, commands) -> None:
        for pub, value in zip(self.command_pubs, commands):
            pub.publish(self.Float64(float(value)))

    def publish_status(self) -> None:
        c = self.core.counters
        msg = self.DriverStatus()
        msg.header.stamp = self.rospy.Time.now()
        msg.state, msg.reason = self.core.state, self.core.reason
        msg.commands_sent, msg.rejected_actions, msg.clamped_values = c.commands_sent, c.rejected_actions, c.clamped_values
        msg.last_latency = self.last_latency
        self.status_pub.publish(msg)


def main() -> int:
    import rospy

    rospy.init_node("hand_driver")
    try:
        listed = rospy.get_param("~controllers", None)
        found = set(listed) if listed else discover_controllers(float(rospy.get_param("~controller_wait", 20.0)))
        check_controllers(found)
        node = HandDriverNode()
    except (ControllerMismatch, ValueError) as exc:
        rospy.logfatal(f"hand_driver: refusing to start: {exc}")
        print(f"hand_driver: refusing to start: {exc}", file=sys.stderr)
        return 1
    rospy.loginfo(f"hand_driver: driving {len(CONTROLLER_ORDER)} controllers, safety {node.core.config}")
    rospy.spin()
    return 0
