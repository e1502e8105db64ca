"""The safety layer between a policy and the motors: what may reach a controller, and when.

Three rules from the developers' guide: NaN/inf and out-of-range commands never reach a motor, a
command never jumps by more than ``max_step`` per cycle, and a stale sensor makes the hand hold.
Pure numpy so that it runs on the robot PC and is tested without ROS.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class SafetyConfig:
    """Limits of the driver; loaded from ROS params (config/driver.yaml) by the node."""

    max_step: float = 0.35  # rad of command change per action cycle (the env moves <= 0.2 per step)
    joint_state_timeout: float = 0.25  # s; /joint_states come at 125 Hz
    cube_pose_timeout: float = 0.5  # s; poses come at camera rate (10 Hz)
    action_timeout: float = 0.4  # s; actions come at 12.5 Hz
    range_margin: float = 0.0  # rad kept clear of each joint limit

    def __post_init__(self) -> None:
        for name in ("max_step", "joint_state_timeout", "cube_pose_timeout", "action_timeout"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value > 0):
                raise ValueError(f"safety.{name}: must be a positive number, got {value!r}")
        if not (np.isfinite(self.range_margin) and self.range_margin >= 0):
            raise ValueError(f"safety.range_margin: must be >= 0, got {self.range_margin!r}")


@dataclass
class Filtered:
    """A filter's verdict: the values to send (None: send nothing) and what it had to change."""

    values: np.ndarray | None
    clamped: int = 0
    rejected: str = ""


class CommandFilter:
    """Clamp to ranges, limit the change per cycle, refuse non-finite input as a whole."""

    def __init__(self, lower: np.ndarray, upper: np.ndarray, max_step: float, margin: float = 0.0) -> None:
        self.lower = np.asarray(lower, dtype=np.float64) + margin
        self.upper = np.asarray(upper, dtype=np.float64) - margin
        if np.any(self.lower > self.upper):
            raise ValueError("range_margin leaves an empty range for some joints")
        self.max_step = float(max_step)

    def clamp(self, values: np.ndarray) -> np.ndarray:
        return np.clip(values, self.lower, self.upper)

    def apply(self, proposed: np.ndarray, last_safe: np.ndarray) -> Filtered:
        proposed = np.asarray(proposed, dtype=np.float64)
        if proposed.shape != self.lower.shape:
            return Filtered(None, rejected=f"expected {self.lower.shape[0]} values, got {proposed.shape}")
        bad = np.flatnonzero(~np.isfinite(proposed))
        if bad.size:
            return Filtered(None, rejected=f"non-finite values at indices {bad.tolist()}")
        in_range = self.clamp(proposed)
        stepped = np.clip(in_range, last_safe - self.max_step, last_safe + self.max_step)
        safe = self.clamp(stepped)  # last_safe itself is in range, but stay sure
        clamped = int(np.count_nonzero(np.abs(safe - proposed) > 1e-12))
        return Filtered(safe, clamped=clamped)


class Watchdog:
    """Ages of named inputs against their timeouts; an input never seen counts as stale."""

    def __init__(self, timeouts: dict[str, float]) -> None:
        self.timeouts = dict(timeouts)
        self.last_seen: dict[str, float] = {}

    def feed(self, name: str, now: float) -> None:
        if name not in self.timeouts:
            raise KeyError(f"watchdog has no input {name!r} (known: {', '.join(self.timeouts)})")
        self.last_seen[name] = now

    def age(self, name: str, now: float) -> float:
        seen = self.last_seen.get(name)
        return float("inf") if seen is None else now - seen

    def stale(self, now: float) -> list[str]:
        """Descriptions of the stale inputs, e.g. ['joint_states stale (0.41 s)']; [] when all fresh."""
        out = []
        for name, timeout in self.timeouts.items():
            age = self.age(name, now)
            if age > timeout:
                out.append(f"{name} never received" if age == float("inf") else f"{name} stale ({age:.2f} s)")
        return out
