"""``dexhand vision``: data generation, training, evaluation, ONNX export, calibration, marker baseline.

Configs are YAML files of vision.config dataclasses (vision/configs/*.yaml) plus ``field=value``
overrides, e.g. ``dexhand vision gen --n 4000 --out data/vision free_pose_fraction=0.5``.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent / "configs"


def _gen_config(path: Path | None, overrides: list[str]):
    from sim.configio import load_yaml
    from vision.config import GenConfig

    return load_yaml(GenConfig, path or CONFIG_DIR / "gen.yaml", overrides)


def cmd_gen(args: argparse.Namespace) -> int:
    from vision.data import generate_dataset

    cfg = _gen_config(args.config, args.overrides)
    if args.calibration:
        cfg.calibration = str(args.calibration)
    meta = generate_dataset(cfg, args.out, args.n, seed=args.seed, workers=args.workers)
    print(f"wrote {meta['n']} samples in {len(meta['shards'])} shards to {args.out} (metadata.json alongside)")
    return 0


def train_config(args: argparse.Namespace):
    """The TrainConfig of ``dexhand vision train``: YAML, then overrides, then --learners/--backup."""
    from sim.configio import load_yaml
    from vision.config import TrainConfig

    flags = [f"{name}={value}" for name, value in (("learners", args.learners), ("backup", args.backup))
             if value is not None]
    return load_yaml(TrainConfig, args.config or CONFIG_DIR / "train.yaml", [*args.overrides, *flags])


def cmd_train(args: argparse.Namespace) -> int:
    from vision.train import train

    cfg = train_config(args)
    if cfg.learners > 1 or cfg.backup > 0:  # a dropped learner is reported through logging
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    command = "dexhand vision " + shlex.join(args.argv)
    result = train(cfg, args.data, args.out, resume=args.resume, command=command)
    print(f"best validation: position median {result['val_pos_mm_median']:.2f} mm, "
          f"orientation median {result['val_rot_deg_median']:.2f} deg; checkpoint {result['checkpoint']}")
    if args.export:
        from vision.export import export_onnx

        path = export_onnx(Path(result["checkpoint"]), args.export, command=command)
        print(f"exported {path}")
    return 0


def cmd_recipe(args: argparse.Namespace) -> int:
    from sim.configio import load_yaml
    from vision.config import RecipeConfig
    from vision.recipe import parse_stages, run_recipe

    cfg = load_yaml(RecipeConfig, args.config or CONFIG_DIR / "recipe.yaml", args.overrides)
    stages = parse_stages(args.stages)
    command = "dexhand vision " + shlex.join(args.argv)
    result = run_recipe(cfg, stages, command=command, progress=not args.no_progress)
    for stage in ("train", "finetune"):
        if stage in result:
            val = result[stage]["val"]
            tri = f" (triangulated {val['tri_mm_median']:.2f} mm)" if "tri_mm_median" in val else ""
            print(f"{stage}: best validation (epoch {result[stage]['epoch'] + 1}): position median "
                  f"{val['pos_mm_median']:.2f} mm{tri}, orientation median {val['rot_deg_median']:.2f} deg; "
                  f"{result[stage]['checkpoint']}")
    if "export" in result:
        print(f"exported {result['export']}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from vision.export import export_onnx

    if args.revalidate:
        from vision.train import revalidate

        val = revalidate(args.checkpoint)
        print("validation: " + ", ".join(f"{k} {v:.3f}" for k, v in val.items() if isinstance(v, float)))

    path = export_onnx(args.checkpoint, args.out, command=args.command)
    print(f"exported {path} and {path.with_suffix('.json')}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from vision.evaluate import evaluate, print_evaluation
    from vision.runtime import DEFAULT_MODEL

    if args.real:
        from vision.real import evaluate_image_set

        results = evaluate_image_set(args.model or DEFAULT_MODEL, args.real, calibration=args.calibration)
    else:
        from vision.config import ExtrinsicsError

        error = ExtrinsicsError(*args.extrinsics_error) if args.extrinsics_error else None
        results = evaluate(args.model or DEFAULT_MODEL, n=args.n, seed=args.seed, calibration=args.calibration,
                           extrinsics_error=error)
    print_evaluation(results)
    if args.json:
        from dexhand.report import write_json

        write_json(args.json, results)
    return 0


def cmd_render_set(args: argparse.Namespace) -> int:
    from sim.scene import VISION_CAMERAS
    from vision.config import GenConfig
    from vision.data import generate_samples
    from vision.real import write_image_set

    s = generate_samples(GenConfig(randomize=not args.no_randomization), args.seed, args.n)
    write_image_set(args.out, s["images"], s["pos"], s["quat"], VISION_CAMERAS)
    print(f"wrote {args.n} samples to {args.out} (labels.csv + one folder of camera images per sample)")
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from vision.calibrate import calibrate_images, calibrate_simulated, print_calibration
    from vision.runtime.calibration import load_calibration, save_calibration

    if args.extrinsics:
        import cv2

        from vision.calibrate import calibrate_extrinsics, parse_pose

        if not args.board_pose:
            raise SystemExit("--extrinsics needs --board-pose 'x y z qw qx qy qz' (the board's pose in the hand frame)")
        if args.intrinsics is None:
            raise SystemExit("--extrinsics needs --intrinsics FILE (a calibration made with --images)")
        images = {}
        for path in sorted(Path(args.extrinsics).glob("*")):
            if path.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp"):
                images[path.stem] = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        cals = calibrate_extrinsics(images, load_calibration(args.intrinsics), parse_pose(args.board_pose),
                                    tuple(args.pattern), args.square)
    elif args.images:
        cals = calibrate_images(args.images, args.pattern, args.square)
    else:
        cals = calibrate_simulated(n_views=args.views, size=args.size, seed=args.seed, fovy=args.fovy)
        if args.scene_extrinsics:
            from vision.calibrate import scene_extrinsics

            cals = scene_extrinsics(cals)
    save_calibration(args.out, cals)
    print_calibration(cals)
    print(f"wrote {args.out}")
    return 0


def cmd_markers(args: argparse.Namespace) -> int:
    from vision.markers import compare_with_cnn, print_comparison

    results = compare_with_cnn(args.model, n=args.n, seed=args.seed, randomize=not args.no_randomization)
    print_comparison(results)
    if args.json:
        from dexhand.report import write_json

        write_json(args.json, results)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dexhand vision",
        description="Three-camera cube pose estimation: render data, train the CNN, evaluate, export to ONNX, "
                    "calibrate cameras with OpenCV, and the ArUco marker baseline.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Example (the shipped model):\n"
               "  dexhand vision gen --n 4000 --out data/vision --seed 0\n"
               "  dexhand vision train --data data/vision --out runs/vision --export vision/models/pose_cnn.onnx\n"
               "  dexhand vision eval --n 200 --seed 123\n",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("gen", help="render labelled 3-camera images into sharded .npz files (resumable)",
                       description="Render the three vision cameras over simulated manipulation, labelled with the "
                                   "cube pose in the hand frame. Finished shards are kept, so re-running resumes.")
    p.add_argument("--n", type=int, required=True, help="number of samples (each = 3 images)")
    p.add_argument("--out", type=Path, required=True, help="output folder for shard_*.npz and metadata.json")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2, help="rendering processes")
    p.add_argument("--config", type=Path, help="GenConfig YAML (default vision/configs/gen.yaml)")
    p.add_argument("--calibration", type=Path, help="OpenCV calibration YAML: sets the cameras' fovy")
    p.add_argument("overrides", nargs="*", metavar="field=value")
    p.set_defaults(func=cmd_gen)

    p = sub.add_parser("train", help="train the CNN (TensorBoard logs, checkpoints, --resume)",
                       description="Train the shared-trunk 3-camera CNN on a generated folder. Writes TensorBoard "
                                   "logs and checkpoints (last.pt, best.pt) to --out. --learners K --backup B "
                                   "spreads each step over K+B processes and applies the first K gradients; a "
                                   "learner that dies or stalls past learner_timeout is dropped with a warning "
                                   "and training goes on while K remain.")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--config", type=Path, help="TrainConfig YAML (default vision/configs/train.yaml)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument("--export", type=Path, help="also export the best checkpoint to this .onnx path")
    p.add_argument("--learners", type=int, metavar="K",
                   help="data-parallel learner processes whose gradients are averaged each step, each on "
                        "batch_size/K samples (ml_extras.sync_sgd; same as learners=K; default 1: in-process)")
    p.add_argument("--backup", type=int, metavar="B",
                   help="extra learners whose late gradients are dropped, so a step waits for the K fastest "
                        "of K+B (Chen et al. 2016; same as backup=B; default 0)")
    p.add_argument("overrides", nargs="*", metavar="field=value")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("recipe", help="the shipped model's recipe in one resumable command: gen, train, finetune, export, eval",
                       description="Render the data at network resolution, train (resuming from RUN_DIR/last.pt; "
                                   "train.time_limit_s is the total over all runs), fine-tune from its best weights "
                                   "with the recipe's finetune overrides (into FINETUNE_DIR, resumable the same way), "
                                   "export the best checkpoint and "
                                   "evaluate it on an unseen seed. Settings: vision/configs/recipe.yaml plus "
                                   "field=value overrides (e.g. train.time_limit_s=7200 n=40000).")
    p.add_argument("--config", type=Path, help="RecipeConfig YAML (default vision/configs/recipe.yaml)")
    p.add_argument("--stages", help="comma-separated subset of gen,train,finetune,export,eval (default: all of them; "
                                     "they always run in that order)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (logs)")
    p.add_argument("overrides", nargs="*", metavar="field=value")
    p.set_defaults(func=cmd_recipe)

    p = sub.add_parser("export", help="export a checkpoint to ONNX + metadata JSON")
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--out", type=Path, required=True, help=".onnx path (the .json goes alongside)")
    p.add_argument("--command", default="", help="the command that trained it, recorded in the metadata")
    p.add_argument("--revalidate", action="store_true",
                   help="first recompute the checkpoint's validation figures on its own data's validation split "
                        "(e.g. after a new figure was added; the export takes the confidence scales from them)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("eval", help="position/orientation error of an ONNX model on fresh renders",
                       description="Median and p90 errors on fresh sets with and without randomization, and with "
                                   "one camera blacked out (the estimator's degraded mode). A model with a centre "
                                   "head triangulates the position with the rendered cameras' poses perturbed by "
                                   "a calibration error (--extrinsics-error); it is also scored without them.")
    p.add_argument("model", nargs="?", type=Path, help="ONNX model (default: the shipped one)")
    p.add_argument("--n", type=int, default=200)
    p.add_argument("--seed", type=int, default=1000)
    p.add_argument("--calibration", type=Path, help="calibration YAML the cameras were set from")
    p.add_argument("--extrinsics-error", type=float, nargs=3, metavar=("POS_M", "ANGLE_RAD", "FOCAL_REL"),
                   help="the calibration error a centre-head model triangulates with: camera centre std (m), "
                        "orientation std (rad), relative focal-length std (default: vision.config.ExtrinsicsError)")
    p.add_argument("--real", type=Path, metavar="DIR",
                   help="score a labelled set of image files instead (DIR/labels.csv + DIR/<sample>/<camera>.png; "
                        "see vision/real.py and vision/models/README.md)")
    p.add_argument("--json", type=Path)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("render-set", help="write rendered samples as an image-file set (the --real layout)",
                       description="Render N randomized samples at the cameras' size and write them as "
                                   "DIR/labels.csv + DIR/<sample>/<camera>.png, the layout of a real labelled set, "
                                   "so `dexhand vision eval --real DIR` can be checked end to end on renders.")
    p.add_argument("--n", type=int, default=20)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seed", type=int, default=5000)
    p.add_argument("--no-randomization", action="store_true")
    p.set_defaults(func=cmd_render_set)

    p = sub.add_parser("calibrate", help="OpenCV checkerboard calibration -> intrinsics/distortion YAML",
                       description="Without --images: render a checkerboard in front of each vision camera in "
                                   "MuJoCo and calibrate (checks the pipeline). With --images DIR: calibrate real "
                                   "cameras from DIR/<camera>/*.png checkerboard photos. With --extrinsics DIR "
                                   "--intrinsics FILE --board-pose POSE: add each camera's pose in the hand frame "
                                   "from DIR/<camera>.png, one photo per camera of the board lying at POSE on the "
                                   "hand; the estimator then triangulates the cube position.")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--images", type=Path, help="folder with one sub-folder of checkerboard images per camera")
    p.add_argument("--pattern", type=int, nargs=2, default=(7, 5), metavar=("COLS", "ROWS"),
                   help="inner corners of the real board")
    p.add_argument("--square", type=float, default=0.02, help="real board square size, m")
    p.add_argument("--scene-extrinsics", action="store_true",
                   help="(simulated calibration) also write the scene's nominal camera poses, for the simulated "
                        "rig: sim_demo.launch pose_source:=estimator camera_calibration:=FILE then triangulates")
    p.add_argument("--extrinsics", type=Path, help="folder with <camera>.png: the board at --board-pose")
    p.add_argument("--intrinsics", type=Path, help="calibration file whose intrinsics --extrinsics starts from")
    p.add_argument("--board-pose", help="'x y z qw qx qy qz': the board frame in the hand frame (m). Its origin is "
                                        "the inner corner next to the black corner square, x along the COLS "
                                        "corners, y along the ROWS; use a board with an odd and an even number "
                                        "of squares (e.g. --pattern 6 5), so that corner is unique")
    p.add_argument("--views", type=int, default=12, help="rendered board poses per camera")
    p.add_argument("--size", type=int, default=200)
    p.add_argument("--fovy", type=float, default=None, help="render with this fovy instead of the scene's")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("markers", help="ArUco-marker cube + solvePnP baseline, compared with the CNN",
                       description="Renders the same states with the lettered cube (for the CNN) and a cube with "
                                   "an ArUco marker on each face (multi-camera solvePnP), and prints both errors.")
    p.add_argument("model", nargs="?", type=Path, help="ONNX model (default: the shipped one)")
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--seed", type=int, default=2000)
    p.add_argument("--no-randomization", action="store_true")
    p.add_argument("--json", type=Path)
    p.set_defaults(func=cmd_markers)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "--":
        argv = argv[1:]
    args = build_parser().parse_args(argv)
    args.argv = argv
    import sim  # noqa: F401  (picks the GL backend before MuJoCo loads)

    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
