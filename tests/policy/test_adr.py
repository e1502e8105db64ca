"""Automatic domain randomization: bounds per knob, pinned boundary probes, caps, entropy, checkpoints."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dexhand.train import checkpoint
from dexhand.train.adr import PROBE_KEY, AdrConfig, AutomaticDomainRandomization
from dexhand.train.trainer import Trainer
from sim.config import RandomizationConfig
from sim.configio import ConfigError
from sim.randomizers import KNOBS

from .conftest import tiny_config


def drive(adr: AutomaticDomainRandomization, score, episodes: int, seed: int = 0) -> None:
    """Play episodes: ``score(probe)`` gives the consecutive successes of a probe episode."""
    rng = np.random.default_rng(seed)
    for _ in range(episodes):
        ranges = adr.episode_ranges(rng)
        adr.report(ranges, score(ranges.get(PROBE_KEY)))


def test_bounds_move_independently_past_the_hand_written_range_up_to_the_caps():
    cfg = AdrConfig(enabled=True, boundary_probability=1.0, buffer_size=2, widen_at=2.0, narrow_at=0.5, step=0.25,
                    caps={"mass": [0.4, 2.0]})
    adr = AutomaticDomainRandomization(cfg, RandomizationConfig())
    assert adr.ranges()["mass"] == (1.0, 1.0) and adr.ranges()["gravity"] == (0.0, 0.0)  # nominal start
    # Only the mass's upper bound succeeds; every other probe fails.
    drive(adr, lambda probe: 5 if probe == ("mass", "upper") else 0, 3000)
    lo, hi = adr.ranges()["mass"]
    assert lo == 1.0, "the lower bound must not follow the upper one"
    assert hi == pytest.approx(2.0), "past the hand-written 1.5, stopped at the cap"
    assert all(adr.ranges()[k] == ((1.0, 1.0) if KNOBS[k] == "factor" else (0.0, 0.0)) for k in KNOBS if k != "mass")
    # Now it fails too: it narrows back to nominal, never past it.
    drive(adr, lambda probe: 0, 3000, seed=1)
    assert adr.ranges()["mass"] == pytest.approx((1.0, 1.0))


def test_a_probe_pins_one_knob_at_its_bound_and_samples_the_others_within_range():
    cfg = AdrConfig(enabled=True, boundary_probability=1.0, initial_fraction=1.0)
    adr = AutomaticDomainRandomization(cfg, RandomizationConfig())
    current = adr.ranges()
    assert current["mass"] == pytest.approx((0.5, 1.5)) and current["gravity"] == pytest.approx((0.0, 0.4))
    ranges = adr.episode_ranges(np.random.default_rng(3))
    knob, side = ranges[PROBE_KEY]
    bound = current[knob][0 if side == "lower" else 1]
    assert ranges[knob] == (bound, bound)
    assert all(ranges[k] == current[k] for k in KNOBS if k != knob)

    from sim.env import CubeReorientEnv

    class Pinned:  # the mass pinned at its upper bound 1.5, everything else nominal
        def episode_ranges(self, rng):
            return {"mass": (1.5, 1.5)}

        def report(self, ranges, successes):
            pass

    env = CubeReorientEnv()
    env.set_schedule(Pinned())
    env.reset(seed=0)
    hand = env.model_randomizers[1].bodies
    np.testing.assert_allclose(env.model.body_mass[hand], 1.5 * env.nominal.body_mass[hand])  # every body
    np.testing.assert_array_equal(env.model.geom_friction, env.nominal.geom_friction)
    assert env.obs_noise.strength == 0.0 and env.forces.strength == 1.0 and env.forces.std == 0.0
    env.set_schedule(adr)  # the full ranges: samples inside them
    for seed in range(5):
        env.reset(seed=seed)
        ratio = env.model.body_mass[hand] / env.nominal.body_mass[hand]
        assert np.all(ratio >= 0.5 - 1e-9) and np.all(ratio <= 1.5 + 1e-9)
    env.set_schedule(None)  # back to the config's ranges at strength 1
    env.reset(seed=0)
    assert env.model_randomizers[1].bounds == (0.5, 1.5) and env.forces.std == 1.0
    env.close()


def test_entropy_is_the_mean_log_range_width():
    adr = AutomaticDomainRandomization(AdrConfig(enabled=True, initial_fraction=1.0), RandomizationConfig())
    r = adr.ranges()
    widths = [math.log(hi) - math.log(lo) if KNOBS[k] == "factor" else hi - lo for k, (lo, hi) in r.items()]
    assert adr.entropy() == pytest.approx(float(np.mean(np.log(widths))))
    assert AutomaticDomainRandomization(AdrConfig(enabled=True), RandomizationConfig()).entropy() == pytest.approx(
        math.log(1e-6))  # every range a point: the floor


def test_config_errors():
    with pytest.raises(ConfigError, match="randomization.enabled"):
        tiny_config("adr.enabled=true")  # the tiny config has randomization off
    with pytest.raises(ConfigError, match="adr.caps.mass"):
        AdrConfig(caps={"mass": [1.2, 2.0]}).validate()
    with pytest.raises(ConfigError, match="adr.caps.action.latency"):
        AdrConfig(caps={"action.latency": [0.0, 2.0]}).validate()
    with pytest.raises(ConfigError, match="unknown knob"):
        AdrConfig(caps={"colour": [0.0, 1.0]}).validate()


def test_adr_in_a_short_training_run_moves_bounds_logs_them_and_resumes(tmp_path):
    from dexhand.train.curve import read_scalars

    # Every probe widens (widen_at 0) after one episode; 5-step goal timeouts end episodes quickly.
    cfg = tiny_config("net.recurrent=false", "total_timesteps=512", "env.randomization.enabled=true",
                      "env.task.goal_timeout_steps=5", "adr.enabled=true", "adr.buffer_size=1",
                      "adr.widen_at=0.0", "adr.narrow_at=-1.0", "adr.boundary_probability=1.0")
    trainer = Trainer(cfg, tmp_path, progress=False)
    start_entropy = trainer.adr.entropy()
    trainer.train()
    moved = {k: v for k, v in trainer.adr.ranges().items()
             if v != ((1.0, 1.0) if KNOBS[k] == "factor" else (0.0, 0.0))}
    assert len(moved) >= 5 and trainer.adr.changes >= 10, trainer.adr.ranges()
    assert trainer.adr.entropy() > start_entropy
    state = trainer.adr.state_dict()
    trainer.close()
    assert checkpoint.latest(tmp_path).load_state()["adr"]["bounds"] == state["bounds"]

    tags = ("adr/entropy", "adr/mass/upper", "adr/cube_friction.torsion/lower", "adr/changes")
    scalars = read_scalars(tmp_path / "tb", tags)
    assert set(tags) <= set(scalars), scalars.keys()

    resumed = Trainer(cfg, tmp_path, resume=True, progress=False)
    assert resumed.adr.state_dict() == state
    resumed.close()
