"""``dexhand bench ros-faults``: each fault against sim_demo.launch on a private master, one table.

Faults, in order, each on the running loop (``seconds`` each, 3 by default): a second node flooding
the action topic with +-1e9 at 100 Hz; NaN, +-inf and +-1e308 actions at 200 Hz from the driver's
accepted source (the real policy is paused with SIGSTOP, so the launch does not respawn it, and the
injector runs as ``/policy``, the driver's ``~action_source``; once the injector is done the policy
is resumed, finds itself replaced by the master and exits, and the launch respawns it); NaN cube
poses; NaN joint states; a frozen sim (sim_hand/freeze); the policy node killed (respawned by the
launch); e-stop and release. For each: what the stack did (driver states, counters), commands out of the hardware range
and non-finite commands seen on the 20 controller topics (both must be 0), the fastest command
(rad/s over 0.25 s windows) and the fastest joint (/joint_states velocities), and whether the loop
recovered (driver running and policy actions flowing again) and how fast.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from dexhand.report import format_table

NODES = ("/sim_hand", "/hand_driver", "/policy", "/goal_manager")
SHIPPED_POLICY = Path(__file__).resolve().parent.parent / "models" / "policy.onnx"
WINDOW = 0.25  # s: command speed is measured over windows this long (receive-time jitter averages out)

BAD_ACTIONS = """
import math, time, rospy
from sensor_msgs.msg import JointState
from dexhand.robot import joint_map
rospy.init_node("policy")
pub = rospy.Publisher("dexhand/policy/action", JointState, queue_size=10)
deadline = time.monotonic() + 10
while pub.get_num_connections() < 2 and time.monotonic() < deadline:  # the driver and the bench
    time.sleep(0.05)
values = [math.nan, math.inf, -math.inf, 1e308, -1e308]
end = time.monotonic() + {seconds}
i = 0
while time.monotonic() < end and not rospy.is_shutdown():
    pos = [0.1] * 20
    pos[i % 20] = values[i % len(values)]
    msg = JointState(name=joint_map.ACTUATOR_MODEL_NAMES, position=pos)
    msg.header.stamp = rospy.Time.now()
    pub.publish(msg)
    i += 1
    time.sleep(0.005)
