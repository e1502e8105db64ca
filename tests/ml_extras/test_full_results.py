"""The full-mode tail of each CLI, on stub experiments: it must write a result JSON whose claims
were computed from the table it holds (so a long run cannot end in a crash or a typed verdict)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest


def _sibling(name: str):
    """A sibling test module (their toy tables are reused here)."""
    spec = importlib.util.spec_from_file_location(f"_ml_extras_{name}", Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _load(tmp_path, module):
    data = json.loads((tmp_path / "results" / f"{module}.json").read_text())
    assert data["mode"] == "full" and data["command"].startswith(f"python -m ml_extras.{module}")
    assert (tmp_path / "results" / data["plot"]).exists()
    assert data["run"]["wall_s"] >= 0 and len(data["run"]["loadavg_start"]) == 3
    assert all(isinstance(c["holds"], bool) for c in data["claims"])
    return data


def _argv(tmp_path):
    return ["--out", str(tmp_path), "--json", str(tmp_path / "raw.json"), "--results-dir", str(tmp_path / "results")]


def test_lfads_full_mode_writes_its_result(tmp_path, monkeypatch):
    import ml_extras.lfads.__main__ as cli

    rows = [{"method": "Gaussian smoothing (sd 2 bins)", "rate_r2_valid": 0.7},
            {"method": "smoothing + factor analysis (8)", "rate_r2_valid": 0.8},
            {"method": "LFADS (5 steps)", "rate_r2_valid": 0.9}]
    monkeypatch.setattr(cli, "run_synthetic", lambda *a, **k: (rows, {"neurons": 50}))
    cli.main(_argv(tmp_path))
    data = _load(tmp_path, "lfads")
    assert data["claims"][0]["holds"] is True and data["table"] == rows
    assert "--results-dir" in data["command"]


def test_melc_full_mode_writes_its_result(tmp_path, monkeypatch):
    import ml_extras.melc.__main__ as cli

    _toy_results = _sibling("test_melc")._toy_results

    monkeypatch.setattr(cli.train, "run", lambda *a, **k: _toy_results(eval_speedup=0.5))
    cli.main(_argv(tmp_path))
    data = _load(tmp_path, "melc")
    assert [c["holds"] for c in data["claims"]] == [True, False, True]


def test_odm_full_mode_writes_its_result(tmp_path, monkeypatch):
    import numpy as np

    import ml_extras.odm.__main__ as cli
    _toy_odm = _sibling("test_odm")._toy_odm

    toy = _toy_odm()
    monkeypatch.setattr(cli, "load_digits", lambda *a, **k: type("S", (), {"num_classes": 3})())
    monkeypatch.setattr(cli, "markov_prior", lambda *a, **k: np.ones(3) / 3)
    monkeypatch.setattr(cli, "run_sequences", lambda *a, **k: toy["sequences"])
    monkeypatch.setattr(cli, "run_adaptation", lambda *a, **k: toy["adaptation"])
    cli.main(_argv(tmp_path))
    data = _load(tmp_path, "odm")
    assert len(data["claims"]) == 3 and all(c["holds"] for c in data["claims"])
    assert data["table"]["sequences"] == toy["sequences"]


def test_sync_sgd_full_mode_writes_its_result(tmp_path, monkeypatch):
    import ml_extras.sync_sgd.__main__ as cli
    import ml_extras.sync_sgd.experiment as experiment
    _toy_rows = _sibling("test_sync_sgd")._toy_rows

    rows = [{**r, "acc@300": r.pop("acc@60")} for r in _toy_rows()]
    outputs = [{"row": r, "curve": [], "spec": {"name": r["run"]}} for r in rows]
    monkeypatch.setattr(experiment, "run_experiment", lambda *a, **k: outputs)
    def fake_plot(outs, config, path):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"png")

    monkeypatch.setattr(experiment, "plot", fake_plot)
    cli.main(_argv(tmp_path))
    data = _load(tmp_path, "sync_sgd")
    assert all(c["holds"] for c in data["claims"]) and data["config"]["steps"] == 300


def test_iaf_full_mode_writes_its_result(tmp_path, monkeypatch):
    import ml_extras.iaf.__main__ as cli
    _toy_iaf = _sibling("test_iaf")._toy_iaf

    toy = _toy_iaf(iaf_ll=-87.0)
    monkeypatch.setattr(cli, "run_binary_images", lambda *a, **k: toy["images"])
    monkeypatch.setattr(cli, "run_density", lambda *a, **k: toy["density"])
    cli.main(_argv(tmp_path) + ["--skip-cube"])
    data = _load(tmp_path, "iaf")
    assert [c["holds"] for c in data["claims"]] == [True, True, False, True]


@pytest.mark.parametrize("quick", [True])
def test_quick_mode_writes_no_result(tmp_path, monkeypatch, quick):
    import ml_extras.lfads.__main__ as cli

    monkeypatch.setattr(cli, "run_synthetic", lambda *a, **k: ([{"method": "LFADS", "rate_r2_valid": 0.9}], {}))
    cli.main(_argv(tmp_path) + ["--quick"])
    assert not (tmp_path / "results").exists()
