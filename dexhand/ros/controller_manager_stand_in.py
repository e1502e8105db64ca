"""A controller_manager stand-in (ros_control's list_controllers / switch_controller service types).

Served by sim_hand (and by the tests): the 20 position controllers of a hand prefix and its two
trajectory controllers, with ros_control's rule that controllers claiming the same joints cannot run
together. No MuJoCo here.
"""

from __future__ import annotations

import threading

from dexhand.robot.hand_names import controller_names


class ControllerManagerStandIn:
    """list_controllers / switch_controller over the sim's controllers, with ros_control's semantics."""

    POSITION_TYPE = "sr_mechanism_controllers/SrhJointPositionController"
    TRAJECTORY_TYPE = "position_controllers/JointTrajectoryController"

    def __init__(self, rospy, prefix: str, running: str, namespace: str = "controller_manager") -> None:
        from controller_manager_msgs.msg import ControllerState, HardwareInterfaceResources
        from controller_manager_msgs.srv import ListControllers, SwitchController

        if running not in ("position", "trajectory"):
            raise ValueError(f"~running_controllers {running!r}: use 'position' or 'trajectory'")
        self.rospy, self.ControllerState, self.Resources = rospy, ControllerState, HardwareInterfaceResources
        self.position = list(controller_names(prefix))
        self.trajectory = [prefix + "_trajectory_controller", prefix + "_wr_trajectory_controller"]
        self.lock = threading.Lock()
        self.states = {c: ("running" if running == "position" else "stopped") for c in self.position}
        self.states.update({c: ("running" if running == "trajectory" else "stopped") for c in self.trajectory})
        self.switches = 0
        self.services = [rospy.Service(namespace + "/list_controllers", ListControllers, self.on_list),
                         rospy.Service(namespace + "/switch_controller", SwitchController, self.on_switch)]
        self.calls: list = []  # (start, stop) of every accepted switch

    def running(self, index: int) -> bool:
        return self.states[self.position[index]] == "running"

    def on_list(self, _req):
        from controller_manager_msgs.srv import ListControllersResponse

        with self.lock:
            out = [self.ControllerState(name=n, state=s, type=self.POSITION_TYPE if n in self.position
                                        else self.TRAJECTORY_TYPE,
                                        claimed_resources=[self.Resources("hardware_interface::PositionJointInterface",
                                                                          [])])
                   for n, s in self.states.items()]
        return ListControllersResponse(controller=out)

    def on_switch(self, req):
        from controller_manager_msgs.srv import SwitchControllerResponse

        with self.lock:
            unknown = [n for n in list(req.start_controllers) + list(req.stop_controllers) if n not in self.states]
            if unknown and req.strictness == req.STRICT:
                self.rospy.logerr(f"sim_hand: switch_controller: unknown controllers {unknown}")
                return SwitchControllerResponse(ok=False)
            after = dict(self.states)
            for n in req.stop_controllers:
                if n in after:
                    after[n] = "stopped"
            for n in req.start_controllers:
                if n in after:
                    after[n] = "running"
            if any(after[c] == "running" for c in self.position) and any(after[c] == "running" for c in self.trajectory):
                self.rospy.logerr("sim_hand: switch_controller refused: position and trajectory controllers "
                                  "would claim the same joints")
                return SwitchControllerResponse(ok=False)
            self.states = after
            self.switches += 1
            self.calls.append((list(req.start_controllers), list(req.stop_controllers)))
        self.rospy.loginfo(f"sim_hand: controllers switched: started {list(req.start_controllers)}, "
                           f"stopped {list(req.stop_controllers)}")
        return SwitchControllerResponse(ok=True)
