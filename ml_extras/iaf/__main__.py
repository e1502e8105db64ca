"""CLI: ``python -m ml_extras.iaf [--quick] [--dataset digits|mnist|fashion ...] [--skip-cube]``."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from ml_extras.common import MissingDataError, Timer, base_parser, format_table, write_json
from ml_extras.iaf.claims import iaf_claims, plot
from ml_extras.iaf.data import DATASETS
from ml_extras.iaf.train import run_binary_images, run_cube, run_density
from ml_extras.results import RESULTS_DIR, RunRecord, command_line, print_claims, write_result


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(
        "IAF VAE (Kingma et al. 2016): diagonal-Gaussian vs inverse-autoregressive-flow posteriors. "
        "Reports test ELBO and importance-weighted log-likelihood on binarized images, reverse-KL fits "
        "to 2-D densities, and the reconstruction error of a small-latent VAE on simulator cube renders.",
        default_json="out/iaf.json",
    )
    parser.add_argument("--dataset", choices=DATASETS, nargs="+", default=None,
                        help="binarized image sets, one or more (default: digits with --quick, mnist otherwise)")
    parser.add_argument("--iwae-k", type=int, default=None, help="importance samples (default 200 quick, 1000 full)")
    parser.add_argument("--epochs", type=int, default=None, help="override the image VAEs' training epochs")
    parser.add_argument("--cube-latent", type=int, default=8, help="latent size of the cube-render VAE")
    parser.add_argument("--skip-cube", action="store_true", help="do not run the cube-render experiment")
    parser.add_argument("--only", choices=("images", "density", "cube"), default=None,
                        help="run just one of the three experiments")
    parser.add_argument("--resume", action="store_true", help="resume full-mode training from checkpoints in --out")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1; the machine is shared)")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR,
                        help="full mode writes <dir>/iaf.json (claims) and iaf.png here (needs the images experiment)")
    args = parser.parse_args(argv)
    run = RunRecord()
    if args.iwae_k is not None and args.iwae_k < 100:
        parser.error("--iwae-k must be >= 100")
    torch.set_num_threads(args.threads)
    datasets = args.dataset or ["digits" if args.quick else "mnist"]
    results: dict[str, object] = {"quick": args.quick, "seed": args.seed}
    if args.only in (None, "images"):
        results["images"] = []
        for dataset in datasets:
            with Timer() as t_images:
                image_rows = run_binary_images(dataset, args.quick, args.seed, args.out, args.resume, args.iwae_k,
                                               args.epochs)
            print(format_table(image_rows,
                               f"Binarized {dataset}: test bounds in nats per image ({t_images.seconds:.0f}s)"))
            results["images"] += image_rows
    if args.only in (None, "density"):
        with Timer() as t_density:
            density_rows = run_density(args.quick, args.seed)
        print()
        print(format_table(density_rows, f"2-D reverse-KL fits: KL(q||p) in nats, lower is better ({t_density.seconds:.0f}s)"))
        results["density"] = density_rows
    if args.only in (None, "cube") and not args.skip_cube:
        try:
            with Timer() as t_cube:
                cube_rows = run_cube(args.quick, args.seed, args.out, args.resume, args.cube_latent)
            print()
            print(format_table(cube_rows, f"Cube renders: per-pixel reconstruction MSE ({t_cube.seconds:.0f}s)"))
            results["cube"] = cube_rows
        except MissingDataError as exc:
            print(f"\ncube experiment not run: {exc}", file=sys.stderr)
            results["cube"] = {"not_run": str(exc)}
    write_json(args.json, results)
    if not args.quick and "images" in results:
        claims = iaf_claims(results)
        print_claims(claims)
        png = plot(results, args.results_dir / "iaf.png")
        table = {k: results[k] for k in ("images", "density", "cube") if k in results}
        write_result("iaf", command_line("iaf", argv), table, claims, run.finish(), {"plot": png.name},
                     args.results_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
