"""Supervised read-outs on top of the frozen LM: L1 logistic regression, the best unit, a BoW baseline.

The paper's claim is about label efficiency: a linear probe on the mLSTM state needs few labels,
and L1 regularization concentrates the weight on one "sentiment unit". The regularization
strength is picked on a fixed validation set for every label budget, as the paper did on SST dev.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from tqdm import tqdm

from ml_extras.sentiment_neuron.data import Split, pad_texts
from ml_extras.sentiment_neuron.model import ByteMLSTM

DEFAULT_CS = tuple(float(c) for c in np.logspace(-2, 1, 7))  # liblinear L1 gets slow at larger C
BOW_CS = (0.3, 1.0, 3.0, 10.0)


@torch.no_grad()
def extract_features(model: ByteMLSTM, texts: list[str], batch_size: int = 256,
                     progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Final hidden state h and cell state c (each (n, H)) after reading each text from a zero state.

    Texts are batched by length so padding (which the masked recurrence ignores) costs little time.
    """
    if not texts:
        raise ValueError("no texts to encode")
    model.eval()
    order = np.argsort([len(t) for t in texts], kind="stable")
    hidden = np.zeros((len(texts), model.hidden_size), dtype=np.float32)
    cell = np.zeros_like(hidden)
    starts = range(0, len(texts), batch_size)
    for start in tqdm(starts, desc="features", disable=not progress):
        rows = order[start:start + batch_size]
        tokens, lengths = pad_texts([texts[i] for i in rows])
        _, (h, c) = model.run(tokens, lengths, keep_outputs=False)
        hidden[rows], cell[rows] = h.numpy(), c.numpy()
    return hidden, cell


def sample_labelled(pool: np.ndarray, labels: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n indices drawn from the train pool without replacement, redrawn until both classes occur."""
    if n < 2 or n > len(pool):
        raise ValueError(f"cannot draw {n} labelled examples from a pool of {len(pool)}")
    if n == len(pool):
        return pool
    for _ in range(1000):
        chosen = rng.choice(pool, size=n, replace=False)
        if len(np.unique(labels[chosen])) == 2:
            return chosen
    raise ValueError("the pool never gave both classes; is it all one label?")


@dataclass
class FittedProbe:
    model: LogisticRegression
    C: float
    valid_accuracy: float


def fit_probe(x_train: np.ndarray, y_train: np.ndarray, x_valid: np.ndarray, y_valid: np.ndarray,
              penalty: str = "l1", cs: tuple[float, ...] = DEFAULT_CS) -> FittedProbe:
    """Logistic regression whose inverse regularization C maximises validation accuracy."""
    if x_train.ndim != 2 or x_valid.ndim != 2 or x_train.shape[1] != x_valid.shape[1]:
        raise ValueError(f"feature matrices must be 2-D with equal widths: {x_train.shape}, {x_valid.shape}")
    if x_train.shape[0] != len(y_train) or x_valid.shape[0] != len(y_valid):
        raise ValueError("features and labels differ in length")
    if penalty not in ("l1", "l2"):
        raise ValueError(f"penalty must be 'l1' or 'l2', got {penalty!r}")
    l1_ratio = 1.0 if penalty == "l1" else 0.0
    best: FittedProbe | None = None
    for c in cs:
        clf = LogisticRegression(C=c, l1_ratio=l1_ratio, solver="liblinear", max_iter=1000, tol=1e-3)
        clf.fit(x_train, y_train)
        acc = float(clf.score(x_valid, y_valid))
        if best is None or acc > best.valid_accuracy:  # ties keep the stronger regularization
            best = FittedProbe(clf, c, acc)
    assert best is not None
    return best


def standardize(feats: np.ndarray, fit_rows: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance per unit, using statistics of the unlabelled train pool only.

    Equal scales make L1 weights comparable across units and speed liblinear up several-fold.
    """
    mean = feats[fit_rows].mean(axis=0)
    std = feats[fit_rows].std(axis=0)
    return (feats - mean) / np.where(std > 1e-8, std, 1.0)


def label_curve(features: dict[str, np.ndarray], texts: list[str], labels: np.ndarray, split: Split,
                sizes: list[int], repeats: int, seed: int) -> list[dict[str, float | int | str]]:
    """Test accuracy (mean and std over ``repeats`` label draws) per label budget, for each feature
    set (L1 probe) and for a tf-idf bag-of-words L2 logistic regression on the same draws."""
    rng = np.random.default_rng(seed)
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    vectorizer.fit([texts[i] for i in split.train])  # unlabelled text only, like the LM
    bow = vectorizer.transform(texts)
    features = {name: standardize(feats, split.train) for name, feats in features.items()}
    rows: list[dict[str, float | int | str]] = []
    y_valid, y_test = labels[split.valid], labels[split.test]
    for n in tqdm(sizes, desc="label budgets"):
        draws = 1 if n >= len(split.train) else repeats
        scores: dict[str, list[float]] = {name: [] for name in [*features, "bow"]}
        for _ in range(draws):
            chosen = sample_labelled(split.train, labels, n, rng)
            for name, feats in features.items():
                probe = fit_probe(feats[chosen], labels[chosen], feats[split.valid], y_valid, "l1")
                scores[name].append(float(probe.model.score(feats[split.test], y_test)))
            probe = fit_probe(bow[chosen], labels[chosen], bow[split.valid], y_valid, "l2", BOW_CS)
            scores["bow"].append(float(probe.model.score(bow[split.test], y_test)))
        row: dict[str, float | int | str] = {"labels": n, "draws": draws}
        for name, values in scores.items():
            row[f"{name}_acc"] = float(np.mean(values))
            row[f"{name}_std"] = float(np.std(values))
        rows.append(row)
    return rows


@dataclass
class UnitReport:
    unit: int
    weight: float
    nonzero_weights: int
    single_unit_test_accuracy: float
    full_probe_test_accuracy: float
    fresh_value: float  # typical extreme value of the unit on fresh snippets (used for clamping)
    rotten_value: float


def best_unit(feats: np.ndarray, labels: np.ndarray, split: Split) -> UnitReport:
    """The unit with the largest |weight| in the all-labels L1 probe (on standardized units), and how
    well it does alone; its extreme raw values on each class are what generation clamps it to."""
    scaled = standardize(feats, split.train)
    probe = fit_probe(scaled[split.train], labels[split.train], scaled[split.valid], labels[split.valid], "l1")
    weights = probe.model.coef_[0]
    unit = int(np.argmax(np.abs(weights)))
    column = feats[:, [unit]]
    alone = fit_probe(column[split.train], labels[split.train], column[split.valid], labels[split.valid], "l2")
    values = feats[split.train, unit]
    fresh = values[labels[split.train] == 1]
    rotten = values[labels[split.train] == 0]
    up = float(np.mean(fresh)) > float(np.mean(rotten))
    fresh_value = float(np.quantile(fresh, 0.99 if up else 0.01))
    rotten_value = float(np.quantile(rotten, 0.01 if up else 0.99))
    return UnitReport(unit, float(weights[unit]), int(np.count_nonzero(weights)),
                      float(alone.model.score(column[split.test], labels[split.test])),
                      float(probe.model.score(scaled[split.test], labels[split.test])), fresh_value, rotten_value)
