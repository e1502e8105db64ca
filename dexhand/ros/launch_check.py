"""rostest checks of a running sim_demo.launch (namespace, hand prefix, dry run, loopback, static TF).

Run as the ``<test>`` node of ``ros_ws/src/dexhand_ros/test/*.test``; params: ``~hand_prefix``
and ``~window`` (s of commands to watch).
"""

from __future__ import annotations

import threading
import time
import unittest

import numpy as np

from dexhand.robot import joint_map
from dexhand.robot.hand_names import controller_names

GLOBAL_OK = ("/rosout", "/rosout_agg", "/tf", "/tf_static", "/clock")


class SimDryRunInNamespace(unittest.TestCase):
    def setUp(self) -> None:
        import rospy
        from dexhand_msgs.msg import DriverStatus
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Float64

        self.rospy = rospy
        self.prefix = str(rospy.get_param("~hand_prefix", "rh"))
        self.window = float(rospy.get_param("~window", 3.0))
        self.lock = threading.Lock()
        self.status = None
        self.joints: list = []
        self.dry: list = []
        self.controller_msgs = 0
        self.subs = [rospy.Subscriber("dexhand/driver/status", DriverStatus, self._set("status"), queue_size=5),
                     rospy.Subscriber("joint_states", JointState, self._append(self.joints), queue_size=50),
                     rospy.Subscriber("hand_driver/dry_run/commands", JointState, self._append(self.dry),
                                      queue_size=50)]
        for c in controller_names(self.prefix):
            self.subs.append(rospy.Subscriber(c + "/command", Float64, self._count, queue_size=50))

    def _set(self, name):
        return lambda msg: setattr(self, name, msg)

    def _append(self, into):
        def callback(msg):
            with self.lock:
                into.append(msg)
        return callback

    def _count(self, _msg):
        with self.lock:
            self.controller_msgs += 1

    def test_dry_run_in_namespace(self) -> None:
        import rosgraph
        import tf2_ros

        rospy = self.rospy
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (self.status is not None and self.status.state == "running"):
            time.sleep(0.1)
        self.assertIsNotNone(self.status, "no driver status under the namespace")
        self.assertEqual(self.status.state, "running", self.status.reason)
        self.assertTrue(self.status.dry_run)
        with self.lock:
            self.dry.clear()
            first = np.array(self.joints[-1].position)
            self.assertTrue(all(n.startswith(self.prefix + "_") for n in self.joints[-1].name), self.joints[-1].name)
        time.sleep(self.window)
        with self.lock:
            dry, controller_msgs, last = list(self.dry), self.controller_msgs, np.array(self.joints[-1].position)
        self.assertGreater(len(dry), 10 * self.window * 0.5, "too few dry-run commands")
        self.assertEqual(controller_msgs, 0, "a command reached a controller in a dry run")
        self.assertEqual(list(dry[-1].name), list(controller_names(self.prefix)))
        values = np.array([m.position for m in dry])
        self.assertTrue(np.all(np.isfinite(values)))
        self.assertTrue(np.all(values >= joint_map.COMMAND_LOWER - 1e-9) and np.all(values <= joint_map.COMMAND_UPPER + 1e-9))
        self.assertGreater(np.ptp(values, axis=0).max(), 0.01, "the dry-run commands do not vary (random policy)")
        self.assertLess(np.abs(last - first).max(), 0.05, "the hand moved during a dry run")
        # Every topic lives under the namespace (tf and rosout are global by convention).
        master = rosgraph.Master(rospy.get_name())
        ns = rospy.get_namespace()
        topics = [t for t, _ in master.getPublishedTopics("")]
        stray = [t for t in topics if not t.startswith(ns) and t not in GLOBAL_OK]
        self.assertEqual(stray, [], f"topics outside {ns}")
        for node in ("hand_driver", "policy", "sim_hand", "goal_manager"):
            uri = master.lookupNode(ns + node)
            self.assertTrue(uri.startswith("http://127.0.0.1:"), f"{node} is not on loopback: {uri}")
        buffer = tf2_ros.Buffer()
        tf2_ros.TransformListener(buffer)
        t = buffer.lookup_transform("world", "hand_origin", rospy.Time(0), rospy.Duration(10.0)).transform.translation
        self.assertEqual([round(t.x, 6), round(t.y, 6), round(t.z, 6)], [1.0, 0.87, 0.2])


def main() -> int:
    import rospy
    import rostest

    rospy.init_node("launch_check")
    rostest.rosrun("dexhand_ros", "launch_check", SimDryRunInNamespace)
    return 0
