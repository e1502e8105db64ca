"""(observation, teacher action) pairs on disk: numbered .npz shards, written whole, read all at once.

A shard is written to a temporary name and renamed, so an interrupted run never leaves half a shard;
the count of complete shards is where a resumed run continues.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


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


def load_shards(folder: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All observations, teacher actions and the DAgger iteration of each sample."""
    obs, act, it = [], [], []
    for path in list_shards(folder):
        try:
            with np.load(path) as z:
                obs.append(z["obs"])
                act.append(z["action"])
                it.append(np.full(len(z["obs"]), int(z["iteration"])))
        except (OSError, KeyError, ValueError) as exc:
            raise ValueError(f"distillation shard {path} is unreadable ({exc}); delete it to go on") from exc
    if not obs:
        return np.zeros((0, 0), np.float32), np.zeros((0, 0), np.float32), np.zeros(0, np.int64)
    return np.concatenate(obs), np.concatenate(act), np.concatenate(it)


def samples_by_iteration(folder: Path) -> dict[int, int]:
    counts: dict[int, int] = {}
    for path in list_shards(folder):
        with np.load(path) as z:
            counts[int(z["iteration"])] = counts.get(int(z["iteration"]), 0) + len(z["obs"])
    return counts
