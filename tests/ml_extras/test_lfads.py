"""Tests for ml_extras.lfads: data generator, model, baselines, and the joint-state loader."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from ml_extras.lfads.baselines import factor_analysis_rates, rate_r2, smooth_spikes
from ml_extras.lfads.data import generate_chaotic_rnn_data
from ml_extras.lfads.joint_states import bin_by_time, joint_states_to_lfads, stamp_seconds
from ml_extras.lfads.model import LFADS, LFADSConfig, gaussian_kl
from ml_extras.lfads.train import TrainConfig, train_lfads

# ---------------------------------------------------------------- synthetic data

def test_generator_shapes_bounds_and_poisson_statistics():
    data = generate_chaotic_rnn_data(n_conditions=6, trials_per_condition=4, n_neurons=20, n_bins=50, seed=3)
    assert data.spikes.shape == data.rates.shape == (24, 50, 20)
    assert data.spikes.dtype.kind == "i" and data.spikes.min() >= 0
    assert data.rates.min() >= 0.0 and data.rates.max() <= 30.0
    # the chaotic network keeps rates moving (not collapsed to a fixed point) and uses the range
    assert data.rates[0].std(axis=0).mean() > 1.0
    assert data.rates.max() > 20.0 and data.rates.min() < 10.0
    # trials of one condition share rates; different conditions differ
    assert np.array_equal(data.rates[0], data.rates[3]) and not np.allclose(data.rates[0], data.rates[4])
    # Poisson counts: mean count per bin = rate * bin width
    expected = (data.rates * data.bin_s).mean()
    assert abs(data.spikes.mean() - expected) < 0.1 * expected
    assert not np.array_equal(data.spikes[0], data.spikes[1])


def test_generator_rejects_bad_arguments():
    with pytest.raises(ValueError, match=">= 1"):
        generate_chaotic_rnn_data(n_conditions=0)
    with pytest.raises(ValueError, match="positive"):
        generate_chaotic_rnn_data(n_conditions=1, max_rate=-1.0)


def test_generator_is_seeded():
    a = generate_chaotic_rnn_data(n_conditions=2, trials_per_condition=2, n_neurons=5, n_bins=10, seed=1)
    b = generate_chaotic_rnn_data(n_conditions=2, trials_per_condition=2, n_neurons=5, n_bins=10, seed=1)
    assert np.array_equal(a.spikes, b.spikes)


# ---------------------------------------------------------------- model

@pytest.mark.parametrize("inputs", [0, 2])
def test_lfads_shapes(inputs):
    config = LFADSConfig(n_channels=7, encoder_size=8, controller_encoder_size=6, controller_size=5,
                         generator_size=9, factor_size=3, inferred_input_size=inputs)
    model = LFADS(config)
    x = torch.poisson(torch.full((4, 12, 7), 0.5))
    out = model(x)
    assert out["output"].shape == (4, 12, 7)
    assert out["factors"].shape == (4, 12, 3)
    assert out["kl"].shape == (4,) and torch.all(out["kl"] >= 0)
    assert ("inputs" in out) == (inputs > 0)
    if inputs:
        assert out["inputs"].shape == (4, 12, inputs)
    rates = model.infer_rates(x, bin_s=0.01)
    assert rates.shape == x.shape and torch.all(rates > 0)
    torch.testing.assert_close(model.infer_rates(x, 0.01), rates)  # posterior means: deterministic
    with pytest.raises(ValueError, match="batch, time, 7"):
        model(torch.zeros(4, 12, 6))


def test_gaussian_kl_matches_torch_distributions():
    mean, log_var = torch.randn(5, 3), torch.randn(5, 3)
    q = torch.distributions.Normal(mean, (0.5 * log_var).exp())
    p = torch.distributions.Normal(torch.zeros(3), torch.full((3,), 0.1).sqrt())
    expected = torch.distributions.kl_divergence(q, p).sum(-1)
    torch.testing.assert_close(gaussian_kl(mean, log_var, 0.1), expected)


def test_gradients_reach_every_module():
    model = LFADS(LFADSConfig(n_channels=4, encoder_size=4, controller_encoder_size=4, controller_size=4,
                              generator_size=4, factor_size=2, inferred_input_size=1))
    loss, parts = model.loss(torch.poisson(torch.ones(3, 6, 4)))
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"no gradient reaches {name}"
    assert parts["nll"] > 0


@pytest.mark.parametrize("likelihood", ["poisson", "gaussian"])
def test_training_decreases_loss(likelihood):
    torch.manual_seed(0)
    t = torch.linspace(0, 3, 20)
    pattern = torch.stack([torch.sin(t + k) for k in range(6)], -1)
    phases = torch.randint(0, 2, (24, 1, 1)).float()
    signal = pattern * (2 * phases - 1)
    x = torch.poisson((1.5 + signal).clamp(min=0.1)) if likelihood == "poisson" else signal + 0.1 * torch.randn(24, 20, 6)
    model = LFADS(LFADSConfig(n_channels=6, encoder_size=16, controller_encoder_size=8, controller_size=8,
                              generator_size=16, factor_size=4, dropout=0.0, likelihood=likelihood))
    history = train_lfads(model, x, TrainConfig(steps=40, batch_size=12, lr=1e-2, kl_warmup_steps=10))
    assert np.mean(history[-8:]) < 0.9 * np.mean(history[:4])


def test_bad_likelihood():
    with pytest.raises(ValueError, match="likelihood"):
        LFADS(LFADSConfig(n_channels=3, likelihood="binomial"))


# ---------------------------------------------------------------- baselines

def test_rate_r2_and_baselines():
    rng = np.random.default_rng(0)
    truth = 10 + 5 * np.sin(np.linspace(0, 6, 40))[None, :, None] * rng.uniform(0.5, 1, (1, 1, 3))
    truth = np.repeat(truth, 30, axis=0) + rng.normal(0, 2, (30, 1, 3))
    assert rate_r2(truth, truth) == pytest.approx(1.0)
    assert rate_r2(np.broadcast_to(truth.mean((0, 1)), truth.shape), truth) == pytest.approx(0.0, abs=1e-9)
    spikes = rng.poisson(truth * 0.05)
    raw, smooth = smooth_spikes(spikes, 1e-3, 0.05), smooth_spikes(spikes, 3.0, 0.05)
    assert rate_r2(smooth, truth) > rate_r2(raw, truth)
    fa = factor_analysis_rates(spikes[:20], spikes[20:], 2, 3.0, 0.05)
    assert fa.shape == spikes[20:].shape
    with pytest.raises(ValueError, match="shape"):
        rate_r2(truth[:, :10], truth)


# ---------------------------------------------------------------- joint-state loader

def _record(t, names, position, velocity, style="dict"):
    if style == "dict":
        return {"header": {"stamp": t}, "name": names, "position": position, "velocity": velocity}
    secs = int(t)
    stamp = SimpleNamespace(secs=secs, nsecs=int(round((t - secs) * 1e9)))
    return SimpleNamespace(header=SimpleNamespace(stamp=stamp), name=names, position=position, velocity=velocity)


def test_loader_orders_joints_by_name():
    names_a, names_b = ["rh_WRJ2", "rh_FFJ1", "rh_THJ5"], ["rh_THJ5", "rh_WRJ2", "rh_FFJ1"]
    # joint value encodes the joint: FFJ1 = 1, THJ5 = 2, WRJ2 = 3 (+ time-dependent part)
    value = {"rh_FFJ1": 1.0, "rh_THJ5": 2.0, "rh_WRJ2": 3.0}
    records = []
    for i in range(40):
        t = 0.01 * i
        names = names_a if i % 2 else names_b
        records.append(_record(t, names, [value[n] + t for n in names], [10 * value[n] for n in names],
                               style="dict" if i % 3 else "object"))
    out = joint_states_to_lfads(records, bin_s=0.01, window_bins=10)
    assert out.joint_names == ["rh_FFJ1", "rh_THJ5", "rh_WRJ2"]
    assert out.channel_names[:3] == ["position/rh_FFJ1", "position/rh_THJ5", "position/rh_WRJ2"]
    assert out.data.shape == (4, 10, 6) and out.data.dtype == torch.float32
    np.testing.assert_allclose(out.mean[:3], [1 + 0.195, 2 + 0.195, 3 + 0.195], atol=1e-9)
    np.testing.assert_allclose(out.mean[3:], [10, 20, 30])
    flat = out.data.reshape(-1, 6).numpy()
    np.testing.assert_allclose(flat[:, :3].mean(0), 0, atol=1e-6)
    np.testing.assert_allclose(flat[:, :3].std(0), 1, atol=1e-5)
    assert np.all(flat[:, 3:] == 0)  # constant velocities: no NaN from a zero std
    with pytest.raises(ValueError, match="missing joints"):
        joint_states_to_lfads(records, bin_s=0.01, window_bins=10, joint_names=["rh_FFJ1", "rh_LFJ5"])


def test_bin_by_time_averages_sorts_and_interpolates():
    names = ["b", "a"]
    # out of order stamps; bin 0: t=0, 0.004 -> a = (1 + 3)/2; bin 1 empty; bin 2: t=0.025 -> a = 7
    records = [_record(0.025, names, [0.0, 7.0], [0, 0]), _record(0.0, names, [0.0, 1.0], [0, 0]),
               _record(0.004, names, [0.0, 3.0], [0, 0])]
    from ml_extras.lfads.joint_states import read_joint_states

    times, values, order = read_joint_states(records)
    assert order == ["a", "b"] and list(times) == [0.0, 0.004, 0.025]
    binned = bin_by_time(times, values, 0.01)
    np.testing.assert_allclose(binned[:, 0], [2.0, 4.5, 7.0])
    stats = (np.zeros(4), np.full(4, 2.0))
    out = joint_states_to_lfads(records, bin_s=0.01, window_bins=2, stride_bins=1, stats=stats)
    np.testing.assert_allclose(out.data[:, :, 0].numpy(), [[1.0, 2.25], [2.25, 3.5]])
    np.testing.assert_allclose(out.bin_start_s, [0.0, 0.01])


def test_stamp_formats():
    assert stamp_seconds(1.5) == 1.5
    assert stamp_seconds({"secs": 2, "nsecs": 500_000_000}) == pytest.approx(2.5)
    assert stamp_seconds(SimpleNamespace(sec=3, nanosec=250_000_000)) == pytest.approx(3.25)
    assert stamp_seconds(SimpleNamespace(to_sec=lambda: 4.0)) == 4.0
    with pytest.raises(ValueError, match="cannot read a time"):
        stamp_seconds("yesterday")
    with pytest.raises(ValueError, match="not finite"):
        stamp_seconds(float("nan"))


def test_loader_rejects_bad_input():
    names = ["a", "b"]
    good = [_record(0.01 * i, names, [0.0, 1.0], [0.0, 0.0]) for i in range(5)]
    with pytest.raises(ValueError, match="no joint-state records"):
        joint_states_to_lfads([], window_bins=2)
    with pytest.raises(ValueError, match="2 joints"):
        joint_states_to_lfads([*good, _record(0.05, names, [0.0], [0.0, 0.0])], window_bins=2)
    with pytest.raises(ValueError, match="record 5 has joints"):
        joint_states_to_lfads([*good, _record(0.05, ["a", "c"], [0.0, 1.0], [0.0, 0.0])], window_bins=2)
    with pytest.raises(ValueError, match="no 'header'"):
        joint_states_to_lfads([{"name": names, "position": [0, 0], "velocity": [0, 0]}], window_bins=1)
    with pytest.raises(ValueError, match="fewer than one window"):
        joint_states_to_lfads(good, bin_s=0.01, window_bins=50)
    with pytest.raises(ValueError, match="NaN"):
        joint_states_to_lfads([*good, _record(0.05, names, [float("nan"), 1.0], [0.0, 0.0])], window_bins=2)
    with pytest.raises(ValueError, match="fields"):
        joint_states_to_lfads(good, window_bins=2, fields=("torque",))
    with pytest.raises(ValueError, match="bin size"):
        joint_states_to_lfads(good, bin_s=0.0, window_bins=2)


# ---------------------------------------------------------------- claims

def test_lfads_claim_holds_only_when_lfads_beats_both_baselines():
    from ml_extras.lfads.claims import lfads_claims

    def rows(lfads, smooth, fa):
        return [{"method": "Gaussian smoothing (sd 2 bins)", "rate_r2_valid": smooth},
                {"method": "smoothing + factor analysis (8)", "rate_r2_valid": fa},
                {"method": "LFADS (10 steps)", "rate_r2_valid": lfads}]

    (good,) = lfads_claims(rows(0.9, 0.7, 0.8))
    assert good["holds"] is True and good["figures"] == {"lfads_r2": 0.9, "smoothing_r2": 0.7, "factor_analysis_r2": 0.8}
    assert lfads_claims(rows(0.75, 0.7, 0.8))[0]["holds"] is False
    with pytest.raises(KeyError):
        lfads_claims(rows(0.9, 0.7, 0.8)[:2])
