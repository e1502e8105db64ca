"""Bowman et al.'s claims on the results: KL annealing + word dropout keep the KL above zero where
the plain ELBO collapses; the VAE's NLL is close to the LM's; homotopies decode to readable
sentences; the latent code helps imputing missing words."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ml_extras.results import all_of, claim, greater, less, not_worse, save_figure

KL_FLOOR = 0.5  # nats per sentence: "stays > 0" with a margin no rounding can fake
CLOSE_PPL = 0.10  # "close": VAE perplexity bound within 10% of the LM's (the paper: 119 vs 116, 2.6%)


def readability(path: Sequence[str]) -> dict[str, Any]:
    """Simple, checkable readability figures of a homotopy's decoded sentences."""
    words = [s.split() for s in path]
    tokens = [w for ws in words for w in ws]

    def longest_run(ws: list[str]) -> int:
        best = run = 1 if ws else 0
        for a, b in zip(ws, ws[1:]):
            run = run + 1 if a == b else 1
            best = max(best, run)
        return best

    return {"points": len(path), "distinct": len(set(path)), "min_words": min((len(w) for w in words), default=0),
            "unk_fraction": (sum(t == "<unk>" for t in tokens) / len(tokens)) if tokens else 1.0,
            "longest_repeat": max((longest_run(w) for w in words), default=0)}


def is_readable(figures: dict[str, Any]) -> bool:
    """Moves along the path (>= 3 distinct of 5), every point >= 3 words, < 20% <unk>, no word 3x in a row."""
    return all_of([figures["distinct"] >= min(3, figures["points"]), figures["min_words"] >= 3,
                   less(figures["unk_fraction"], 0.2), figures["longest_repeat"] < 3])


def _row(rows: list[dict[str, Any]], name: str) -> dict[str, Any]:
    found = [r for r in rows if r["model"] == name]
    if len(found) != 1:
        raise KeyError(f"expected one row for {name!r}, found {len(found)}")
    return found[0]


def sentence_vae_claims(results: dict[str, Any]) -> list[dict[str, Any]]:
    """results: rows (model, valid_nll, valid_ppl, valid_kl), homotopies (lists of decodes, <unk>
    banned), homotopies_raw (the same, <unk> allowed), imputation summary."""
    rows = results["results"]
    lm, plain, best = _row(rows, "lstm_lm"), _row(rows, "vae_plain_elbo"), _row(rows, "vae_kl_anneal_wdrop")
    paths = [readability(p) for p in results["homotopies"]]
    raw_unk = [readability(p)["unk_fraction"] for p in results.get("homotopies_raw", [])]
    imp = results["imputation"]
    return [
        claim(f"with KL annealing and word dropout the validation KL stays above zero (> {KL_FLOOR} nats) and "
              f"above the plain ELBO's, which collapses toward 0",
              all_of([greater(best["valid_kl"], KL_FLOOR), greater(best["valid_kl"], plain["valid_kl"])]),
              {"kl_anneal_wdrop": best["valid_kl"], "kl_plain_elbo": plain["valid_kl"]}),
        claim(f"the VAE's validation perplexity bound is close to the LSTM LM's (within {CLOSE_PPL:.0%})",
              not_worse(best["valid_ppl"], lm["valid_ppl"], CLOSE_PPL * lm["valid_ppl"], higher_is_better=False),
              {"vae_ppl": best["valid_ppl"], "lm_ppl": lm["valid_ppl"], "vae_nll": best["valid_nll"],
               "lm_nll": lm["valid_nll"], "ratio": best["valid_ppl"] / lm["valid_ppl"]}),
        claim("homotopies between validation sentences decode (greedily, <unk> never emitted) to readable "
              "sentences that change along the path: >= 3 distinct of 5, >= 3 words each, no word 3x in a row",
              all_of([is_readable(p) for p in paths]),
              {"paths": paths, "unk_fraction_when_allowed": raw_unk}),
        claim("imputing the last 20% of a sentence, the VAE (whose z is inferred from the whole sentence with "
              "the gap) gives the true missing words a lower NLL than the LM that reads the prefix",
              less(imp["vae_nll_per_word"], imp["lm_nll_per_word"]),
              {k: imp[k] for k in ("vae_nll_per_word", "lm_nll_per_word", "vae_word_accuracy", "lm_word_accuracy")}),
    ]


def plot(histories: dict[str, list[dict[str, float]]], path: Path) -> Path:
    """Training KL per sentence against step for each VAE, with the annealing weight."""
    def draw(ax: Any) -> None:
        for name, history in histories.items():
            if name == "lstm_lm":
                continue
            ax.plot([h["step"] for h in history], [h["kl"] for h in history], label=f"{name}: KL")
        any_vae = next((h for n, h in histories.items() if n == "vae_kl_anneal_wdrop"), None)
        if any_vae:
            twin = ax.twinx()
            twin.plot([h["step"] for h in any_vae], [h["kl_weight"] for h in any_vae], "k:", label="KL weight")
            twin.set_ylabel("KL weight (annealed runs)")
        ax.set_xlabel("training step")
        ax.set_ylabel("KL(q(z|x) || p(z)) per sentence (nats)")
        ax.set_title("Sentence VAE on PTB: KL with and without annealing + word dropout", fontsize=9)
        ax.legend(fontsize=8, loc="upper left")

    return save_figure(path, draw)
