"""``dexhand bench policy``: inference latency of the exported policy on one core (p50 / p99).

Measures the robot-side call end to end (observation assembly with forward kinematics + ONNX), and
the ONNX call alone. Target: p99 < 2 ms (the control budget is 80 ms).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from dexhand.report import format_table

SHIPPED = Path(__file__).resolve().parent.parent / "models" / "policy.onnx"


def run(seconds: float = 3.0, model: str | None = None) -> dict[str, Any]:
    from dexhand.deploy import OnnxPolicy

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    path = Path(model) if model else SHIPPED
    policy = OnnxPolicy.load(path)
    rng = np.random.default_rng(0)
    joints = rng.uniform(0.0, 0.5, 24)
    quat = np.array([1.0, 0.0, 0.0, 0.0])
    full, onnx_only = [], []
    obs = policy.observation(joints, np.zeros(3), quat, quat)
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        policy.act(joints, np.zeros(3), quat, quat)
        t1 = time.perf_counter()
        policy.act_observation(obs)
        t2 = time.perf_counter()
        full.append(t1 - t0)
        onnx_only.append(t2 - t1)
    ms = lambda xs, q: float(np.percentile(xs, q) * 1e3)  # noqa: E731
    return {"model": str(path), "recurrent": policy.recurrent, "calls": len(full),
            "act_p50_ms": ms(full, 50), "act_p99_ms": ms(full, 99),
            "onnx_p50_ms": ms(onnx_only, 50), "onnx_p99_ms": ms(onnx_only, 99)}


def print_results(r: dict[str, Any]) -> None:
    rows = [
        {"figure": "act(): FK + observation + ONNX, p50 ms", "value": r["act_p50_ms"]},
        {"figure": "act(): p99 ms (target < 2)", "value": r["act_p99_ms"]},
        {"figure": "ONNX session.run alone, p50 ms", "value": r["onnx_p50_ms"]},
        {"figure": "ONNX session.run alone, p99 ms", "value": r["onnx_p99_ms"]},
        {"figure": "calls", "value": r["calls"]},
    ]
    print(format_table(rows, title=f"dexhand bench policy: {r['model']} (one core)"))
