"""``hand_driver`` node: policy actions -> the real hand's position controllers, through the safety layer.

All names are relative (``__ns:=/lh`` moves every topic) and the hand prefix comes from
``~hand_prefix`` (rh | lh: ``<prefix>_FFJ1`` joints, ``sh_<prefix>_*_position_controller`` controllers).

Subscribes: ``~action_topic`` (sensor_msgs/JointState: model actuator names, absolute targets, stamp
= capture time of the images behind it; taken from one node only, ``~action_source`` or the first
sender), ``joint_states``, ``~cube_pose_topic`` (geometry_msgs/PoseWithCovarianceStamped, watchdog
only), ``dexhand/estop`` (std_msgs/Bool: true engages, false releases) and ``diagnostics`` (errors
from the hand are logged; ``~diagnostics_hold_pattern`` makes matching ones hold the hand).
Services: ``~estop`` and ``~release`` (std_srvs/Trigger). Publishes one std_msgs/Float64 per
controller (``sh_<prefix>_<joint>_position_controller/command``) or, with ``~dry_run``, the would-be
commands on ``~dry_run/commands`` (JointState, controller names) and nothing to any controller;
``dexhand/driver/status`` (dexhand_msgs/DriverStatus), ``diagnostics`` (diagnostic_msgs) and, per
forwarded action, its image-stamp -> command latency on ``dexhand/driver/latency``.

Start-up, each wait logged every few seconds: (1) the controllers: through controller_manager
(``~controller_check: manager``, the default) the 20 position controllers must be loaded and
*running*; with ``~switch_controllers: true`` the running trajectory controllers are stopped and the
position controllers started through ``switch_controller`` (and the previous set restored on
shutdown). ``~controller_check: topics`` only looks for subscribers on the command topics, and a
``~controllers`` list skips the lookup. (2) ``calibrated`` (std_msgs/Bool, Shadow's bringup) must be
true where it is advertised. (3) Every command topic must have its subscriber connected before the
first command goes out.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sys
import threading
import time

from dexhand.robot.driver import (
    ESTOP,
    HOLDING,
    RUNNING,
    ControllerMismatch,
    DriverCore,
    check_controllers,
    check_running,
    controllers_from_topics,
    plan_switch,
)
from dexhand.robot.hand_names import check_prefix, controller_names
from dexhand.robot.safety import SafetyConfig
from dexhand.ros.params import config_from_params

LOG_EVERY = 3.0  # s between "still waiting" lines


class Waiter:
    """Logs 'waiting for X (n s)' every LOG_EVERY s while a start-up condition is not met."""

    def __init__(self, what: str, timeout: float) -> None:
        self.what, self.timeout = what, timeout
        self.start = self.last_log = time.monotonic()

    def expired(self) -> bool:
        import rospy

        now = time.monotonic()
        if now - self.last_log >= LOG_EVERY:
            self.last_log = now
            rospy.loginfo(f"hand_driver: waiting for {self.what} ({now - self.start:.0f} s of {self.timeout:g} s)")
        return now - self.start > self.timeout or rospy.is_shutdown()


def discover_controllers(wait: float, expected) -> set:
    """Controllers with a subscriber on their command topic, polled until all known ones or ``wait`` s."""
    import rosgraph
    import rospy

    master = rosgraph.Master(rospy.get_name())
    namespace = rospy.get_namespace()
    waiter = Waiter(f"subscribers on the {len(expected)} controller command topics", wait)
    while True:
        _, subscribers, _ = master.getSystemState()
        found = controllers_from_topics((topic for topic, nodes in subscribers if nodes), namespace)
        if found >= set(expected) or waiter.expired():
            return found
        time.sleep(0.2)


class ControllerManager:
    """Client of controller_manager's list_controllers / switch_controller (ros_control's types)."""

    def __init__(self, namespace: str) -> None:
        import rospy
        from controller_manager_msgs.srv import ListControllers, SwitchController

        self.namespace = namespace.rstrip("/")
        self.list_name = rospy.resolve_name(self.namespace + "/list_controllers")
        self.switch_name = rospy.resolve_name(self.namespace + "/switch_controller")
        self.SwitchController = SwitchController
        self.list_proxy = rospy.ServiceProxy(self.list_name, ListControllers)
        self.switch_proxy = rospy.ServiceProxy(self.switch_name, SwitchController)

    def wait(self, timeout: float) -> bool:
        import rospy

        waiter = Waiter(f"controller_manager ({self.list_name})", timeout)
        while True:
            try:
                rospy.wait_for_service(self.list_name, timeout=0.5)
                return True
            except rospy.ROSException:
                if waiter.expired():
                    return False

    def states(self) -> dict:
        return {c.name: c.state for c in self.list_proxy().controller}

    def switch(self, start, stop) -> bool:
        import rospy

        rospy.wait_for_service(self.switch_name, timeout=5.0)
        req = self.SwitchController._request_class(start_controllers=list(start), stop_controllers=list(stop),
                                                   strictness=self.SwitchController._request_class.STRICT,
                                                   start_asap=False, timeout=5.0)
        try:
            return bool(self.switch_proxy(req).ok)
        except rospy.ServiceException as exc:
            if rospy.is_shutdown():  # rospy stops reading replies once shut down: nothing to learn from the list
                raise
            # A lost reply: the list says whether the switch happened.
            rospy.logwarn(f"hand_driver: switch_controller: {exc}; checking the controller list")
            states = self.states()
            return all(states.get(c) == "running" for c in start) and all(states.get(c) != "running" for c in stop)


@contextlib.contextmanager
def deferred_stop_signals():
    """SIGINT/SIGTERM arriving inside the block are delivered (to rospy's handler) when it ends.

    Python runs signal handlers in the main thread, between two bytecodes of whatever it is doing:
    rospy's handler, run in the middle of a service call, shuts the node down and the call returns
    "no response" although the request went out. Main thread only (elsewhere: no deferral).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending = []
    signums = (signal.SIGINT, signal.SIGTERM)
    previous = {s: signal.signal(s, lambda signum, frame: pending.append((signum, frame))) for s in signums}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum, frame in pending:
            handler = previous[signum]
            if callable(handler):
                handler(signum, frame)
            else:  # SIG_DFL / SIG_IGN / not installed from Python: let the kernel apply it
                os.kill(os.getpid(), signum)


class ControllerSwitch:
    """Position controllers in, trajectory controllers out through switch_controller, and back on shutdown.

    The way back is registered with rospy.on_shutdown *before* the request goes out, and SIGINT/SIGTERM
    wait until the reply is in, so a stop at any moment of start-up (or a refusal to start after the
    switch) leaves the controllers as they were found: rospy runs on_shutdown hooks while services
    still answer. A shutdown from another thread (the master's shutdown request) waits on the lock for
    the reply of a switch in flight.
    """

    def __init__(self, cm: ControllerManager, start, stop) -> None:
        self.cm, self.start, self.stop = cm, list(start), list(stop)
        self.lock = threading.Lock()
        self.switched = False
        self.restored = False

    def apply(self) -> bool:
        import rospy

        rospy.on_shutdown(self.restore)
        with deferred_stop_signals(), self.lock:  # the lock is released before a deferred signal is delivered
            self.switched = self.cm.switch(self.start, self.stop)
        return self.switched

    def restore(self) -> None:
        import rospy

        if not self.lock.acquire(timeout=15.0):
            rospy.logerr("hand_driver: could not restore the controllers: a switch_controller call is still open")
            return
        try:
            if not self.switched or self.restored:
                return
            self.restored = True
            ok = self.cm.switch(self.stop, self.start)
            rospy.loginfo(f"hand_driver: controllers restored (started {self.stop or 'none'}, stopped "
                          f"{len(self.start)}): {'ok' if ok else 'REFUSED'}")
        except Exception as exc:  # shutting down: report, never raise
            rospy.logerr(f"hand_driver: could not restore the controllers: {exc}")
        finally:
            self.lock.release()


def check_and_switch(expected, dry_run: bool):
    """Check (and, with ~switch_controllers, switch) the controllers; returns the ControllerSwitch or None.

    A switch is undone on shutdown (its restore is an on_shutdown hook from before the request)."""
    import rospy

    listed = rospy.get_param("~controllers", None)
    if listed:
        check_controllers(listed, expected)
        return None
    mode = str(rospy.get_param("~controller_check", "manager"))
    wait = float(rospy.get_param("~controller_wait", 20.0))
    if mode == "topics":
        check_controllers(discover_controllers(wait, expected), expected)
        return None
    if mode != "manager":
        raise ValueError(f"~controller_check {mode!r}: use 'manager' or 'topics'")
    cm = ControllerManager(str(rospy.get_param("~controller_manager_ns", "controller_manager")))
    if not cm.wait(wait):
        raise ControllerMismatch(f"no controller_manager: {cm.list_name} did not appear within {wait:g} s")
    states = cm.states()
    rospy.loginfo(f"hand_driver: controller_manager lists {len(states)} controllers, "
                  f"{sum(s == 'running' for s in states.values())} running")
    switch = None
    if bool(rospy.get_param("~switch_controllers", False)) and not dry_run:
        start, stop = plan_switch(states, expected)
        if start or stop:
            rospy.loginfo(f"hand_driver: switching controllers: stop {stop or 'none'}, start {len(start)} "
                          f"position controllers")
            switch = ControllerSwitch(cm, start, stop)
            if not switch.apply():
                raise ControllerMismatch(f"switch_controller refused: start {start}, stop {stop}")
            states = cm.states()
    try:
        check_running(states, expected)
    except ControllerMismatch as exc:
        if not dry_run:
            raise
        rospy.logwarn(f"hand_driver: dry run, so going on although {exc}")
    return switch


def wait_calibrated(timeout: float) -> None:
    """Shadow's bringup publishes ``calibrated`` (std_msgs/Bool, latched); wait for true where it exists."""
    import rosgraph
    import rospy
    from std_msgs.msg import Bool

    topic = rospy.resolve_name("calibrated")
    published = {t for t, _ in rosgraph.Master(rospy.get_name()).getPublishedTopics("")}
    if topic not in published:
        rospy.loginfo(f"hand_driver: {topic} is not advertised: not waiting for calibration")
        return
    state = {"ok": False}
    sub = rospy.Subscriber(topic, Bool, lambda m: state.update(ok=bool(m.data)), queue_size=1)
    waiter = Waiter(f"{topic} to be true", timeout)
    try:
        while not state["ok"]:
            if waiter.expired():
                raise ControllerMismatch(f"the hand did not report {topic} true within {timeout:g} s")
            time.sleep(0.1)
    finally:
        sub.unregister()
    rospy.loginfo(f"hand_driver: {topic} is true")


class HandDriverNode:
    def __init__(self, prefix: str, dry_run: bool) -> None:
        import rospy
        from dexhand_msgs.msg import DriverStatus
        from diagnostic_msgs.msg import DiagnosticArray
        from geometry_msgs.msg import PoseWithCovarianceStamped
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Bool, Float64

        self.rospy, self.prefix, self.dry_run = rospy, prefix, dry_run
        self.controllers = controller_names(prefix)
        self.lock = threading.Lock()
        safety = config_from_params(SafetyConfig, "~safety")
        source = str(rospy.get_param("~action_source", ""))
        self.core = DriverCore(safety, use_cube_pose=bool(rospy.get_param("~use_cube_pose", True)), prefix=prefix,
                               action_source=rospy.resolve_name(source) if source else "",
                               on_change=self._on_change)
        self.Float64, self.DriverStatus, self.JointState = Float64, DriverStatus, JointState
        self.last_latency = float("nan")
        self.hold_pattern = str(rospy.get_param("~diagnostics_hold_pattern", ""))
        self.hold_regex = re.compile(self.hold_pattern) if self.hold_pattern else None
        self.diag_errors: dict = {}
        if dry_run:
            self.command_pubs = []
            self.dry_pub = rospy.Publisher("~dry_run/commands", JointState, queue_size=10)
        else:
            self.command_pubs = [rospy.Publisher(c + "/command", Float64, queue_size=1, tcp_nodelay=True)
                                 for c in self.controllers]
            self.dry_pub = None
        self.status_pub = rospy.Publisher("dexhand/driver/status", DriverStatus, queue_size=5)
        self.latency_pub = rospy.Publisher("dexhand/driver/latency", Float64, queue_size=20)
        self.diag_pub = rospy.Publisher("diagnostics", DiagnosticArray, queue_size=5)
        self.wait_for_connections(float(rospy.get_param("~connection_wait", 10.0)))
        rospy.Subscriber("joint_states", JointState, self.on_joint_state, queue_size=1, tcp_nodelay=True)
        rospy.Subscriber(rospy.get_param("~cube_pose_topic", "dexhand/cube_pose"), PoseWithCovarianceStamped,
                         self.on_cube_pose, queue_size=1, tcp_nodelay=True)
        rospy.Subscriber(rospy.get_param("~action_topic", "dexhand/policy/action"), JointState,
                         self.on_action, queue_size=1, tcp_nodelay=True)
        rospy.Subscriber("dexhand/estop", Bool, self.on_estop_msg, queue_size=10)
        rospy.Subscriber("diagnostics", DiagnosticArray, self.on_diagnostics, queue_size=10)
        self._advertise_services()
        rate = float(rospy.get_param("~watchdog_rate", 25.0))
        self.next_diag = 0.0
        self.timer = rospy.Timer(rospy.Duration(1.0 / rate), self.on_timer)

    def wait_for_connections(self, timeout: float) -> None:
        """Hold back until every controller's command topic has its subscriber connected."""
        if not self.command_pubs:
            return
        waiter = Waiter("the controllers to connect to their command topics", timeout)
        while True:
            missing = [c for c, p in zip(self.controllers, self.command_pubs) if p.get_num_connections() == 0]
            if not missing:
                self.rospy.loginfo(f"hand_driver: all {len(self.controllers)} command topics connected")
                return
            if waiter.expired():
                raise ControllerMismatch("no subscriber connected to the command topics of: " + ", ".join(missing))
            time.sleep(0.05)

    def _advertise_services(self) -> None:
        try:
            from std_srvs.srv import Trigger, TriggerResponse
        except ImportError:
            self.rospy.logwarn("std_srvs is not installed (Debian: python3-std-srvs): the e-stop is on the "
                               "dexhand/estop topic only")
            return
        self.rospy.Service("~estop", Trigger, lambda _: TriggerResponse(True, self.set_estop(True, "service")))
        self.rospy.Service("~release", Trigger, lambda _: TriggerResponse(True, self.set_estop(False, "service")))

    # --------------------------------------------------------------------------- callbacks
    def now(self) -> float:
        return self.rospy.get_time()

    def _on_change(self, before: str, after: str, reason: str) -> None:
        """Every state change: logged with its reason; entering holding/estop re-sends the hold targets."""
        text = f"hand_driver: {before} -> {after}" + (f": {reason}" if reason else "")
        (self.rospy.loginfo if after == RUNNING else self.rospy.logwarn)(text)
        if after in (HOLDING, ESTOP):
            hold = self.core.hold_commands()
            if hold is not None:
                self.publish_commands(hold)

    def on_joint_state(self, msg) -> None:
        try:
            with self.lock:
                self.core.on_joint_state(msg.name, msg.position, self.now())
        except (KeyError, ValueError) as exc:
            self.rospy.logwarn_throttle(2.0, f"hand_driver: ignoring joint state: {str(exc).strip(chr(39))}")

    def on_cube_pose(self, msg) -> None:
        from dexhand.ros.convert import pose_fault

        fault = pose_fault(msg.pose.pose)
        if fault:
            self.rospy.logwarn_throttle(2.0, f"hand_driver: ignoring cube pose: {fault}")
            return
        with self.lock:
            self.core.on_cube_pose(self.now())

    def on_action(self, msg) -> None:
        source = (getattr(msg, "_connection_header", None) or {}).get("callerid", "")
        with self.lock:
            commands = self.core.on_action(msg.name, msg.position, self.now(), source)
            if commands is None:
                self.rospy.logwarn_throttle(2.0, f"hand_driver: action refused: {self.core.counters.last_rejection}")
                return
            self.publish_commands(commands)
            if not msg.header.stamp.is_zero():
                self.last_latency = (self.rospy.Time.now() - msg.header.stamp).to_sec()
                self.latency_pub.publish(self.Float64(self.last_latency))

    def on_estop_msg(self, msg) -> None:
        caller = (getattr(msg, "_connection_header", None) or {}).get("callerid", "?")
        self.set_estop(bool(msg.data), f"topic, from {caller}")

    def set_estop(self, engaged: bool, source: str) -> str:
        text = f"e-stop {'engaged' if engaged else 'released'} ({source})"
        (self.rospy.logwarn if engaged else self.rospy.loginfo)("hand_driver: " + text)
        with self.lock:
            self.core.estop(engaged)
            self.core.update(self.now())
            self.publish_status()
        return text

    def on_diagnostics(self, msg) -> None:
        for status in msg.status:
            if status.name.startswith("dexhand"):
                continue  # our own
            key = status.name
            if status.level >= 2:  # ERROR or STALE
                if self.diag_errors.get(key) != status.message:
                    self.rospy.logerr(f"hand_driver: diagnostics: {status.name}: {status.message}")
                self.diag_errors[key] = status.message
            elif key in self.diag_errors:
                self.rospy.loginfo(f"hand_driver: diagnostics: {status.name} ok again")
                del self.diag_errors[key]
        if self.hold_regex is not None:
            faults = [f"{k}: {v}" for k, v in self.diag_errors.items() if self.hold_regex.search(k)]
            with self.lock:
                self.core.set_fault("diagnostics", "; ".join(faults))

    def on_timer(self, _event) -> None:
        with self.lock:
            self.core.update(self.now())
            self.publish_status()
        if time.monotonic() >= self.next_diag:
            self.next_diag = time.monotonic() + 1.0
            self.publish_diagnostics()

    # --------------------------------------------------------------------------- outputs
    def publish_commands(self, commands) -> None:
        if self.dry_pub is not None:
            msg = self.JointState(name=list(self.controllers), position=[float(v) for v in commands])
            msg.header.stamp = self.rospy.Time.now()
            self.dry_pub.publish(msg)
            return
        for pub, value in zip(self.command_pubs, commands):
            pub.publish(self.Float64(float(value)))

    def publish_status(self) -> None:
        c = self.core.counters
        msg = self.DriverStatus()
        msg.header.stamp = self.rospy.Time.now()
        msg.state, msg.reason = self.core.state, self.core.reason
        msg.commands_sent, msg.rejected_actions, msg.clamped_values = c.commands_sent, c.rejected_actions, c.clamped_values
        msg.foreign_actions, msg.action_source, msg.dry_run = c.foreign_actions, self.core.action_source, self.dry_run
        msg.last_latency = self.last_latency
        self.status_pub.publish(msg)

    def publish_diagnostics(self) -> None:
        from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

        with self.lock:
            state, reason, c = self.core.state, self.core.reason, self.core.counters
            values = {"state": state, "reason": reason, "commands_sent": c.commands_sent,
                      "rejected_actions": c.rejected_actions, "foreign_actions": c.foreign_actions,
                      "clamped_values": c.clamped_values, "action_source": self.core.action_source,
                      "dry_run": self.dry_run, "last_rejection": c.last_rejection}
        level = DiagnosticStatus.OK if state == RUNNING else DiagnosticStatus.WARN
        status = DiagnosticStatus(level=level, name="dexhand: hand_driver", hardware_id=self.prefix + "_hand",
                                  message=state + (f": {reason}" if reason else ""),
                                  values=[KeyValue(k, str(v)) for k, v in values.items()])
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.rospy.Time.now()
        self.diag_pub.publish(array)


def main() -> int:
    import rospy

    rospy.init_node("hand_driver")
    try:
        prefix = check_prefix(str(rospy.get_param("~hand_prefix", "rh")))
        dry_run = bool(rospy.get_param("~dry_run", False))
        if dry_run:
            rospy.logwarn("hand_driver: DRY RUN: commands go to ~dry_run/commands, never to the controllers")
        check_and_switch(controller_names(prefix), dry_run)  # a switch registers its own undo
        if bool(rospy.get_param("~wait_calibrated", True)) and not dry_run:
            wait_calibrated(float(rospy.get_param("~calibration_wait", 60.0)))
        node = HandDriverNode(prefix, dry_run)
    except (ControllerMismatch, ValueError, rospy.ROSException, rospy.ServiceException) as exc:
        if rospy.is_shutdown():  # stopped (SIGINT, SIGTERM, the master) while starting: not a refusal
            print(f"hand_driver: shut down during start-up ({exc})", file=sys.stderr)
            return 0
        rospy.logfatal(f"hand_driver: refusing to start: {exc}")
        print(f"hand_driver: refusing to start: {exc}", file=sys.stderr)
        rospy.signal_shutdown("refused to start")
        return 1
    rospy.loginfo(f"hand_driver: driving {len(node.controllers)} {prefix} controllers"
                  f"{' (dry run)' if dry_run else ''}, action source {node.core.action_source or 'the first sender'}, "
                  f"speed limits {node.core.speed_limits.min():.2f}..{node.core.speed_limits.max():.2f} rad/s, "
                  f"safety {node.core.config}")
    rospy.spin()
    return 0
