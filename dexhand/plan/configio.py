"""Planner configs by name or path: ``realtime`` (shipped, <= 80 ms a step) and ``teacher`` (slower)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from dexhand.plan.config import PlannerConfig
from sim.configio import find_config, load_yaml

PLANNER_CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs" / "planner"


def planner_config_path(name: str) -> Path:
    """A YAML path, or the name of a shipped planner config."""
    return find_config(name, PLANNER_CONFIG_DIR, "planner config")


def load_planner_config(name: str = "realtime", overrides: Iterable[str] = ()) -> PlannerConfig:
    return load_yaml(PlannerConfig, planner_config_path(name), overrides)
