"""Training checkpoints: model + optimizer (SB3 zip), observation normalization, RNG, curriculum, ADR.

Each checkpoint is a folder ``checkpoints/step_<N>/`` written completely before ``latest`` (a
small text file, replaced atomically) points at it, so a SIGKILL loses at most one interval.
"""

from __future__ import annotations

import os
import pickle
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch as th

MODEL_FILE = "model.zip"
NORMALIZER_FILE = "vecnormalize.pkl"
STATE_FILE = "trainer_state.pkl"
CONFIG_FILE = "config.yaml"
KEEP = 3  # older checkpoints are deleted


@dataclass
class Checkpoint:
    path: Path

    @property
    def model(self) -> Path:
        return self.path / MODEL_FILE

    @property
    def normalizer(self) -> Path:
        return self.path / NORMALIZER_FILE

    @property
    def state(self) -> Path:
        return self.path / STATE_FILE

    def load_state(self) -> dict[str, Any]:
        with self.state.open("rb") as fh:
            return pickle.load(fh)


def checkpoints_dir(run_dir: Path) -> Path:
    return Path(run_dir) / "checkpoints"


def latest(run_dir: Path) -> Checkpoint | None:
    pointer = checkpoints_dir(run_dir) / "latest"
    if not pointer.is_file():
        return None
    path = checkpoints_dir(run_dir) / pointer.read_text().strip()
    return Checkpoint(path) if (path / MODEL_FILE).is_file() else None


def resolve(path: Path) -> Checkpoint:
    """A run folder, a checkpoint folder or a model.zip -> the checkpoint; clear error otherwise."""
    path = Path(path)
    if path.is_file() and path.name == MODEL_FILE:
        return Checkpoint(path.parent)
    if (path / MODEL_FILE).is_file():
        return Checkpoint(path)
    found = latest(path) if path.is_dir() else None
    if found is None:
        raise FileNotFoundError(f"no training checkpoint at {path} (expected a run folder, a checkpoint folder "
                                f"or a {MODEL_FILE})")
    return found


def rng_state() -> dict[str, Any]:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": th.get_rng_state()}


def restore_rng(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    th.set_rng_state(state["torch"])


def save(run_dir: Path, model: Any, normalizer: Any | None, trainer_state: dict[str, Any], config_yaml: str) -> Checkpoint:
    root = checkpoints_dir(run_dir)
    root.mkdir(parents=True, exist_ok=True)
    name = f"step_{model.num_timesteps:010d}"
    tmp = root / (name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    model.save(tmp / MODEL_FILE)
    if normalizer is not None:
        normalizer.save(str(tmp / NORMALIZER_FILE))
    with (tmp / STATE_FILE).open("wb") as fh:
        pickle.dump({**trainer_state, "rng": rng_state(), "num_timesteps": model.num_timesteps}, fh)
    (tmp / CONFIG_FILE).write_text(config_yaml)
    final = root / name
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    pointer_tmp = root / "latest.tmp"
    pointer_tmp.write_text(name)
    os.replace(pointer_tmp, root / "latest")
    for old in sorted(p for p in root.glob("step_*") if p.is_dir() and not p.name.endswith(".tmp"))[:-KEEP]:
        shutil.rmtree(old, ignore_errors=True)
    return Checkpoint(final)
