"""``dexhand pipeline``: stages run in order, finished ones are skipped, interrupted ones resume."""

from __future__ import annotations

import pytest

from dexhand.cli import main as dexhand_main
from dexhand.cli import parse_args
from dexhand.pipeline import Pipeline, Stage, run_pipeline, stage_argv
from sim.configio import ConfigError, load_yaml


def test_stages_run_once_and_an_interrupted_stage_resumes(tmp_path):
    calls: list[list[str]] = []
    fail = {"train": True}

    def main(argv: list[str]) -> int:
        calls.append(argv)
        if argv[0] == "train" and fail["train"]:
            return 1
        return 0

    p = Pipeline(stages=[Stage("a", "distill --run-dir {run}/a", resumable=True),
                         Stage("b", "train x --run-dir {run}/b", resumable=True), Stage("c", "select {run}/b")])
    with pytest.raises(RuntimeError, match="stage 'b' failed"):
        run_pipeline(p, tmp_path, main)
    assert calls == [["distill", "--run-dir", f"{tmp_path}/a"], ["train", "x", "--run-dir", f"{tmp_path}/b"]]
    fail["train"] = False
    calls.clear()
    run_pipeline(p, tmp_path, main)
    assert calls == [["train", "--resume", "x", "--run-dir", f"{tmp_path}/b"], ["select", f"{tmp_path}/b"]]
    calls.clear()
    assert run_pipeline(p, tmp_path, main) == {} and calls == []


def test_shipped_recipe_loads_and_bad_recipes_name_the_problem(tmp_path):
    from dexhand.cli import CONFIG_DIR

    recipe = load_yaml(Pipeline, CONFIG_DIR / "pipeline" / "student.yaml")
    assert [s.name for s in recipe.stages][:2] == ["distill", "finetune"]
    for stage in recipe.stages:  # a typo in a late stage would otherwise show only hours into a run
        for started in (False, True):
            assert callable(parse_args(stage_argv(stage, tmp_path, started)).func)
    bad = tmp_path / "bad.yaml"
    bad.write_text("stages: [{name: a, command: eval}, {name: a, command: eval}]\n")
    with pytest.raises(ConfigError, match="unique"):
        load_yaml(Pipeline, bad)
    assert dexhand_main(["pipeline", str(tmp_path / "missing.yaml")]) == 2
