"""CLI: python -m ml_extras.melc [--quick] [--resume] [--datasets ...]."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # the machine is shared: one BLAS thread
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from ml_extras.common import base_parser, format_table, seed_everything, write_json  # noqa: E402
from ml_extras.melc import data, train  # noqa: E402
from ml_extras.melc.claims import melc_claims, plot  # noqa: E402
from ml_extras.results import RESULTS_DIR, RunRecord, command_line, print_claims, write_result  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    parser = base_parser(
        "Fast MELC (Jozefowicz & Czarnecki 2015): maximize the Cauchy-Schwarz divergence of the class "
        "KDEs along w on the unit sphere with the exact O(n^2) cost or the sort-and-discard / binning "
        "approximations (error <= --tol), via L-BFGS and CG; compare with LinearSVC and logistic "
        "regression on UCI sets, and time the speedup at n about 1000.",
        default_json="out/melc.json",
    )
    parser.add_argument("--resume", action="store_true", help="skip data sets finished in the checkpoint")
    parser.add_argument("--tol", type=float, default=None, help="objective error tolerance (default 1e-3)")
    parser.add_argument("--datasets", nargs="+", choices=sorted(data.LOADERS), default=None,
                        help="subset of data sets (default: all six)")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR,
                        help="full mode writes <dir>/melc.json (claims) and melc.png here")
    args = parser.parse_args(argv)
    run = RunRecord()
    seed_everything(args.seed)
    settings = train.QUICK if args.quick else train.FULL
    if args.tol is not None:
        settings = train.Settings(**{**settings.__dict__, "tol": args.tol})
    if args.datasets:
        settings = train.Settings(**{**settings.__dict__, "datasets": tuple(args.datasets)})
    checkpoint = args.out / ("melc_quick_checkpoint.json" if args.quick else "melc_checkpoint.json")
    results = train.run(settings, args.seed, checkpoint, args.resume)
    print(format_table(results["accuracy"], f"MELC vs linear baselines, {settings.folds}-fold CV accuracy"))
    print()
    print(format_table(results["speed"], f"objective + gradient time at n={settings.speed_n} (synthetic)"))
    write_json(args.json, {"settings": settings.__dict__, **results})
    if not args.quick:
        claims = melc_claims(results)
        print_claims(claims)
        png = plot(results, args.results_dir / "melc.png")
        write_result("melc", command_line("melc", argv), {"accuracy": results["accuracy"], "speed": results["speed"]},
                     claims, run.finish(), {"settings": settings.__dict__, "plot": png.name}, args.results_dir)
    return results


if __name__ == "__main__":
    main()
