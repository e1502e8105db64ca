"""A real ROS master per test session: free loopback port, own ROS_HOME, stopped with SIGTERM."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def ros_master(tmp_path_factory):
    from dexhand.ros.launcher import RosMaster, check_workspace

    check_workspace()  # a clear error when ros_ws is not built or sourced
    master = RosMaster(tmp_path_factory.mktemp("ros_home"))
    old = master.apply_env()
    yield master
    master.stop()
    for key, value in old.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def test_node(ros_master):
    """This process as a ROS node (rospy allows one per process)."""
    import rospy

    rospy.init_node("dexhand_test", anonymous=True, disable_signals=True)
    yield rospy
    rospy.signal_shutdown("tests done")
