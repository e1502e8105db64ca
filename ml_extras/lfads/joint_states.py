"""Turn recorded sensor_msgs/JointState-like sequences into LFADS input tensors.

Records may be ROS messages, any objects with the same attributes, or plain dicts:
``{"header": {"stamp": ...}, "name": [...], "position": [...], "velocity": [...]}``. A stamp may
be a float (seconds), an object with ``to_sec()``, or secs/nsecs (ROS 1) or sec/nanosec (ROS 2)
fields. rospy is never imported: the stack's recordings are read on machines without ROS.

Joint order is fixed by name (sorted, or as given), so recordings whose messages list joints in
different orders line up. Samples are averaged into fixed-width time bins, empty bins are filled
by linear interpolation, channels are z-scored, and the sequence is cut into windows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

FIELDS = ("position", "velocity", "effort")


@dataclass
class JointStateTensor:
    data: torch.Tensor        # (windows, bins_per_window, channels), normalized float32
    joint_names: list[str]    # the fixed joint order
    channel_names: list[str]  # e.g. "position/rh_FFJ1"
    bin_start_s: np.ndarray   # (windows,) start time of each window, seconds from the first stamp
    mean: np.ndarray          # (channels,) used for normalization (add back after denormalizing)
    std: np.ndarray           # (channels,)


def _get(record: Any, key: str, index: int) -> Any:
    if isinstance(record, Mapping):
        if key not in record:
            raise ValueError(f"record {index} has no '{key}' field")
        return record[key]
    if not hasattr(record, key):
        raise ValueError(f"record {index} ({type(record).__name__}) has no '{key}' attribute")
    return getattr(record, key)


def stamp_seconds(stamp: Any, index: int = 0) -> float:
    """Seconds from a float, a ROS 1/2 time object or dict, or anything with to_sec()."""
    if isinstance(stamp, (int, float, np.integer, np.floating)) and not isinstance(stamp, bool):
        seconds = float(stamp)
    elif hasattr(stamp, "to_sec"):
        seconds = float(stamp.to_sec())
    else:
        for whole, frac in (("secs", "nsecs"), ("sec", "nanosec")):
            has = (whole in stamp and frac in stamp) if isinstance(stamp, Mapping) else \
                (hasattr(stamp, whole) and hasattr(stamp, frac))
            if has:
                seconds = float(_get(stamp, whole, index)) + 1e-9 * float(_get(stamp, frac, index))
                break
        else:
            raise ValueError(f"record {index}: cannot read a time from stamp {stamp!r}")
    if not math.isfinite(seconds):
        raise ValueError(f"record {index}: stamp is not finite ({seconds})")
    return seconds


def read_joint_states(records: Sequence[Any], joint_names: Sequence[str] | None = None,
                      fields: Sequence[str] = ("position", "velocity")) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(times (n,), values (n, len(fields) * joints), joint order), sorted by time."""
    if len(records) == 0:
        raise ValueError("no joint-state records given")
    bad = [f for f in fields if f not in FIELDS]
    if bad or not fields:
        raise ValueError(f"fields must be a non-empty subset of {FIELDS}, got {list(fields)}")
    first_names = list(_get(records[0], "name", 0))
    order = list(joint_names) if joint_names is not None else sorted(first_names)
    if len(set(order)) != len(order) or not order:
        raise ValueError(f"joint names must be non-empty and unique, got {order}")
    times = np.empty(len(records))
    values = np.empty((len(records), len(fields) * len(order)))
    for i, record in enumerate(records):
        times[i] = stamp_seconds(_get(_get(record, "header", i), "stamp", i), i)
        names = list(_get(record, "name", i))
        if len(set(names)) != len(names):
            raise ValueError(f"record {i} lists a joint twice: {names}")
        if joint_names is None and set(names) != set(order):
            raise ValueError(f"record {i} has joints {sorted(names)}, the first record has {order}")
        position_of = {name: k for k, name in enumerate(names)}
        missing = [n for n in order if n not in position_of]
        if missing:
            raise ValueError(f"record {i} is missing joints {missing}")
        index = [position_of[n] for n in order]
        for f, field in enumerate(fields):
            field_values = np.asarray(_get(record, field, i), dtype=np.float64)
            if field_values.shape != (len(names),):
                raise ValueError(f"record {i}: '{field}' has {field_values.size} values for {len(names)} joints")
            values[i, f * len(order):(f + 1) * len(order)] = field_values[index]
    if not np.all(np.isfinite(values)):
        raise ValueError("joint-state values contain NaN or infinity")
    by_time = np.argsort(times, kind="stable")
    return times[by_time], values[by_time], order


def bin_by_time(times: np.ndarray, values: np.ndarray, bin_s: float) -> np.ndarray:
    """Average samples into bins of bin_s seconds from the first stamp; interpolate empty bins."""
    if bin_s <= 0:
        raise ValueError(f"bin size must be positive, got {bin_s}")
    index = np.floor((times - times[0]) / bin_s + 1e-9).astype(np.int64)
    n_bins = int(index[-1]) + 1
    sums = np.zeros((n_bins, values.shape[1]))
    counts = np.zeros(n_bins)
    np.add.at(sums, index, values)
    np.add.at(counts, index, 1.0)
    filled = counts > 0
    binned = np.empty_like(sums)
    binned[filled] = sums[filled] / counts[filled, None]
    if not filled.all():
        centers = np.arange(n_bins)
        for ch in range(values.shape[1]):
            binned[~filled, ch] = np.interp(centers[~filled], centers[filled], binned[filled, ch])
    return binned


def joint_states_to_lfads(records: Sequence[Any], bin_s: float = 0.01, window_bins: int = 100,
                          stride_bins: int | None = None, joint_names: Sequence[str] | None = None,
                          fields: Sequence[str] = ("position", "velocity"),
                          stats: tuple[np.ndarray, np.ndarray] | None = None) -> JointStateTensor:
    """Records -> normalized (windows, window_bins, channels) tensor for an LFADS with a Gaussian likelihood.

    ``stats`` = (mean, std) from a training recording normalizes validation data the same way.
    """
    if window_bins < 1:
        raise ValueError(f"window_bins must be >= 1, got {window_bins}")
    stride = stride_bins or window_bins
    if stride < 1:
        raise ValueError(f"stride_bins must be >= 1, got {stride}")
    times, values, order = read_joint_states(records, joint_names, fields)
    binned = bin_by_time(times, values, bin_s)
    if len(binned) < window_bins:
        raise ValueError(f"recording spans {len(binned)} bins of {bin_s}s, fewer than one window ({window_bins})")
    if stats is None:
        mean, std = binned.mean(0), binned.std(0)
    else:
        mean, std = (np.asarray(s, dtype=np.float64) for s in stats)
        if mean.shape != (binned.shape[1],) or std.shape != (binned.shape[1],):
            raise ValueError(f"stats must be two arrays of {binned.shape[1]} channels")
    std = np.where(std > 1e-8, std, 1.0)  # a joint that never moves stays at 0, not NaN
    normalized = (binned - mean) / std
    starts = np.arange(0, len(binned) - window_bins + 1, stride)
    windows = np.stack([normalized[s:s + window_bins] for s in starts])
    channel_names = [f"{field}/{name}" for field in fields for name in order]
    return JointStateTensor(torch.from_numpy(windows.astype(np.float32)), order, channel_names,
                            starts * bin_s, mean, std)
