"""Tests for ml_extras.odm: the divergence, the sequence prior, shapes, and learning without labels."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ml_extras.odm.adapt import AdaptSettings, adapt, face_up_labels, quaternion_to_matrix
from ml_extras.odm.data import DigitSplit, SequenceSampler, few_labels
from ml_extras.odm.divergence import (
    kl_divergence,
    marginal_odm_loss,
    markov_prior,
    odm_loss,
    predicted_joint,
    sample_sequences,
)
from ml_extras.odm.model import MLPClassifier, SmallCNN
from ml_extras.odm.train import SequenceSettings, accuracy, train_arm

torch.set_num_threads(1)


def test_divergence_zero_when_matching_positive_otherwise() -> None:
    prior = torch.as_tensor(markov_prior(4, 2, successors=2, seed=1), dtype=torch.float32)
    assert float(kl_divergence(prior, prior.clone(), smoothing=0.0)) == pytest.approx(0.0, abs=1e-6)
    other = torch.full_like(prior, 1.0 / prior.numel())
    assert float(kl_divergence(prior, other)) > 0.1
    # hand-computed: KL([0.5, 0.5] || [0.25, 0.75])
    expected = 0.5 * np.log(0.5 / 0.25) + 0.5 * np.log(0.5 / 0.75)
    got = kl_divergence(torch.tensor([0.5, 0.5]), torch.tensor([0.25, 0.75]), smoothing=0.0)
    assert float(got) == pytest.approx(expected, rel=1e-5)


def test_one_hot_predictions_of_true_sequences_give_their_empirical_distribution() -> None:
    labels = np.array([[0, 1], [0, 1], [2, 0], [1, 1]])
    probs = torch.nn.functional.one_hot(torch.as_tensor(labels), 3).float()
    joint = predicted_joint(probs)
    assert joint.shape == (3, 3)
    assert float(joint[0, 1]) == pytest.approx(0.5)
    assert float(joint[2, 0]) == pytest.approx(0.25)
    assert float(joint.sum()) == pytest.approx(1.0)
    assert float(odm_loss(probs, joint, smoothing=0.0)) == pytest.approx(0.0, abs=1e-6)


def test_prior_is_normalized_sparse_non_uniform_and_samples_follow_it() -> None:
    prior = markov_prior(5, 3, successors=2, seed=0)
    assert prior.shape == (5, 5, 5)
    assert prior.sum() == pytest.approx(1.0)
    assert (prior > 0).sum() <= 5 * 2 * 2
    seqs = sample_sequences(prior, 20000, np.random.default_rng(0))
    assert seqs.shape == (20000, 3)
    assert np.all(prior[tuple(seqs.T)] > 0)  # never an impossible sequence
    first = np.bincount(seqs[:, 0], minlength=5) / len(seqs)
    np.testing.assert_allclose(first, prior.sum(axis=(1, 2)), atol=0.02)


def test_constant_prediction_cannot_match_a_dependent_prior() -> None:
    """Why sequences: the best input-independent prediction still leaves a positive ODM cost."""
    prior = torch.as_tensor(markov_prior(4, 2, successors=1, seed=2), dtype=torch.float32)
    marginal = prior.sum(0)  # predict the marginal of position 2 for every item
    probs = marginal.expand(8, 2, 4).clone()
    assert float(odm_loss(probs, prior, smoothing=0.0)) > 0.3


def test_gradients_flow_and_shapes_are_checked() -> None:
    model = MLPClassifier(6, 4)
    x = torch.randn(10 * 3, 6)
    probs = torch.softmax(model(x), 1).reshape(10, 3, 4)
    prior = torch.as_tensor(markov_prior(4, 3, 2, seed=3), dtype=torch.float32)
    odm_loss(probs, prior).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    with pytest.raises(ValueError, match="prior shape"):
        odm_loss(probs, prior.sum(0))
    with pytest.raises(ValueError, match="batch, length, classes"):
        predicted_joint(probs[0])
    with pytest.raises(ValueError, match="probs"):
        marginal_odm_loss(probs, prior.sum((0, 1)))
    with pytest.raises(ValueError, match="expected"):
        model(torch.randn(3, 5))
    assert SmallCNN(6)(torch.rand(2, 3, 16, 16)).shape == (2, 6)


def _toy_split(seed: int = 0) -> DigitSplit:
    """Four well-separated Gaussian clusters standing in for digit images."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(4, 8)) * 3

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, 4, n)
        return (centers[y] + rng.normal(size=(n, 8))).astype(np.float32), y.astype(np.int64)

    (tx, ty), (sx, sy) = draw(400), draw(200)
    return DigitSplit(tx, ty, sx, sy)


