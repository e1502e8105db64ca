"""The LFADS paper's synthetic data: Poisson spikes from a chaotic vanilla RNN.

tau dx/dt = -x + g J tanh(x), J_ij ~ N(0, 1/N), g = 1.5 (chaotic regime), rates
r = r_max (tanh(x) + 1) / 2 in [0, r_max] Hz, 100 bins of 10 ms. Each condition is one random
initial state; its trials share the rates and differ only in the Poisson draws.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class ChaoticRNNData:
    spikes: np.ndarray     # (trials, bins, neurons) int counts
    rates: np.ndarray      # (trials, bins, neurons) true rates in Hz
    condition: np.ndarray  # (trials,) index of the initial condition
    bin_s: float


def simulate_rnn(x0: np.ndarray, weights: np.ndarray, n_bins: int, bin_s: float, tau: float,
                 substeps: int) -> np.ndarray:
    """Euler-integrate the RNN from each row of x0 (C, N); returns states x (C, bins, N) at bin ends."""
    dt = bin_s / substeps
    x = x0.copy()
    out = np.empty((x0.shape[0], n_bins, x0.shape[1]))
    for b in range(n_bins):
        for _ in range(substeps):
            x = x + (dt / tau) * (-x + np.tanh(x) @ weights.T)
        out[:, b] = x
    return out


def generate_chaotic_rnn_data(n_conditions: int = 100, trials_per_condition: int = 10, n_neurons: int = 50,
                              n_bins: int = 100, bin_s: float = 0.01, g: float = 1.5, tau: float = 0.025,
                              max_rate: float = 30.0, substeps: int = 10, burn_in_s: float = 0.2,
                              seed: int = 0) -> ChaoticRNNData:
    """Generate spikes and true rates; one network, n_conditions initial states."""
    if min(n_conditions, trials_per_condition, n_neurons, n_bins) < 1:
        raise ValueError("n_conditions, trials_per_condition, n_neurons and n_bins must all be >= 1")
    if bin_s <= 0 or tau <= 0 or max_rate <= 0:
        raise ValueError("bin_s, tau and max_rate must be positive")
    rng = np.random.default_rng(seed)
    weights = g * rng.normal(0.0, 1.0 / np.sqrt(n_neurons), (n_neurons, n_neurons))
    x0 = rng.normal(0.0, 1.0, (n_conditions, n_neurons))
    burn_bins = int(round(burn_in_s / bin_s))
    if burn_bins:  # let the chaotic attractor take over from the Gaussian initial states
        x0 = simulate_rnn(x0, weights, burn_bins, bin_s, tau, substeps)[:, -1]
    states = simulate_rnn(x0, weights, n_bins, bin_s, tau, substeps)
    condition_rates = max_rate * (np.tanh(states) + 1.0) / 2.0
    condition = np.repeat(np.arange(n_conditions), trials_per_condition)
    rates = condition_rates[condition]
    spikes = rng.poisson(rates * bin_s)
    return ChaoticRNNData(spikes=spikes.astype(np.int64), rates=rates, condition=condition, bin_s=bin_s)


def split_by_trial(n_trials: int, valid_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random train/validation trial indices (conditions appear in both, as in the paper)."""
    order = np.random.default_rng(seed).permutation(n_trials)
    n_valid = max(1, int(round(valid_fraction * n_trials)))
    return np.sort(order[n_valid:]), np.sort(order[:n_valid])
