"""``dexhand bench render``: offscreen frames/s of the three vision cameras at their image size."""

from __future__ import annotations

import os
import time
from typing import Any

from dexhand.report import format_table


def run(seconds: float = 3.0, size: int = 200) -> dict[str, Any]:
    from sim.env import CubeReorientEnv
    from sim.scene import VISION_CAMERAS

    env = CubeReorientEnv()
    env.reset(seed=0)
    env.render_views(size)  # creates the GL context
    frames, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        env.render_views(size)
        frames += len(VISION_CAMERAS)
    fps = frames / (time.perf_counter() - start)
    env.close()
    return {"backend": os.environ.get("MUJOCO_GL"), "size": size, "frames_per_s": fps, "triplets_per_s": fps / 3}


def print_results(r: dict[str, Any]) -> None:
    rows = [{"figure": f"frames/s at {r['size']}x{r['size']} ({r['backend']}, shadows and MSAA off)",
             "value": r["frames_per_s"]},
            {"figure": "3-camera sets/s", "value": r["triplets_per_s"]}]
    print(format_table(rows, title="dexhand bench render"))
