"""The rostest files of dexhand_ros (ros_ws/src/dexhand_ros/test/*.test), run through ``rostest``.

Each starts its own master and launch; the checks run in the ``<test>`` node (dexhand/ros/launch_check.py).
ROS_IP/ROS_HOSTNAME are removed from the environment so that loopback comes from the launch file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = [pytest.mark.ros, pytest.mark.slow]
TEST_DIR = Path(__file__).resolve().parents[2] / "ros_ws" / "src" / "dexhand_ros" / "test"


@pytest.mark.parametrize("test_file", sorted(p.name for p in TEST_DIR.glob("*.test")))
def test_rostest(test_file, tmp_path):
    from dexhand.ros.launcher import check_workspace

    check_workspace()
    if shutil.which("rostest") is None:
        pytest.fail("rostest not found: install python3-rostest (make setup)")
    env = {k: v for k, v in os.environ.items() if k not in ("ROS_IP", "ROS_HOSTNAME", "ROS_MASTER_URI",
                                                             "ROS_NAMESPACE")}
    env.update(ROS_HOME=str(tmp_path), ROS_LOG_DIR=str(tmp_path / "log"), PYTHONUNBUFFERED="1")
    done = subprocess.run(["rostest", "--text", "--results-base-dir", str(tmp_path / "results"), "dexhand_ros",
                           test_file], env=env, capture_output=True, text=True, timeout=300)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-4000:]
    assert "SUMMARY" in out and "* RESULT: SUCCESS" in out, out[-4000:]
