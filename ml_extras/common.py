"""Plumbing shared by every ml_extras module: CLI flags, seeding, tables, JSON, offline data paths."""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
# Debian data packages unpacked by `make setup` (R data files; no R installation needed).
DEBIAN_DATA_ROOT = Path(os.environ.get("DEXHAND_DATA_ROOT", REPO_ROOT / ".data" / "root"))
R_SITE_LIBRARY = DEBIAN_DATA_ROOT / "usr" / "lib" / "R" / "site-library"
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")


class MissingDataError(RuntimeError):
    """An offline data set is not installed; the message says how to install it."""


def require(module: str, extra: str = "extras-data") -> Any:
    """Import an optional data package or raise an error naming the extra that provides it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDataError(
            f"the data package '{module}' is not installed: run `pip install .[{extra}]` (or `make setup`)"
        ) from exc


def r_data_dir(package: str) -> Path:
    """The data folder of a Debian r-cran-* package unpacked by `make setup`.

    Debian ships these as R lazy-load databases (Rdata.rdb/.rdx/.rds); read them with the
    `rdata` package.
    """
    folder = R_SITE_LIBRARY / package / "data"
    if not folder.is_dir():
        raise MissingDataError(
            f"R data package '{package}' not found under {R_SITE_LIBRARY}: run `make setup` "
            f"(it unpacks Debian's r-cran-{package}) or set DEXHAND_DATA_ROOT"
        )
    return folder


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (when imported) so runs repeat."""
    random.seed(seed)
    np.random.seed(seed)
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:  # torch-free modules (e.g. MELC) still seed the rest
        pass


def base_parser(description: str, default_json: str | None = None) -> argparse.ArgumentParser:
    """The flags every module shares: --quick, --seed, --json, --out."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="small run, <= 2 minutes on 2 cores")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--json", type=Path, default=Path(default_json) if default_json else None,
                        help="write the results table as JSON here")
    parser.add_argument("--out", type=Path, default=Path("out"),
                        help="folder for plots and checkpoints (default ./out)")
    return parser


def format_table(rows: Sequence[dict[str, Any]], title: str | None = None) -> str:
    """A plain-text table with one column per key of the first row."""
    if not rows:
        return f"{title or ''}\n(no rows)"
    keys = list(rows[0].keys())

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.4g}"
        return str(value)

    cells = [[cell(r.get(k, "")) for k in keys] for r in rows]
    widths = [max(len(k), *(len(c[i]) for c in cells)) for i, k in enumerate(keys)]
    lines = []
    if title:
        lines.append(title)
    lines.append("  ".join(k.ljust(w) for k, w in zip(keys, widths)))
    lines.append("  ".join("-" * w for w in widths))
    lines.extend("  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in cells)
    return "\n".join(lines)


def write_json(path: Path | None, payload: dict[str, Any]) -> None:
    """Write results as JSON (numpy scalars converted), creating folders as needed."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)

    def default(obj: Any) -> Any:
        if isinstance(obj, (np.integer, np.floating)):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
        if isinstance(obj, Path):
            return str(obj)
        raise TypeError(f"not JSON serializable: {type(obj).__name__}")

    path.write_text(json.dumps(payload, indent=2, default=default))


class Timer:
    """Context manager measuring wall time in seconds (``t.seconds``)."""

    def __enter__(self) -> Timer:
        self._start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._start
