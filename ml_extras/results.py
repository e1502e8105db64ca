"""Full-mode result files: the command, the table and the paper's claims with computed verdicts.

Every module's full mode ends in ``ml_extras/results/<module>.json`` and a PNG next to it. A
claim's ``holds`` is never typed: it is the return value of a small named predicate applied to the
figures stored with it, so a test of the predicate (and of the module's claim function that calls
it) is a test of the verdict. Timing context (wall and CPU seconds, load average at start and end)
is recorded because the machine these runs use is shared.
"""

from __future__ import annotations

import math
import os
import resource
import shlex
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

RESULTS_DIR = Path(__file__).resolve().parent / "results"


# --- predicates: each returns a plain bool and is the only way a claim's verdict is made ---------

def greater(a: float, b: float, margin: float = 0.0) -> bool:
    """a exceeds b by more than margin (higher is better)."""
    return bool(float(a) > float(b) + margin)


def less(a: float, b: float, margin: float = 0.0) -> bool:
    """a is below b by more than margin (lower is better)."""
    return bool(float(a) < float(b) - margin)


def within(a: float, b: float, tol: float) -> bool:
    """|a - b| <= tol: 'close to'."""
    return bool(abs(float(a) - float(b)) <= tol)


def not_worse(a: float, b: float, tol: float, higher_is_better: bool = True) -> bool:
    """a is at least b minus tol (or at most b plus tol when lower is better): 'matches'."""
    return bool(float(a) >= float(b) - tol) if higher_is_better else bool(float(a) <= float(b) + tol)


def ratio_at_least(a: float, b: float, ratio: float) -> bool:
    """a / b >= ratio (b > 0): 'faster by at least', 'carries most of'."""
    if float(b) <= 0:
        raise ValueError(f"ratio_at_least needs b > 0, got {b}")
    return bool(float(a) / float(b) >= ratio)


def binomial_se(accuracy: float, n: int) -> float:
    """Standard error of an accuracy measured on n test items: the noise a 'beats' must exceed."""
    if n < 1 or not 0.0 <= float(accuracy) <= 1.0:
        raise ValueError(f"binomial_se needs n >= 1 and an accuracy in [0, 1], got {accuracy}, {n}")
    return math.sqrt(float(accuracy) * (1.0 - float(accuracy)) / n)


def all_of(flags: Sequence[bool]) -> bool:
    """Every flag holds (and there is at least one)."""
    return bool(len(flags) > 0 and all(bool(f) for f in flags))


# --- claims ------------------------------------------------------------------------------------

def _clean(value: Any) -> Any:
    """JSON-friendly figures: numpy scalars to Python, NaN kept out (a NaN figure cannot decide)."""
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (np.generic,)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"a claim figure is not finite: {value}")
    return value


def claim(text: str, holds: bool, figures: Mapping[str, Any]) -> dict[str, Any]:
    """One claim record; ``holds`` must come from a predicate above (a bool, numpy bools allowed)."""
    if not isinstance(holds, (bool, np.bool_)):
        raise TypeError(f"holds must be a bool from a predicate, got {type(holds).__name__}")
    if not text.strip():
        raise ValueError("a claim needs its text")
    return {"claim": text, "holds": bool(holds), "figures": _clean(dict(figures))}


def validate_claims(claims: Sequence[Mapping[str, Any]]) -> None:
    """Raise if a claim lacks a field or its verdict is not a bool."""
    if not claims:
        raise ValueError("a result needs at least one claim")
    for c in claims:
        missing = {"claim", "holds", "figures"} - set(c)
        if missing:
            raise ValueError(f"claim {c!r} lacks {sorted(missing)}")
        if not isinstance(c["holds"], bool):
            raise TypeError(f"claim {c['claim']!r}: holds is {type(c['holds']).__name__}, not bool")


# --- run context ---------------------------------------------------------------------------------

class RunRecord:
    """Wall time, CPU time (this process and its waited-for children) and load average of a run."""

    def __init__(self) -> None:
        self.started_utc = datetime.now(UTC).isoformat(timespec="seconds")
        self.load_start = list(os.getloadavg())
        self._wall = time.perf_counter()
        self._cpu = self._cpu_now()

    @staticmethod
    def _cpu_now() -> float:
        own = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime

    def finish(self) -> dict[str, Any]:
        """The record to store: started, wall_s, cpu_s, load average (1, 5, 15 min) at start and end."""
        return {"started_utc": self.started_utc, "wall_s": round(time.perf_counter() - self._wall, 1),
                "cpu_s": round(self._cpu_now() - self._cpu, 1), "cpu_count": os.cpu_count(),
                "loadavg_start": [round(x, 2) for x in self.load_start],
                "loadavg_end": [round(x, 2) for x in os.getloadavg()]}


