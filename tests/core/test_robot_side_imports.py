"""Robot-side modules must import on a robot PC: no torch, no mujoco, no gymnasium, no sim."""

import subprocess
import sys

ROBOT_MODULES = [
    "dexhand.deploy", "dexhand.deploy.kinematics", "dexhand.robot.hand_names", "dexhand.robot.rotations",
    "dexhand.robot.safety", "dexhand.robot.driver", "dexhand.robot.goals", "dexhand.robot.joint_map",
    "dexhand.robot.stand_ins", "vision.runtime",
]


def test_robot_side_imports_without_torch_mujoco_or_sim():
    blocked = ["torch", "mujoco", "gymnasium", "stable_baselines3", "sim"]
    code = (
        "import sys\n"
        f"for name in {blocked!r}: sys.modules[name] = None  # any import of these now fails\n"
        f"import importlib\nfor m in {ROBOT_MODULES!r}: importlib.import_module(m)\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
