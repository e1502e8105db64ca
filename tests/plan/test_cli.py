"""``dexhand eval/demo --controller mpc`` and ``dexhand bench plan`` end to end (tiny settings)."""

from __future__ import annotations

import json

from dexhand.bench import plan as bench_plan
from dexhand.cli import main


def test_eval_with_the_planner_writes_the_policy_report(tmp_path, capsys):
    out = tmp_path / "eval.json"
    code = main(["eval", "--controller", "mpc", "--episodes", "2", "--max-steps", "3", "--goals", "face_up",
                 "--plan", "n_samples=6", "--plan", "horizon=3", "--json", str(out),
                 "--plot", str(tmp_path / "h.png"), "--no-progress"])
    assert code == 0
    report = json.loads(out.read_text())
    assert report["episodes"] == 2 and report["goal_mode"] == "face_up" and report["act_ms_mean"] > 0
    assert "mpc planner" in capsys.readouterr().out and (tmp_path / "h.png").is_file()


def test_eval_rejects_bad_counts_and_planner_fields(capsys):
    assert main(["eval", "--controller", "hold", "--episodes", "0"]) == 2
    assert "--episodes must be >= 1" in capsys.readouterr().err
    assert main(["eval", "--controller", "mpc", "--episodes", "1", "--plan", "n_samples=1"]) == 2
    assert "n_samples" in capsys.readouterr().err


def test_bench_plan_reports_against_the_ceiling():
    r = bench_plan.run(seconds=0.2, overrides=("n_samples=6", "horizon=3"))
    assert r["control_steps"] >= 1 and r["ms_per_step_mean"] > 0
    assert 0 < r["fraction_of_ceiling"] < 2.0 and r["physics_steps_per_s"] > 0


def test_compare_runs_every_entry_on_the_same_episodes(tmp_path, capsys):
    out = tmp_path / "c.json"
    code = main(["compare", "--entry", "hold=hold", "--entry", "planner=mpc", "--episodes", "2", "--max-steps", "4",
                 "--plan", "n_samples=6", "--plan", "horizon=3", "--json", str(out), "--plot", str(tmp_path / "c.png"),
                 "--no-progress"])
    assert code == 0 and (tmp_path / "c.png").is_file()
    rows = json.loads(out.read_text())["rows"]
    assert [r["controller"] for r in rows] == ["hold", "planner"]
    assert rows[0]["act_ms_mean"] < rows[1]["act_ms_mean"]  # planning costs time, holding does not
    assert main(["compare", "--entry", "nameless", "--episodes", "1"]) == 2
    assert "NAME=WHAT" in capsys.readouterr().err


def test_compare_reuses_a_saved_evaluation_of_the_same_episodes_only(tmp_path, capsys):
    saved = tmp_path / "hold.json"
    assert main(["eval", "--controller", "hold", "--episodes", "2", "--max-steps", "4", "--goals", "z",
                 "--json", str(saved), "--plot", str(tmp_path / "h.png"), "--no-progress"]) == 0
    out = tmp_path / "c.json"
    args = ["compare", "--entry", f"saved=report:{saved}", "--entry", "hold=hold", "--episodes", "2",
            "--max-steps", "4", "--json", str(out), "--plot", str(tmp_path / "c.png"), "--no-progress"]
    assert main(args) == 0
    rows = json.loads(out.read_text())["rows"]
    assert rows[0]["median"] == rows[1]["median"] and rows[0]["mean"] == rows[1]["mean"]
    assert main([*args[:-1], "--seed", "3", "--no-progress"]) == 2
    assert "ran other episodes" in capsys.readouterr().err
