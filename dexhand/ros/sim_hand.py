"""``sim_hand`` node: the MuJoCo hand + cube speaking the real Shadow Hand's ROS interface.

Subscribes to the 20 ``sh_<prefix>_<joint>_position_controller/command`` topics (std_msgs/Float64;
a coupled J0 command is divided by its ``scale`` to become the model's target) and holds the last
command. Steps the physics in real time (``~real_time_factor``; with /use_sim_time it also drives
/clock), publishes ``joint_states`` (``<prefix>_*`` names, ``~hand_prefix`` rh | lh) every physics
step (125 Hz at 0.008 s), the three camera images at ``~camera_rate`` and the simulator's cube pose
(geometry_msgs/PoseWithCovarianceStamped, confidence 1) on ``~cube_pose_topic`` with the images'
stamp. All names are relative. Runs on the development machine only (it imports MuJoCo).

Like Shadow's bringup it also serves a controller_manager stand-in
(``controller_manager/list_controllers`` and ``switch_controller``, ros_control's service types):
the 20 position controllers and the ``<prefix>_trajectory_controller`` and
``<prefix>_wr_trajectory_controller``, with ``~running_controllers`` (position | trajectory) running
at start. A stopped position controller ignores its commands; starting position controllers while a
trajectory controller still runs is refused (they claim the same joints). It publishes ``calibrated``
(std_msgs/Bool, latched, true). ``~freeze`` (std_srvs/SetBool) stops the physics and every output,
as a hung hand would (for the fault benchmark).
"""

from __future__ import annotations

import math
import threading
import time

import numpy as np

import sim  # noqa: F401  (picks the offscreen GL backend; must come before the first mujoco import)
from dexhand.robot import joint_map
from dexhand.robot.hand_names import ACTUATORS, check_prefix, controller_names, joint_names
from dexhand.ros.controller_manager_stand_in import ControllerManagerStandIn


