"""Vectors in the model's order <-> the real hand's names, through ``hand_names`` (numpy only).

The policy speaks model order (24 joint angles in ``JOINTS`` order, 20 actuator targets in
``ACTUATORS`` order); the hand speaks per-joint names on /joint_states and one command per
controller, where a coupled J0 command is ``scale`` x the model target (the sum of real J1 + J2).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dexhand.robot.hand_names import ACTUATORS, JOINTS, MODEL_PREFIX

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


def model_joint_positions(names: Sequence[str], positions: Sequence[float]) -> np.ndarray:
    """A JointState's (names, real angles) -> the 24 model-order model angles; names missing ones."""
    if len(names) != len(positions):
        raise ValueError(f"joint state has {len(names)} names but {len(positions)} positions")
    out = np.full(len(JOINTS), np.nan)
    for name, value in zip(names, positions):
        index = JOINT_INDEX.get(name)
        if index is not None:
            out[index] = value
    missing = [REAL_JOINT_NAMES[i] for i in np.flatnonzero(np.isnan(out))]
    if missing:
        raise KeyError("joint state lacks joints: " + ", ".join(missing))
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
