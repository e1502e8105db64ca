"""Automatic Domain Randomization (OpenAI, arXiv 1910.07113) over the simulator's randomization knobs.

Every knob (``sim.randomizers.KNOBS``: cube size, masses, each friction coefficient, gravity noise,
observation noise, ...) has a sampling range [lower, upper] whose two bounds move on their own.
They start at the nominal value (or ``initial_fraction`` of the hand-written range) and may grow past
the hand-written ranges up to safe caps (``caps``). Each episode:

- with probability ``boundary_probability`` one bound is probed: its knob is pinned at that bound
  (lo == hi) while every other knob is sampled uniformly within its current range;
- otherwise every knob is sampled within its current range.

A probe's consecutive successes go to that bound's buffer; when ``buffer_size`` have gathered, a mean of
at least ``widen_at`` moves the bound outward by one step, at most ``narrow_at`` moves it inward (never
past the nominal value), and the buffer is cleared (the paper's Algorithm 1).

Factor knobs (multipliers, nominal 1) move in log space, and their episode factors are log-uniform;
spread knobs (stds, scales; nominal 0) move linearly and their lower bound stays at 0. A step is
``step`` x the hand-written extent of that side (log(upper) for a factor's upper bound, the configured
std for a spread), so every knob crosses its hand-written range in about 1/step widenings.

The entropy figure is the paper's: the mean over knobs of log(upper - lower) in the sampling space
(log space for factors), in nats per dimension; a width of 0 counts as ``ENTROPY_FLOOR``.

Envs share one instance (threaded VecEnv), so methods take a lock.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sim.config import RandomizationConfig
from sim.configio import ConfigError
from sim.randomizers import KNOBS, configured_ranges

SIDES = ("lower", "upper")
ENTROPY_FLOOR = 1e-6  # width that stands in for a zero-width range in the entropy figure
PROBE_KEY = "__probe__"

# Safe caps: how far ADR may take each knob (natural units: multipliers for factors, the value for spreads).
DEFAULT_CAPS: dict[str, tuple[float, float]] = {
    "cube_size": (0.85, 1.15),
    "mass": (0.25, 3.0),
    "hand_friction.slide": (0.3, 2.0),
    "hand_friction.torsion": (0.2, 3.0),
    "hand_friction.roll": (0.2, 3.0),
    "cube_friction.slide": (0.3, 2.0),
    "cube_friction.torsion": (0.1, 8.0),
    "cube_friction.roll": (0.1, 8.0),
    "damping": (0.3, 3.0),
    "actuator_gain": (0.3, 3.0),
    "gravity": (0.0, 1.5),
    "timestep": (0.0, 0.2),
    "joint_limits": (0.0, 0.3),
    "action.latency": (0.0, 1.0),
    "action.backlash": (0.0, 0.05),
    "forces": (0.0, 3.0),
    "observation": (0.0, 2.0),
    "visual": (0.0, 1.5),
}
# What no cap may exceed: a factor stays within [1e-2, 1e2], latency within one control step.
HARD_LIMITS: dict[str, tuple[float, float]] = {"action.latency": (0.0, 1.0), "cube_size": (0.5, 1.6)}


@dataclass
class AdrConfig:
    enabled: bool = False
    boundary_probability: float = 0.5  # share of episodes that probe a bound
    buffer_size: int = 8  # probes per decision, per bound
    widen_at: float = 2.0  # mean consecutive successes of a bound's probes to widen it
    narrow_at: float = 0.5  # ... and to narrow it
    step: float = 0.1  # of the hand-written extent of a side, per change
    initial_fraction: float = 0.0  # where bounds start: 0 nominal, 1 the hand-written ranges
    caps: dict[str, list[float]] = field(default_factory=dict)  # knob -> [lo, hi]; overrides DEFAULT_CAPS

    def validate(self) -> None:
        if not 0 < self.boundary_probability <= 1:
            raise ConfigError("adr.boundary_probability: must be in (0, 1]")
        if self.buffer_size < 1:
            raise ConfigError("adr.buffer_size: must be >= 1")
        if self.narrow_at >= self.widen_at:
            raise ConfigError("adr.narrow_at: must be below adr.widen_at")
        if not 0 < self.step <= 1:
            raise ConfigError("adr.step: must be in (0, 1]")
        if self.initial_fraction < 0:
            raise ConfigError("adr.initial_fraction: must be >= 0")
        for knob, cap in self.caps.items():
            if knob not in KNOBS:
                raise ConfigError(f"adr.caps.{knob}: unknown knob (knobs: {sorted(KNOBS)})")
            if len(cap) != 2:
                raise ConfigError(f"adr.caps.{knob}: give [lo, hi]")
        for knob, (lo, hi) in self.all_caps().items():
            where = f"adr.caps.{knob}"
            if KNOBS[knob] == "factor":
                if not 1e-2 <= lo <= 1.0 <= hi <= 1e2:
                    raise ConfigError(f"{where}: a multiplier's caps need 0.01 <= lo <= 1 <= hi <= 100, got [{lo}, {hi}]")
            elif lo != 0.0 or hi < 0.0:
                raise ConfigError(f"{where}: a spread's caps are [0, hi] with hi >= 0, got [{lo}, {hi}]")
            if knob in HARD_LIMITS:
                hard_lo, hard_hi = HARD_LIMITS[knob]
                if lo < hard_lo or hi > hard_hi:
                    raise ConfigError(f"{where}: [{lo}, {hi}] leaves the safe limits [{hard_lo}, {hard_hi}]")

    def all_caps(self) -> dict[str, tuple[float, float]]:
        return {**DEFAULT_CAPS, **{k: (float(v[0]), float(v[1])) for k, v in self.caps.items()}}


def _to_space(knob: str, value: float) -> float:
    """Natural units -> the space bounds move and samples are drawn in (log for factors)."""
    return math.log(value) if KNOBS[knob] == "factor" else value


def _from_space(knob: str, x: float) -> float:
    return math.exp(x) if KNOBS[knob] == "factor" else x


class AutomaticDomainRandomization:
    """The ADR state: bounds per knob (in sampling space), a performance buffer per bound."""

    def __init__(self, cfg: AdrConfig, randomization: RandomizationConfig | None = None) -> None:
        self.cfg = cfg
        self._lock = threading.Lock()
        hand = configured_ranges(randomization or RandomizationConfig())
        caps = cfg.all_caps()
        self.knobs = list(KNOBS)
        # Per knob and side: the step (sampling space, signed outward) and the cap.
        self.steps: dict[tuple[str, str], float] = {}
        self.limits: dict[tuple[str, str], float] = {}
        self.bounds: dict[str, list[float]] = {}
        for knob in self.knobs:
            nominal = _to_space(knob, 1.0 if KNOBS[knob] == "factor" else 0.0)
            cap = [_to_space(knob, c) for c in caps[knob]]
            start = []
            for i, side in enumerate(SIDES):
                extent = _to_space(knob, hand[knob][i]) - nominal  # <= 0 for lower, >= 0 for upper
                movable = KNOBS[knob] == "factor" or side == "upper"
                self.steps[(knob, side)] = cfg.step * extent if movable else 0.0
                self.limits[(knob, side)] = cap[i]
                first = nominal + cfg.initial_fraction * extent
                start.append(max(first, cap[0]) if side == "lower" else min(first, cap[1]))
            self.bounds[knob] = start
        # Bounds that can move: a zero hand-written extent (a knob configured off) or a zero cap stays put.
        self.probed = [(k, s) for k in self.knobs for s in SIDES
                       if self.steps[(k, s)] != 0.0 and self.limits[(k, s)] != _to_space(k, 1.0 if KNOBS[k] == "factor" else 0.0)]
        self.buffers: dict[str, list[float]] = {self._key(k, s): [] for k, s in self.probed}
        self.changes = 0

    @staticmethod
    def _key(knob: str, side: str) -> str:
        return f"{knob}/{side}"

    def ranges(self) -> dict[str, tuple[float, float]]:
        """The current ranges in natural units (multipliers for factors)."""
        with self._lock:
            return {k: (_from_space(k, lo), _from_space(k, hi)) for k, (lo, hi) in self.bounds.items()}

    def episode_ranges(self, rng: np.random.Generator) -> dict[str, Any]:
        """Sampling ranges for one episode; a probe pins one knob at the bound it tests."""
        chosen: dict[str, Any] = self.ranges()
        if self.probed and rng.random() < self.cfg.boundary_probability:
            knob, side = self.probed[int(rng.integers(len(self.probed)))]
            value = chosen[knob][SIDES.index(side)]
            chosen[knob] = (value, value)
            chosen[PROBE_KEY] = (knob, side)
        return chosen

    def report(self, ranges: dict[str, Any], consecutive_successes: int) -> None:
        probe = ranges.get(PROBE_KEY)
        if probe is None:
            return
        knob, side = probe
        with self._lock:
            buf = self.buffers[self._key(knob, side)]
            buf.append(float(consecutive_successes))
            if len(buf) < self.cfg.buffer_size:
                return
            mean = float(np.mean(buf))
            buf.clear()
            if mean >= self.cfg.widen_at:
                self._move(knob, side, outward=True)
            elif mean <= self.cfg.narrow_at:
                self._move(knob, side, outward=False)

    def _move(self, knob: str, side: str, outward: bool) -> None:
        i = SIDES.index(side)
        step = self.steps[(knob, side)]
        nominal = _to_space(knob, 1.0 if KNOBS[knob] == "factor" else 0.0)
        old = self.bounds[knob][i]
        new = old + (step if outward else -step)
        if side == "upper":
            new = min(new, self.limits[(knob, side)]) if outward else max(new, nominal)
        else:
            new = max(new, self.limits[(knob, side)]) if outward else min(new, nominal)
        if new != old:
            self.bounds[knob][i] = new
            self.changes += 1

    def entropy(self) -> float:
        """The ADR paper's normalized entropy: mean log range width (sampling space), nats per dimension."""
        with self._lock:
            widths = [max(hi - lo, ENTROPY_FLOOR) for lo, hi in self.bounds.values()]
        return float(np.mean(np.log(widths)))

    def scalars(self) -> dict[str, float]:
        """TensorBoard scalars: every bound (natural units), the entropy and the number of changes."""
        out = {f"adr/{k}/{side}": v[i] for k, v in self.ranges().items() for i, side in enumerate(SIDES)}
        out["adr/entropy"] = self.entropy()
        out["adr/changes"] = float(self.changes)
        return out

    def state_dict(self) -> dict[str, Any]:
        with self._lock:
            return {"version": 2, "bounds": {k: list(v) for k, v in self.bounds.items()},
                    "buffers": {k: list(v) for k, v in self.buffers.items()}, "changes": self.changes}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "bounds" not in state:  # a checkpoint from the old per-group ADR: start the bounds afresh
            print("[adr] the checkpoint holds the old per-group ADR state: bounds start afresh")
            return
        with self._lock:
            for k, v in state["bounds"].items():
                if k in self.bounds:
                    self.bounds[k] = [float(v[0]), float(v[1])]
            for k, v in state["buffers"].items():
                if k in self.buffers:
                    self.buffers[k] = list(v)
            self.changes = int(state["changes"])
