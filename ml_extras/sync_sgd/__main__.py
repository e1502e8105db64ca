"""CLI: ``python -m ml_extras.sync_sgd [--quick] [--json PATH] [--resume]``.

Runs sync SGD without stragglers, sync with b = 0..B backup workers under seeded heavy-tailed
delays, and async SGD, on sklearn digits; prints a table, writes JSON and a PNG.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, replace
from pathlib import Path

from ml_extras.common import Timer, base_parser, format_table, seed_everything, write_json
from ml_extras.results import RESULTS_DIR, RunRecord, command_line, print_claims, write_result


def main(argv: list[str] | None = None) -> None:
    parser = base_parser(
        "Synchronous SGD with backup workers (Chen et al. 2016) on sklearn digits: N+b spawned "
        "workers with simulated heavy-tailed stragglers; each sync step averages the first N "
        "gradients. Compares step time vs b and test accuracy vs wall time for async / sync / "
        "sync+backup. Full mode: N=8, b in {0,1,2,4}, 300 steps; --quick: N=4, b in {0,1,2}, 60 steps.",
        default_json="out/sync_sgd.json")
    parser.add_argument("--resume", action="store_true",
                        help="reuse finished runs saved under OUT/sync_sgd/checkpoints (full mode)")
    parser.add_argument("--workers", type=int, default=None, help="override N (gradients per step)")
    parser.add_argument("--steps", type=int, default=None, help="override the number of sync steps")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR,
                        help="full mode writes <dir>/sync_sgd.json (claims) and sync_sgd.png here")
    args = parser.parse_args(argv)
    run = RunRecord()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")

    import torch

    from ml_extras.sync_sgd.claims import sync_sgd_claims
    from ml_extras.sync_sgd.experiment import ExperimentConfig, plot, run_experiment

    torch.set_num_threads(1)
    seed_everything(args.seed)
    config = ExperimentConfig.quick(args.seed) if args.quick else ExperimentConfig(seed=args.seed)
    if args.workers is not None:
        config = replace(config, workers=args.workers)
    if args.steps is not None:
        config = replace(config, steps=args.steps)
    if config.workers < 1 or config.steps < 1:
        parser.error("--workers and --steps must be >= 1")
    checkpoints = None if args.quick else args.out / "sync_sgd" / "checkpoints"
    with Timer() as timer:
        outputs = run_experiment(config, checkpoints, resume=args.resume)
    rows = [o["row"] for o in outputs]
    mode = "quick" if args.quick else "full"
    print(format_table(rows, title=f"sync SGD with backup workers on digits ({mode}; "
                                   f"delays {config.delay_base * 1000:g} ms + {config.delay_scale * 1000:g} ms "
                                   f"x Lomax({config.delay_alpha:g}))"))
    png = args.out / "sync_sgd_quick.png" if args.quick else args.results_dir / "sync_sgd.png"
    plot(outputs, config, png)
    print(f"plot: {png}   total {timer.seconds:.1f} s")
    write_json(args.json, {"config": asdict(config), "mode": mode, "rows": rows,
                           "curves": {o["spec"]["name"]: o["curve"] for o in outputs},
                           "seconds": timer.seconds, "plot": png})
    if not args.quick:
        claims = sync_sgd_claims(rows, config.steps)
        print_claims(claims)
        write_result("sync_sgd", command_line("sync_sgd", argv), rows, claims, run.finish(),
                     {"config": asdict(config), "plot": png.name,
                      "curves": {o["spec"]["name"]: o["curve"] for o in outputs}}, args.results_dir)


if __name__ == "__main__":
    main()
