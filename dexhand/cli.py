"""The ``dexhand`` command: demos, rendering and benchmarks (training and evaluation join them).

Every subcommand takes ``--help``. Config overrides are ``field.path=value`` words, e.g.
``dexhand demo task.goal_mode=z randomization.enabled=false``.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from pathlib import Path

from dexhand.report import write_json
from dexhand.robot.goals import GOAL_MODES


def _add_overrides(p: argparse.ArgumentParser) -> None:
    p.add_argument("overrides", nargs="*", metavar="field.path=value",
                   help="env config overrides, e.g. task.goal_mode=z randomization.strength=0.5")


def _env_overrides(args: argparse.Namespace) -> list[str]:
    extra = ["randomization.enabled=false"] if getattr(args, "no_randomization", False) else []
    goals = getattr(args, "goals", None)
    if goals:
        extra.append(f"task.goal_mode={goals}")
    return list(args.overrides) + extra


SHIPPED_POLICY = Path(__file__).resolve().parent / "models" / "policy.onnx"


def _make_policy(name: str, seed: int):
    """'shipped', 'random', 'hold', an .onnx file or a training checkpoint -> (policy, label)."""
    from dexhand.policies import HoldPolicy, RandomSmoothPolicy

    if name == "random":
        return RandomSmoothPolicy(seed=seed), "random-smooth policy"
    if name == "hold":
        return HoldPolicy(), "hold policy"
    from dexhand.evaluate import load_policy

    path = SHIPPED_POLICY if name == "shipped" else Path(name)
    if name == "shipped" and not path.is_file():
        raise FileNotFoundError(f"the shipped policy {path} is missing from this installation")
    return load_policy(path), ("shipped policy" if name == "shipped" else str(path))


def _policy_env_overrides(policy, args: argparse.Namespace) -> list[str]:
    """The CLI's env overrides, plus the goal mode a checkpoint or an export was trained for (unless given)."""
    overrides = _env_overrides(args)
    trained_on = getattr(policy, "goal_mode", None)
    if trained_on and not any(o.startswith("task.goal_mode=") for o in overrides):
        overrides.append(f"task.goal_mode={trained_on}")
    return overrides


CONTROLLERS = ("policy", "mpc", "hold", "random")


def _make_controller(args: argparse.Namespace, model: str):
    """--controller: a learned policy (``model``), the sampling-MPC planner, or a baseline."""
    if args.controller == "mpc":
        from dexhand.plan import MpcController
        from dexhand.plan.configio import load_planner_config

        cfg = load_planner_config(args.planner, args.plan)
        return MpcController(cfg), f"mpc planner ({args.planner}, {cfg.method})"
    if args.controller in ("hold", "random"):
        return _make_policy(args.controller, args.seed)
    return _make_policy(model, args.seed)


def _controller_only(args: argparse.Namespace, model: str):
    """The controller alone: a picklable factory for evaluation worker processes."""
    return _make_controller(args, model)[0]


def _add_controller_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--controller", choices=CONTROLLERS, default="policy",
                   help="what drives the hand: the learned policy (default), the privileged sampling-MPC "
                        "planner on the simulator, 'hold' (zero actions) or 'random' (smooth random actions)")
    p.add_argument("--planner", default="realtime", metavar="NAME|YAML",
                   help="planner config for --controller mpc: 'realtime' (shipped), 'teacher', or a YAML path")
    p.add_argument("--plan", action="append", default=[], metavar="FIELD=VALUE",
                   help="planner config override, repeatable, e.g. --plan n_samples=64 --plan method=mppi")


def cmd_demo(args: argparse.Namespace) -> int:
    from dexhand.demo import run_demo

    policy, label = _make_controller(args, args.policy)
    overrides = _policy_env_overrides(policy, args)
    run_demo(policy, label, args.video, args.episodes, args.seed, args.max_steps, overrides, vision=args.vision)
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    return cmd_demo(args)


CONFIG_DIR = Path(__file__).resolve().parent / "configs"


def _config_path(name: str, folder: Path = CONFIG_DIR) -> Path:
    """A YAML path, or the name of a shipped config in ``folder`` (training: smoke, default, large, shipped)."""
    from sim.configio import find_config

    return find_config(name, folder)


