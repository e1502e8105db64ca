"""Planner configs by name or path: ``realtime`` (shipped, <= 80 ms a step) and ``teacher`` (slower)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from dexhand.plan.config import PlannerConfig
from sim.configio import load_yaml

PLANNER_CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs" / "planner"


def planner_config_path(name: str) -> Path:
    """A YAML path, or the name of a shipped planner config."""
    path = Path(name)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise FileNotFoundError(f"planner config file not found: {path}")
        return path
    shipped = PLANNER_CONFIG_DIR / f"{name}.yaml"
    if not shipped.is_file():
        known = sorted(p.stem for p in PLANNER_CONFIG_DIR.glob("*.yaml"))
        raise FileNotFoundError(f"no planner config {name!r}: give a .yaml path or one of {known}")
    return shipped


def load_planner_config(name: str = "realtime", overrides: Iterable[str] = ()) -> PlannerConfig:
    return load_yaml(PlannerConfig, planner_config_path(name), overrides)
