"""Tests for ml_extras.melc: objective correctness, approximation tolerance, gradients, classifier."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import approx_fprime

from ml_extras.melc.model import MELCClassifier
from ml_extras.melc.objective import (
    cs_divergence,
    cs_divergence_of_projection,
    gaussian,
    pair_potential,
    silverman_factor,
)


def _two_classes(n: int, dim: int, shift: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    positive = rng.random(n) < 0.4
    positive[:2], positive[2:4] = True, False
    x = rng.normal(size=(n, dim))
    x[positive, 0] += shift
    return x, positive


def test_pair_potential_matches_hand_computed_value() -> None:
    pa, pb, v = np.array([0.0, 1.0]), np.array([0.5]), 0.7
    expected = (gaussian(np.array(-0.5), v) + gaussian(np.array(0.5), v)) / 2
    assert pair_potential(pa, pb, v).value == pytest.approx(float(expected))


def test_divergence_matches_closed_form_for_fixed_bandwidth() -> None:
    proj = np.array([0.0, 0.3, 2.0, 2.4])
    positive = np.array([True, True, False, False])
    sigma = 0.5

    def potential(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.mean(gaussian(a[:, None] - b[None, :], 2 * sigma**2)))

    pos, neg = proj[positive], proj[~positive]
    expected = np.log(potential(pos, pos)) + np.log(potential(neg, neg)) - 2 * np.log(potential(pos, neg))
    got = cs_divergence_of_projection(proj, positive, bandwidth=sigma).value
    assert got == pytest.approx(expected)
    # identical class distributions have zero divergence; separated ones positive
    same = cs_divergence_of_projection(np.array([0.0, 1.0, 0.0, 1.0]), positive, bandwidth=sigma).value
    assert same == pytest.approx(0.0, abs=1e-12)
    assert got > 0.5


@pytest.mark.parametrize("method", ["sort", "bin"])
@pytest.mark.parametrize("tol", [1e-2, 1e-4])
@pytest.mark.parametrize("bandwidth", [None, 0.4])
def test_approximation_within_tolerance_of_exact(method: str, tol: float, bandwidth: float | None) -> None:
    for seed in range(4):
        x, positive = _two_classes(400, 4, shift=1.0 + seed, seed=seed)
        w = np.random.default_rng(100 + seed).normal(size=4)
        exact, _ = cs_divergence(w, x, positive, "exact", bandwidth=bandwidth)
        approx, _ = cs_divergence(w, x, positive, method, tol, bandwidth=bandwidth)
        result = cs_divergence_of_projection(x @ (w / np.linalg.norm(w)), positive, method, tol, bandwidth)
        assert abs(approx - exact) <= tol
        assert abs(approx - exact) <= result.error_bound + 1e-12  # the reported bound is a bound
        assert result.error_bound <= tol


def test_approximations_actually_approximate() -> None:
    """A loose tolerance must change the computation (fewer pairs / a grid), not silently be exact."""
    x, positive = _two_classes(600, 3, shift=1.0, seed=1)
    proj = x[:, 0]
    pos = proj[positive]
    v = 2 * (silverman_factor(pos.size) * pos.std()) ** 2
    assert pair_potential(pos, pos, v, "sort", 1e-2).pairs_used < pos.size**2
    exact = pair_potential(pos, pos, v, "exact").value
    assert pair_potential(pos, pos, v, "bin", 1e-2).value != exact


@pytest.mark.parametrize("method", ["exact", "sort", "bin"])
@pytest.mark.parametrize("bandwidth", [None, 0.5])
def test_gradient_matches_finite_differences(method: str, bandwidth: float | None) -> None:
    x, positive = _two_classes(40, 5, shift=1.5, seed=3)
    w = np.random.default_rng(7).normal(size=5)
    tol = 1e-8 if method != "bin" else 1e-6

    def value(v: np.ndarray) -> float:
        return cs_divergence(v, x, positive, method, tol, bandwidth)[0]

    numeric = approx_fprime(w, value, 1e-6)
    analytic = cs_divergence(w, x, positive, method, tol, bandwidth)[1]
    scale = np.abs(numeric).max()
    assert np.abs(numeric - analytic).max() <= (1e-4 if method != "bin" else 2e-2) * scale
    # f(w/||w||) is scale invariant, so the gradient is tangent to the sphere
    assert abs(analytic @ w) <= 1e-8 * np.linalg.norm(w) * np.linalg.norm(analytic) + 1e-12


def test_objective_is_scale_invariant_in_w() -> None:
    x, positive = _two_classes(50, 3, shift=1.0, seed=4)
    w = np.array([0.3, -1.0, 2.0])
    assert cs_divergence(w, x, positive)[0] == pytest.approx(cs_divergence(7.5 * w, x, positive)[0])


@pytest.mark.parametrize("optimizer", ["lbfgs", "cg"])
@pytest.mark.parametrize("method", ["exact", "bin"])
def test_fit_increases_divergence_and_finds_bimodal_direction(optimizer: str, method: str) -> None:
    """Class 1 sits on both sides of class 0 along feature 0: a linear threshold fails, MELC not."""
    rng = np.random.default_rng(5)
    n = 300
    y = rng.integers(0, 2, n)
    x = rng.normal(size=(n, 3)) * [0.5, 1.0, 1.0]
    x[:, 0] += np.where(y == 1, 2.5 * rng.choice([-1.0, 1.0], n), 0.0)
    model = MELCClassifier(method=method, optimizer=optimizer, restarts=2, seed=0, tol=1e-3).fit(x, y)
    z = (x - model.mean_) / model.scale_
    start_value, _ = cs_divergence(np.array([0.0, 1.0, 1.0]), z, y == 1)
    assert model.divergence_ > start_value
    assert abs(model.direction_[0]) > 0.9  # the informative axis
    assert model.score(x, y) > 0.9
    assert model.predict(x).shape == (n,)
    assert model.project(x).shape == (n,)


def test_bad_input_is_rejected_with_clear_errors() -> None:
    x, positive = _two_classes(20, 3, 1.0, 0)
    with pytest.raises(ValueError, match="shape"):
        cs_divergence(np.ones(4), x, positive)
    with pytest.raises(ValueError, match="unknown method"):
        cs_divergence(np.ones(3), x, positive, method="fast")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="two-class"):
        MELCClassifier().fit(x, np.arange(20) % 3)
    with pytest.raises(ValueError, match="tol"):
        cs_divergence(np.ones(3), x, positive, "sort", tol=0.0)
    with pytest.raises(RuntimeError, match="fit"):
        MELCClassifier().predict(x)


# ---------------------------------------------------------------- claims

def _toy_results(err_sort=5e-4, eval_speedup=3.0, fit_speedup=1.5):
    acc = [{"dataset": "iris", "method": "melc-exact-lbfgs", "acc": 0.9, "max_obj_err": "", "tol": ""},
           {"dataset": "iris", "method": "melc-sort-lbfgs", "acc": 0.9, "max_obj_err": err_sort, "tol": 1e-3},
           {"dataset": "iris", "method": "melc-bin-lbfgs", "acc": 0.9, "max_obj_err": 1e-4, "tol": 1e-3}]
    speed = [{"method": m, "n": 1000, "max_obj_err": 0.0 if m == "exact" else 2e-4,
              "eval_cpu_ms": 10.0 / s, "eval_cpu_speedup": s, "fit_cpu_s": 1.0 / f, "fit_cpu_speedup": f}
             for m, s, f in (("exact", 1.0, 1.0), ("sort", eval_speedup, fit_speedup), ("bin", 8.0, 2.0))]
    return {"accuracy": acc, "speed": speed}


def test_melc_claims_follow_the_figures(tmp_path):
    from ml_extras.melc.claims import melc_claims, plot

    bound, evals, fits = melc_claims(_toy_results())
    assert bound["holds"] and evals["holds"] and fits["holds"]
    assert bound["figures"]["max_error"] == 5e-4 and evals["figures"]["eval_cpu_speedup"]["sort"] == 3.0
    assert not melc_claims(_toy_results(err_sort=2e-3))[0]["holds"]
    assert not melc_claims(_toy_results(eval_speedup=0.9))[1]["holds"]
    assert not melc_claims(_toy_results(fit_speedup=0.8))[2]["holds"]
    assert plot(_toy_results(), tmp_path / "m.png").exists()


def test_speed_rows_carry_cpu_time_speedups() -> None:
    from ml_extras.melc.train import Settings, speed_at_n

    rows = speed_at_n(Settings(("iris",), folds=2, restarts=0, max_iter=5, tol=1e-3, speed_n=300, speed_repeats=2), 0)
    assert [r["method"] for r in rows] == ["exact", "sort", "bin"]
    assert rows[0]["eval_cpu_speedup"] == 1.0 and rows[0]["fit_cpu_speedup"] == 1.0
    assert all(r["eval_cpu_ms"] > 0 and r["fit_cpu_s"] > 0 for r in rows)