def cmd_train(args: argparse.Namespace) -> int:
    from dexhand.train.config import TrainConfig
    from dexhand.train.trainer import Trainer
    from sim.configio import load_yaml

    path = _config_path(args.config)
    overrides = list(args.overrides) + ([f"ray_address={args.ray_address}"] if args.ray_address else [])
    cfg = load_yaml(TrainConfig, path, overrides)
    run_dir = args.run_dir or Path("runs") / path.stem
    trainer = Trainer(cfg, run_dir, resume=args.resume, progress=not args.no_progress)
    print(f"[train] config {path} -> {run_dir} (TensorBoard: tensorboard --logdir {run_dir / 'tb'})")
    try:
        result = trainer.train()
    finally:
        trainer.close()
    print(f"[train] {result.num_timesteps} steps, {result.env_steps_per_s:.0f} env steps/s, mean consecutive "
          f"successes (last 100 episodes) {result.mean_consecutive_successes:.2f}; checkpoint {result.checkpoint}")
    return 0


def cmd_distill(args: argparse.Namespace) -> int:
    from dexhand.distill.config import DistillConfig
    from dexhand.distill.dagger import Dagger
    from dexhand.distill.plan_dagger import PlanDagger
    from sim.configio import load_yaml

    path = _config_path(args.config, CONFIG_DIR / "distill")
    cfg = load_yaml(DistillConfig, path, args.overrides)
    run_dir = args.run_dir or Path("runs") / f"distill_{path.stem}"
    kind = PlanDagger if cfg.student_kind == "plan" else Dagger
    dagger = kind(cfg, run_dir, resume=args.resume or args.refit, progress=not args.no_progress)
    print(f"[distill] config {path} -> {run_dir} (TensorBoard: tensorboard --logdir {run_dir / 'tb'})")
    try:
        saved = dagger.refit().checkpoint if args.refit else dagger.run()
    finally:
        dagger.close()
    print(f"[distill] student checkpoint {saved}; evaluate with: dexhand eval {run_dir}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from dexhand.evaluate import evaluate, plot_histogram, print_report, save_report

    if args.episodes < 1:
        raise ValueError(f"--episodes must be >= 1, got {args.episodes}")
    if args.max_steps < 1:
        raise ValueError(f"--max-steps must be >= 1, got {args.max_steps}")
    if args.workers < 1:
        raise ValueError(f"--workers must be >= 1, got {args.workers}")
    if args.workers > 1 and args.controller == "mpc" and not any(o.startswith("n_threads=") for o in args.plan):
        # Each worker's planner gets its share of the cores, not all of them.
        args.plan = [*args.plan, f"n_threads={max(1, (os.cpu_count() or 1) // args.workers)}"]
    policy, label = _make_controller(args, args.model)
    overrides = _policy_env_overrides(policy, args)
    report = evaluate(policy, args.episodes, args.seed, overrides, max_steps=args.max_steps,
                      progress=not args.no_progress, vision=args.vision, workers=args.workers,
                      make_policy=functools.partial(_controller_only, args, args.model))
    print_report(report, label)
    save_report(report, args.json, label)
    png = plot_histogram(report, args.plot, label)
    print(f"histogram: {png}" + (f", json: {args.json}" if args.json else ""))
    return 0


def cmd_pipeline(args: argparse.Namespace) -> int:
    from dexhand.pipeline import Pipeline, run_pipeline
    from sim.configio import load_yaml

    path = _config_path(args.recipe, CONFIG_DIR / "pipeline")
    pipeline = load_yaml(Pipeline, path, args.overrides)
    run_dir = args.run_dir or Path(pipeline.run_dir)
    seconds = run_pipeline(pipeline, run_dir, main, only=args.only)
    print(f"[pipeline] {path.stem}: done in {run_dir} (" +
          ", ".join(f"{k} {v / 60:.1f} min" for k, v in seconds.items()) + ")")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from dexhand.compare import compare, report

    if args.episodes < 1:
        raise ValueError(f"--episodes must be >= 1, got {args.episodes}")
    entries = []
    for spec in args.entry:
        name, sep, what = spec.partition("=")
        if not sep or not name or not what:
            raise ValueError(f"--entry {spec!r}: use NAME=WHAT (WHAT: hold, random, mpc, mpc:<planner>, "
                             "report:<eval json>, or a model)")
        kind, _, planner = what.partition(":")
        if kind == "report":  # a saved `dexhand eval --json` of the same episodes (checked in compare)
            entries.append((name, Path(planner)))
            continue
        if kind == "mpc":
            entry_args = argparse.Namespace(controller="mpc", planner=planner or args.planner, plan=args.plan,
                                            seed=args.seed)
        else:
            entry_args = argparse.Namespace(controller=what if what in ("hold", "random") else "policy",
                                            seed=args.seed)
        entries.append((name, _make_controller(entry_args, what)[0]))
    overrides = _env_overrides(args)
    reports = compare(entries, args.episodes, args.seed, overrides, args.max_steps, progress=not args.no_progress)
    goal_mode = next(iter(reports.values())).goal_mode
    title = (f"dexhand compare: {args.episodes} held-out episodes (seed {args.seed}), goals '{goal_mode}', "
             f"randomization {'off' if args.no_randomization else 'on'}")
    report(reports, title, args.json, args.plot)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from dexhand.export import export

    out = export(args.model, args.out)
    print(f"exported {out} and {out.with_suffix('.json')}")
    return 0


def cmd_select(args: argparse.Namespace) -> int:
    """Evaluate candidate checkpoints on selection seeds; export the one with the best median."""
    from dexhand.evaluate import evaluate, load_policy
    from dexhand.export import export
    from dexhand.report import format_table

    overrides = _env_overrides(args)
    rows = []
    for candidate in args.candidates:
        r = evaluate(load_policy(candidate), args.episodes, args.seed, overrides, progress=not args.no_progress)
        rows.append({"candidate": str(candidate), "median": r.median, "mean": r.mean, "drop_rate": r.drop_rate})
    best = max(rows, key=lambda r: (r["median"], r["mean"]))
    print(format_table(rows, title=f"dexhand select: {args.episodes} selection episodes (seed {args.seed}; report "
                                   "figures on other seeds)"))
    chosen = Path(best["candidate"])
    if chosen.suffix == ".onnx":  # an exported policy wins: ship it as it is, with its sidecar
        import shutil

        args.out.parent.mkdir(parents=True, exist_ok=True)
        if chosen.resolve() != args.out.resolve():
            shutil.copyfile(chosen, args.out)
            shutil.copyfile(chosen.with_suffix(".json"), args.out.with_suffix(".json"))
        out = args.out
    else:
        out = export(chosen, args.out)
    write_json(args.json, {"rows": rows, "selected": best["candidate"], "out": str(out)})
    print(f"selected {best['candidate']} -> {out}")
    return 0


def cmd_curve(args: argparse.Namespace) -> int:
    from dexhand.report import format_table
    from dexhand.train.curve import summarize

    tb = args.run_dir / "tb"
    if not tb.is_dir():
        raise FileNotFoundError(f"no TensorBoard logs under {tb}: is {args.run_dir} a training run folder?")
    png = args.png or args.run_dir / "curve.png"
    summary = summarize(tb, png)
    if not summary:
        raise FileNotFoundError(f"{tb} holds none of the curve's scalars yet (the first rollout writes them)")
    rows = [{"scalar": tag, **s} for tag, s in summary.items()]
    print(format_table(rows, title=f"training curve of {args.run_dir}"))
    print(f"plot: {png}")
    if args.json:
        write_json(args.json, summary)
    return 0


# Each benchmark is a module in dexhand.bench with run(seconds=...) -> dict and print_results(dict).
BENCHMARKS = {
    "sim": "simulation",
    "render": "render",
    "stability": "stability",
    "policy": "policy",
    "train": "train",
    "vision": "vision",
    "ros": "ros",
    "ros-faults": "ros_faults",
    "scale": "scale",
    "plan": "plan",
}


def _actor_counts(text: str) -> list[int]:
    """'1,2,4' -> [1, 2, 4]; every count >= 1."""
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--actors: expected counts like 1,2,4,8,16, got {text!r}") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"--actors: counts must be >= 1, got {text!r}")
    return counts


def cmd_bench(args: argparse.Namespace) -> int:
    import importlib

    module_name = f"dexhand.bench.{BENCHMARKS[args.what]}"
    try:
        bench = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        raise SystemExit(f"dexhand: benchmark '{args.what}' is not available in this installation") from None
    kwargs = {"seconds": args.seconds}
    if args.n_envs is not None:
        kwargs["n_envs"] = args.n_envs
    if args.what == "scale":  # Ray: actor counts and the cluster to attach to
        if args.actors:
            kwargs["actor_counts"] = args.actors
        if args.address:
            kwargs["address"] = args.address
    elif args.actors or args.address:
        raise SystemExit("dexhand: --actors and --address apply to 'dexhand bench scale' only")
    if args.pose_source is not None:
        if args.what != "ros":
            raise SystemExit("dexhand: --pose-source applies to 'dexhand bench ros' only")
        kwargs["pose_source"] = args.pose_source
    results = bench.run(**kwargs)
    bench.print_results(results)
    write_json(args.json, results)
    return 0


def cmd_vision(args: argparse.Namespace) -> int:
    """Hands the rest of the command line to the vision package's own CLI."""
    from vision.cli import main as vision_main

    return vision_main(args.vision_args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dexhand",
        description="dexhand: Shadow Hand cube reorientation, trained in simulation, run through ROS.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Examples:\n"
               "  dexhand demo                         # headless demo, writes out/demo.mp4\n"
               "  dexhand render --goals z --no-randomization --video out/z.mp4\n"
               "  dexhand bench sim                    # simulator speed figures\n",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    for name, helptext, default_video in (
        ("demo", "run the cube-reorientation demo headless, write a video and print metrics", "out/demo.mp4"),
        ("render", "write a video (MP4 or GIF) of an episode", "out/episode.mp4"),
    ):
        p = sub.add_parser(name, help=helptext, description=helptext)
        p.add_argument("--policy", default="shipped",
                       help="'shipped' (the committed policy), an .onnx file, a training run/checkpoint, "
                            "'random' (smooth random actions) or 'hold'")
        p.add_argument("--episodes", type=int, default=1 if name == "render" else 2)
        p.add_argument("--max-steps", type=int, default=150, help="control steps per episode (0.08 s each)")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--video", type=Path, default=Path(default_video), help="output .mp4 or .gif")
        p.add_argument("--goals", choices=GOAL_MODES, help="goal sampling mode ('face_up': Dactyl's locked cube)")
        p.add_argument("--no-randomization", action="store_true", help="the nominal simulator")
        p.add_argument("--vision", action="store_true",
                       help="the policy gets the cube pose from the shipped vision model on rendered images")
        _add_controller_args(p)
        _add_overrides(p)
        p.set_defaults(func=cmd_demo if name == "demo" else cmd_render)

    p = sub.add_parser("train", help="train a policy (PPO, asymmetric actor-critic, LSTM by default)",
                       description="Train a policy in simulation. CONFIG is a YAML file or a shipped config "
                                   "name (smoke, default, large, shipped). Checkpoints land in RUN_DIR/checkpoints "
                                   "every checkpoint_every steps; --resume continues from the latest; Ctrl-C saves.")
    p.add_argument("config", help="YAML path or shipped config name")
    p.add_argument("--run-dir", type=Path, default=None, help="output folder (default runs/<config name>)")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in RUN_DIR")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (for logs)")
    p.add_argument("--ray-address", metavar="ADDR", default=None,
                   help="collect rollouts in Ray actors on the cluster at ADDR ('local' starts Ray on this "
                        "machine; needs the 'scale' extra); envs_per_actor=N sets the batch per actor")
    p.add_argument("overrides", nargs="*", metavar="field.path=value",
                   help="training config overrides, e.g. n_envs=16 env.task.goal_mode=z ppo.learning_rate=1e-4")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("distill", help="distill the sampling-MPC planner into the robot policy (DAgger)",
                       description="DAgger: the planner labels the states the student visits (a beta-mixture of "
                                   "teacher and student actions, beta decaying per iteration); (observation, "
                                   "teacher action) pairs go to RUN_DIR/shards; the student is refit after each "
                                   "iteration and saved as a training checkpoint (dexhand eval/export RUN_DIR, or "
                                   "PPO fine-tuning with init_from=RUN_DIR).")
    p.add_argument("--config", default="student", help="YAML path or shipped distill config name (default student)")
    p.add_argument("--run-dir", type=Path, default=None, help="output folder (default runs/distill_<config>)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in RUN_DIR")
    p.add_argument("--refit", action="store_true",
                   help="only fit the student again on the pairs in RUN_DIR/shards (e.g. with new fit.* settings): "
                        "no labelling, which is the slow part")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (for logs)")
    p.add_argument("overrides", nargs="*", metavar="field.path=value",
                   help="distill config overrides, e.g. dagger.iterations=4 planner_overrides=[n_samples=32]")
    p.set_defaults(func=cmd_distill)

    p = sub.add_parser("eval", help="consecutive successes of a policy over held-out episodes",
                       description="Evaluate a policy: consecutive successes (mean, median, p25/p75, max), drop "
                                   "rate and time per success, as a table, a JSON file and a histogram PNG.")
    p.add_argument("model", nargs="?", default="shipped",
                   help="an exported .onnx, a training run folder or checkpoint, 'shipped' (default), 'random', 'hold'")
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-steps", type=int, default=10_000,
                   help="truncate each episode at N control steps (0.08 s each); the task's own ends still apply")
    p.add_argument("--goals", choices=GOAL_MODES,
                   help="goal sampling mode (default: the policy's, else the env config's); 'face_up' is Dactyl's "
                        "locked-cube distribution (uniform yaw x a face up)")
    p.add_argument("--no-randomization", action="store_true", help="the nominal simulator")
    p.add_argument("--vision", action="store_true", help="cube pose from the vision model on rendered images")
    p.add_argument("--json", type=Path, default=None, help="write the report as JSON")
    p.add_argument("--plot", type=Path, default=Path("out/eval_histogram.png"), help="histogram PNG path")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--workers", type=int, default=1,
                   help="episodes run in this many processes (same episodes, same results); the planner's "
                        "rollout threads are shared out among them")
    _add_controller_args(p)
    _add_overrides(p)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("pipeline", help="run a recipe of dexhand commands (e.g. the shipped student), resumable",
                       description="Run the stages of a pipeline file in order (dexhand/configs/pipeline/: "
                                   "'student' makes the shipped student: DAgger from the planner, PPO fine-tuning "
                                   "with ADR, selection and export, the comparison table). Finished stages are "
                                   "skipped on a rerun; an interrupted distill/train stage resumes.")
    p.add_argument("recipe", help="YAML path or a name in dexhand/configs/pipeline/ (student)")
    p.add_argument("--run-dir", type=Path, default=None, help="override the pipeline's run_dir")
    p.add_argument("--only", nargs="+", default=None, metavar="STAGE", help="run just these stages")
    p.add_argument("overrides", nargs="*", metavar="field.path=value", help="pipeline overrides")
    p.set_defaults(func=cmd_pipeline)

    p = sub.add_parser("compare", help="several controllers on the same held-out episodes: one table, one plot",
                       description="Evaluate each --entry NAME=WHAT on the same episodes (seeds, goals, "
                                   "randomization) and print one table and one box plot. WHAT: hold, random, mpc, "
                                   "mpc:<planner config>, an .onnx, a training run/checkpoint, or report:<JSON "
                                   "of dexhand eval> to reuse an evaluation of the very same episodes.")
    p.add_argument("--entry", action="append", required=True, metavar="NAME=WHAT", help="repeatable")
    p.add_argument("--episodes", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-steps", type=int, default=10_000, help="truncate each episode at N control steps")
    p.add_argument("--goals", choices=GOAL_MODES, default="z", help="goal sampling mode")
    p.add_argument("--no-randomization", action="store_true", help="the nominal simulator")
    p.add_argument("--planner", default="realtime", help="planner config for 'mpc' entries")
    p.add_argument("--plan", action="append", default=[], metavar="FIELD=VALUE", help="planner override")
    p.add_argument("--json", type=Path, default=None, help="write the table and every report as JSON")
    p.add_argument("--plot", type=Path, default=Path("out/compare.png"), help="box plot PNG path")
    p.add_argument("--no-progress", action="store_true")
    _add_overrides(p)
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("export", help="export a training checkpoint to ONNX + metadata for the robot runtime")
    p.add_argument("model", type=Path, help="training run folder, checkpoint folder or model.zip")
    p.add_argument("out", type=Path, help="output .onnx path (the metadata goes next to it as .json)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("select", help="ship the candidate policy with the best median on selection seeds",
                       description="Evaluate each candidate (training runs, checkpoints or exported .onnx) on "
                                   "--episodes selection episodes and write the best median (ties: mean) to OUT as "
                                   "ONNX + metadata (exported, or copied if it is one). Use seeds apart from the "
                                   "ones you report on.")
    p.add_argument("candidates", nargs="+", type=Path, help="training run or checkpoint folders, or .onnx files")
    p.add_argument("--out", type=Path, required=True, help="output .onnx path")
    p.add_argument("--episodes", type=int, default=20)
    p.add_argument("--seed", type=int, default=5000, help="selection seeds (held apart from report seeds)")
    p.add_argument("--goals", choices=GOAL_MODES, default="z")
    p.add_argument("--no-randomization", action="store_true")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_select, overrides=[])

    p = sub.add_parser("curve", help="summarize a training run's curve: a table, a PNG and a JSON",
                       description="Read RUN_DIR/tb and print first/last/max of the task scalars "
                                   "(consecutive successes, drop rate, return, curriculum stage, fps); "
                                   "plot them to a PNG.")
    p.add_argument("run_dir", type=Path, help="training run folder (the one given to dexhand train --run-dir)")
    p.add_argument("--png", type=Path, help="plot path (default RUN_DIR/curve.png)")
    p.add_argument("--json", type=Path, help="also write the summary as JSON")
    p.set_defaults(func=cmd_curve)

    p = sub.add_parser("bench", help="benchmarks that print figures",
                       description="Benchmarks that print figures. sim: env steps/s vs MuJoCo's raw ceiling "
                                   "and core scaling; render: offscreen frames/s; stability: penetration and "
                                   "energy drift per timestep; policy: inference latency; train: training vs pure "
                                   "stepping throughput; vision: pose-estimator latency; ros: closed-loop latency "
                                   "and control rate on the simulated rig; scale: rollout steps/s vs the number of "
                                   "Ray actors (--n-envs sets envs per actor); plan: the sampling-MPC planner's ms "
                                   "per control step, rollouts/s and physics steps/s vs the raw mj_step ceiling.")
    p.add_argument("what", choices=sorted(BENCHMARKS))
    p.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    p.add_argument("--n-envs", type=int, default=None, help="envs in the batched measurement (default 4 x cores)")
    p.add_argument("--pose-source", choices=("gt", "estimator"), default=None,
                   help="ros: the cube pose from the simulator (gt, default) or from the cameras through the "
                        "shipped pose CNN (estimator)")
    p.add_argument("--actors", type=_actor_counts, default=None,
                   help="scale: actor counts to measure, e.g. 1,2,4,8,16 (default 1, 2, 4, ... up to the cores)")
    p.add_argument("--address", default=None, help="scale: a running Ray cluster's address (default: start one here)")
    p.add_argument("--json", type=Path, default=None, help="also write the figures as JSON")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("vision", help="cube pose estimation: gen, train, eval, export (see dexhand vision -h)",
                       add_help=False)
    p.add_argument("vision_args", nargs="*")  # main() hands "dexhand vision ..." over before parsing
    p.set_defaults(func=cmd_vision)
    return parser


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line (not ``vision``) -> its namespace; exits with a usage error on bad arguments."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # field=value overrides may sit before or after flags; anything else left over is an error.
    if extra and hasattr(args, "overrides") and all("=" in e and not e.startswith("-") for e in extra):
        args.overrides = [*args.overrides, *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "vision":  # the vision CLI parses its own flags, --help included
        from vision.cli import main as vision_main

        return vision_main(argv[1:])
    args = parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("dexhand: interrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, FileExistsError) as exc:  # config and input errors: one clear line
        print(f"dexhand: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
