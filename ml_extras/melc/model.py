"""MELC as a classifier: find the direction w maximizing D_CS, then threshold by class densities.

The optimizer works on f(w / ||w||), an unconstrained function of w whose gradient is tangent to
the sphere, so plain L-BFGS or CG from scipy can be used although the problem lives on the sphere.
Classification compares n_c * KDE_c(projection) of the two classes, which yields several
thresholds along w (hence "multithreshold").
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize

from ml_extras.melc.objective import METHODS, Method, cs_divergence, gaussian, silverman_factor

OPTIMIZERS = {"lbfgs": "L-BFGS-B", "cg": "CG"}


@dataclass
class MELCClassifier:
    """Multithreshold Entropy Linear Classifier for two classes.

    method: "exact", "sort" or "bin" objective; tol: allowed |objective error| of the approximation;
    optimizer: "lbfgs" or "cg"; restarts: extra random starting directions (the best D_CS wins).
    """

    method: Method = "exact"
    tol: float = 1e-3
    optimizer: str = "lbfgs"
    restarts: int = 2
    max_iter: int = 200
    seed: int = 0
    direction_: np.ndarray | None = field(default=None, init=False)
    divergence_: float = field(default=float("nan"), init=False)
    n_evaluations_: int = field(default=0, init=False)

    def _validate(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; choose one of {METHODS}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; choose one of {tuple(OPTIMIZERS)}")

    def fit(self, x: np.ndarray, y: np.ndarray) -> MELCClassifier:
        """Standardize x, then maximize D_CS over directions from several starts."""
        self._validate()
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y)
        if x.ndim != 2 or y.shape != (x.shape[0],):
            raise ValueError(f"need x of shape (n, d) and y of shape (n,), got {x.shape} and {y.shape}")
        self.classes_ = np.unique(y)
        if self.classes_.size != 2:
            raise ValueError(f"MELC is a two-class method; got {self.classes_.size} classes")
        self.mean_ = x.mean(axis=0)
        self.scale_ = x.std(axis=0)
        self.scale_[self.scale_ == 0] = 1.0
        z = (x - self.mean_) / self.scale_
        positive = y == self.classes_[1]
        rng = np.random.default_rng(self.seed)
        # start from the mean difference (a cheap, usually good direction) plus random ones
        starts = [z[positive].mean(0) - z[~positive].mean(0)]
        starts += [rng.normal(size=z.shape[1]) for _ in range(self.restarts)]
        self.n_evaluations_ = 0

        def negative(w: np.ndarray) -> tuple[float, np.ndarray]:
            self.n_evaluations_ += 1
            value, grad = cs_divergence(w, z, positive, self.method, self.tol)
            return -value, -grad

        best_value, best_w = -np.inf, starts[0]
        for start in starts:
            if not np.any(start):
                continue
            start = start / np.linalg.norm(start)
            result = minimize(negative, start, jac=True, method=OPTIMIZERS[self.optimizer],
                              options={"maxiter": self.max_iter})
            if -result.fun > best_value:
                best_value, best_w = -result.fun, result.x / np.linalg.norm(result.x)
        self.direction_ = best_w
        self.divergence_ = float(best_value)
        proj = z @ best_w
        self.train_proj_ = (proj[positive], proj[~positive])
        self.bandwidths_ = tuple(silverman_factor(p.size) * max(p.std(), 1e-12) for p in self.train_proj_)
        return self

    def project(self, x: np.ndarray) -> np.ndarray:
        """The standardized data's coordinate along the learned direction."""
        if self.direction_ is None:
            raise RuntimeError("call fit before project/predict")
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.direction_.size:
            raise ValueError(f"need x of shape (n, {self.direction_.size}), got {x.shape}")
        return ((x - self.mean_) / self.scale_) @ self.direction_

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        """log(n_pos KDE_pos) - log(n_neg KDE_neg) along w: positive means the second class."""
        proj = self.project(x)
        scores = []
        for part, sigma in zip(self.train_proj_, self.bandwidths_):
            density = gaussian(proj[:, None] - part[None, :], sigma * sigma).sum(axis=1)
            scores.append(np.log(density + 1e-300))
        return scores[0] - scores[1]

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The class whose count-weighted density is larger at the projection."""
        return np.where(self.decision_function(x) > 0, self.classes_[1], self.classes_[0])

    def score(self, x: np.ndarray, y: np.ndarray) -> float:
        """Accuracy."""
        return float(np.mean(self.predict(x) == np.asarray(y)))
