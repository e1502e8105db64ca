"""``dexhand compare``: several controllers on the same held-out episodes, one table and one plot.

Every entry runs ``dexhand.evaluate.evaluate`` with the same seeds and env overrides, so the rows
differ only in the controller: hold, the PPO-only policy, the distilled and fine-tuned students, the
planner.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from dexhand.evaluate import EvalReport, evaluate
from dexhand.report import format_table, write_json

COLUMNS = ("median", "mean", "p25", "p75", "max", "drop_rate", "act_ms_mean")


def reuse(report: EvalReport, path: Path, episodes: int, seed: int, max_steps: int, goal_mode: str,
          randomization: bool) -> EvalReport:
    """A saved evaluation stands in for a run only if it ran the very same episodes."""
    want = {"episodes": episodes, "seed": seed, "max_steps": max_steps, "goal_mode": goal_mode,
            "randomization": randomization}
    wrong = {k: (getattr(report, k), v) for k, v in want.items() if getattr(report, k) != v}
    if wrong:
        raise ValueError(f"{path} ran other episodes than this comparison: " +
                         ", ".join(f"{k} {have} (want {need})" for k, (have, need) in wrong.items()))
    return report


def compare(entries: list[tuple[str, Any]], episodes: int, seed: int, overrides: list[str], max_steps: int,
            progress: bool = True) -> dict[str, EvalReport]:
    """Evaluate each controller; an entry given as a saved report (``report:PATH``) is checked and reused."""
    from sim.config import EnvConfig
    from sim.configio import apply_overrides

    env_cfg = apply_overrides(EnvConfig(), overrides)
    reports = {}
    for name, controller in entries:
        if isinstance(controller, Path):
            reports[name] = reuse(EvalReport.load(controller), controller, episodes, seed, max_steps,
                                  env_cfg.task.goal_mode, env_cfg.randomization.enabled)
        else:
            reports[name] = evaluate(controller, episodes, seed, overrides, max_steps=max_steps, progress=progress)
        print(f"[compare] {name}: median {reports[name].median:g}, mean {reports[name].mean:.2f}", flush=True)
    return reports


def table(reports: dict[str, EvalReport]) -> list[dict[str, Any]]:
    return [{"controller": name, **{k: getattr(r, k) for k in COLUMNS}} for name, r in reports.items()]


def plot(reports: dict[str, EvalReport], path: Path, title: str) -> Path:
    """Consecutive successes per episode for each controller: a box plot with every episode shown."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(reports)
    data = [reports[n].successes for n in names]
    fig, ax = plt.subplots(figsize=(1.6 * len(names) + 2, 4))
    ax.boxplot(data, showmeans=True, widths=0.5)
    rng = np.random.default_rng(0)
    for i, values in enumerate(data, start=1):
        ax.scatter(i + rng.uniform(-0.12, 0.12, len(values)), values, s=10, alpha=0.5, color="#3b7dd8")
    ax.set_xticks(range(1, len(names) + 1), names, rotation=15)
    ax.set_ylabel("consecutive successes per episode")
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def report(reports: dict[str, EvalReport], title: str, json_path: Path | None, png: Path) -> None:
    print(format_table(table(reports), title=title))
    write_json(json_path, {"title": title, "rows": table(reports),
                           "reports": {name: asdict(r) for name, r in reports.items()}})
    print(f"plot: {plot(reports, png, title)}" + (f", json: {json_path}" if json_path else ""))
