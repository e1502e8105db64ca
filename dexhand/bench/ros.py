"""``dexhand bench ros``: the closed loop of sim_demo.launch on a private master, measured.

Figures: image-stamp -> command latency (p50/p99, from the driver's /dexhand/driver/latency, one
sample per forwarded action), achieved control rate (policy actions/s), and missed cycles (periods
the policy missed by starting late, plus cycles it skipped for lack of fresh inputs).
Targets (issue 4, 2-core machine): p99 < 30 ms and 0 missed cycles over 5 minutes (--seconds 300).
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from dexhand.report import format_table

NODES = ("/sim_hand", "/hand_driver", "/policy", "/goal_manager")
SHIPPED_POLICY = Path(__file__).resolve().parent.parent / "models" / "policy.onnx"


def run(seconds: float = 30.0, policy: str | None = None, warmup: float = 3.0,
        pose_source: str = "gt") -> dict[str, Any]:
    """Run the simulated rig; ``policy`` defaults to the shipped ONNX policy (else 'random').

    ``pose_source`` 'estimator' closes the loop through the cameras and the shipped pose CNN
    instead of the simulator's cube pose, with the rig's calibration (its nominal camera poses), so a
    model with a centre head triangulates the position as on a calibrated robot."""
    if policy is None:
        policy = str(SHIPPED_POLICY) if SHIPPED_POLICY.is_file() else "random"
    if pose_source not in ("gt", "estimator"):
        raise ValueError(f"pose_source: 'gt' or 'estimator', got {pose_source!r}")
    from dexhand.ros.launcher import sim_demo

    with tempfile.TemporaryDirectory(prefix="dexhand-bench-ros-calib-") as calib_dir:
        nodes, args = NODES, []
        if pose_source == "estimator":
            from vision.runtime.estimator import DEFAULT_MODEL

            if not DEFAULT_MODEL.is_file():
                raise FileNotFoundError(f"pose_source estimator: no vision model at {DEFAULT_MODEL}")
            nodes = (*NODES, "/pose_estimator")
            args = ["pose_source:=estimator", f"estimator_model:={DEFAULT_MODEL}",
                    f"camera_calibration:={_rig_calibration(Path(calib_dir))}"]
        with sim_demo(policy, nodes, prefix="dexhand-bench-ros-", launch_args=args) as (_, home):
            return {**_measure(seconds, warmup, policy, home), "pose_source": pose_source}


def _rig_calibration(folder: Path) -> Path:
    """The simulated rig's calibration file: ideal pinhole intrinsics and the scene's camera poses."""
    from vision.calibrate import scene_calibration
    from vision.runtime.calibration import save_calibration

    path = folder / "sim_calib.yaml"
    save_calibration(path, scene_calibration())
    return path


def _measure(seconds: float, warmup: float, policy: str, home: Path) -> dict[str, Any]:
    import rospy
    from dexhand_msgs.msg import DriverStatus, PolicyDiagnostics, TaskStatus
    from sensor_msgs.msg import JointState
    from std_msgs.msg import Float64
    from tqdm import tqdm

    rospy.init_node("dexhand_bench_ros", anonymous=True, disable_signals=True)
    lock = threading.Lock()
    latencies: list[float] = []
    actions: list[float] = []
    last: dict[str, Any] = {}
    recording = threading.Event()

    def on_latency(msg) -> None:
        if recording.is_set():
            with lock:
                latencies.append(msg.data)

    def on_action(_msg) -> None:
        if recording.is_set():
            with lock:
                actions.append(time.monotonic())

    rospy.Subscriber("/dexhand/driver/latency", Float64, on_latency, queue_size=100)
    rospy.Subscriber("/dexhand/policy/action", JointState, on_action, queue_size=100)
    rospy.Subscriber("/dexhand/policy/diagnostics", PolicyDiagnostics, lambda m: last.update(diag=m), queue_size=10)
    rospy.Subscriber("/dexhand/driver/status", DriverStatus, lambda m: last.update(status=m), queue_size=10)
    rospy.Subscriber("/dexhand/task_status", TaskStatus, lambda m: last.update(task=m), queue_size=10)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (last.get("status") and last["status"].state == "running"):
        time.sleep(0.1)
    if not (last.get("status") and last["status"].state == "running"):
        raise RuntimeError(f"the driver never reached 'running' (status {last.get('status')}); see {home}")
    time.sleep(warmup)
    start_diag = last["diag"]
    start_goals = last["task"].goals_reached if last.get("task") else 0
    recording.set()
    start = time.monotonic()
    for _ in tqdm(range(int(seconds)), desc="bench ros", unit="s", leave=False):
        time.sleep(1.0)
    time.sleep(max(0.0, seconds - int(seconds)))
    recording.clear()
    elapsed = time.monotonic() - start
    end_diag, status, task = last["diag"], last["status"], last.get("task")
    rospy.signal_shutdown("bench done")
    lat = np.array(latencies) * 1000.0
    return {
        "seconds": elapsed,
        "policy": policy,
        "actions": len(actions),
        "control_rate_hz": (len(actions) - 1) / (actions[-1] - actions[0]) if len(actions) > 1 else 0.0,
        "latency_ms_p50": float(np.percentile(lat, 50)) if lat.size else float("nan"),
        "latency_ms_p99": float(np.percentile(lat, 99)) if lat.size else float("nan"),
        "latency_ms_max": float(lat.max()) if lat.size else float("nan"),
        "late_cycles": int(end_diag.late_cycles - start_diag.late_cycles),
        "skipped_cycles": int(end_diag.skipped_cycles - start_diag.skipped_cycles),
        "goals_reached": int(task.goals_reached - start_goals) if task else 0,
        "episodes_ended": int(task.episode) if task else 0,
        "driver_state": status.state,
        "rejected_actions": int(status.rejected_actions),
        "logs": str(home),
    }


def print_results(r: dict[str, Any]) -> None:
    rows = [
        {"figure": "control rate (policy actions/s; target 12.5)", "value": r["control_rate_hz"]},
        {"figure": "image stamp -> command latency p50 (ms)", "value": r["latency_ms_p50"]},
        {"figure": "image stamp -> command latency p99 (ms; target < 30)", "value": r["latency_ms_p99"]},
        {"figure": "image stamp -> command latency max (ms)", "value": r["latency_ms_max"]},
        {"figure": "missed cycles: late (target 0)", "value": r["late_cycles"]},
        {"figure": "missed cycles: skipped, inputs missing/stale", "value": r["skipped_cycles"]},
        {"figure": "actions measured", "value": r["actions"]},
        {"figure": "goals reached (successes) during the run", "value": r["goals_reached"]},
        {"figure": "driver state at end / rejected actions", "value": f"{r['driver_state']} / {r['rejected_actions']}"},
    ]
    print(format_table(rows, title=f"dexhand bench ros: sim_demo.launch, policy {r['policy']}, "
                                   f"pose {r.get('pose_source', 'gt')}, {r['seconds']:.0f} s"))
