"""(observation, teacher action) pairs on disk: numbered .npz shards, written whole, read all at once.

A shard is written to a temporary name and renamed, so an interrupted run never leaves half a shard;
the count of complete shards is where a resumed run continues.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import numpy as np


class Samples(NamedTuple):
    obs: np.ndarray  # (n, obs_dim) the student's observations
    action: np.ndarray  # (n, n_actions) the teacher's labels
    iteration: np.ndarray  # (n,) the DAgger iteration that gathered each sample
    shard: np.ndarray  # (n,) the shard each sample came from (consecutive steps share one)


class ShardWriter:
    def __init__(self, folder: Path, shard_size: int) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.shard_size = shard_size
        self._obs: list[np.ndarray] = []
        self._act: list[np.ndarray] = []
        self._iteration = 0

    def add(self, observation: np.ndarray, teacher_action: np.ndarray, iteration: int) -> None:
        if self._obs and iteration != self._iteration:
            self.flush()
        self._iteration = iteration
        self._obs.append(np.asarray(observation, dtype=np.float32))
        self._act.append(np.asarray(teacher_action, dtype=np.float32))
        if len(self._obs) >= self.shard_size:
            self.flush()

    def flush(self) -> Path | None:
        if not self._obs:
            return None
        path = self.folder / f"shard_{len(list_shards(self.folder)):05d}.npz"
        tmp = path.with_suffix(".tmp.npz")
        np.savez_compressed(tmp, obs=np.stack(self._obs), action=np.stack(self._act),
                            iteration=np.int64(self._iteration))
        os.replace(tmp, path)
        self._obs, self._act = [], []
        return path


def list_shards(folder: Path) -> list[Path]:
    return sorted(p for p in Path(folder).glob("shard_*.npz") if not p.name.endswith(".tmp.npz"))


def load_shards(folder: Path) -> Samples:
    """Every sample on disk, in the order it was gathered."""
    obs, act, it, shard = [], [], [], []
    for index, path in enumerate(list_shards(folder)):
        try:
            with np.load(path) as z:
                obs.append(z["obs"])
                act.append(z["action"])
                it.append(np.full(len(z["obs"]), int(z["iteration"])))
                shard.append(np.full(len(z["obs"]), index))
        except (OSError, KeyError, ValueError) as exc:
            raise ValueError(f"distillation shard {path} is unreadable ({exc}); delete it to go on") from exc
    if not obs:
        empty = np.zeros(0, np.int64)
        return Samples(np.zeros((0, 0), np.float32), np.zeros((0, 0), np.float32), empty, empty)
    return Samples(np.concatenate(obs), np.concatenate(act), np.concatenate(it), np.concatenate(shard))


def held_out_shards(shard: np.ndarray, fraction: float) -> np.ndarray:
    """A validation mask of whole shards (every round(1 / fraction)-th one).

    Neighbouring control steps are nearly alike, so a random split would score the fit on copies of its
    training samples; whole shards are stretches of trajectory that the fit never saw.
    """
    if fraction <= 0 or len(shard) == 0:
        return np.zeros(len(shard), bool)
    stride = max(2, round(1.0 / fraction))
    return shard % stride == stride - 1


def samples_by_iteration(folder: Path) -> dict[int, int]:
    counts: dict[int, int] = {}
    for path in list_shards(folder):
        with np.load(path) as z:
            counts[int(z["iteration"])] = counts.get(int(z["iteration"]), 0) + len(z["obs"])
    return counts
