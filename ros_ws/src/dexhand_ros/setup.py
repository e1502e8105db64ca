# catkin_python_setup(): the robot-side Python packages of the repository (two levels up), so that
# the devel and the install space import them without PYTHONPATH. No torch/mujoco code is listed:
# sim_hand (development machine only) needs the repository's own install (pip install -e .).
from catkin_pkg.python_setup import generate_distutils_setup
from setuptools import setup

setup(**generate_distutils_setup(
    packages=["dexhand", "dexhand.robot", "dexhand.ros", "dexhand.deploy", "vision", "vision.runtime"],
    package_dir={"": "../../.."},
))
