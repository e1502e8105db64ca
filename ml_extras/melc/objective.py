"""The MELC objective: Cauchy-Schwarz divergence between the two class KDEs of a 1-D projection.

For projections p = X u (u = w/||w||) and Gaussian class KDEs with bandwidths sigma_a, the
integrals of KDE products have a closed form (a Gaussian convolved with a Gaussian), so

    D_CS = log V_pp + log V_nn - 2 log V_pn,
    V_ab = 1/(n_a n_b) sum_{i in a, j in b} phi(p_i - p_j; sigma_a^2 + sigma_b^2),

with phi(d; v) the N(0, v) density. Every V_ab is a "pair potential"; this file computes it, its
derivative with respect to each projection and to the variance v, in three ways:

* ``exact``: all n_a n_b pairs, O(n^2);
* ``sort``: sort-and-discard; pairs further apart than a radius r are dropped, r chosen from the
  error tolerance, with an a-posteriori bound that enlarges r until the bound holds;
* ``bin``: linear binning onto a grid of step Delta and an FFT convolution, O(n + B log B), with
  Delta chosen from the tolerance through the linear-interpolation error bound of the kernel.

Each approximation guarantees |D_approx - D_exact| <= tol: the tolerance is split into four equal
parts (log V_pp, log V_nn and twice log V_pn), and each |log V - log V_approx| is bounded by
|V - V_approx| / min(V, V_approx).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.signal import fftconvolve

Method = Literal["exact", "sort", "bin"]
METHODS: tuple[str, ...] = ("exact", "sort", "bin")
MAX_BINS = 1 << 20  # a grid this fine means the tolerance is unreasonably small


@dataclass
class PairPotential:
    """V_ab and its derivatives; ``error_bound`` bounds |log V_exact - log V| (0 when exact)."""

    value: float
    grad_a: np.ndarray  # dV/dp_a, shape (n_a,)
    grad_b: np.ndarray  # dV/dp_b, shape (n_b,)
    grad_v: float  # dV/dv
    error_bound: float = 0.0
    pairs_used: int = 0


def gaussian(d: np.ndarray, v: float) -> np.ndarray:
    """N(0, v) density at d."""
    return np.exp(-0.5 * d * d / v) / np.sqrt(2.0 * np.pi * v)


def _from_pairwise(diff: np.ndarray, v: float, scale: float) -> tuple[float, np.ndarray, np.ndarray, float]:
    """Sum phi over an (n_a, n_b) difference matrix; returns V and derivatives (scaled by 1/(n_a n_b))."""
    kern = gaussian(diff, v)
    slope = kern * (-diff / v)  # d phi / d p_a for each pair
    value = kern.sum() * scale
    grad_a = slope.sum(axis=1) * scale
    grad_b = -slope.sum(axis=0) * scale
    grad_v = float((kern * (0.5 * diff * diff / (v * v) - 0.5 / v)).sum() * scale)
    return float(value), grad_a, grad_b, grad_v


def exact_potential(pa: np.ndarray, pb: np.ndarray, v: float) -> PairPotential:
    """All pairs: the O(n_a n_b) reference."""
    value, ga, gb, gv = _from_pairwise(pa[:, None] - pb[None, :], v, 1.0 / (pa.size * pb.size))
    return PairPotential(value, ga, gb, gv, 0.0, pa.size * pb.size)


def _blocked_sums(pa_sorted: np.ndarray, pb_sorted: np.ndarray, v: float,
                  radius: float) -> tuple[float, np.ndarray, np.ndarray, float, int]:
    """Sums over pairs within ``radius`` (plus a block's width) using dense slabs of sorted data.

    Both sides are sorted; each block of a's points meets only the contiguous run of b's points
    within radius of the block's range, so the work is proportional to the pairs kept.
    """
    total = 0.0
    grad_a = np.zeros(pa_sorted.size)
    grad_b = np.zeros(pb_sorted.size)
    grad_v = 0.0
    kept = 0
    block = int(np.clip(pa_sorted.size // 16, 16, 256))  # small blocks waste few pairs, big ones few calls
    for start in range(0, pa_sorted.size, block):
        chunk = pa_sorted[start : start + block]
        lo = int(np.searchsorted(pb_sorted, chunk[0] - radius, side="left"))
        hi = int(np.searchsorted(pb_sorted, chunk[-1] + radius, side="right"))
        if hi <= lo:
            continue
        diff = chunk[:, None] - pb_sorted[None, lo:hi]
        kern = gaussian(diff, v)
        slope = kern * (-diff / v)
        total += kern.sum()
        grad_a[start : start + block] = slope.sum(axis=1)
        grad_b[lo:hi] -= slope.sum(axis=0)
        grad_v += float((kern * (0.5 * diff * diff / (v * v) - 0.5 / v)).sum())
        kept += diff.size
    return total, grad_a, grad_b, grad_v, kept


def sort_discard_potential(pa: np.ndarray, pb: np.ndarray, v: float, tol: float) -> PairPotential:
    """Drop pairs further apart than r; r grows until the bound on |log V error| is <= tol.

    Every dropped pair contributes less than phi(r; v), and V is an average over pairs, so the
    dropped mass is at most phi(r; v) * (fraction dropped). Kept terms are positive, so the
    approximation is a lower bound L of V and |log V - log L| <= log(1 + phi(r) * frac / L).
    """
    order_a = np.argsort(pa)
    order_b = np.argsort(pb)
    pa_sorted, pb_sorted = pa[order_a], pb[order_b]
    scale = 1.0 / (pa.size * pb.size)
    peak = gaussian(np.zeros(1), v)[0]
    # first guess: V is rarely below a tenth of the kernel's peak, so drop terms below tol/10 * peak
    ratio = 0.1 * tol
    for _ in range(60):
        radius = np.sqrt(2.0 * v * np.log(1.0 / ratio)) if ratio < 1.0 else 0.0
        total, ga_sorted, gb_sorted, grad_v, kept = _blocked_sums(pa_sorted, pb_sorted, v, radius)
        lower = total * scale
        dropped_fraction = 1.0 - kept * scale
        bound_abs = ratio * peak * dropped_fraction
        bound = np.log1p(bound_abs / lower) if lower > 0 else np.inf
        if bound <= tol or dropped_fraction <= 0.0:
            break
        # shrink the threshold in proportion to how far the bound is off (at least 4x)
        ratio *= min(0.25, 0.9 * tol / bound) if np.isfinite(bound) else 1e-3
    grad_a = np.empty(pa.size)
    grad_b = np.empty(pb.size)
    grad_a[order_a] = ga_sorted * scale
    grad_b[order_b] = gb_sorted * scale
    return PairPotential(float(lower), grad_a, grad_b, grad_v * scale, float(bound), int(kept))


def _linear_bin(p: np.ndarray, origin: float, step: float, n_bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split each point's mass 1/n between its two neighbouring grid nodes; returns counts, node, frac."""
    pos = (p - origin) / step
    node = np.clip(np.floor(pos).astype(np.int64), 0, n_bins - 2)
    frac = pos - node
    counts = np.bincount(node, weights=(1.0 - frac), minlength=n_bins)
    counts += np.bincount(node + 1, weights=frac, minlength=n_bins)
    return counts / p.size, node, frac


def binned_potential(pa: np.ndarray, pb: np.ndarray, v: float, tol: float) -> PairPotential:
    """Linear binning + FFT convolution; the grid step comes from the interpolation error bound.

    Linear binning of both points equals bilinear interpolation of phi(x - y) on the grid, whose
    error is at most Delta^2/8 * (|phi_xx| + |phi_yy|) <= Delta^2/4 * phi(0; v)/v per pair, hence
    |V - V_bin| <= Delta^2 phi(0; v) / (4 v). Delta is refined until the log error is <= tol.
    """
    lo = min(pa.min(), pb.min())
    hi = max(pa.max(), pb.max())
    span = max(hi - lo, 1e-12)
    peak = gaussian(np.zeros(1), v)[0]
    # first guess: absolute error tol * (a tenth of the peak), a typical lower bound on V
    step = np.sqrt(4.0 * v * tol * 0.1)
    for _ in range(40):
        n_bins = int(np.ceil(span / step)) + 2
        if n_bins > MAX_BINS:
            raise ValueError(f"binning needs {n_bins} bins for tol={tol}; use a larger tolerance or 'sort'")
        counts_a, node_a, frac_a = _linear_bin(pa, lo, step, n_bins)
        counts_b, node_b, frac_b = _linear_bin(pb, lo, step, n_bins)
        offsets = np.arange(-(n_bins - 1), n_bins) * step
        kernel = gaussian(offsets, v)
        field_b = fftconvolve(counts_b, kernel, mode="full")[n_bins - 1 : 2 * n_bins - 1]
        value = float(counts_a @ field_b)
        bound_abs = step * step * peak / (4.0 * v)
        floor = value - bound_abs
        bound = np.log1p(bound_abs / floor) if floor > 0 else np.inf
        if bound <= tol:
            break
        step *= min(0.5, 0.9 * np.sqrt(tol / bound)) if np.isfinite(bound) else 0.25
    field_a = fftconvolve(counts_a, kernel, mode="full")[n_bins - 1 : 2 * n_bins - 1]
    # derivative of the piecewise-linear interpolation with respect to each point's position
    grad_a = (field_b[node_a + 1] - field_b[node_a]) / (step * pa.size)
    grad_b = (field_a[node_b + 1] - field_a[node_b]) / (step * pb.size)
    dkernel_dv = kernel * (0.5 * offsets * offsets / (v * v) - 0.5 / v)
    grad_v = float(counts_a @ fftconvolve(counts_b, dkernel_dv, mode="full")[n_bins - 1 : 2 * n_bins - 1])
    return PairPotential(value, grad_a, grad_b, grad_v, float(bound), n_bins)


def pair_potential(pa: np.ndarray, pb: np.ndarray, v: float, method: Method = "exact",
                   tol: float = 1e-3) -> PairPotential:
    """Dispatch to the exact or an approximate pair potential."""
    if method == "exact":
        return exact_potential(pa, pb, v)
    if method == "sort":
        return sort_discard_potential(pa, pb, v, tol)
    if method == "bin":
        return binned_potential(pa, pb, v, tol)
    raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")


def silverman_factor(n: int) -> float:
    """Silverman's rule for a 1-D Gaussian KDE: sigma = (4 / (3 n))^(1/5) * std."""
    return (4.0 / (3.0 * n)) ** 0.2


@dataclass
class ObjectiveResult:
    """D_CS at u, its gradient with respect to the projections, and the approximation's error bound."""

    value: float
    grad_projection: np.ndarray
    error_bound: float
    bandwidths: tuple[float, float]


def cs_divergence_of_projection(proj: np.ndarray, positive: np.ndarray, method: Method = "exact",
                                tol: float = 1e-3, bandwidth: float | None = None) -> ObjectiveResult:
    """D_CS between the two class KDEs of 1-D projections, with d D / d proj.

    bandwidth=None uses Silverman's rule per class on the projected class spread; this makes D_CS
    invariant to the scale of the projection, and its dependence on proj is differentiated too.
    """
    proj = np.asarray(proj, dtype=np.float64)
    positive = np.asarray(positive, dtype=bool)
    if proj.ndim != 1 or positive.shape != proj.shape:
        raise ValueError(f"proj and positive must be 1-D of equal length, got {proj.shape} and {positive.shape}")
    if positive.sum() < 2 or (~positive).sum() < 2:
        raise ValueError("each class needs at least two points")
    if tol <= 0:
        raise ValueError(f"tol must be positive, got {tol}")
    pos, neg = proj[positive], proj[~positive]
    sigmas, dsigma = [], []
    for part in (pos, neg):
        if bandwidth is None:
            factor = silverman_factor(part.size)
            std = part.std()
            if std <= 0:
                raise ValueError("a class projects to a single point: the bandwidth is zero")
            sigmas.append(factor * std)
            dsigma.append(factor * (part - part.mean()) / (part.size * std))  # d sigma / d p_i
        else:
            sigmas.append(float(bandwidth))
            dsigma.append(np.zeros_like(part))
    var_p, var_n = sigmas[0] ** 2, sigmas[1] ** 2
    part_tol = tol / 4.0
    v_pp = pair_potential(pos, pos, 2 * var_p, method, part_tol)
    v_nn = pair_potential(neg, neg, 2 * var_n, method, part_tol)
    v_pn = pair_potential(pos, neg, var_p + var_n, method, part_tol)
    value = np.log(v_pp.value) + np.log(v_nn.value) - 2.0 * np.log(v_pn.value)
    # gradient: through the pair positions and through the variances (sigma depends on proj)
    g_pos = (v_pp.grad_a + v_pp.grad_b) / v_pp.value - 2.0 * v_pn.grad_a / v_pn.value
    g_neg = (v_nn.grad_a + v_nn.grad_b) / v_nn.value - 2.0 * v_pn.grad_b / v_pn.value
    dvar_p = 2.0 * v_pp.grad_v / v_pp.value - 2.0 * v_pn.grad_v / v_pn.value  # d D / d sigma_p^2 parts
    dvar_n = 2.0 * v_nn.grad_v / v_nn.value - 2.0 * v_pn.grad_v / v_pn.value
    g_pos = g_pos + dvar_p * 2.0 * sigmas[0] * dsigma[0]
    g_neg = g_neg + dvar_n * 2.0 * sigmas[1] * dsigma[1]
    grad = np.empty_like(proj)
    grad[positive] = g_pos
    grad[~positive] = g_neg
    bound = v_pp.error_bound + v_nn.error_bound + 2.0 * v_pn.error_bound
    return ObjectiveResult(float(value), grad, float(bound), (sigmas[0], sigmas[1]))


def cs_divergence(w: np.ndarray, x: np.ndarray, positive: np.ndarray, method: Method = "exact",
                  tol: float = 1e-3, bandwidth: float | None = None) -> tuple[float, np.ndarray]:
    """D_CS of the projection onto w/||w|| and its gradient with respect to w (tangent to the sphere)."""
    w = np.asarray(w, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or w.shape != (x.shape[1],):
        raise ValueError(f"need x of shape (n, d) and w of shape (d,), got {x.shape} and {w.shape}")
    norm = np.linalg.norm(w)
    if norm == 0:
        raise ValueError("w must be non-zero")
    u = w / norm
    res = cs_divergence_of_projection(x @ u, positive, method, tol, bandwidth)
    grad_u = x.T @ res.grad_projection
    grad_w = (grad_u - u * (u @ grad_u)) / norm
    return res.value, grad_w