class SimHand:
    def __init__(self) -> None:
        import mujoco
        import rospy
        from geometry_msgs.msg import PoseWithCovarianceStamped
        from rosgraph_msgs.msg import Clock
        from sensor_msgs.msg import Image, JointState
        from std_msgs.msg import Bool, Float64

        from sim.env import HAND_ORIGIN, CubeReorientEnv
        from sim.scene import VISION_CAMERAS

        self.rospy = rospy
        self.HAND_ORIGIN = HAND_ORIGIN
        overrides = list(rospy.get_param("~overrides", ["randomization.enabled=false"]))
        self.env = CubeReorientEnv(overrides=overrides)
        self.seed = int(rospy.get_param("~seed", 0))
        self.env.reset(seed=self.seed)
        self.model, self.data = self.env.model, self.env.data
        self.dt = float(self.model.opt.timestep)
        self.cameras = list(rospy.get_param("~cameras", list(VISION_CAMERAS)))
        self.image_size = int(rospy.get_param("~image_size", 200))
        self.camera_period = 1.0 / float(rospy.get_param("~camera_rate", 12.5))
        self.real_time_factor = float(rospy.get_param("~real_time_factor", 1.0))
        self.reset_on_drop = bool(rospy.get_param("~reset_on_drop", True))
        self.drop_height = float(rospy.get_param("~drop_height", -0.06))
        self.use_sim_time = bool(rospy.get_param("/use_sim_time", False))
        prefix = rospy.get_param("~camera_topic_prefix", "dexhand/cameras")
        self.hand_prefix = check_prefix(str(rospy.get_param("~hand_prefix", "rh")))
        self.joint_names = list(joint_names(self.hand_prefix))
        self.frozen = False

        self.lock = threading.Lock()
        self.targets = self.data.ctrl.copy()  # the env's reset set ctrl to the settled pose
        self.ctrl_low = self.model.actuator_ctrlrange[:, 0]
        self.ctrl_high = self.model.actuator_ctrlrange[:, 1]
        self.commands_received = 0
        self.CubePose, self.JointState, self.Clock = PoseWithCovarianceStamped, JointState, Clock
        self.joint_pub = rospy.Publisher("joint_states", JointState, queue_size=10, tcp_nodelay=True)
        self.image_pubs = {c: rospy.Publisher(f"{prefix}/{c}/image_raw", Image, queue_size=2) for c in self.cameras}
        self.pose_pub = rospy.Publisher(rospy.get_param("~cube_pose_topic", "dexhand/cube_pose_gt"), PoseWithCovarianceStamped,
                                        queue_size=2, tcp_nodelay=True)
        self.clock_pub = rospy.Publisher("/clock", Clock, queue_size=10) if self.use_sim_time else None
        self.sim_time = 0.0
        self.hand_qpos = self.env.ids.hand_qpos
        self.snapshot = mujoco.MjData(self.model)
        self.snapshot_stamp = None
        self.snapshot_pending = False
        self.render_cond = threading.Condition()
        self.model_lock = threading.Lock()
        self.ignored_commands = 0
        self.manager = ControllerManagerStandIn(rospy, self.hand_prefix,
                                                str(rospy.get_param("~running_controllers", "position")))
        for index, (actuator, controller) in enumerate(zip(ACTUATORS, controller_names(self.hand_prefix))):
            rospy.Subscriber(controller + "/command", Float64, self._command_callback(index, actuator.scale),
                             queue_size=1, tcp_nodelay=True)
        self.calibrated_pub = rospy.Publisher("calibrated", Bool, queue_size=1, latch=True)
        self.calibrated_pub.publish(Bool(True))
        try:
            from std_srvs.srv import SetBool, SetBoolResponse

            rospy.Service("~freeze", SetBool, lambda req: (setattr(self, "frozen", bool(req.data)),
                                                           SetBoolResponse(True, f"frozen: {bool(req.data)}"))[1])
        except ImportError:
            pass

    def _command_callback(self, index: int, scale: float):
        def callback(msg) -> None:
            value = float(msg.data)
            if not math.isfinite(value):
                self.rospy.logerr_throttle(1.0, f"sim_hand: non-finite command on {ACTUATORS[index].command_topic}")
                return
            if not self.manager.running(index):
                self.ignored_commands += 1
                self.rospy.logwarn_throttle(2.0, f"sim_hand: {self.manager.position[index]} is stopped: "
                                                 f"command ignored")
                return
            with self.lock:
                self.targets[index] = min(max(value / scale, self.ctrl_low[index]), self.ctrl_high[index])
                self.commands_received += 1
        return callback

    def stamp(self):
        return self.rospy.Time.from_sec(self.sim_time) if self.use_sim_time else self.rospy.Time.now()

    def publish_joint_states(self) -> None:
        msg = self.JointState()
        msg.header.stamp = self.stamp()
        msg.name = self.joint_names
        msg.position = joint_map.real_joint_positions(self.data.qpos[self.hand_qpos]).tolist()
        msg.velocity = self.data.qvel[self.env.ids.hand_qvel].tolist()
        self.joint_pub.publish(msg)

    def capture(self) -> None:
        """Snapshot the state the cameras see now; the render thread turns it into images."""
        import mujoco

        with self.render_cond:
            mujoco.mj_copyData(self.snapshot, self.model, self.data)
            self.snapshot_stamp = self.stamp()
            self.snapshot_pending = True
            self.render_cond.notify()

    def render_loop(self) -> None:
        """Renders in its own thread (own GL context) so the 125 Hz physics loop never waits on it."""
        import mujoco

        from dexhand.ros.convert import fill_cube_pose, image_to_msg
        from sim.visual import CameraRenderer, add_pixel_noise

        renderer = CameraRenderer(self.model, self.image_size, self.image_size)
        rcfg = self.env.cfg.randomization
        noise = rcfg.visual.pixel_noise_std * rcfg.strength if (rcfg.enabled and rcfg.visuals) else 0.0
        rng = np.random.default_rng(self.seed)
        qpos = self.env.ids.cube_qpos
        frame = mujoco.MjData(self.model)
        while not self.rospy.is_shutdown():
            with self.render_cond:
                if not self.render_cond.wait_for(lambda: self.snapshot_pending, timeout=0.5):
                    continue
                self.snapshot_pending = False
                stamp = self.snapshot_stamp
                mujoco.mj_copyData(frame, self.model, self.snapshot)
            with self.model_lock:
                views = {c: add_pixel_noise(renderer.render(frame, c), noise, rng) for c in self.cameras}
            cube_pos = frame.qpos[qpos:qpos + 3] - self.HAND_ORIGIN
            q = frame.qpos[qpos + 3:qpos + 7]
            for camera, image in views.items():
                self.image_pubs[camera].publish(image_to_msg(image, stamp, camera))
            pose = self.CubePose()
            pose.header.stamp, pose.header.frame_id = stamp, "hand_origin"
            fill_cube_pose(pose, cube_pos, q / np.linalg.norm(q), 1.0)
            self.pose_pub.publish(pose)
        renderer.close()

    def maybe_reset(self) -> None:
        height = float(self.env.cube_pos[2] - self.HAND_ORIGIN[2])
        if self.reset_on_drop and height < self.drop_height:
            self.seed += 1
            self.rospy.logwarn(f"sim_hand: cube dropped (z {height:+.3f} m), resetting the scene")
            with self.model_lock:  # the render thread reads the model
                self.env.reset(seed=self.seed)
            with self.lock:
                self.targets[:] = self.data.ctrl

    def spin(self) -> None:
        import mujoco

        rospy = self.rospy
        next_step, next_camera = time.monotonic(), 0.0  # camera times are sim times
        while not rospy.is_shutdown():
            now = time.monotonic()
            if self.frozen:
                time.sleep(0.01)
                next_step = time.monotonic()
                continue
            if self.real_time_factor > 0 and now < next_step:
                time.sleep(min(next_step - now, 0.002))
                continue
            # Steps due since the last one (catches up after a slow render, at most 0.1 s at once).
            wall_dt = self.dt / self.real_time_factor if self.real_time_factor > 0 else 0.0
            steps = 1 if wall_dt == 0 else min(12, 1 + int((now - next_step) / wall_dt))
            if wall_dt and now - next_step > 12 * wall_dt:
                next_step = now  # too far behind: drop the backlog rather than run fast
            with self.lock:
                self.data.ctrl[:] = self.targets
            mujoco.mj_step(self.model, self.data, nstep=steps)
            self.sim_time += steps * self.dt
            next_step += steps * wall_dt
            if self.clock_pub is not None:
                self.clock_pub.publish(self.Clock(clock=rospy.Time.from_sec(self.sim_time)))
            self.publish_joint_states()
            if self.sim_time >= next_camera:
                self.capture()
                next_camera = max(next_camera + self.camera_period, self.sim_time)
            self.maybe_reset()


def main() -> int:
    import rospy

    rospy.init_node("sim_hand")
    hand = SimHand()
    threading.Thread(target=hand.render_loop, name="render", daemon=True).start()
    rospy.loginfo(f"sim_hand: up, {len(ACTUATORS)} controllers, cameras {hand.cameras} at "
                  f"{1.0 / hand.camera_period:g} Hz, timestep {hand.dt} s")
    try:
        hand.spin()
    except rospy.ROSInterruptException:
        pass
    hand.env.close()
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
