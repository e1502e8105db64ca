"""Single-trial rate estimates that LFADS is measured against, and the R^2 used to score them."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d
from sklearn.decomposition import FactorAnalysis

SMOOTHING_WIDTHS_BINS = (1.0, 2.0, 3.0, 5.0, 8.0, 12.0)


def rate_r2(estimate: np.ndarray, truth: np.ndarray) -> float:
    """Variance-weighted R^2: 1 - sum of squared errors / sum of squares about each neuron's mean.

    A plain average of per-neuron R^2 is dominated by saturated neurons whose true rate barely
    varies (tanh near +-1), so the pooled form is used.
    """
    if estimate.shape != truth.shape or estimate.ndim != 3:
        raise ValueError(f"rate arrays must share a (trials, bins, neurons) shape, got {estimate.shape} and {truth.shape}")
    est = estimate.reshape(-1, estimate.shape[-1])
    tru = truth.reshape(-1, truth.shape[-1])
    residual = ((est - tru) ** 2).sum(0)
    total = ((tru - tru.mean(0)) ** 2).sum(0)
    return float(1.0 - residual.sum() / max(total.sum(), 1e-12))


def smooth_spikes(spikes: np.ndarray, width_bins: float, bin_s: float) -> np.ndarray:
    """Gaussian-smoothed spike counts along time, converted to Hz (each trial on its own)."""
    return gaussian_filter1d(spikes.astype(np.float64), width_bins, axis=1, mode="nearest") / bin_s


def best_smoothing_width(spikes: np.ndarray, rates: np.ndarray, bin_s: float) -> float:
    """Kernel width chosen on training trials against the true rates (generous to the baseline)."""
    scores = {w: rate_r2(smooth_spikes(spikes, w, bin_s), rates) for w in SMOOTHING_WIDTHS_BINS}
    return max(scores, key=scores.get)


def factor_analysis_rates(train_spikes: np.ndarray, test_spikes: np.ndarray, n_factors: int,
                          width_bins: float, bin_s: float, seed: int = 0) -> np.ndarray:
    """Smooth, fit FA on training time points, return E[x | factors] on test trials (Hz).

    This is the two-stage 'smooth then factor-analyse' method that GPFA was introduced to improve.
    """
    train = smooth_spikes(train_spikes, width_bins, bin_s).reshape(-1, train_spikes.shape[-1])
    test = smooth_spikes(test_spikes, width_bins, bin_s)
    fa = FactorAnalysis(n_components=n_factors, random_state=seed).fit(train)
    latent = fa.transform(test.reshape(-1, test.shape[-1]))
    return (latent @ fa.components_ + fa.mean_).reshape(test.shape)
