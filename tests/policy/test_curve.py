"""`dexhand curve`: the training-curve summary a person reads after (or during) a run."""

from __future__ import annotations

import json

from dexhand.cli import main


def test_curve_summarizes_a_run_into_a_table_png_and_json(lstm_run, tmp_path, capsys):
    png, out = tmp_path / "curve.png", tmp_path / "curve.json"
    assert main(["curve", str(lstm_run), "--png", str(png), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "rollout/ep_rew_mean" in printed and str(png) in printed
    assert png.stat().st_size > 1000 and png.read_bytes()[:4] == b"\x89PNG"
    summary = json.loads(out.read_text())
    fps = summary["time/fps"]
    assert fps["points"] >= 1 and fps["steps"] == 256 and fps["max"] >= fps["last_10pct_mean"] > 0


def test_curve_of_a_folder_without_logs_is_one_clear_error(tmp_path, capsys):
    assert main(["curve", str(tmp_path)]) == 2
    assert "no TensorBoard logs" in capsys.readouterr().err
