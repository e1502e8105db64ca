"""Tests for ml_extras.results: predicates, claim records, the result writer and the run record."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ml_extras import results as R


def test_predicates_decide_by_the_figures():
    assert R.greater(0.9, 0.8) and not R.greater(0.8, 0.8) and not R.greater(0.85, 0.8, margin=0.1)
    assert R.less(1.0, 2.0) and not R.less(2.0, 2.0)
    assert R.within(1.0, 1.05, 0.1) and not R.within(1.0, 1.2, 0.1)
    assert R.not_worse(0.78, 0.80, tol=0.03) and not R.not_worse(0.70, 0.80, tol=0.03)
    assert R.not_worse(102.0, 100.0, tol=5.0, higher_is_better=False)
    assert not R.not_worse(110.0, 100.0, tol=5.0, higher_is_better=False)
    assert R.ratio_at_least(3.0, 1.5, 2.0) and not R.ratio_at_least(2.9, 1.5, 2.0)
    assert R.binomial_se(0.5, 100) == pytest.approx(0.05)
    with pytest.raises(ValueError):
        R.binomial_se(0.5, 0)
    assert R.all_of([True, np.bool_(True)]) and not R.all_of([True, False]) and not R.all_of([])
    with pytest.raises(ValueError):
        R.ratio_at_least(1.0, 0.0, 1.0)


def test_claim_needs_a_bool_and_finite_figures():
    c = R.claim("a beats b", R.greater(np.float32(2.0), 1.0), {"a": np.float64(2.0), "b": 1})
    assert c == {"claim": "a beats b", "holds": True, "figures": {"a": 2.0, "b": 1}}
    assert type(c["figures"]["a"]) is float
    with pytest.raises(TypeError):
        R.claim("typed by hand", "true", {})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="finite"):
        R.claim("nan decides nothing", True, {"a": float("nan")})


def test_write_result_round_trips(tmp_path):
    claims = [R.claim("x", R.greater(2, 1), {"a": 2, "b": 1})]
    run = R.RunRecord().finish()
    assert run["wall_s"] >= 0 and len(run["loadavg_start"]) == 3 and "cpu_s" in run
    path = R.write_result("toy", "python -m ml_extras.toy --x 1", [{"m": "a", "v": np.float32(0.5)}], claims, run,
                          {"plot": "toy.png"}, tmp_path)
    data = json.loads(path.read_text())
    assert data["mode"] == "full" and data["command"] == "python -m ml_extras.toy --x 1"
    assert data["claims"][0]["holds"] is True and data["table"][0]["v"] == 0.5 and data["plot"] == "toy.png"
    with pytest.raises(ValueError):
        R.write_result("toy", "cmd", [], [], run, directory=tmp_path)
    with pytest.raises(TypeError):
        R.write_result("toy", "cmd", [], [{"claim": "c", "holds": 1, "figures": {}}], run, directory=tmp_path)


def test_command_line_quotes_arguments():
    assert R.command_line("iaf", ["--out", "a b"]) == "python -m ml_extras.iaf --out 'a b'"


def test_bar_plot_writes_png(tmp_path):
    path = R.bar_plot(tmp_path / "p.png", ["a", "b"], [1.0, 2.0], "y", "t")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_markdown_rendering():
    assert R.markdown_table([{"a": 1, "b": 0.123456}]) == "| a | b |\n|---|---|\n| 1 | 0.1235 |"
    text = R.markdown_claims({"command": "python -m ml_extras.x", "claims": [R.claim("c", R.greater(2, 1), {"a": 2.0})],
                              "run": {"wall_s": 3.0, "cpu_s": 2.0, "loadavg_start": [1.0], "loadavg_end": [2.0]}})
    assert "**holds**: c (a 2)" in text and "`python -m ml_extras.x`" in text


def test_results_cli_prints_a_committed_result_and_names_an_unknown_one(capsys):
    R.main(["melc"])
    out = capsys.readouterr().out
    assert out.startswith("### melc") and "- command: `python -m ml_extras.melc" in out
    with pytest.raises(SystemExit):
        R.main(["no_such_module"])
    err = capsys.readouterr().err
    assert "no committed result for no_such_module" in err and "melc" in err
