"""Radford et al.'s claims on the results: with few labels (11-232) the mLSTM's features match a
strong baseline, and the single largest-weight unit carries most of the accuracy.

The features are the mLSTM's final cell state (``mlstm_c``), as in the paper's released model;
the baseline is tf-idf bag-of-words logistic regression. "Match" means within MATCH_TOL of the
baseline's accuracy; "most of the accuracy" means the unit alone keeps at least half of the full
probe's margin over chance (the test split's majority class)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ml_extras.results import all_of, binomial_se, claim, greater, not_worse, save_figure

MATCH_TOL = 0.01
FEATURES = "mlstm_c"


def _at(curve: list[dict[str, Any]], labels: int) -> dict[str, Any]:
    found = [r for r in curve if int(r["labels"]) == labels]
    if len(found) != 1:
        raise KeyError(f"no label-curve row for {labels} labels")
    return found[0]


def sentiment_claims(results: dict[str, Any], few: tuple[int, ...] = (11, 232)) -> list[dict[str, Any]]:
    """results: label_curve rows (labels, mlstm_c_acc, bow_acc), best_unit[mlstm_c]."""
    curve = results["label_curve"]
    all_row = max(curve, key=lambda r: int(r["labels"]))
    pairs = {n: (_at(curve, n)[f"{FEATURES}_acc"], _at(curve, n)["bow_acc"]) for n in few}
    unit = results["best_unit"][FEATURES]
    single, full = unit["single_unit_test_accuracy"], unit["full_probe_test_accuracy"]
    # chance is the majority class of the test split: a probe that predicts one class scores it
    chance = float(results["majority_test_acc"])
    margin = 2 * binomial_se(chance, int(results["split_sizes"]["test"]))
    return [
        claim(f"with {' and '.join(map(str, few))} labels the mLSTM cell-state probe matches (within "
              f"{MATCH_TOL:.0%}) the bag-of-words baseline trained on the same labels",
              all_of([not_worse(a, b, MATCH_TOL) for a, b in pairs.values()]),
              {f"{n}_labels": {"mlstm_acc": a, "bow_acc": b} for n, (a, b) in pairs.items()}),
        claim(f"with {max(few)} labels the mLSTM probe matches (within {MATCH_TOL:.0%}) the bag-of-words baseline "
              f"trained on all {all_row['labels']} labels",
              not_worse(pairs[max(few)][0], all_row["bow_acc"], MATCH_TOL),
              {"mlstm_acc_few": pairs[max(few)][0], "bow_acc_all": all_row["bow_acc"],
               "mlstm_acc_all": all_row[f"{FEATURES}_acc"]}),
        claim("a single unit carries most of the accuracy: the all-units probe beats chance (the test majority "
              "class) by more than two standard errors, and the largest-weight unit alone keeps >= half of that "
              "margin",
              all_of([greater(full, chance, margin), not_worse(single - chance, 0.5 * (full - chance), 0.0)]),
              {"single_unit_acc": single, "all_units_acc": full, "majority_class_acc": chance, "margin": margin,
               "unit": unit["unit"], "nonzero_weights": unit["nonzero_weights"]}),
    ]


def plot(results: dict[str, Any], path: Path) -> Path:
    """Test accuracy against the number of labels: mLSTM states vs bag-of-words."""
    curve = results["label_curve"]

    def draw(ax: Any) -> None:
        xs = [int(r["labels"]) for r in curve]
        for key, label in (("mlstm_c_acc", "mLSTM cell state (L1)"), ("mlstm_h_acc", "mLSTM hidden state (L1)"),
                           ("bow_acc", "tf-idf bag of words (L2)")):
            if key in curve[0]:
                ax.errorbar(xs, [r[key] for r in curve], yerr=[r[key.replace("_acc", "_std")] for r in curve],
                            marker="o", capsize=3, label=label)
        unit = results["best_unit"][FEATURES]
        ax.axhline(unit["single_unit_test_accuracy"], color="gray", ls=":", label=f"unit {unit['unit']} alone")
        ax.axhline(0.5, color="k", lw=0.5)
        ax.set_xscale("log")
        ax.set_xlabel("labelled snippets")
        ax.set_ylabel("test accuracy (fresh / rotten)")
        ax.set_title("Sentiment probe on Rotten Tomatoes snippets", fontsize=9)
        ax.legend(fontsize=8)

    return save_figure(path, draw)
