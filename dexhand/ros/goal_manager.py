"""``goal_manager`` node: goals, successes and consecutive successes from the cube pose.

Subscribes to ``~cube_pose_topic`` (geometry_msgs/PoseWithCovarianceStamped; the confidence is in the
covariance, see dexhand.ros.convert) and dexhand/set_goal
(geometry_msgs/QuaternionStamped: a goal from outside replaces the sampled one). Publishes
dexhand_msgs/TaskStatus on dexhand/task_status (latched) for every pose: the goal, the rotation
distance, consecutive successes, and the episode number (the policy resets its state when it changes).
"""

from __future__ import annotations

import sys
import threading

from dexhand.robot import quat
from dexhand.robot.goals import GoalConfig, GoalManagerCore
from dexhand.ros.params import config_from_params


class GoalManagerNode:
    def __init__(self, config: GoalConfig) -> None:
        import rospy
        from dexhand_msgs.msg import TaskStatus
        from geometry_msgs.msg import PoseWithCovarianceStamped, QuaternionStamped

        self.rospy, self.TaskStatus = rospy, TaskStatus
        self.core = GoalManagerCore(config)
        self.min_confidence = float(rospy.get_param("~min_confidence", 0.2))
        self.lock = threading.Lock()
        self.pub = rospy.Publisher("dexhand/task_status", TaskStatus, queue_size=10, latch=True)
        rospy.Subscriber(rospy.get_param("~cube_pose_topic", "dexhand/cube_pose"), PoseWithCovarianceStamped, self.on_pose,
                         queue_size=1)
        rospy.Subscriber("dexhand/set_goal", QuaternionStamped, self.on_set_goal, queue_size=1)

    def on_set_goal(self, msg) -> None:
        q = msg.quaternion
        try:
            goal = quat.from_xyzw(q.x, q.y, q.z, q.w)
            with self.lock:
                self.core.set_goal(goal, self.rospy.get_time())
        except ValueError as exc:
            self.rospy.logerr(f"goal_manager: goal refused: {exc}")
            return
        self.rospy.loginfo(f"goal_manager: goal set from dexhand/set_goal: {goal.round(3).tolist()}")

    def on_pose(self, msg) -> None:
        from dexhand.ros.convert import confidence_from_covariance, pose_fault, pose_from_msg

        fault = pose_fault(msg.pose.pose)
        if fault:
            self.rospy.logwarn_throttle(2.0, f"goal_manager: pose ignored: {fault}")
            return
        if confidence_from_covariance(msg.pose.covariance) < self.min_confidence:
            return
        pos, q = pose_from_msg(msg.pose.pose)
        try:
            with self.lock:
                event = self.core.update(pos, q, self.rospy.get_time())
                status = self.status(event)
        except ValueError as exc:
            self.rospy.logwarn_throttle(2.0, f"goal_manager: pose ignored: {exc}")
            return
        if event in ("success", "drop", "timeout"):
            self.rospy.loginfo(f"goal_manager: {event}; consecutive successes {status.consecutive_successes}")
        self.pub.publish(status)

    def status(self, event: str):
        core, msg = self.core, self.TaskStatus()
        msg.header.stamp = self.rospy.Time.now()
        g = msg.goal
        g.x, g.y, g.z, g.w = quat.to_xyzw(core.goal)
        msg.rotation_distance = core.distance
        msg.consecutive_successes, msg.goals_reached = core.consecutive_successes, core.goals_reached
        msg.episode, msg.steps_on_goal, msg.last_event = core.episode, core.steps_on_goal, event
        return msg


def main() -> int:
    import rospy

    rospy.init_node("goal_manager")
    try:
        node = GoalManagerNode(config_from_params(GoalConfig))
    except ValueError as exc:
        rospy.logfatal(f"goal_manager: {exc}")
        print(f"goal_manager: {exc}", file=sys.stderr)
        return 1
    rospy.loginfo(f"goal_manager: {node.core.config}")
    rospy.spin()
    return 0
