"""The IAF paper's claims on the results: an IAF posterior gives a tighter bound (smaller gap
between the ELBO and the importance-weighted log-likelihood), a higher test ELBO and a higher
log-likelihood than a diagonal Gaussian on binarized digits; and it fits 2-D densities better."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ml_extras.results import all_of, claim, greater, less, save_figure

# A higher test ELBO or log-likelihood counts only by at least this much (nats per image): a quarter of
# the paper's gain on MNIST (-79.1 vs -81.0 nats). A set gap, not a measured noise level; without it a
# 0.1-nat difference (Fashion-MNIST's ELBO, 2026-12-03) passed for the paper's result.
MIN_GAIN_NATS = 0.5


def _image_row(rows: list[dict[str, Any]], posterior: str) -> dict[str, Any]:
    found = [r for r in rows if r["posterior"] == posterior]
    if len(found) != 1:
        raise KeyError(f"expected one image row for posterior {posterior!r}, found {len(found)}")
    return found[0]


def _iwae_key(row: dict[str, Any]) -> str:
    keys = [k for k in row if k.startswith("test_iwae_k")]
    if len(keys) != 1:
        raise KeyError(f"expected one test_iwae_k* column, found {keys}")
    return keys[0]


def iaf_claims(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Claims from results['images'] (a diag and an iaf row per data set) and, when present,
    results['density']."""
    claims: list[dict[str, Any]] = []
    for data in dict.fromkeys(r["experiment"] for r in results["images"]):
        claims += _image_claims([r for r in results["images"] if r["experiment"] == data])
    if "density" in results:
        targets = sorted({r["experiment"] for r in results["density"]})
        kls = {t: {r["posterior"]: r["kl_nats"] for r in results["density"] if r["experiment"] == t} for t in targets}
        claims.append(claim("2-D reverse-KL fits: an IAF (4 steps) fits every target density with a lower "
                            "KL(q||p) than a diagonal Gaussian",
                            all_of([less(v["iaf x4"], v["diag"]) for v in kls.values()]), {"kl_nats": kls}))
    return claims


def _image_claims(images: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tighter bound, higher test ELBO, higher test log-likelihood on one data set."""
    diag, iaf = _image_row(images, "diag"), _image_row(images, "iaf")
    key = _iwae_key(diag)
    data = diag["experiment"]
    return [
        claim(f"{data}: the IAF posterior's bound is tighter, its ELBO is closer to its importance-weighted "
              f"log-likelihood ({key[5:]}) than the diagonal Gaussian's",
              less(iaf["gap_nats"], diag["gap_nats"]),
              {"iaf_gap_nats": iaf["gap_nats"], "diag_gap_nats": diag["gap_nats"]}),
        claim(f"{data}: the IAF posterior reaches a higher test ELBO than the diagonal Gaussian "
              f"(by more than {MIN_GAIN_NATS} nats)",
              greater(iaf["test_elbo"], diag["test_elbo"], margin=MIN_GAIN_NATS),
              {"iaf_test_elbo": iaf["test_elbo"], "diag_test_elbo": diag["test_elbo"],
               "iaf_train_elbo": iaf["train_elbo"], "diag_train_elbo": diag["train_elbo"]}),
        claim(f"{data}: the IAF model reaches a higher test log-likelihood ({key[5:]}) than the diagonal Gaussian "
              f"(by more than {MIN_GAIN_NATS} nats)",
              greater(iaf[key], diag[key], margin=MIN_GAIN_NATS),
              {"iaf_test_ll": iaf[key], "diag_test_ll": diag[key]}),
    ]


def plot(results: dict[str, Any], path: Path) -> Path:
    """Test ELBO and IWAE for both posteriors (bars), with the gap written on each pair."""
    import numpy as np

    images = results["images"]
    key = _iwae_key(images[0])

    def draw(ax: Any) -> None:
        x = np.arange(len(images))
        ax.bar(x - 0.2, [r["test_elbo"] for r in images], 0.4, label="test ELBO")
        ax.bar(x + 0.2, [r[key] for r in images], 0.4, label=f"test {key[5:]}")
        lo = min(min(r["test_elbo"] for r in images), min(r[key] for r in images))
        hi = max(r[key] for r in images)
        ax.set_ylim(lo - 0.3 * (hi - lo) - 1, hi + 0.3 * (hi - lo) + 1)
        ax.set_xticks(x, [f"{r['experiment'].split()[0]} {r['posterior']}\n(gap {r['gap_nats']:.2f})"
                          for r in images], fontsize=8)
        ax.set_ylabel("nats per image (higher is better)")
        ax.set_title("IAF vs diagonal posterior on binarized images", fontsize=9)
        ax.legend(fontsize=8)

    return save_figure(path, draw)
