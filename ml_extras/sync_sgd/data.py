"""The small task of the experiment: sklearn's bundled 8x8 digits (offline), standardised."""

from __future__ import annotations

import numpy as np
import torch


def load_digits_split(seed: int = 0, test_fraction: float = 0.25) -> tuple[torch.Tensor, ...]:
    """(x_train, y_train, x_test, y_test) as float32/int64 tensors, features standardised with
    training statistics (so SGD with one learning rate behaves)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        digits.data.astype(np.float32), digits.target, test_size=test_fraction,
        random_state=seed, stratify=digits.target)
    mean, std = x_train.mean(0), x_train.std(0) + 1e-3
    return (torch.from_numpy((x_train - mean) / std), torch.from_numpy(y_train).long(),
            torch.from_numpy((x_test - mean) / std), torch.from_numpy(y_test).long())
