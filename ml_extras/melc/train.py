"""The MELC experiments: cross-validated accuracy/time on UCI sets, approximation error, speedup."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC
from tqdm import tqdm

from ml_extras.common import Timer
from ml_extras.melc import data
from ml_extras.melc.model import MELCClassifier
from ml_extras.melc.objective import cs_divergence

MELC_VARIANTS: dict[str, dict[str, Any]] = {
    "melc-exact-lbfgs": {"method": "exact", "optimizer": "lbfgs"},
    "melc-exact-cg": {"method": "exact", "optimizer": "cg"},
    "melc-sort-lbfgs": {"method": "sort", "optimizer": "lbfgs"},
    "melc-bin-lbfgs": {"method": "bin", "optimizer": "lbfgs"},
    "melc-bin-cg": {"method": "bin", "optimizer": "cg"},
}
BASELINES = ("linear-svc", "logistic")


@dataclass
class Settings:
    """How big a run is: folds, MELC restarts, iterations, tolerance."""

    datasets: tuple[str, ...]
    folds: int
    restarts: int
    max_iter: int
    tol: float
    speed_n: int
    speed_repeats: int


QUICK = Settings(tuple(data.LOADERS), folds=3, restarts=0, max_iter=60, tol=1e-3, speed_n=1000, speed_repeats=5)
FULL = Settings(tuple(data.LOADERS), folds=10, restarts=3, max_iter=300, tol=1e-3, speed_n=1000, speed_repeats=20)


def make_model(name: str, settings: Settings, seed: int) -> Any:
    """A MELC variant or a linear baseline (both standardize their inputs)."""
    if name in MELC_VARIANTS:
        return MELCClassifier(tol=settings.tol, restarts=settings.restarts, max_iter=settings.max_iter,
                              seed=seed, **MELC_VARIANTS[name])
    if name == "linear-svc":
        return make_pipeline(StandardScaler(), LinearSVC(C=1.0, max_iter=20000, random_state=seed))
    if name == "logistic":
        return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=5000))
    raise KeyError(name)


def objective_error(model: MELCClassifier, x: np.ndarray, y: np.ndarray) -> float:
    """|D_approx - D_exact| at the direction the approximate optimizer found (on its training data)."""
    z = (x - model.mean_) / model.scale_
    positive = y == model.classes_[1]
    exact, _ = cs_divergence(model.direction_, z, positive, "exact")
    approx, _ = cs_divergence(model.direction_, z, positive, model.method, model.tol)
    return abs(approx - exact)


def evaluate_dataset(name: str, settings: Settings, seed: int) -> list[dict[str, Any]]:
    """k-fold accuracy, fit time, and the approximations' measured objective error."""
    x, y = data.load(name)
    folds = StratifiedKFold(settings.folds, shuffle=True, random_state=seed)
    methods = list(MELC_VARIANTS) + list(BASELINES)
    acc: dict[str, list[float]] = {m: [] for m in methods}
    seconds: dict[str, list[float]] = {m: [] for m in methods}
    errors: dict[str, list[float]] = {m: [] for m in methods}
    divergence: dict[str, list[float]] = {m: [] for m in methods}
    for train_idx, test_idx in folds.split(x, y):
        for method in methods:
            model = make_model(method, settings, seed)
            with Timer() as timer:
                model.fit(x[train_idx], y[train_idx])
            seconds[method].append(timer.seconds)
            acc[method].append(float(np.mean(model.predict(x[test_idx]) == y[test_idx])))
            if isinstance(model, MELCClassifier):
                divergence[method].append(model.divergence_)
                if model.method != "exact":
                    errors[method].append(objective_error(model, x[train_idx], y[train_idx]))
    rows = []
    for method in methods:
        rows.append({
            "dataset": name, "n": x.shape[0], "d": x.shape[1], "method": method,
            "acc": float(np.mean(acc[method])), "acc_std": float(np.std(acc[method])),
            "fit_s": float(np.mean(seconds[method])),
            "D_cs": float(np.mean(divergence[method])) if divergence[method] else "",
            "max_obj_err": float(np.max(errors[method])) if errors[method] else "",
            "tol": settings.tol if errors[method] else "",
        })
    return rows


def speed_at_n(settings: Settings, seed: int) -> list[dict[str, Any]]:
    """Per-evaluation time of f and its gradient, and a full fit, at n = settings.speed_n."""
    x, y = data.synthetic(settings.speed_n, seed=seed)
    z = (x - x.mean(0)) / x.std(0)
    positive = y == 1
    rng = np.random.default_rng(seed)
    directions = rng.normal(size=(settings.speed_repeats, z.shape[1]))
    rows = []
    base_eval = base_fit = base_eval_cpu = base_fit_cpu = 0.0
    for method in ("exact", "sort", "bin"):
        cpu0 = time.process_time()  # CPU time: robust to other jobs sharing the cores
        with Timer() as timer:
            for w in directions:
                cs_divergence(w, z, positive, method, settings.tol)
        per_eval_cpu = (time.process_time() - cpu0) / len(directions)
        errors = [abs(cs_divergence(w, z, positive, method, settings.tol)[0]
                      - cs_divergence(w, z, positive, "exact")[0]) for w in directions]
        per_eval = timer.seconds / len(directions)
        model = MELCClassifier(method=method, tol=settings.tol, restarts=2, max_iter=settings.max_iter, seed=seed)
        cpu0 = time.process_time()
        with Timer() as fit_timer:
            model.fit(x, y)
        fit_cpu = time.process_time() - cpu0
        if method == "exact":
            base_eval, base_fit, base_eval_cpu, base_fit_cpu = per_eval, fit_timer.seconds, per_eval_cpu, fit_cpu
        rows.append({
            "method": method, "n": settings.speed_n, "eval_ms": 1e3 * per_eval,
            "eval_speedup": base_eval / per_eval, "fit_s": fit_timer.seconds,
            "fit_speedup": base_fit / fit_timer.seconds, "eval_cpu_ms": 1e3 * per_eval_cpu,
            "eval_cpu_speedup": base_eval_cpu / max(per_eval_cpu, 1e-9), "fit_cpu_s": fit_cpu,
            "fit_cpu_speedup": base_fit_cpu / max(fit_cpu, 1e-9), "train_acc": model.score(x, y),
            "max_obj_err": float(max(errors)), "tol": settings.tol,
        })
    return rows


def run(settings: Settings, seed: int, checkpoint: Path | None = None, resume: bool = False) -> dict[str, Any]:
    """All experiments; finished data sets are kept in a JSON checkpoint so --resume skips them."""
    done: dict[str, list[dict[str, Any]]] = {}
    if resume and checkpoint is not None and checkpoint.exists():
        done = json.loads(checkpoint.read_text())
    for name in tqdm(settings.datasets, desc="melc data sets"):
        if name in done:
            continue
        done[name] = evaluate_dataset(name, settings, seed)
        if checkpoint is not None:
            checkpoint.parent.mkdir(parents=True, exist_ok=True)
            checkpoint.write_text(json.dumps(done))
    accuracy_rows = [row for name in settings.datasets for row in done[name]]
    return {"accuracy": accuracy_rows, "speed": speed_at_n(settings, seed)}
