"""``policy`` node: joint states + cube pose + goal -> absolute actuator targets at 12.5 Hz.

With ``~trigger: pose`` (default) a cycle starts when a new cube pose arrives (cameras at the control
rate), so an action follows its images at once; ``~trigger: timer`` runs on a fixed ``~rate`` clock.

The policy is chosen by ``~policy``: ``hold``, ``random`` (stand-ins) or a path to an exported .onnx
policy run by ``dexhand.deploy.OnnxPolicy`` (which keeps the LSTM state between calls; it is reset
when the goal manager starts a new episode). Actions go out on ``~action_topic`` as
sensor_msgs/JointState (model actuator names, radians) stamped with the cube pose's image stamp, so
the driver can measure image -> command latency. Diagnostics (dexhand_msgs/PolicyDiagnostics) on
dexhand/policy/diagnostics: cycle time, compute time, input ages, late and skipped cycles; a summary
on ``diagnostics`` (diagnostic_msgs) once a second. Names are relative; joints are
``<~hand_prefix>_*``.

The node never dies on bad input: a non-finite or implausible cube pose or joint state, a policy
that raises (``PolicyInputError``) or returns non-finite targets make it skip the cycle (counted in
``skipped_cycles``, logged at most every 2 s with the real fault) and go on with the next.
"""

from __future__ import annotations

import sys
import threading
import time

import numpy as np

from dexhand.robot import joint_map
from dexhand.robot.cycles import CycleMeter
from dexhand.robot.hand_names import check_prefix
from dexhand.robot.stand_ins import load_policy


