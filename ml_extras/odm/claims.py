"""ODM's claims on a results dict: label-free learning approaches supervised accuracy; ODM helps
few labels; one-shot adaptation of the renders classifier."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ml_extras.results import all_of, binomial_se, claim, greater, ratio_at_least, save_figure

APPROACH_FRACTION = 0.9  # "approaches": ODM without labels keeps >= 90% of the all-labels accuracy


def _acc(rows: list[dict[str, Any]], arm: str, key: str) -> float:
    found = [r[key] for r in rows if r["arm"] == arm]
    if len(found) != 1:
        raise KeyError(f"expected one row for arm {arm!r}, found {len(found)}")
    return float(found[0])


def odm_claims(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Claims for the sequence experiment and, when it ran, the render adaptation."""
    seq = results["sequences"]
    odm, sup_all = _acc(seq, "odm", "test_acc"), _acc(seq, "supervised-all", "test_acc")
    ks = sorted(int(r["arm"].split("+")[1].split("/")[0]) for r in seq if r["arm"].startswith("odm+"))
    pairs = {k: (_acc(seq, f"odm+{k}/class", "test_acc"), _acc(seq, f"supervised-{k}/class", "test_acc")) for k in ks}
    claims = [
        claim(f"ODM with no labels at all approaches supervised accuracy (>= {APPROACH_FRACTION:.0%} of the "
              f"all-labels classifier's test accuracy)",
              ratio_at_least(odm, sup_all, APPROACH_FRACTION),
              {"odm_no_labels_acc": odm, "supervised_all_acc": sup_all, "ratio": odm / sup_all}),
        claim("with k labels per class, ODM on unlabelled sequences + the k labels beats supervised training on "
              "the same k labels, for every k",
              all_of([greater(a, b) for a, b in pairs.values()]),
              {f"k={k}": {"odm_plus_labels_acc": a, "supervised_acc": b} for k, (a, b) in pairs.items()}),
    ]
    if "adaptation" in results:
        rows = results["adaptation"]
        odm_ft = _acc(rows, "fine-tune 6 shots + ODM", "target_test_acc")
        ft, src = _acc(rows, "fine-tune on 6 shots", "target_test_acc"), _acc(rows, "source-only", "target_test_acc")
        n_test = int(results["adapt_settings"]["n_test"])
        margin = 2 * binomial_se(max(ft, src), n_test)
        claims.append(claim(
            "one-shot domain adaptation (one labelled randomized render per class + unlabelled renders): "
            "fine-tuning with the ODM cost beats source-only and fine-tuning on the 6 labels alone, by more than "
            "two binomial standard errors of the test accuracy",
            all_of([greater(odm_ft, ft, margin), greater(odm_ft, src, margin)]),
            {"finetune_plus_odm_acc": odm_ft, "finetune_acc": ft, "source_only_acc": src, "chance": 1 / 6,
             "n_test": n_test, "margin": margin}))
    return claims


def plot(results: dict[str, Any], path: Path) -> Path:
    """Test accuracy per arm: digit sequences, then the render adaptation arms."""
    rows = [(f"digits: {r['arm']}", r["test_acc"]) for r in results["sequences"]]
    rows += [(f"renders: {r['arm']}", r["target_test_acc"]) for r in results.get("adaptation", [])]

    def draw(ax: Any) -> None:
        ax.barh(range(len(rows)), [v for _, v in rows], color=["tab:blue" if n.startswith("digits") else "tab:orange"
                                                               for n, _ in rows])
        ax.set_yticks(range(len(rows)), [n for n, _ in rows], fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel("test accuracy")
        ax.set_xlim(0, 1)
        for i, (_, v) in enumerate(rows):
            ax.annotate(f"{v:.3f}", (v, i), va="center", fontsize=7)
        ax.set_title("ODM: digit sequences (blue), one-shot render adaptation (orange)", fontsize=9)

    return save_figure(path, draw, figsize=(7.0, 4.5))
