"""Dataclass configs from private ROS params: unknown keys are errors that name the key."""

from __future__ import annotations

import dataclasses
from typing import Any


def config_from_params(cls: type, namespace: str = "~") -> Any:
    """Build ``cls`` from the params under ``namespace`` (e.g. ``~safety``); missing fields keep defaults."""
    import rospy

    values = rospy.get_param(namespace, {}) if namespace != "~" else {}
    if namespace == "~":
        names = {f.name for f in dataclasses.fields(cls)}
        values = {n: rospy.get_param("~" + n) for n in names if rospy.has_param("~" + n)}
    if not isinstance(values, dict):
        raise ValueError(f"param {namespace} must be a mapping, got {values!r}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"param {namespace}: unknown keys {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    return cls(**values)
