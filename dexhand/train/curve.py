"""Training-curve summary from TensorBoard logs: a PNG of the key scalars and a JSON of their values."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

CURVE_TAGS = ("task/consecutive_successes_mean", "task/drop_rate", "rollout/ep_rew_mean", "curriculum/stage",
              "curriculum/goal_max_angle", "time/fps")


def read_scalars(tb_dir: Path, tags: tuple[str, ...] = CURVE_TAGS) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out: dict[str, list[tuple[int, float]]] = {}
    for events in sorted(Path(tb_dir).rglob("events.out.tfevents.*")):
        acc = EventAccumulator(str(events.parent), size_guidance={"scalars": 0})
        acc.Reload()
        for tag in tags:
            if tag in acc.Tags().get("scalars", []):
                out.setdefault(tag, []).extend((e.step, e.value) for e in acc.Scalars(tag))
    return {k: sorted(set(v)) for k, v in out.items()}


def summarize(tb_dir: Path, png: Path | None = None) -> dict[str, Any]:
    scalars = read_scalars(tb_dir)
    summary: dict[str, Any] = {}
    for tag, points in scalars.items():
        steps = [p[0] for p in points]
        values = [p[1] for p in points]
        tail = values[-max(1, len(values) // 10):]
        summary[tag] = {"first": values[0], "last": values[-1], "max": max(values),
                        "last_10pct_mean": sum(tail) / len(tail), "steps": steps[-1], "points": len(points)}
    if png is not None and scalars:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, len(scalars), figsize=(4 * len(scalars), 3))
        for ax, (tag, points) in zip(axes if len(scalars) > 1 else [axes], scalars.items()):
            steps, values = [p[0] for p in points], [p[1] for p in points]
            ax.plot(steps, values, alpha=0.35, lw=0.8)
            k = max(1, len(values) // 40)  # a running mean: rollout-to-rollout noise hides the trend
            if k > 1:
                kernel = np.ones(k) / k
                ax.plot(steps[k - 1:], np.convolve(values, kernel, mode="valid"), lw=1.6)
            ax.set_title(tag, fontsize=9)
            ax.set_xlabel("env steps")
        fig.tight_layout()
        png.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(png, dpi=100)
        plt.close(fig)
    return summary
