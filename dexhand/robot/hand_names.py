"""One table from the OpenAI/gymnasium-robotics hand model to the real Shadow Hand's ROS names.

Pitfalls it encodes (Shadow Robot's ROS interface documentation for the noetic Dexterous Hand,
summarised in the README's "ROS 1" section): the model numbers joints from 0 and the real hand
from 1 (model FFJ3..FFJ0 are hand FFJ4..FFJ1, THJ4..THJ0 are THJ5..THJ1, WRJ1/WRJ0 are WRJ2/WRJ1),
and the real hand drives J1+J2 of FF/MF/RF/LF through one "J0" controller whose command is the
sum of both angles. Ranges are the real hand's (degrees in the table, radians in the API).

The table uses the right hand's prefixes (``rh_`` joints, ``sh_rh_`` controllers); a left hand uses
``lh_``/``sh_lh_`` with the same joints: ``joint_names(prefix)`` and ``controller_names(prefix)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MODEL_PREFIX = "robot0:"
REAL_PREFIX = "rh_"
# The model couples J0 (distal) to J1 through tendon T_xFJ1c: 0.00705 * J0 - 0.00805 * J1 stays
# within +-1 mm, so J0 = (0.00805 * J1 +- 0.001) / 0.00705. The centre of that band is the ratio below.
COUPLING_RATIO = 0.00805 / 0.00705  # model J0 angle per model J1 angle
# Real-hand ranges in degrees (Shadow Robot documentation).
REAL_RANGES_DEG: dict[str, tuple[float, float]] = {
    "J1": (0.0, 90.0),
    "J2": (0.0, 90.0),
    "J3": (-15.0, 90.0),
    "J4": (-20.0, 20.0),
    "LFJ5": (0.0, 45.0),
    "THJ1": (-15.0, 90.0),
    "THJ2": (-40.0, 40.0),
    "THJ3": (-12.0, 12.0),
    "THJ4": (0.0, 70.0),
    "THJ5": (-60.0, 60.0),
    "WRJ1": (-40.0, 28.0),
    "WRJ2": (-28.0, 10.0),
}
FINGERS = ("FF", "MF", "RF", "LF")
# Joints whose model angle is the negative of the real one: the model's THJ0 bends over [-90, 0] deg
# where the real THJ1 flexes over [-15, 90] deg (inferred from the ranges; confirm on the hand).
SIGN_FLIPPED = ("THJ0",)


@dataclass(frozen=True)
class JointName:
    """One of the 24 joints: model name, real name, real range in radians; model = sign x real."""

    model: str
    real: str
    lower: float
    upper: float
    sign: float = 1.0


@dataclass(frozen=True)
class ActuatorName:
    """One of the 20 position controllers and the model actuator that stands for it.

    ``command = scale * model_target`` (radians); for coupled J0 controllers the model target is
    the model's J1 angle and the command is the sum of the real J1 and J2 angles; a sign-flipped
    joint has scale -1.
    """

    model: str
    controller: str
    real_joints: tuple[str, ...]
    scale: float
    lower: float
    upper: float

    @property
    def command_topic(self) -> str:
        return "/" + self.controller + "/command"

    @property
    def state_topic(self) -> str:
        return "/" + self.controller + "/state"


def _real_range(real_joint: str) -> tuple[float, float]:
    short = real_joint[len(REAL_PREFIX) :]
    if short in REAL_RANGES_DEG:
        lo, hi = REAL_RANGES_DEG[short]
    else:
        lo, hi = REAL_RANGES_DEG[short[-2:]]  # FFJ3 -> J3
    return math.radians(lo), math.radians(hi)


def _model_to_real_joint(model_short: str) -> str:
    """'FFJ3' -> 'rh_FFJ4', 'WRJ0' -> 'rh_WRJ1' (the model counts from 0, the hand from 1)."""
    prefix, index = model_short[:-1], int(model_short[-1])
    return REAL_PREFIX + prefix + str(index + 1)


def _build_joints() -> tuple[JointName, ...]:
    shorts: list[str] = ["WRJ1", "WRJ0"]
    for finger in FINGERS:
        top = 4 if finger == "LF" else 3
        shorts += [finger + "J" + str(i) for i in range(top, -1, -1)]
    shorts += ["THJ" + str(i) for i in range(4, -1, -1)]
    joints = []
    for short in shorts:
        real = _model_to_real_joint(short)
        lo, hi = _real_range(real)
        sign = -1.0 if short in SIGN_FLIPPED else 1.0
        joints.append(JointName(MODEL_PREFIX + short, real, lo, hi, sign))
    return tuple(joints)


def _build_actuators() -> tuple[ActuatorName, ...]:
    actuators = []
    for joint in JOINTS:
        short = joint.model[len(MODEL_PREFIX) :]
        if short[:2] in FINGERS and short.endswith("J0"):
            continue  # driven through the coupled J1 actuator
        if short[:2] in FINGERS and short.endswith("J1"):
            finger = short[:2]
            reals = (REAL_PREFIX + finger + "J1", REAL_PREFIX + finger + "J2")
            lo = sum(_real_range(r)[0] for r in reals)
            hi = sum(_real_range(r)[1] for r in reals)
            controller = "sh_rh_" + finger.lower() + "j0_position_controller"
            actuators.append(
                ActuatorName(MODEL_PREFIX + "A_" + short, controller, reals, 1.0 + COUPLING_RATIO, lo, hi)
            )
            continue
        controller = "sh_" + joint.real.lower() + "_position_controller"
        actuators.append(
            ActuatorName(
                MODEL_PREFIX + "A_" + short, controller, (joint.real,), joint.sign, joint.lower, joint.upper
            )
        )
    return tuple(actuators)


JOINTS: tuple[JointName, ...] = _build_joints()
ACTUATORS: tuple[ActuatorName, ...] = _build_actuators()
JOINT_BY_MODEL: dict[str, JointName] = {j.model: j for j in JOINTS}
JOINT_BY_REAL: dict[str, JointName] = {j.real: j for j in JOINTS}
ACTUATOR_BY_MODEL: dict[str, ActuatorName] = {a.model: a for a in ACTUATORS}
CONTROLLERS: tuple[str, ...] = tuple(a.controller for a in ACTUATORS)


def real_joint_name(model_joint: str) -> str:
    """'robot0:FFJ3' (or 'FFJ3') -> 'rh_FFJ4'; unknown names raise KeyError naming them."""
    key = model_joint if model_joint.startswith(MODEL_PREFIX) else MODEL_PREFIX + model_joint
    if key not in JOINT_BY_MODEL:
        raise KeyError(f"unknown model joint {model_joint!r} (known: {', '.join(JOINT_BY_MODEL)})")
    return JOINT_BY_MODEL[key].real


def model_joint_name(real_joint: str) -> str:
    if real_joint not in JOINT_BY_REAL:
        raise KeyError(f"unknown real joint {real_joint!r} (known: {', '.join(JOINT_BY_REAL)})")
    return JOINT_BY_REAL[real_joint].model


HAND_PREFIXES = ("rh", "lh")


def check_prefix(prefix: str) -> str:
    """'rh' or 'lh' (Shadow's right and left hands); anything else raises naming the choices."""
    if prefix not in HAND_PREFIXES:
        raise ValueError(f"hand prefix {prefix!r}: use one of {', '.join(HAND_PREFIXES)}")
    return prefix


def prefixed(name: str, prefix: str) -> str:
    """'rh_FFJ1' -> 'lh_FFJ1', 'sh_rh_ffj0_position_controller' -> 'sh_lh_ffj0_position_controller'."""
    check_prefix(prefix)
    if name.startswith(REAL_PREFIX):
        return prefix + "_" + name[len(REAL_PREFIX):]
    if name.startswith("sh_" + REAL_PREFIX):
        return "sh_" + prefix + "_" + name[len("sh_" + REAL_PREFIX):]
    raise ValueError(f"{name!r} has no {REAL_PREFIX!r} or 'sh_{REAL_PREFIX}' prefix")


def joint_names(prefix: str = "rh") -> tuple:
    """The 24 real joint names (JOINTS order) for a hand prefix."""
    return tuple(prefixed(j.real, prefix) for j in JOINTS)


def controller_names(prefix: str = "rh") -> tuple:
    """The 20 position controllers (ACTUATORS order) for a hand prefix."""
    return tuple(prefixed(c, prefix) for c in CONTROLLERS)