def test_odm_learns_labels_without_any_labels_and_loss_decreases() -> None:
    split = _toy_split()
    prior = markov_prior(4, 3, successors=2, seed=0)
    settings = SequenceSettings(length=3, steps=150, batch=256, lr=1e-2)
    model, losses = train_arm(split, prior, None, True, settings, seed=0)
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:10])
    chance = np.bincount(split.test_y).max() / len(split.test_y)
    assert accuracy(model, split.test_x, split.test_y) > max(0.8, chance + 0.3)


def test_sampler_draws_images_of_the_sampled_labels() -> None:
    split = _toy_split()
    prior = markov_prior(4, 2, 2, seed=1)
    images, labels = SequenceSampler(split.train_x, split.train_y, prior, seed=0).sample(50)
    assert images.shape == (50, 2, 8) and labels.shape == (50, 2)
    lookup = {x.tobytes(): y for x, y in zip(split.train_x, split.train_y)}
    assert all(lookup[img.tobytes()] == lab for img, lab in zip(images.reshape(-1, 8), labels.ravel()))
    idx = few_labels(split.train_y, 3, seed=0)
    assert np.array_equal(np.bincount(split.train_y[idx]), [3, 3, 3, 3])


def test_face_up_labels_for_known_rotations() -> None:
    identity = np.array([[1.0, 0, 0, 0]])
    assert face_up_labels(identity)[0] == 4  # +z of the cube points up
    half_turn_x = np.array([[0.0, 1.0, 0, 0]])
    assert face_up_labels(half_turn_x)[0] == 5  # upside down: -z up
    quarter_y = np.array([[np.cos(np.pi / 4), 0, np.sin(np.pi / 4), 0]])
    # rotating +90 deg about y sends the cube's -x axis to world +z
    assert face_up_labels(quarter_y)[0] == 1
    mats = quaternion_to_matrix(np.random.default_rng(0).normal(size=(5, 4)))
    np.testing.assert_allclose(mats @ mats.transpose(0, 2, 1), np.broadcast_to(np.eye(3), (5, 3, 3)), atol=1e-12)
    with pytest.raises(ValueError, match="wxyz"):
        quaternion_to_matrix(np.ones((3, 3)))


def test_marginal_odm_in_adaptation_moves_predictions_towards_the_prior() -> None:
    rng = np.random.default_rng(0)
    images = rng.random((40, 3, 8, 8)).astype(np.float32)
    shots_x, shots_y = images[:6], np.arange(6)
    prior = np.full(6, 1 / 6)
    settings = AdaptSettings(adapt_steps=30, odm_batch=32, lr=1e-2)
    model, losses = adapt(None, shots_x, shots_y, images[6:], prior, True, settings, seed=0)
    assert losses[-1] < losses[0]
    with torch.no_grad():
        mean_pred = torch.softmax(model(torch.from_numpy(images[6:])), 1).mean(0)
    assert float(marginal_odm_loss(mean_pred[None], torch.as_tensor(prior, dtype=torch.float32))) < 0.2


# ---------------------------------------------------------------- claims

def _toy_odm(odm=0.85, sup_all=0.9, odm5=0.8, sup5=0.7, odm_ft=0.5, ft=0.4, src=0.3):
    seq = [{"arm": "supervised-all", "test_acc": sup_all}, {"arm": "odm", "test_acc": odm},
           {"arm": "supervised-5/class", "test_acc": sup5}, {"arm": "odm+5/class", "test_acc": odm5}]
    adapt = [{"arm": "source-only", "target_test_acc": src}, {"arm": "fine-tune on 6 shots", "target_test_acc": ft},
             {"arm": "fine-tune 6 shots + ODM", "target_test_acc": odm_ft}]
    return {"sequences": seq, "adaptation": adapt, "adapt_settings": {"n_test": 800}}


def test_odm_claims_follow_the_figures(tmp_path):
    from ml_extras.odm.claims import odm_claims, plot

    approach, few, adapt = odm_claims(_toy_odm())
    assert approach["holds"] and few["holds"] and adapt["holds"]
    assert few["figures"]["k=5"] == {"odm_plus_labels_acc": 0.8, "supervised_acc": 0.7}
    assert not odm_claims(_toy_odm(odm=0.5))[0]["holds"]
    assert not odm_claims(_toy_odm(odm5=0.6))[1]["holds"]
    assert not odm_claims(_toy_odm(odm_ft=0.35))[2]["holds"]
    assert not odm_claims(_toy_odm(odm_ft=0.41))[2]["holds"]  # within noise: 2 SE at n=800 is 0.035
    assert adapt["figures"]["margin"] == pytest.approx(2 * (0.4 * 0.6 / 800) ** 0.5)
    assert len(odm_claims({"sequences": _toy_odm()["sequences"]})) == 2  # adaptation not run
    assert plot(_toy_odm(), tmp_path / "o.png").exists()
