"""``catkin_make install`` of ros_ws: catkin_python_setup puts the robot-side packages in the install
space, so the nodes import there without PYTHONPATH (the system Python, no venv, no repository path)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

pytestmark = [pytest.mark.ros, pytest.mark.slow]
WS = Path(__file__).resolve().parents[2] / "ros_ws"


def test_install_space_imports_without_pythonpath(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    build = subprocess.run(["catkin_make", "-C", str(WS), "install", "--build", str(tmp_path / "build"),
                            f"-DCATKIN_DEVEL_PREFIX={tmp_path / 'devel'}", f"-DCMAKE_INSTALL_PREFIX={tmp_path / 'install'}",
                            "-DPYTHON_EXECUTABLE=/usr/bin/python3", "-DCATKIN_ENABLE_TESTING=OFF"],
                           cwd=WS, env=env, capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, (build.stdout + build.stderr)[-3000:]
    code = ("import dexhand.robot.hand_names as h, controller_manager_msgs.srv as c; "
            "print(h.__file__); print(c.SwitchController._md5sum)")
    clean = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(["bash", "-c", f"source {tmp_path}/install/setup.bash && cd / && python3 -c '{code}'"],
                          env=clean, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    path, md5 = done.stdout.split()
    assert path.startswith(str(tmp_path / "install"))
    assert md5 == "b29a7abc673b2c54c14b54e50f8d06a5"  # ros_control's noetic SwitchController
    assert (tmp_path / "install" / "lib" / "dexhand_ros" / "hand_driver").is_file()
