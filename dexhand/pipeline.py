"""``dexhand pipeline``: a recipe of dexhand commands run in order, each stage resumable.

A pipeline file lists stages; each is a dexhand command line (``{run}`` stands for the pipeline's
run folder). ``RUN/pipeline_state.json`` records finished stages, so a rerun skips them; a stage
marked ``resumable`` gets ``--resume`` when it had started before (its own checkpoints continue).
The shipped student comes from ``dexhand pipeline student`` (dexhand/configs/pipeline/student.yaml).
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sim.configio import ConfigError


@dataclass
class Stage:
    name: str
    command: str  # a dexhand command line, e.g. "distill --run-dir {run}/distill"
    resumable: bool = False  # accepts --resume (distill, train)


@dataclass
class Pipeline:
    run_dir: str = "runs/pipeline"
    stages: list[Stage] = field(default_factory=list)

    def validate(self) -> None:
        if not self.stages:
            raise ConfigError("stages: a pipeline needs at least one stage")
        names = [s.name for s in self.stages]
        if len(set(names)) != len(names):
            raise ConfigError(f"stages: names must be unique, got {names}")


def stage_argv(stage: Stage, run_dir: Path, started: bool) -> list[str]:
    argv = shlex.split(stage.command.replace("{run}", str(run_dir)))
    if stage.resumable and started:
        argv.insert(1, "--resume")
    return argv


def run_pipeline(pipeline: Pipeline, run_dir: Path, main: Callable[[list[str]], int],
                 only: list[str] | None = None) -> dict[str, float]:
    """Run every unfinished stage through ``main`` (the dexhand CLI); returns seconds per stage run."""
    pipeline.validate()
    run_dir.mkdir(parents=True, exist_ok=True)
    state_path = run_dir / "pipeline_state.json"
    state = json.loads(state_path.read_text()) if state_path.is_file() else {"started": [], "finished": []}
    unknown = [n for n in (only or []) if n not in {s.name for s in pipeline.stages}]
    if unknown:
        raise ValueError(f"--only {unknown}: no such stage (stages: {[s.name for s in pipeline.stages]})")
    seconds = {}
    for stage in pipeline.stages:
        if (only and stage.name not in only) or stage.name in state["finished"]:
            continue
        argv = stage_argv(stage, run_dir, stage.name in state["started"])
        print(f"[pipeline] stage {stage.name}: dexhand {shlex.join(argv)}", flush=True)
        if stage.name not in state["started"]:
            state["started"].append(stage.name)
            state_path.write_text(json.dumps(state, indent=1))
        start = time.perf_counter()
        code = main(argv)
        if code != 0:
            raise RuntimeError(f"pipeline stage {stage.name!r} failed with exit code {code}; fix it and rerun "
                               "(finished stages are skipped, this one resumes)")
        seconds[stage.name] = time.perf_counter() - start
        state["finished"].append(stage.name)
        state_path.write_text(json.dumps(state, indent=1))
    return seconds
