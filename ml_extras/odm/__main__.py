"""CLI: python -m ml_extras.odm [--quick] [--resume] [--skip-adapt]."""

from __future__ import annotations

from pathlib import Path

import torch

from ml_extras.common import MissingDataError, base_parser, format_table, seed_everything, write_json
from ml_extras.odm.adapt import AdaptSettings, run_adaptation
from ml_extras.odm.claims import odm_claims, plot
from ml_extras.odm.data import load_digits
from ml_extras.odm.divergence import markov_prior
from ml_extras.odm.train import SequenceSettings, run_sequences
from ml_extras.results import RESULTS_DIR, RunRecord, command_line, print_claims, write_result

QUICK_SEQ = SequenceSettings(source="sklearn", steps=400, batch=512, restarts=1, labels_per_class=(1, 5))
# full mode is sized for about 15 minutes of one core (the 2 cores are shared with other jobs)
FULL_SEQ = SequenceSettings(source="mnist", steps=1200, batch=512, restarts=2, labels_per_class=(1, 5, 20))
QUICK_ADAPT = AdaptSettings()
FULL_ADAPT = AdaptSettings(size=64, n_source=2000, n_target=1500, n_test=800, source_epochs=20, adapt_steps=300)


def main(argv: list[str] | None = None) -> dict:
    parser = base_parser(
        "Output distribution matching (Sutskever et al. 2015): learn a digit classifier from unlabelled "
        "sequences of digit images whose label sequences follow a known non-uniform prior (ODM cost = "
        "KL(prior || batch-averaged predicted sequence distribution)), compared with supervised training "
        "on the same few labels; then one-shot adaptation from clean to randomized cube renders.",
        default_json="out/odm.json",
    )
    parser.add_argument("--resume", action="store_true", help="continue training runs from checkpoints in --out")
    parser.add_argument("--skip-adapt", action="store_true", help="only the digit-sequence experiment")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1-2 on the shared machine)")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR,
                        help="full mode writes <dir>/odm.json (claims) and odm.png here")
    args = parser.parse_args(argv)
    run = RunRecord()
    torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    seq = QUICK_SEQ if args.quick else FULL_SEQ
    split = load_digits(seq.source, seed=args.seed)
    prior = markov_prior(split.num_classes, seq.length, seq.successors, seed=args.seed)
    support = int((prior > 0).sum())
    results: dict = {"sequence_settings": seq.__dict__, "prior_support": support}
    checkpoints = None if args.quick else args.out
    results["sequences"] = run_sequences(split, prior, seq, args.seed, checkpoints, args.resume)
    print(format_table(results["sequences"],
                       f"ODM on {seq.source} digit sequences of length {seq.length} "
                       f"({support} of {prior.size} label sequences possible), per-digit test accuracy"))
    if not args.skip_adapt:
        adapt_settings = QUICK_ADAPT if args.quick else FULL_ADAPT
        results["adapt_settings"] = adapt_settings.__dict__
        try:
            results["adaptation"] = run_adaptation(adapt_settings, args.seed, args.out / "odm_renders")
        except MissingDataError as exc:
            results["adaptation_error"] = str(exc)
            print(f"\nadaptation skipped: {exc}")
        else:
            print()
            print(format_table(results["adaptation"],
                               "one-shot adaptation, clean -> randomized cube renders (face-up class, 6 classes)"))
    write_json(args.json, results)
    if not args.quick:
        claims = odm_claims(results)
        print_claims(claims)
        png = plot(results, args.results_dir / "odm.png")
        table = {k: results[k] for k in ("sequences", "adaptation") if k in results}
        write_result("odm", command_line("odm", argv), table, claims, run.finish(),
                     {k: v for k, v in results.items() if k not in table} | {"plot": png.name}, args.results_dir)
    return results


if __name__ == "__main__":
    main()
