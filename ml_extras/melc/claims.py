"""Fast MELC's claims on a results dict: approximations within the error bound, faster than exact.

Speed is judged on CPU time (time.process_time, one BLAS thread), which other jobs on a shared
machine do not inflate the way they inflate wall time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ml_extras.results import all_of, claim, greater, not_worse, save_figure

APPROX = ("sort", "bin")


def _speed(results: dict[str, Any], method: str) -> dict[str, Any]:
    rows = [r for r in results["speed"] if r["method"] == method]
    if len(rows) != 1:
        raise KeyError(f"expected one speed row for {method!r}, found {len(rows)}")
    return rows[0]


def melc_claims(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Error bound on every UCI fold and at n ~ 1000; CPU speedup of evaluation and of a whole fit."""
    approx_rows = [r for r in results["accuracy"] if r["max_obj_err"] != ""]
    if not approx_rows:
        raise ValueError("no approximate-MELC rows in the accuracy table")
    errors = {f"{r['dataset']}/{r['method']}": float(r["max_obj_err"]) for r in approx_rows}
    errors.update({f"n={_speed(results, m)['n']}/{m}": float(_speed(results, m)["max_obj_err"]) for m in APPROX})
    tol = float(approx_rows[0]["tol"])
    within_bound = all_of([not_worse(e, tol, 0.0, higher_is_better=False) for e in errors.values()])
    eval_speedups = {m: float(_speed(results, m)["eval_cpu_speedup"]) for m in APPROX}
    fit_speedups = {m: float(_speed(results, m)["fit_cpu_speedup"]) for m in APPROX}
    n = _speed(results, "exact")["n"]
    return [
        claim(f"sort-and-discard and binning approximate the Cauchy-Schwarz objective within the error bound "
              f"|D_approx - D_exact| <= tol = {tol:g} on every UCI fold and at n = {n}",
              within_bound, {"tol": tol, "max_error": max(errors.values()), "errors": errors}),
        claim(f"both approximations evaluate the objective and its gradient faster than the exact O(n^2) cost "
              f"at n = {n} (CPU-time speedup > 1)",
              all_of([greater(s, 1.0) for s in eval_speedups.values()]),
              {"eval_cpu_speedup": eval_speedups,
               "eval_cpu_ms": {m: float(_speed(results, m)["eval_cpu_ms"]) for m in ("exact", *APPROX)}}),
        claim(f"both approximations fit the whole classifier faster than the exact cost at n = {n} "
              f"(CPU-time speedup > 1)",
              all_of([greater(s, 1.0) for s in fit_speedups.values()]),
              {"fit_cpu_speedup": fit_speedups,
               "fit_cpu_s": {m: float(_speed(results, m)["fit_cpu_s"]) for m in ("exact", *APPROX)}}),
    ]


def plot(results: dict[str, Any], path: Path) -> Path:
    """Left: CV accuracy per data set and method; right: CPU ms per evaluation at n ~ 1000."""
    import numpy as np

    def draw(ax: Any) -> None:
        datasets = list(dict.fromkeys(r["dataset"] for r in results["accuracy"]))
        methods = list(dict.fromkeys(r["method"] for r in results["accuracy"]))
        width = 0.8 / len(methods)
        for k, method in enumerate(methods):
            acc = [next(r["acc"] for r in results["accuracy"] if r["dataset"] == d and r["method"] == method)
                   for d in datasets]
            ax.bar(np.arange(len(datasets)) + k * width, acc, width, label=method)
        ax.set_xticks(np.arange(len(datasets)) + 0.4 - width / 2, datasets, fontsize=8)
        ax.set_ylim(0.5, 1.0)
        ax.set_ylabel("CV accuracy")
        speed = " / ".join(f"{r['method']} {r['eval_cpu_ms']:.2g} ms" for r in results["speed"])
        ax.set_title(f"MELC vs linear baselines; CPU per evaluation at n={results['speed'][0]['n']}: {speed}",
                     fontsize=8)
        ax.legend(fontsize=6, ncol=4, loc="lower right")

    return save_figure(path, draw, figsize=(8.0, 4.0))
