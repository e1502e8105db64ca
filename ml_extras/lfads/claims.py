"""The LFADS paper's claim, checked on a results table: LFADS beats smoothing and factor analysis."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ml_extras.results import all_of, bar_plot, claim, greater


def _r2(rows: list[dict[str, Any]], prefix: str) -> float:
    """The rate R^2 of the row whose method starts with prefix (exactly one must)."""
    found = [r["rate_r2_valid"] for r in rows if str(r["method"]).startswith(prefix)]
    if len(found) != 1:
        raise KeyError(f"expected one row starting with {prefix!r}, found {len(found)}")
    return float(found[0])


def lfads_claims(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """LFADS has a higher held-out rate R^2 than both baselines."""
    lfads, smooth, fa = _r2(rows, "LFADS"), _r2(rows, "Gaussian smoothing"), _r2(rows, "smoothing + factor analysis")
    return [claim("LFADS infers firing rates of held-out trials better (higher rate R^2) than Gaussian "
                  "smoothing and than smoothing + factor analysis",
                  all_of([greater(lfads, smooth), greater(lfads, fa)]),
                  {"lfads_r2": lfads, "smoothing_r2": smooth, "factor_analysis_r2": fa})]


def plot(rows: list[dict[str, Any]], path: Path) -> Path:
    """Bar chart of rate R^2 per method."""
    return bar_plot(path, [str(r["method"]) for r in rows], [float(r["rate_r2_valid"]) for r in rows],
                    "rate R^2 (held-out trials)", "LFADS vs baselines, chaotic-RNN spikes")
