"""Robot-side code: names and limits of the real Shadow Hand, the safety layer, the drivers.

Runs on the robot PC (ROS Noetic, Python 3.8): numpy only, no torch or mujoco imports.
"""
