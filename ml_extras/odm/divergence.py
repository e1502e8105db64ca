"""The output distribution matching (ODM) cost and the known label-sequence prior it matches.

ODM (Sutskever et al. 2015) needs no labels: it asks that the distribution of the model's
predictions over many inputs equal the known distribution of labels. For a sequence of k
independent per-item predictions p(y_t | x_t), a batch's predicted distribution over the C^k
label sequences is Q(y_1..y_k) = mean_b prod_t p_b(y_t | x_bt); the cost is KL(P || Q).

Matching only per-item marginals has a trivial minimizer (predict the prior for every input); a
non-uniform prior with dependencies between positions has none, which is why the output space is
made large (sequences) rather than the single digit.
"""

from __future__ import annotations

import numpy as np
import torch


def markov_prior(num_classes: int, length: int, successors: int = 3, seed: int = 0) -> np.ndarray:
    """A non-uniform sequence prior P of shape (C,)*length: a sparse random Markov chain.

    Each class may be followed by ``successors`` classes with random weights; starts are random
    too. The dependency between positions is what makes the labelling identifiable.
    """
    if not 1 <= successors <= num_classes or length < 1:
        raise ValueError(f"need 1 <= successors <= num_classes and length >= 1, got {successors}, {length}")
    rng = np.random.default_rng(seed)
    start = rng.dirichlet(np.ones(num_classes))
    transition = np.zeros((num_classes, num_classes))
    for row in range(num_classes):
        allowed = rng.choice(num_classes, successors, replace=False)
        transition[row, allowed] = rng.dirichlet(np.ones(successors))
    joint = start
    for _ in range(length - 1):
        joint = joint[..., None] * transition.reshape((1,) * (joint.ndim - 1) + transition.shape)
    return joint


def sample_sequences(prior: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n label sequences (n, k) drawn from the joint prior."""
    flat = rng.choice(prior.size, size=n, p=prior.ravel() / prior.sum())
    return np.stack(np.unravel_index(flat, prior.shape), axis=1)


def predicted_joint(probs: torch.Tensor) -> torch.Tensor:
    """Q over label sequences from per-position predictions probs (B, k, C): shape (C,)*k."""
    if probs.ndim != 3:
        raise ValueError(f"probs must be (batch, length, classes), got shape {tuple(probs.shape)}")
    batch, length, classes = probs.shape
    joint = probs[:, 0]
    for t in range(1, length):
        joint = (joint.unsqueeze(-1) * probs[:, t].reshape((batch,) + (1,) * t + (classes,)))
    return joint.mean(0)


def kl_divergence(target: torch.Tensor, predicted: torch.Tensor, smoothing: float = 1e-3) -> torch.Tensor:
    """KL(target || predicted) with ``predicted`` mixed with a little uniform mass (finite when Q has zeros).

    Zero exactly when the two are equal (with smoothing the mixed predicted equals (1-s) P + s U,
    so callers comparing identical distributions should pass smoothing=0).
    """
    if target.shape != predicted.shape:
        raise ValueError(f"shapes differ: target {tuple(target.shape)} vs predicted {tuple(predicted.shape)}")
    predicted = (1.0 - smoothing) * predicted + smoothing / predicted.numel()
    mask = target > 0
    return (target[mask] * (torch.log(target[mask]) - torch.log(predicted[mask]))).sum()


def odm_loss(probs: torch.Tensor, prior: torch.Tensor, smoothing: float = 1e-3) -> torch.Tensor:
    """ODM cost of a batch of sequence predictions against the known sequence prior."""
    if prior.ndim != probs.shape[1] or any(s != probs.shape[2] for s in prior.shape):
        raise ValueError(f"prior shape {tuple(prior.shape)} does not fit predictions {tuple(probs.shape)}")
    return kl_divergence(prior, predicted_joint(probs), smoothing)


def marginal_odm_loss(probs: torch.Tensor, prior: torch.Tensor, smoothing: float = 1e-3) -> torch.Tensor:
    """ODM on one position's label marginal: probs (B, C) against prior (C,) (used for adaptation)."""
    if probs.ndim != 2 or prior.shape != probs.shape[1:]:
        raise ValueError(f"need probs (B, C) and prior (C,), got {tuple(probs.shape)} and {tuple(prior.shape)}")
    return kl_divergence(prior, probs.mean(0), smoothing)
