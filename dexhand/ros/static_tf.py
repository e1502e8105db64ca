"""``static_tf`` node: one static transform (tf2_ros), e.g. the ``hand_origin`` frame of the cube pose.

Params: ``~parent`` (default ``world``), ``~child`` (default ``hand_origin``), ``~xyz`` (3 numbers, m)
and ``~xyzw`` (quaternion, default identity). Debian 12 ships tf2_ros's Python API but not
static_transform_publisher, hence this node.
"""

from __future__ import annotations

import math
import sys


def parse_numbers(value, n: int, name: str) -> list:
    values = value.split() if isinstance(value, str) else list(value)
    try:
        out = [float(v) for v in values]
    except (TypeError, ValueError):
        out = []
    if len(out) != n or not all(math.isfinite(v) for v in out):
        raise ValueError(f"~{name}: expected {n} finite numbers, got {value!r}")
    return out


def main() -> int:
    import rospy
    import tf2_ros
    from geometry_msgs.msg import TransformStamped

    rospy.init_node("static_tf")
    try:
        xyz = parse_numbers(rospy.get_param("~xyz", "0 0 0"), 3, "xyz")
        q = parse_numbers(rospy.get_param("~xyzw", "0 0 0 1"), 4, "xyzw")
    except ValueError as exc:
        rospy.logfatal(f"static_tf: {exc}")
        print(f"static_tf: {exc}", file=sys.stderr)
        return 1
    norm = math.sqrt(sum(v * v for v in q))
    t = TransformStamped()
    t.header.stamp = rospy.Time.now()
    t.header.frame_id = str(rospy.get_param("~parent", "world"))
    t.child_frame_id = str(rospy.get_param("~child", "hand_origin"))
    t.transform.translation.x, t.transform.translation.y, t.transform.translation.z = xyz
    r = t.transform.rotation
    r.x, r.y, r.z, r.w = (v / norm for v in q)
    broadcaster = tf2_ros.StaticTransformBroadcaster()
    broadcaster.sendTransform(t)
    rospy.loginfo(f"static_tf: {t.header.frame_id} -> {t.child_frame_id}: xyz {xyz}, xyzw {q}")
    rospy.spin()
    return 0
