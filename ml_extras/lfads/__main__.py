"""CLI: ``python -m ml_extras.lfads [--quick]``."""

from __future__ import annotations

from pathlib import Path

import torch

from ml_extras.common import Timer, base_parser, format_table, write_json
from ml_extras.lfads.claims import lfads_claims, plot
from ml_extras.lfads.train import run_joint_state_demo, run_synthetic
from ml_extras.results import RESULTS_DIR, RunRecord, command_line, print_claims, write_result


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(
        "LFADS (Sussillo, Pandarinath et al. 2016) on the paper's synthetic chaotic-RNN spiking data "
        "(50 neurons, g=1.5, 100 bins of 10 ms, Poisson, max 30 Hz): R^2 of inferred vs true rates on "
        "held-out trials, against Gaussian smoothing and smoothing + factor analysis.",
        default_json="out/lfads.json",
    )
    parser.add_argument("--resume", action="store_true", help="resume full-mode training from the checkpoint in --out")
    parser.add_argument("--joint-states-demo", action="store_true",
                        help="also run the JointState loader -> Gaussian LFADS path on synthetic hand records")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1; the machine is shared)")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR,
                        help="full mode writes <dir>/lfads.json (claims) and lfads.png here")
    args = parser.parse_args(argv)
    run = RunRecord()
    torch.set_num_threads(args.threads)
    with Timer() as timer:
        rows, info = run_synthetic(args.quick, args.seed, args.out, args.resume)
    print(format_table(rows, f"Chaotic-RNN data, rate R^2 on held-out trials ({timer.seconds:.0f}s)"))
    print("data: " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in info.items()
                                if not isinstance(v, list)))
    payload = {"quick": args.quick, "seed": args.seed, "results": rows, "data": info}
    if args.joint_states_demo:
        demo = run_joint_state_demo(args.seed, steps=150 if args.quick else 1000)
        print(f"joint-state demo: {demo['windows']} windows x {len(demo['channels'])} channels, "
              f"loss {demo['loss_first_last'][0]:.4g} -> {demo['loss_first_last'][1]:.4g}, "
              f"reconstruction R^2 {demo['reconstruction_r2']:.3f}")
        payload["joint_state_demo"] = demo
    write_json(args.json, payload)
    if not args.quick:
        claims = lfads_claims(rows)
        print_claims(claims)
        png = plot(rows, args.results_dir / "lfads.png")
        write_result("lfads", command_line("lfads", argv), rows, claims, run.finish(),
                     {"data": info, "plot": png.name}, args.results_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
