"""``pose_estimator`` node: three camera images -> cube pose with confidence, at camera rate.

Loads ``vision.runtime.PoseEstimator`` from ``~model`` (a path). Subscribes to the three image
topics (``~image_topics``: camera name -> topic; sensor_msgs/Image rgb8 or bgr8) and estimates once
per set of images whose stamps agree within ``~max_stamp_skew`` s. Publishes geometry_msgs/PoseWithCovarianceStamped
on ``~output_topic`` with the images' stamp, position relative to the hand origin, orientation wxyz.
``~calibration`` (optional): the cameras' calibration file; with extrinsics in it, a model with a centre
head triangulates the cube position (``vision.runtime.geometry``), else the network regresses it.
"""

from __future__ import annotations

import sys
import threading

DEFAULT_CAMERAS = ("cam_left", "cam_right", "cam_top")


def load_estimator(path: str, calibration: str = ""):
    """The vision runtime's estimator for ``path`` (and a calibration file, when given); errors say what is missing."""
    if not path:
        raise ValueError("~model is empty: give the path of an exported pose-estimator model")
    try:
        from vision.runtime import PoseEstimator
    except ImportError as exc:
        raise RuntimeError(f"the vision runtime (vision.runtime.PoseEstimator) does not import: {exc}") from exc
    loader = getattr(PoseEstimator, "load", None)
    if loader is None:
        return PoseEstimator(path)
    return loader(path, calibration=calibration) if calibration else loader(path)


class ImageSync:
    """Keeps the newest image per camera; hands out a full set once per new common stamp."""

    def __init__(self, cameras, max_skew: float) -> None:
        self.cameras, self.max_skew = list(cameras), max_skew
        self.latest: dict = {}
        self.last_used = None
        self.cond = threading.Condition()

    def put(self, camera: str, stamp: float, msg) -> None:
        with self.cond:
            self.latest[camera] = (stamp, msg)
            self.cond.notify()

    def take(self, timeout: float):
        """(stamp, {camera: msg}) for a new matching set, or None after ``timeout`` s."""
        with self.cond:
            if not self.cond.wait_for(self._ready, timeout):
                return None
            stamps = [self.latest[c][0] for c in self.cameras]
            self.last_used = max(stamps)
            return self.latest[self.cameras[0]][1].header.stamp, {c: self.latest[c][1] for c in self.cameras}

    def _ready(self) -> bool:
        if any(c not in self.latest for c in self.cameras):
            return False
        stamps = [self.latest[c][0] for c in self.cameras]
        fresh = self.last_used is None or min(stamps) > self.last_used
        return fresh and max(stamps) - min(stamps) <= self.max_skew


def main() -> int:
    import rospy
    from geometry_msgs.msg import PoseWithCovarianceStamped
    from sensor_msgs.msg import Image

    from dexhand.ros.convert import fill_cube_pose, msg_to_image

    rospy.init_node("pose_estimator")
    try:
        estimator = load_estimator(str(rospy.get_param("~model", "")), str(rospy.get_param("~calibration", "")))
    except (ValueError, RuntimeError, FileNotFoundError) as exc:
        rospy.logfatal(f"pose_estimator: {exc}")
        print(f"pose_estimator: {exc}", file=sys.stderr)
        return 1
    topics = rospy.get_param("~image_topics", {c: f"dexhand/cameras/{c}/image_raw" for c in DEFAULT_CAMERAS})
    sync = ImageSync(sorted(topics), float(rospy.get_param("~max_stamp_skew", 0.02)))
    for camera, topic in topics.items():
        rospy.Subscriber(topic, Image, lambda msg, c=camera: sync.put(c, msg.header.stamp.to_sec(), msg),
                         queue_size=1, buff_size=2 ** 22, tcp_nodelay=True)
    pub = rospy.Publisher(rospy.get_param("~output_topic", "dexhand/cube_pose"), PoseWithCovarianceStamped, queue_size=2,
                          tcp_nodelay=True)
    frame = str(rospy.get_param("~frame_id", "hand_origin"))
    rospy.loginfo(f"pose_estimator: up, images from {topics}")
    while not rospy.is_shutdown():
        got = sync.take(timeout=0.5)
        if got is None:
            continue
        stamp, msgs = got
        try:
            images = {c: msg_to_image(m) for c, m in msgs.items()}
            pos, q, confidence = estimator.estimate(images)
        except ValueError as exc:
            rospy.logwarn_throttle(2.0, f"pose_estimator: images skipped: {exc}")
            continue
        out = PoseWithCovarianceStamped()
        out.header.stamp, out.header.frame_id = stamp, frame
        fill_cube_pose(out, pos, q, float(confidence))
        pub.publish(out)
    return 0
