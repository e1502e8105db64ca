"""The evaluator on scripted policies whose outcome is known in advance."""

from __future__ import annotations

import functools
import json

import pytest

from dexhand.evaluate import evaluate, plot_histogram, save_report
from dexhand.policies import HoldPolicy, RandomSmoothPolicy


def test_every_step_a_success_gives_fifty_consecutive_successes(tmp_path):
    # A threshold above pi makes every step a success: 50 successes in 50 steps, then the episode ends.
    report = evaluate(HoldPolicy(), episodes=3, seed=0, progress=False,
                      overrides=["randomization.enabled=false", "task.success_threshold=3.15"])
    assert report.successes == [50, 50, 50]
    assert report.median == 50 and report.p25 == 50 and report.max == 50 and report.drop_rate == 0
    assert report.seconds_per_success == pytest.approx(0.08)
    assert report.ends == {"max_successes": 3}
    save_report(report, tmp_path / "r.json", "hold")
    assert json.loads((tmp_path / "r.json").read_text())["median"] == 50
    assert plot_histogram(report, tmp_path / "h.png", "hold").stat().st_size > 1000


def test_immediate_drop_gives_zero_and_full_drop_rate():
    # A negative drop height counts the resting cube as dropped at the first step.
    report = evaluate(HoldPolicy(), episodes=4, seed=0, progress=False,
                      overrides=["randomization.enabled=false", "task.drop_height=-1.0"])
    assert report.successes == [0, 0, 0, 0] and report.drop_rate == 1.0 and report.seconds_per_success is None
    assert report.ends == {"drop": 4}


def test_timeout_without_success():
    # Goals always far away (threshold tiny) and a 5-step timeout: no success, no drop.
    report = evaluate(HoldPolicy(), episodes=2, seed=0, progress=False,
                      overrides=["randomization.enabled=false", "task.success_threshold=1e-6",
                                 "task.goal_timeout_steps=5"])
    assert report.successes == [0, 0] and report.drop_rate == 0.0
    assert report.ends == {"goal_timeout": 2} and report.steps == [5, 5]


def test_end_reasons_tell_the_episode_cap_from_the_callers_step_cap():
    common = ["randomization.enabled=false", "task.success_threshold=1e-6"]
    capped = evaluate(HoldPolicy(), episodes=1, seed=0, progress=False, overrides=[*common, "max_episode_steps=7"])
    assert capped.ends == {"episode_cap": 1} and capped.steps == [7]
    cut = evaluate(HoldPolicy(), episodes=1, seed=0, progress=False, overrides=common, max_steps=4)
    assert cut.ends == {"max_steps": 1} and cut.steps == [4]


def test_worker_processes_run_the_same_episodes_as_one_process():
    # Strong random actions drop the cube at episode-specific steps, so the episode lengths tell episodes
    # apart; each episode's random stream is seeded from its env seed, so order and process do not matter.
    make = functools.partial(RandomSmoothPolicy, scale=1.0, seed=3)
    args = dict(episodes=4, seed=0, overrides=["task.goal_mode=z"], max_steps=150, progress=False)
    serial = evaluate(make(), **args)
    parallel = evaluate(make(), workers=2, make_policy=make, **args)
    assert len(set(serial.steps)) > 1
    assert parallel.steps == serial.steps and parallel.successes == serial.successes
    with pytest.raises(ValueError, match="make_policy"):
        evaluate(make(), workers=2, **args)
    with pytest.raises(ValueError, match="workers"):
        evaluate(make(), workers=0, **args)
