"""The hand driver's logic: policy actions -> safe controller commands, with e-stop and watchdog.

The ROS node (``dexhand.ros.hand_driver``) only moves messages in and out of ``DriverCore``; every
decision is here, in model-free numpy, so it can be tested without a master and runs on the robot PC.
States: ``waiting`` (no joint state yet: nothing is sent), ``running``, ``holding`` (an input is
stale: actions are refused and the last safe targets stay), ``estop`` (until released).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from dexhand.robot import joint_map
from dexhand.robot.hand_names import ACTUATORS, CONTROLLERS
from dexhand.robot.safety import CommandFilter, SafetyConfig, Watchdog

COMMAND_TOPIC = re.compile(r"^/(sh_rh_[a-z0-9]+_position_controller)/command$")
WAITING, RUNNING, HOLDING, ESTOP = "waiting", "running", "holding", "estop"


class ControllerMismatch(RuntimeError):
    """The controllers on the robot are not the ones the name table knows: refuse to drive."""


def controllers_from_topics(topics: Iterable[str]) -> set[str]:
    """Controller names from '/sh_rh_ffj0_position_controller/command'-style topic names."""
    found = set()
    for topic in topics:
        match = COMMAND_TOPIC.match(topic)
        if match:
            found.add(match.group(1))
    return found


def check_controllers(found: Iterable[str], expected: Sequence[str] = CONTROLLERS) -> None:
    """Raise ControllerMismatch naming the controllers the name table lacks or does not find."""
    found_set, expected_set = set(found), set(expected)
    unknown = sorted(found_set - expected_set)
    missing = sorted(expected_set - found_set)
    problems = []
    if unknown:
        problems.append("controllers not in the name table (dexhand/robot/hand_names.py): " + ", ".join(unknown))
    if missing:
        problems.append("name-table controllers not found on the robot: " + ", ".join(missing))
    if problems:
        raise ControllerMismatch("; ".join(problems))


@dataclass
class Counters:
    commands_sent: int = 0
    rejected_actions: int = 0
    clamped_values: int = 0
    last_rejection: str = ""


@dataclass
class DriverCore:
    """Decides what the controllers get. Times are seconds on one clock (ROS time in the node)."""

    config: SafetyConfig = field(default_factory=SafetyConfig)
    use_cube_pose: bool = True

    def __post_init__(self) -> None:
        cfg = self.config
        self.filter = CommandFilter(joint_map.COMMAND_LOWER, joint_map.COMMAND_UPPER, cfg.max_step,
                                    cfg.range_margin)
        timeouts = {"joint_states": cfg.joint_state_timeout, "policy actions": cfg.action_timeout}
        if self.use_cube_pose:
            timeouts["cube pose"] = cfg.cube_pose_timeout
        self.watchdog = Watchdog(timeouts)
        self.last_safe: np.ndarray | None = None  # controller commands, ACTUATORS order
        self.estopped = False
        self.state = WAITING
        self.reason = "no joint_states yet"
        self.counters = Counters()

    # ------------------------------------------------------------------------------- inputs
    def on_joint_state(self, names: Sequence[str], positions: Sequence[float], now: float) -> None:
        """Fresh joint angles; the first ones set the hold targets to the measured pose."""
        model = joint_map.model_joint_positions(names, positions)  # KeyError names missing joints
        if not np.all(np.isfinite(model)):
            return  # a broken sensor reading does not count as fresh
        self.watchdog.feed("joint_states", now)
        if self.last_safe is None:
            self.last_safe = self.filter.clamp(joint_map.commands_from_joint_positions(model))

    def on_cube_pose(self, now: float) -> None:
        if self.use_cube_pose:
            self.watchdog.feed("cube pose", now)

    def estop(self, engaged: bool) -> None:
        self.estopped = engaged

    def on_action(self, names: Sequence[str], model_targets: Sequence[float], now: float) -> np.ndarray | None:
        """Commands to publish for one policy action (ACTUATORS order), or None to send nothing."""
        self.watchdog.feed("policy actions", now)
        reason = self._refusal(names, now)
        if reason:
            return self._reject(reason)
        commands = joint_map.commands_from_model_targets(np.asarray(model_targets, dtype=np.float64))
        verdict = self.filter.apply(commands, self.last_safe)
        if verdict.values is None:
            return self._reject("action " + verdict.rejected)
        self.counters.clamped_values += verdict.clamped
        self.counters.commands_sent += 1
        self.last_safe = verdict.values
        return verdict.values

    def _refusal(self, names: Sequence[str], now: float) -> str:
        self.update(now)
        if self.state in (WAITING, ESTOP):
            return self.reason
        if list(names) != joint_map.ACTUATOR_MODEL_NAMES:
            return "action names are not the model's 20 actuators in order"
        stale = [s for s in self.watchdog.stale(now) if not s.startswith("policy actions")]
        return "; ".join(stale)

    def _reject(self, reason: str) -> None:
        self.counters.rejected_actions += 1
        self.counters.last_rejection = reason
        return None

    # ------------------------------------------------------------------------------- state
    def update(self, now: float) -> bool:
        """Re-evaluate the state; True when it changed (the node then publishes the hold targets)."""
        before = self.state
        if self.estopped:
            self.state, self.reason = ESTOP, "e-stop engaged"
        elif self.last_safe is None:
            self.state, self.reason = WAITING, "no joint_states yet"
        else:
            stale = self.watchdog.stale(now)
            if stale:
                self.state, self.reason = HOLDING, "; ".join(stale)
            else:
                self.state, self.reason = RUNNING, ""
        return self.state != before

    def hold_commands(self) -> np.ndarray | None:
        """The last safe targets (what the hand holds), or None before the first joint state."""
        return None if self.last_safe is None else self.last_safe.copy()


CONTROLLER_ORDER = tuple(a.controller for a in ACTUATORS)
