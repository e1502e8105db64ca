"""Plumbing shared by every ml_extras module: CLI flags, seeding, tables, JSON, offline data paths."""

from __future__ import annotations

import argparse
import os
import random
import time
from pathlib import Path
from typing import Any

import numpy as np

from dexhand.report import format_table, write_json  # noqa: F401  (re-exported for modules)

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


class Timer:
    """Context manager measuring wall time in seconds (``t.seconds``)."""

    def __enter__(self) -> Timer:
        self._start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._start
