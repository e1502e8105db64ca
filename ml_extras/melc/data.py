"""Binary UCI data sets that install offline: sklearn's bundled sets and Debian's r-cran-mlbench."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np

from ml_extras.common import MissingDataError, r_data_dir, require

Dataset = tuple[np.ndarray, np.ndarray]


def _sklearn(name: str) -> Dataset:
    from sklearn import datasets

    if name == "breast_cancer":
        bunch = datasets.load_breast_cancer()
        return bunch.data, bunch.target
    if name == "wine":  # class 0 (cultivar 1) against the other two
        bunch = datasets.load_wine()
        return bunch.data, (bunch.target == 0).astype(int)
    if name == "iris":  # versicolor against the rest: not linearly separable, two thresholds help
        bunch = datasets.load_iris()
        return bunch.data, (bunch.target == 1).astype(int)
    raise KeyError(name)


def _mlbench(r_name: str) -> Dataset:
    """Read a data frame from mlbench's .rda file; categorical columns become codes, last is the class."""
    rdata = require("rdata")
    path = r_data_dir("mlbench") / f"{r_name}.rda"
    if not path.exists():
        raise MissingDataError(f"{path} is missing: r-cran-mlbench is not unpacked (run `make setup`)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Unknown encoding. Assumed ASCII." for these plain files
        frame = rdata.read_rda(str(path))[r_name]
    label = frame.iloc[:, -1]
    features = frame.iloc[:, :-1].copy()
    for column in features.columns:
        if str(features[column].dtype) == "category":
            features[column] = features[column].astype(float)
    x = features.to_numpy(dtype=np.float64)
    keep = x.std(axis=0) > 0  # Ionosphere's V2 is constant
    y = (label.astype(str).to_numpy() == str(label.cat.categories[-1])).astype(int)
    return x[:, keep], y


LOADERS: dict[str, Callable[[], Dataset]] = {
    "breast_cancer": lambda: _sklearn("breast_cancer"),
    "wine": lambda: _sklearn("wine"),
    "iris": lambda: _sklearn("iris"),
    "sonar": lambda: _mlbench("Sonar"),
    "ionosphere": lambda: _mlbench("Ionosphere"),
    "pima": lambda: _mlbench("PimaIndiansDiabetes"),
}


def load(name: str) -> Dataset:
    """(x, y) with y in {0, 1}."""
    if name not in LOADERS:
        raise KeyError(f"unknown data set {name!r}; choose from {sorted(LOADERS)}")
    return LOADERS[name]()


def synthetic(n: int, dim: int = 10, seed: int = 0) -> Dataset:
    """Two classes whose signal lies in a bimodal direction (where several thresholds pay off)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.normal(size=(n, dim))
    side = rng.choice([-1.0, 1.0], size=n)
    x[:, 0] += np.where(y == 1, 2.5 * side, 0.0)
    x[:, 1] += 0.5 * y
    return x, y
