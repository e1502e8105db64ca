"""The safety layer between a policy and the motors: what may reach a controller, and when.

Rules: NaN/inf and implausible values never reach a motor and out-of-range ones are clamped (with a
margin, ``range_margin``, kept clear of the hardware end-stops); each joint's command moves at most
at its speed limit in rad/s, however fast actions arrive; a stale sensor makes the hand hold.
Pure numpy so that it runs on the robot PC and is tested without ROS.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# The policy's largest move: the simulator's relative actions move a target by at most
# task.action_scale (0.25) x half the joint's control range per control period (0.08 s, 12.5 Hz).
POLICY_PERIOD = 0.08
POLICY_ACTION_SCALE = 0.25
DEFAULT_RANGE_MARGIN = math.radians(3.0)


def policy_speed_limits(lower: np.ndarray, upper: np.ndarray, headroom: float) -> np.ndarray:
    """Per-joint rad/s: ``headroom`` x the fastest the policy moves each joint at 12.5 Hz."""
    half_range = 0.5 * (np.asarray(upper, dtype=np.float64) - np.asarray(lower, dtype=np.float64))
    return headroom * POLICY_ACTION_SCALE * half_range / POLICY_PERIOD


@dataclass
class SafetyConfig:
    """Limits of the driver; loaded from ROS params (config/driver.yaml) by the node."""

    # rad/s of command change: one number for every joint, a list of 20 (controller order), or 0 for
    # the per-joint default (speed_headroom x the policy's largest move per 0.08 s step).
    max_speed: float | list[float] = 0.0
    speed_headroom: float = 1.25
    max_interval: float = 0.12  # s: the longest gap credited to the speed limit (after a pause, ramp)
    max_abs_target: float = 2 * math.pi  # rad: actions beyond this are implausible and refused whole
    joint_state_timeout: float = 0.25  # s; /joint_states come at 125 Hz
    cube_pose_timeout: float = 0.5  # s; poses come at camera rate (12.5 Hz)
    action_timeout: float = 0.4  # s; actions come at 12.5 Hz
    range_margin: float = DEFAULT_RANGE_MARGIN  # rad kept clear of each joint limit (3 deg)

    def __post_init__(self) -> None:
        for name in ("speed_headroom", "max_interval", "max_abs_target", "joint_state_timeout",
                     "cube_pose_timeout", "action_timeout"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and np.isfinite(value) and value > 0):
                raise ValueError(f"safety.{name}: must be a positive number, got {value!r}")
        speeds = np.atleast_1d(np.asarray(self.max_speed, dtype=np.float64))
        if speeds.size not in (1, 20) or not np.all(np.isfinite(speeds)) or np.any(speeds < 0) or \
                (speeds.size == 20 and np.any(speeds == 0)):
            raise ValueError(f"safety.max_speed: a number >= 0 (0: per-joint default) or 20 positive "
                             f"numbers, got {self.max_speed!r}")
        if not (np.isfinite(self.range_margin) and self.range_margin >= 0):
            raise ValueError(f"safety.range_margin: must be >= 0, got {self.range_margin!r}")

    def speed_limits(self, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
        """rad/s per joint (controller order)."""
        speeds = np.atleast_1d(np.asarray(self.max_speed, dtype=np.float64))
        if speeds.size == 1 and speeds[0] == 0:
            return policy_speed_limits(lower, upper, self.speed_headroom)
        return np.broadcast_to(speeds, np.shape(lower)).astype(np.float64)


def implausible(values: np.ndarray, max_abs: float) -> str:
    """Why a vector of targets is refused whole ('' when it is fine): names the values' fault."""
    values = np.asarray(values, dtype=np.float64)
    nonfinite = np.flatnonzero(~np.isfinite(values))
    if nonfinite.size:
        return f"non-finite values at indices {nonfinite.tolist()}"
    huge = np.flatnonzero(np.abs(values) > max_abs)
    if huge.size:
        shown = ", ".join(f"{values[i]:.3g}" for i in huge[:3])
        return f"implausible values (|x| > {max_abs:.3g} rad) at indices {huge.tolist()}: {shown}"
    return ""


@dataclass
class Filtered:
    """A filter's verdict: the values to send (None: send nothing) and what it had to change."""

    values: np.ndarray | None
    clamped: int = 0
    rejected: str = ""


class CommandFilter:
    """Clamp to ranges (minus a margin), limit each joint's speed, refuse non-finite input as a whole."""

    def __init__(self, lower: np.ndarray, upper: np.ndarray, max_speed: np.ndarray, margin: float = 0.0,
                 max_interval: float = 0.12) -> None:
        self.lower = np.asarray(lower, dtype=np.float64) + margin
        self.upper = np.asarray(upper, dtype=np.float64) - margin
        if np.any(self.lower > self.upper):
            raise ValueError("range_margin leaves an empty range for some joints")
        self.max_speed = np.broadcast_to(np.asarray(max_speed, dtype=np.float64), self.lower.shape).copy()
        self.max_interval = float(max_interval)

    def clamp(self, values: np.ndarray) -> np.ndarray:
        return np.clip(values, self.lower, self.upper)

    def apply(self, proposed: np.ndarray, last_safe: np.ndarray, elapsed: float) -> Filtered:
        """``elapsed``: s since ``last_safe`` was sent; each joint may move max_speed x that (capped)."""
        proposed = np.asarray(proposed, dtype=np.float64)
        if proposed.shape != self.lower.shape:
            return Filtered(None, rejected=f"expected {self.lower.shape[0]} values, got {proposed.shape}")
        bad = np.flatnonzero(~np.isfinite(proposed))
        if bad.size:
            return Filtered(None, rejected=f"non-finite values at indices {bad.tolist()}")
        dt = min(max(float(elapsed), 0.0), self.max_interval) if np.isfinite(elapsed) else 0.0
        step = self.max_speed * dt
        in_range = self.clamp(proposed)
        stepped = np.clip(in_range, last_safe - step, last_safe + step)
        safe = self.clamp(stepped)  # last_safe itself is in range, but stay sure
        clamped = int(np.count_nonzero(np.abs(safe - proposed) > 1e-12))
        return Filtered(safe, clamped=clamped)


class Watchdog:
    """Ages of named inputs against their timeouts; an input never seen counts as stale."""

    def __init__(self, timeouts: dict) -> None:
        self.timeouts = dict(timeouts)
        self.last_seen: dict = {}

    def feed(self, name: str, now: float) -> None:
        if name not in self.timeouts:
            raise KeyError(f"watchdog has no input {name!r} (known: {', '.join(self.timeouts)})")
        self.last_seen[name] = now

    def age(self, name: str, now: float) -> float:
        seen = self.last_seen.get(name)
        return float("inf") if seen is None else now - seen

    def stale(self, now: float) -> list:
        """Descriptions of the stale inputs, e.g. ['joint_states stale (0.41 s)']; [] when all fresh."""
        out = []
        for name, timeout in self.timeouts.items():
            age = self.age(name, now)
            if age > timeout:
                out.append(f"{name} never received" if age == float("inf") else f"{name} stale ({age:.2f} s)")
        return out
