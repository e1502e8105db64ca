"""``dexhand bench vision``: latency of one 3-image pose estimate on one core (target p99 < 15 ms).

Times the whole ``PoseEstimator.estimate`` call (checks, resize, ONNX inference, rotation maths) on
200x200 uint8 images, and the ONNX inference alone, with onnxruntime limited to one thread; for a model
with a centre head also the triangulation from three calibrated cameras, which a calibrated estimate
adds (random images rarely give it a cube to triangulate, so it is timed on its own).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from dexhand.report import format_table


def _percentiles(samples: list[float]) -> dict[str, float]:
    a = np.array(samples) * 1000
    return {"mean_ms": float(a.mean()), "p50_ms": float(np.percentile(a, 50)), "p99_ms": float(np.percentile(a, 99)),
            "max_ms": float(a.max())}


def run(seconds: float = 3.0, model: Path | None = None, **_: Any) -> dict[str, Any]:
    from vision.runtime import PoseEstimator

    est = PoseEstimator.load(model, threads=1)
    size = est.pipeline.config.input_size
    rng = np.random.default_rng(0)
    images = {c: rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for c in est.cameras}
    x, _ = est.pipeline.batch(images, est.cameras)
    for _ in range(10):  # warm-up
        est.estimate(images)
    full, net = [], []
    for timings, call in ((full, lambda: est.estimate(images)), (net, lambda: est.run_network(x))):
        end = time.perf_counter() + seconds / 2
        while time.perf_counter() < end:
            t = time.perf_counter()
            call()
            timings.append(time.perf_counter() - t)
    out = {"model": str(model or "default"), "image_size": size, "net_size": est.pipeline.config.net_size,
           "threads": 1, "estimate": {"n": len(full), **_percentiles(full)},
           "inference_only": {"n": len(net), **_percentiles(net)}, "target_p99_ms": 15.0}
    if est.has_centre_head:
        from dexhand.robot.rotations import look_at
        from vision.runtime.geometry import mujoco_camera, pixel_to_net, triangulate_centre

        eyes = [np.array([0.4 * np.cos(a), -0.4, 0.2 + 0.1 * np.sin(a)]) for a in (0.5, 2.6, 1.6)]
        rig = {c: mujoco_camera(eye, look_at(eye, np.zeros(3)), 40.0, size) for c, eye in zip(est.cameras, eyes)}
        uv = np.array([pixel_to_net(g.project(np.zeros((1, 3)))[0], size, est.pipeline.config.crop) for g in rig.values()])
        tri: list[float] = []
        end = time.perf_counter() + seconds / 4
        while time.perf_counter() < end:
            t = time.perf_counter()
            triangulate_centre(uv, rig, size, est.pipeline.config.crop)
            tri.append(time.perf_counter() - t)
        out["triangulation"] = {"n": len(tri), **_percentiles(tri)}
    return out


def print_results(r: dict[str, Any]) -> None:
    rows = [{"measurement": name, "calls": r[key]["n"], "mean ms": r[key]["mean_ms"], "p50 ms": r[key]["p50_ms"],
             "p99 ms": r[key]["p99_ms"], "max ms": r[key]["max_ms"]}
            for name, key in (("estimate() on 3 images", "estimate"), ("ONNX inference only", "inference_only"),
                              ("triangulation, 3 cameras", "triangulation")) if key in r]
    print(format_table(rows, title=f"dexhand bench vision: {r['image_size']}px -> {r['net_size']}px, onnxruntime "
                                   f"1 thread (target p99 < {r['target_p99_ms']:.0f} ms)"))
