"""Vectors in the model's order <-> the real hand's names, through ``hand_names`` (numpy only).

The policy speaks model order (24 joint angles in ``JOINTS`` order, 20 actuator targets in
``ACTUATORS`` order); the hand speaks per-joint names on /joint_states and one command per
controller, where a coupled J0 command is ``scale`` x the model target (the sum of real J1 + J2).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dexhand.robot.hand_names import ACTUATORS, JOINTS, MODEL_PREFIX, joint_names

JOINT_INDEX = {j.real: i for i, j in enumerate(JOINTS)}
REAL_JOINT_NAMES = [j.real for j in JOINTS]
ACTUATOR_MODEL_NAMES = [a.model for a in ACTUATORS]
COMMAND_SCALE = np.array([a.scale for a in ACTUATORS])
COMMAND_LOWER = np.array([a.lower for a in ACTUATORS])
COMMAND_UPPER = np.array([a.upper for a in ACTUATORS])
JOINT_SIGN = np.array([j.sign for j in JOINTS])  # model angle = sign x real angle
# A negative scale (a sign-flipped joint) swaps which command bound maps to which target bound.
MODEL_TARGET_LOWER = np.minimum(COMMAND_LOWER / COMMAND_SCALE, COMMAND_UPPER / COMMAND_SCALE)
MODEL_TARGET_UPPER = np.maximum(COMMAND_LOWER / COMMAND_SCALE, COMMAND_UPPER / COMMAND_SCALE)


def _actuated_joint_index() -> np.ndarray:
    """Index into JOINTS of the joint each actuator drives ('robot0:A_FFJ1' -> 'robot0:FFJ1')."""
    model_index = {j.model: i for i, j in enumerate(JOINTS)}
    prefix = MODEL_PREFIX + "A_"
    return np.array([model_index[MODEL_PREFIX + a.model[len(prefix):]] for a in ACTUATORS])


ACTUATED_JOINT = _actuated_joint_index()


_INDEX_BY_PREFIX = {"rh": JOINT_INDEX}


def _joint_index(prefix: str) -> dict:
    if prefix not in _INDEX_BY_PREFIX:
        _INDEX_BY_PREFIX[prefix] = {n: i for i, n in enumerate(joint_names(prefix))}
    return _INDEX_BY_PREFIX[prefix]


class NonFiniteJointState(ValueError):
    """A joint state that names every joint but carries NaN or inf angles (a sensor fault)."""


def model_joint_positions(names: Sequence[str], positions: Sequence[float], prefix: str = "rh") -> np.ndarray:
    """A JointState's (names, real angles) -> the 24 model-order model angles.

    Missing joints raise KeyError naming them; NaN/inf angles raise NonFiniteJointState naming them.
    """
    if len(names) != len(positions):
        raise ValueError(f"joint state has {len(names)} names but {len(positions)} positions")
    index_of = _joint_index(prefix)
    out = np.zeros(len(JOINTS))
    seen = np.zeros(len(JOINTS), dtype=bool)
    for name, value in zip(names, positions):
        index = index_of.get(name)
        if index is not None:
            out[index], seen[index] = value, True
    full = joint_names(prefix)
    missing = [full[i] for i in np.flatnonzero(~seen)]
    if missing:
        raise KeyError("joint state lacks joints: " + ", ".join(missing))
    bad = np.flatnonzero(~np.isfinite(out))
    if bad.size:
        raise NonFiniteJointState("joint state has non-finite angles: " +
                                  ", ".join(f"{full[i]}={out[i]}" for i in bad))
    return out * JOINT_SIGN


def real_joint_positions(model_positions: np.ndarray) -> np.ndarray:
    """24 model-order model angles -> the real hand's angles in the same order (REAL_JOINT_NAMES)."""
    return np.asarray(model_positions, dtype=np.float64) * JOINT_SIGN


def commands_from_joint_positions(model_positions: np.ndarray) -> np.ndarray:
    """The command each controller would need to hold the measured pose (coupled: J1 + J2)."""
    real = real_joint_positions(model_positions)
    out = np.empty(len(ACTUATORS))
    for i, actuator in enumerate(ACTUATORS):
        out[i] = sum(real[JOINT_INDEX[r]] for r in actuator.real_joints)
    return out


def commands_from_model_targets(targets: np.ndarray) -> np.ndarray:
    return np.asarray(targets, dtype=np.float64) * COMMAND_SCALE


def model_targets_from_commands(commands: np.ndarray) -> np.ndarray:
    return np.asarray(commands, dtype=np.float64) / COMMAND_SCALE