print("sent", i, "as", rospy.get_name(), "shut down" if rospy.is_shutdown() else "")
"""
BAD_RATE = 200  # Hz of the injector above


class Monitor:
    """Everything the bench watches: controller commands, driver status, actions, joint speeds."""

    def __init__(self, rospy) -> None:
        from dexhand_msgs.msg import DriverStatus, PolicyDiagnostics
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Float64

        from dexhand.robot.hand_names import ACTUATORS

        self.rospy, self.lock = rospy, threading.Lock()
        self.commands: list = []  # (t, index, value)
        self.states: list = []  # (t, state, reason)
        self.status = self.diag = None
        self.actions: list = []
        self.joint_speed: list = []  # (t, max |velocity|)
        for i, a in enumerate(ACTUATORS):
            rospy.Subscriber(a.command_topic, Float64, self._command(i), queue_size=100, tcp_nodelay=True)
        rospy.Subscriber("/dexhand/driver/status", DriverStatus, self._status, queue_size=50)
        rospy.Subscriber("/dexhand/policy/diagnostics", PolicyDiagnostics, lambda m: setattr(self, "diag", m),
                         queue_size=10)
        rospy.Subscriber("/dexhand/policy/action", JointState, self._action, queue_size=100)
        rospy.Subscriber("/joint_states", JointState, self._joints, queue_size=200)

    def _command(self, index):
        def callback(msg):
            with self.lock:
                self.commands.append((time.monotonic(), index, msg.data))
        return callback

    def _status(self, msg):
        with self.lock:
            if self.status is None or msg.state != self.status.state:
                self.states.append((time.monotonic(), msg.state, msg.reason))
            self.status = msg

    def _action(self, msg):
        if (getattr(msg, "_connection_header", None) or {}).get("callerid") == "/policy":
            with self.lock:
                self.actions.append(time.monotonic())

    def _joints(self, msg):
        v = np.asarray(msg.velocity, dtype=float)
        if v.size and np.all(np.isfinite(v)):
            with self.lock:
                self.joint_speed.append((time.monotonic(), float(np.abs(v).max())))

    def running(self) -> bool:
        return self.status is not None and self.status.state == "running"

    def wait(self, predicate, timeout: float) -> float | None:
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if predicate():
                return time.monotonic() - start
            time.sleep(0.02)
        return None

    def actions_since(self, t: float) -> int:
        with self.lock:
            return sum(1 for a in self.actions if a > t)

    def figures(self, t0: float, t1: float) -> dict:
        from dexhand.robot import joint_map

        with self.lock:
            cmds = [(t, i, v) for t, i, v in self.commands if t0 <= t <= t1]
            speeds = [s for t, s in self.joint_speed if t0 <= t <= t1]
            states = [(s, r) for t, s, r in self.states if t0 <= t <= t1]
        values = np.array([v for _, _, v in cmds]) if cmds else np.zeros(0)
        index = np.array([i for _, i, _ in cmds], dtype=int)
        finite = np.isfinite(values)
        lo, hi = joint_map.COMMAND_LOWER[index], joint_map.COMMAND_UPPER[index]
        out_of_range = int(np.count_nonzero(finite & ((values < lo - 1e-9) | (values > hi + 1e-9))))
        max_speed = 0.0
        for j in range(20):
            series = [(t, v) for t, i, v in cmds if i == j and np.isfinite(v)]
            k = 0
            for t, v in series:
                while k < len(series) and series[k][0] < t + WINDOW:
                    k += 1
                if k < len(series):
                    max_speed = max(max_speed, abs(series[k][1] - v) / (series[k][0] - t))
        return {"commands": len(cmds), "out_of_range": out_of_range, "non_finite": int(np.count_nonzero(~finite)),
                "max_command_speed": max_speed, "max_joint_speed": max(speeds) if speeds else float("nan"),
                "states": states}


def run(seconds: float = 3.0, policy: str | None = None) -> dict[str, Any]:
    """Run every fault on sim_demo.launch; ``policy`` defaults to the shipped ONNX policy (else 'random')."""
    if policy is None:
        policy = str(SHIPPED_POLICY) if SHIPPED_POLICY.is_file() else "random"
    from dexhand.ros.launcher import sim_demo

    with sim_demo(policy, NODES, prefix="dexhand-bench-ros-faults-") as (master, home):
        rows = _faults(max(1.0, float(seconds)), master.env, home)
        return {"policy": policy, "seconds_per_fault": seconds, "faults": rows, "logs": str(home),
                "speed_limit_max": _speed_limit_max()}


def _speed_limit_max() -> float:
    from dexhand.robot import joint_map
    from dexhand.robot.safety import SafetyConfig

    return float(SafetyConfig().speed_limits(joint_map.COMMAND_LOWER, joint_map.COMMAND_UPPER).max())


def _faults(seconds: float, env: dict, home: Path) -> list:
    import rosnode
    import rospy
    from geometry_msgs.msg import PoseWithCovarianceStamped
    from sensor_msgs.msg import JointState
    from std_msgs.msg import Bool
    from std_srvs.srv import SetBool

    from dexhand.robot import joint_map

    rospy.init_node("dexhand_bench_ros_faults", anonymous=True, disable_signals=True)
    mon = Monitor(rospy)
    action_pub = rospy.Publisher("/dexhand/policy/action", JointState, queue_size=10)
    pose_pub = rospy.Publisher("/dexhand/cube_pose_gt", PoseWithCovarianceStamped, queue_size=10)
    joint_pub = rospy.Publisher("/joint_states", JointState, queue_size=10)
    estop_pub = rospy.Publisher("/dexhand/estop", Bool, queue_size=10)
    if mon.wait(mon.running, 60) is None:
        raise RuntimeError(f"the driver never reached 'running' (status {mon.status}); see {home}")
    time.sleep(2.0)
    nan = float("nan")

    def repeat(publish, hz: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            publish()
            time.sleep(1.0 / hz)

    def flood():
        sign = [1.0]

        def one():
            sign[0] = -sign[0]
            action_pub.publish(JointState(name=joint_map.ACTUATOR_MODEL_NAMES, position=[sign[0] * 1e9] * 20))
        repeat(one, 100)

    def bad_actions():
        """The accepted source itself sends garbage: the policy paused (no respawn), the injector as /policy."""
        pid = _node_pid("/policy")
        os.kill(pid, signal.SIGSTOP)
        try:
            code = BAD_ACTIONS.format(seconds=seconds)
            done = subprocess.run([sys.executable, "-c", code], env=env, timeout=60 + seconds,
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        finally:
            os.kill(pid, signal.SIGCONT)  # replaced by the master meanwhile: it exits and is respawned
        sent = done.stdout.split()
        return f"injector sent {sent[1] if len(sent) > 1 else '?'} bad actions as /policy (real policy paused)"

    def nan_pose():
        def one():
            msg = PoseWithCovarianceStamped()
            msg.header.stamp = rospy.Time.now()
            msg.pose.pose.position.x = nan
            msg.pose.pose.orientation.w = nan
            pose_pub.publish(msg)
        repeat(one, 30)

    def nan_joints():
        repeat(lambda: joint_pub.publish(JointState(name=joint_map.REAL_JOINT_NAMES, position=[nan] * 24)), 125)

    def frozen():
        freeze = rospy.ServiceProxy("/sim_hand/freeze", SetBool)
        freeze(True)
        time.sleep(seconds)
        freeze(False)

    def kill_policy():
        rosnode.kill_nodes(["/policy"])
        time.sleep(seconds)

    def estop():
        estop_pub.publish(Bool(True))
        time.sleep(seconds)
        estop_pub.publish(Bool(False))

    faults = [
        ("action flood (+-1e9, 100 Hz) from a second node", flood),
        (f"NaN/+-inf/+-1e308 actions ({BAD_RATE} Hz) from the accepted source /policy", bad_actions),
        ("NaN cube pose (30 Hz)", nan_pose),
        ("NaN joint state (125 Hz)", nan_joints),
        ("frozen sim", frozen),
        ("policy killed (respawned by the launch)", kill_policy),
        ("e-stop, then release", estop),
    ]
    rows = []
    for name, inject in faults:
        mon.wait(lambda: mon.running() and mon.actions_since(time.monotonic() - 0.5) > 2, 30)
        before = mon.status
        skipped0 = mon.diag.skipped_cycles if mon.diag is not None else 0
        t0 = time.monotonic()
        note = inject()
        t1 = time.monotonic()
        recovered = mon.wait(lambda t1=t1: mon.running() and mon.actions_since(t1) >= 5, 30)
        t2 = time.monotonic()
        time.sleep(0.3)
        fig = mon.figures(t0, t2)
        after = mon.status
        skipped1 = mon.diag.skipped_cycles if mon.diag is not None else 0
        path = " -> ".join(f"{s}" + (f" ({r})" if r else "") for s, r in fig["states"][:3]) or "stayed running"
        did = [path] + ([note] if note else [])
        if after.foreign_actions > before.foreign_actions:
            did.append(f"refused {after.foreign_actions - before.foreign_actions} foreign actions")
        if after.rejected_actions > before.rejected_actions:
            did.append(f"refused {after.rejected_actions - before.rejected_actions} actions")
        if skipped1 > skipped0:
            did.append(f"policy skipped {skipped1 - skipped0} cycles")
        rows.append({"fault": name, "what the stack did": "; ".join(did),
                     "out of range": fig["out_of_range"], "non-finite": fig["non_finite"],
                     "max command speed (rad/s)": fig["max_command_speed"],
                     "max joint speed (rad/s)": fig["max_joint_speed"],
                     "recovered": f"yes, {recovered:.1f} s" if recovered is not None else "NO",
                     "commands seen": fig["commands"]})
    rospy.signal_shutdown("bench done")
    return rows


def _node_pid(name: str) -> int:
    """The process id of a running node (its slave API's getPid)."""
    from xmlrpc.client import ServerProxy

    import rosgraph
    import rospy

    api = rosgraph.Master(rospy.get_name()).lookupNode(name)
    code, message, pid = ServerProxy(api).getPid(rospy.get_name())
    if code != 1:
        raise RuntimeError(f"getPid of {name}: {message}")
    return int(pid)


def print_results(r: dict[str, Any]) -> None:
    rows = [{k: v for k, v in row.items() if k != "commands seen"} for row in r["faults"]]
    print(format_table(rows, title=f"dexhand bench ros-faults: sim_demo.launch, policy {Path(r['policy']).name}, "
                                   f"{r['seconds_per_fault']:g} s per fault (driver speed limit <= "
                                   f"{r['speed_limit_max']:.2f} rad/s)"))
    bad = sum(row["out of range"] + row["non-finite"] for row in r["faults"])
    print(f"commands out of range or non-finite: {bad} (must be 0); logs: {r['logs']}")
