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