class PolicyNode:
    def __init__(self, policy) -> None:
        import rospy
        from dexhand_msgs.msg import PolicyDiagnostics, TaskStatus
        from diagnostic_msgs.msg import DiagnosticArray
        from geometry_msgs.msg import PoseWithCovarianceStamped
        from sensor_msgs.msg import JointState

        self.rospy, self.policy = rospy, policy
        self.JointState, self.PolicyDiagnostics = JointState, PolicyDiagnostics
        self.rate = float(rospy.get_param("~rate", 12.5))
        self.max_joint_age = float(rospy.get_param("~max_joint_state_age", 0.25))
        self.max_pose_age = float(rospy.get_param("~max_cube_pose_age", 0.5))
        self.prefix = check_prefix(str(rospy.get_param("~hand_prefix", "rh")))
        self.min_confidence = float(rospy.get_param("~min_confidence", 0.0))
        self.last_fault = ""
        self.next_diag = 0.0
        self.trigger = str(rospy.get_param("~trigger", "pose"))
        if self.trigger not in ("pose", "timer"):
            raise ValueError(f"~trigger {self.trigger!r}: use 'pose' (act on each new cube pose) or 'timer'")
        self.new_pose = threading.Event()
        self.meter = CycleMeter(1.0 / self.rate)
        self.lock = threading.Lock()
        self.joint_msg = self.pose_msg = self.status_msg = None
        self.joint_arrival = self.pose_arrival = -1.0
        self.episode = None
        self.skipped = 0
        self.action_pub = rospy.Publisher(rospy.get_param("~action_topic", "dexhand/policy/action"), JointState,
                                          queue_size=1, tcp_nodelay=True)
        self.diag_pub = rospy.Publisher("dexhand/policy/diagnostics", PolicyDiagnostics, queue_size=10)
        self.diagnostics_pub = rospy.Publisher("diagnostics", DiagnosticArray, queue_size=5)
        rospy.Subscriber("joint_states", JointState, self._store("joint"), queue_size=1, tcp_nodelay=True)
        rospy.Subscriber(rospy.get_param("~cube_pose_topic", "dexhand/cube_pose"), PoseWithCovarianceStamped,
                         self._store("pose"), queue_size=1, tcp_nodelay=True)
        rospy.Subscriber("dexhand/task_status", TaskStatus, self._store("status"), queue_size=1)

    def _store(self, kind: str):
        def callback(msg) -> None:
            with self.lock:
                setattr(self, kind + "_msg", msg)
                if kind != "status":
                    setattr(self, kind + "_arrival", self.rospy.get_time())
            if kind == "pose":
                self.new_pose.set()
        return callback

    def inputs(self, now: float):
        """(joint positions, cube pos, cube quat, goal, stamp, ages) or a reason string why not."""
        from dexhand.robot import quat
        from dexhand.ros.convert import confidence_from_covariance, pose_fault, pose_from_msg

        with self.lock:
            joint, pose, status = self.joint_msg, self.pose_msg, self.status_msg
            joint_age, pose_age = now - self.joint_arrival, now - self.pose_arrival
        if joint is None or pose is None or status is None:
            missing = [n for n, m in (("joint_states", joint), ("cube pose", pose), ("goal", status)) if m is None]
            return "waiting for " + ", ".join(missing), joint_age, pose_age
        if joint_age > self.max_joint_age or pose_age > self.max_pose_age:
            return f"stale inputs (joint_states {joint_age:.2f} s, cube pose {pose_age:.2f} s)", joint_age, pose_age
        if status.episode != self.episode:
            self.episode = status.episode
            self.policy.reset()
        positions = joint_map.model_joint_positions(joint.name, joint.position, self.prefix)
        fault = pose_fault(pose.pose.pose)
        if fault:
            return "implausible cube pose: " + fault, joint_age, pose_age
        confidence = confidence_from_covariance(pose.pose.covariance)
        if confidence < self.min_confidence:
            return f"cube pose confidence {confidence:.2f} < {self.min_confidence:g}", joint_age, pose_age
        cube_pos, cube_quat = pose_from_msg(pose.pose.pose)
        g = status.goal
        goal = quat.from_xyzw(g.x, g.y, g.z, g.w)  # ValueError on a non-finite or zero goal
        return (positions, cube_pos, cube_quat, goal, pose.header.stamp), joint_age, pose_age

    def cycle(self) -> None:
        rospy = self.rospy
        now = rospy.get_time()
        gap = self.meter.tick(now)
        diag = self.PolicyDiagnostics()
        diag.header.stamp = rospy.Time.now()
        diag.cycle_time = gap
        try:
            got, diag.joint_state_age, diag.cube_pose_age = self.inputs(now)
        except (KeyError, ValueError) as exc:
            got = f"bad input: {str(exc).strip(chr(39))}"
        if not isinstance(got, str):
            got = self.act(got, diag)
        if isinstance(got, str):
            self.skipped += 1
            self.last_fault = got
            rospy.logwarn_throttle(2.0, f"policy: no action this cycle: {got}")
        else:
            self.last_fault = ""
        diag.cycles, diag.late_cycles, diag.skipped_cycles = self.meter.cycles, self.meter.late_cycles, self.skipped
        self.diag_pub.publish(diag)
        if time.monotonic() >= self.next_diag:
            self.next_diag = time.monotonic() + 1.0
            self.publish_diagnostics(diag)

    def act(self, inputs, diag):
        """Run the policy and publish its action; returns None, or a string saying why nothing went out."""
        positions, cube_pos, cube_quat, goal, stamp = inputs
        start = time.perf_counter()
        try:
            targets = np.asarray(self.policy.act(positions, cube_pos, cube_quat, goal), dtype=np.float64)
        except Exception as exc:  # PolicyInputError and anything else the runtime raises: skip, never die
            return f"policy refused its inputs: {type(exc).__name__}: {exc}"
        finally:
            diag.compute_time = time.perf_counter() - start
        if targets.shape != (len(joint_map.ACTUATOR_MODEL_NAMES),):
            return f"policy returned shape {targets.shape}, expected (20,)"
        if not np.all(np.isfinite(targets)):
            return "policy returned non-finite targets"
        msg = self.JointState()
        msg.header.stamp = stamp
        msg.name = joint_map.ACTUATOR_MODEL_NAMES
        msg.position = targets.tolist()
        self.action_pub.publish(msg)
        diag.acted = True
        return None

    def publish_diagnostics(self, diag) -> None:
        from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

        level = DiagnosticStatus.OK if diag.acted else DiagnosticStatus.WARN
        values = {"cycles": diag.cycles, "late_cycles": diag.late_cycles, "skipped_cycles": diag.skipped_cycles,
                  "compute_time": f"{diag.compute_time:.4f}", "joint_state_age": f"{diag.joint_state_age:.3f}",
                  "cube_pose_age": f"{diag.cube_pose_age:.3f}"}
        status = DiagnosticStatus(level=level, name="dexhand: policy", hardware_id=self.prefix + "_hand",
                                  message="acting" if diag.acted else f"skipping: {self.last_fault}",
                                  values=[KeyValue(k, str(v)) for k, v in values.items()])
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.rospy.Time.now()
        self.diagnostics_pub.publish(array)

    def safe_cycle(self) -> None:
        """One cycle; whatever goes wrong is logged and the loop goes on (the driver holds meanwhile)."""
        try:
            self.cycle()
        except Exception as exc:
            self.skipped += 1
            self.rospy.logerr_throttle(2.0, f"policy: cycle failed, skipped: {type(exc).__name__}: {exc}")

    def spin(self) -> None:
        if self.trigger == "timer":
            rate = self.rospy.Rate(self.rate)
            while not self.rospy.is_shutdown():
                self.safe_cycle()
                try:
                    rate.sleep()
                except self.rospy.ROSInterruptException:
                    break
            return
        # "pose": act as soon as a new cube pose arrives (lowest image -> command latency), at most
        # at ``rate``; with no pose for a few periods, run a cycle anyway so that the gap is reported.
        period = 1.0 / self.rate
        while not self.rospy.is_shutdown():
            if not self.new_pose.wait(timeout=5 * period):
                self.safe_cycle()
                continue
            self.new_pose.clear()
            previous = self.meter.previous
            if previous is not None and self.rospy.get_time() - previous < 0.75 * period:
                continue  # the camera runs faster than the control rate: skip this pose
            self.safe_cycle()


def main() -> int:
    import rospy

    rospy.init_node("policy")
    spec = str(rospy.get_param("~policy", "hold"))
    try:
        policy = load_policy(spec, seed=int(rospy.get_param("~seed", 0)))
    except (ValueError, RuntimeError, FileNotFoundError) as exc:
        rospy.logfatal(f"policy: cannot load {spec!r}: {exc}")
        print(f"policy: cannot load {spec!r}: {exc}", file=sys.stderr)
        return 1
    try:
        node = PolicyNode(policy)
    except ValueError as exc:
        rospy.logfatal(f"policy: {exc}")
        print(f"policy: {exc}", file=sys.stderr)
        return 1
    rospy.loginfo(f"policy: running {spec!r} at {node.rate:g} Hz")
    node.spin()
    return 0
