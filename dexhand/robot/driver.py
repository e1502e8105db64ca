"""The hand driver's logic: policy actions -> safe controller commands, with e-stop and watchdog.

The ROS node (``dexhand.ros.hand_driver``) only moves messages in and out of ``DriverCore``; every
decision is here, in model-free numpy, so it can be tested without a master and runs on the robot PC.
States: ``waiting`` (no joint state yet: nothing is sent), ``running``, ``holding`` (an input is
stale: actions are refused and the last safe targets stay), ``estop`` (until released). Every change
of state goes to ``on_change(before, after, reason)`` (the node logs it).

Actions come from one source: ``action_source`` (a node name) when given, else the first node that
sends one; actions from any other node are refused and counted (``counters.foreign_actions``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from dexhand.robot import joint_map
from dexhand.robot.hand_names import ACTUATORS, CONTROLLERS
from dexhand.robot.safety import CommandFilter, SafetyConfig, Watchdog, implausible

COMMAND_TOPIC = re.compile(r"^(?:/.*)?/(sh_[rl]h_[a-z0-9]+_position_controller)/command$")
WAITING, RUNNING, HOLDING, ESTOP = "waiting", "running", "holding", "estop"


class ControllerMismatch(RuntimeError):
    """The controllers on the robot are not the ones the name table knows: refuse to drive."""


def controllers_from_topics(topics: Iterable[str], namespace: str = "/") -> set[str]:
    """Controller names from '<namespace>/sh_rh_ffj0_position_controller/command'-style topic names."""
    namespace = namespace.rstrip("/") + "/"
    found = set()
    for topic in topics:
        match = COMMAND_TOPIC.match(topic)
        if match and topic == namespace + match.group(1) + "/command":
            found.add(match.group(1))
    return found


def check_running(states: dict, expected: Sequence[str]) -> None:
    """``states``: controller name -> state from controller_manager's list_controllers. Raise
    ControllerMismatch unless every expected position controller is loaded and running."""
    missing = [c for c in expected if c not in states]
    stopped = [f"{c} ({states[c]})" for c in expected if c in states and states[c] != "running"]
    problems = []
    if missing:
        problems.append("position controllers not loaded in controller_manager: " + ", ".join(missing))
    if stopped:
        problems.append("position controllers loaded but not running: " + ", ".join(stopped))
    if problems:
        raise ControllerMismatch("; ".join(problems))


def plan_switch(states: dict, expected: Sequence[str]) -> tuple:
    """(start, stop): the position controllers to start and the running trajectory controllers to stop."""
    start = [c for c in expected if states.get(c) != "running"]
    stop = sorted(c for c, state in states.items() if state == "running" and "trajectory_controller" in c)
    return start, stop


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
    foreign_actions: int = 0
    clamped_values: int = 0
    last_rejection: str = ""


@dataclass
class DriverCore:
    """Decides what the controllers get. Times are seconds on one clock (ROS time in the node)."""

    config: SafetyConfig = field(default_factory=SafetyConfig)
    use_cube_pose: bool = True
    prefix: str = "rh"
    action_source: str = ""  # "" : the first node that sends an action
    on_change: Callable[[str, str, str], None] | None = None

    def __post_init__(self) -> None:
        cfg = self.config
        lower, upper = joint_map.COMMAND_LOWER, joint_map.COMMAND_UPPER
        self.speed_limits = cfg.speed_limits(lower, upper)
        self.filter = CommandFilter(lower, upper, self.speed_limits, cfg.range_margin, cfg.max_interval)
        self.last_command_time = float("-inf")
        timeouts = {"joint_states": cfg.joint_state_timeout, "policy actions": cfg.action_timeout}
        if self.use_cube_pose:
            timeouts["cube pose"] = cfg.cube_pose_timeout
        self.watchdog = Watchdog(timeouts)
        self.last_safe: np.ndarray | None = None  # controller commands, ACTUATORS order
        self.estopped = False
        self.faults: dict = {}  # name -> reason: external faults (e.g. hand diagnostics) that hold
        self.state = WAITING
        self.reason = "no joint_states yet"
        self.counters = Counters()

    # ------------------------------------------------------------------------------- inputs
    def on_joint_state(self, names: Sequence[str], positions: Sequence[float], now: float) -> None:
        """Fresh joint angles; the first ones set the hold targets to the measured pose."""
        # KeyError names missing joints, NonFiniteJointState the NaN/inf ones: neither counts as fresh.
        model = joint_map.model_joint_positions(names, positions, self.prefix)
        self.watchdog.feed("joint_states", now)
        if self.last_safe is None:
            self.last_safe = self.filter.clamp(joint_map.commands_from_joint_positions(model))
            self.last_command_time = now

    def on_cube_pose(self, now: float) -> None:
        if self.use_cube_pose:
            self.watchdog.feed("cube pose", now)

    def estop(self, engaged: bool) -> None:
        self.estopped = engaged

    def set_fault(self, name: str, reason: str) -> None:
        """An external fault that holds the hand while ``reason`` is non-empty."""
        if reason:
            self.faults[name] = reason
        else:
            self.faults.pop(name, None)

    def on_action(self, names: Sequence[str], model_targets: Sequence[float], now: float,
                  source: str = "") -> np.ndarray | None:
        """Commands to publish for one policy action (ACTUATORS order), or None to send nothing."""
        if not self.accepts(source):
            self.counters.foreign_actions += 1
            self.counters.last_rejection = f"action from {source or 'an unnamed node'}, not the action " \
                                           f"source {self.action_source}"
            return None
        targets = np.asarray(model_targets, dtype=np.float64)
        fault = implausible(targets, self.config.max_abs_target)
        if fault:
            return self._reject("action " + fault)
        # Only a well-formed action is a sign of life: a source that sends nothing but NaN or huge values
        # goes stale, and the driver says it holds instead of looking healthy.
        self.watchdog.feed("policy actions", now)
        reason = self._refusal(names, now)
        if reason:
            return self._reject(reason)
        commands = joint_map.commands_from_model_targets(targets)
        verdict = self.filter.apply(commands, self.last_safe, now - self.last_command_time)
        if verdict.values is None:
            return self._reject("action " + verdict.rejected)
        self.counters.clamped_values += verdict.clamped
        self.counters.commands_sent += 1
        self.last_safe = verdict.values
        self.last_command_time = now
        return verdict.values

    def accepts(self, source: str) -> bool:
        """Whether actions from node ``source`` are taken; the first caller becomes the source if none is set."""
        if not self.action_source:
            self.action_source = source
        return source == self.action_source

    def _refusal(self, names: Sequence[str], now: float) -> str:
        self.update(now)
        if self.state in (WAITING, ESTOP):
            return self.reason
        if list(names) != joint_map.ACTUATOR_MODEL_NAMES:
            return "action names are not the model's 20 actuators in order"
        stale = [s for s in self.watchdog.stale(now) if not s.startswith("policy actions")]
        return "; ".join(stale + [f"{k}: {v}" for k, v in self.faults.items()])

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
            stale = self.watchdog.stale(now) + [f"{k}: {v}" for k, v in self.faults.items()]
            if stale:
                self.state, self.reason = HOLDING, "; ".join(stale)
            else:
                self.state, self.reason = RUNNING, ""
        if self.state != before and self.on_change is not None:
            self.on_change(before, self.state, self.reason)
        return self.state != before

    def hold_commands(self) -> np.ndarray | None:
        """The last safe targets (what the hand holds), or None before the first joint state."""
        return None if self.last_safe is None else self.last_safe.copy()


CONTROLLER_ORDER = tuple(a.controller for a in ACTUATORS)
