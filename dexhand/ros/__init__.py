"""rospy node implementations; the scripts in ros_ws/src/dexhand_ros/scripts only call ``main()``.

Every node except ``sim_hand`` runs on the robot PC (ROS Noetic, Python 3.8): no torch or mujoco.
"""