def command_line(module: str, argv: Sequence[str] | None) -> str:
    """The exact command that produced a result: ``python -m ml_extras.<module> <args>``."""
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    return " ".join(["python", "-m", f"ml_extras.{module}", *map(shlex.quote, args)])


def write_result(module: str, command: str, table: Any, claims: Sequence[Mapping[str, Any]],
                 run: Mapping[str, Any], extra: Mapping[str, Any] | None = None,
                 directory: Path = RESULTS_DIR) -> Path:
    """Write ``<directory>/<module>.json``: mode full, command, table, claims, run context, extras."""
    import json

    validate_claims(claims)
    payload = {"mode": "full", "module": module, "command": command, "table": _clean(table),
               "claims": list(claims), "run": dict(run), **_clean(dict(extra or {}))}
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{module}.json"
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return path


def print_claims(claims: Sequence[Mapping[str, Any]]) -> None:
    """One line per claim: HOLDS / FAILS and its text."""
    for c in claims:
        print(f"  [{'HOLDS' if c['holds'] else 'FAILS'}] {c['claim']}")


# --- plots ---------------------------------------------------------------------------------------

def save_figure(path: Path, draw: Callable[[Any], None], figsize: tuple[float, float] = (6.4, 4.0)) -> Path:
    """Draw with ``draw(ax)`` on a headless matplotlib figure and save it as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=figsize)
    try:
        draw(ax)
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
    return path


def bar_plot(path: Path, labels: Sequence[str], values: Sequence[float], ylabel: str, title: str) -> Path:
    """A labelled bar chart (one bar per method) with the value written on each bar."""
    def draw(ax: Any) -> None:
        bars = ax.bar(range(len(values)), values, color="tab:blue")
        ax.set_xticks(range(len(values)), labels, rotation=20, ha="right", fontsize=8)
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=9)
        for bar, v in zip(bars, values):
            ax.annotate(f"{v:.3g}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center", va="bottom", fontsize=8)

    return save_figure(path, draw)


# --- README rendering ----------------------------------------------------------------------------

def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """A GitHub markdown table of rows (dicts), floats to 4 significant digits."""
    if not rows:
        return ""
    columns = list(columns or rows[0].keys())
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def markdown_claims(result: Mapping[str, Any]) -> str:
    """One bullet per claim with its verdict and deciding figures, then the command and run context."""
    lines = []
    for c in result["claims"]:
        figures = json_compact(c["figures"])
        lines.append(f"- **{'holds' if c['holds'] else 'does not hold'}**: {c['claim']} ({figures})")
    run = result.get("run", {})
    lines.append(f"- command: `{result['command']}`; wall {run.get('wall_s', '?')} s, CPU {run.get('cpu_s', '?')} s, "
                 f"load average {run.get('loadavg_start', ['?'])[0]} -> {run.get('loadavg_end', ['?'])[0]} "
                 f"(started {run.get('started_utc', '?')})")
    return "\n".join(lines)


def json_compact(value: Any) -> str:
    """Figures as short text: floats to 4 significant digits."""
    if isinstance(value, Mapping):
        if len(value) > 8:
            return f"{len(value)} values, see the JSON"
        return ", ".join(f"{k} {json_compact(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(json_compact(v) for v in value) + "]"
    return _fmt(value)


def main(argv: list[str] | None = None) -> None:
    """Print the README blocks (tables, claims, command) of committed results."""
    import argparse
    import json

    known = sorted(p.stem for p in RESULTS_DIR.glob("*.json"))
    parser = argparse.ArgumentParser(
        prog="python -m ml_extras.results",
        description="Print the README blocks (tables, claims with their figures, command) of the full-mode "
                    f"results committed in {RESULTS_DIR}.")
    parser.add_argument("modules", nargs="*", metavar="MODULE", help=f"which results (default: all of {', '.join(known)})")
    args = parser.parse_args(argv)
    unknown = [m for m in args.modules if m not in known]
    if unknown:
        parser.error(f"no committed result for {', '.join(unknown)} in {RESULTS_DIR}; known: {', '.join(known)}")
    for name in args.modules or known:
        data = json.loads((RESULTS_DIR / f"{name}.json").read_text())
        table = data["table"]
        print(f"### {name}\n")
        for part in ([table] if isinstance(table, list) else list(table.values())):
            print(markdown_table(part) + "\n")
        print(markdown_claims(data) + "\n")


if __name__ == "__main__":
    main()
