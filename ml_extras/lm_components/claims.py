"""Jozefowicz et al.'s claims on the PTB table: the sampled softmax comes close to the full
softmax at equal training compute, and char-CNN inputs use fewer parameters at similar perplexity.

"Equal compute" is the summed CPU time of the training steps (time.process_time, one thread), which
other jobs on a shared machine do not inflate; "close" / "similar" is perplexity within
CLOSE_FRACTION of the reference's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ml_extras.results import all_of, bar_plot, claim, less, not_worse

CLOSE_FRACTION = 0.10


def _row(rows: list[dict[str, Any]], inputs: str, softmax: str) -> dict[str, Any]:
    found = [r for r in rows if r["inputs"] == inputs and r["softmax"] == softmax]
    if len(found) != 1:
        raise KeyError(f"expected one row for {inputs}+{softmax}, found {len(found)}")
    return found[0]


def lm_components_claims(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows need inputs, softmax, valid_ppl, params_M, train_cpu_s, steps."""
    claims = []
    for inputs in ("embedding", "charcnn"):
        full, sampled = _row(rows, inputs, "full"), _row(rows, inputs, "sampled")
        claims.append(claim(
            f"{inputs} inputs: the importance-sampled softmax, trained for the same CPU time as the full softmax, "
            f"reaches a validation perplexity within {CLOSE_FRACTION:.0%} of the full softmax's",
            not_worse(sampled["valid_ppl"], full["valid_ppl"], CLOSE_FRACTION * full["valid_ppl"],
                      higher_is_better=False),
            {"sampled_ppl": sampled["valid_ppl"], "full_ppl": full["valid_ppl"],
             "sampled_cpu_s": sampled["train_cpu_s"], "full_cpu_s": full["train_cpu_s"],
             "sampled_steps": sampled["steps"], "full_steps": full["steps"]}))
    emb, cnn = _row(rows, "embedding", "full"), _row(rows, "charcnn", "full")
    claims.append(claim(
        f"char-CNN inputs use fewer parameters than a word-embedding table at a validation perplexity within "
        f"{CLOSE_FRACTION:.0%} of it (full softmax, equal steps)",
        all_of([less(cnn["params_M"], emb["params_M"]),
                not_worse(cnn["valid_ppl"], emb["valid_ppl"], CLOSE_FRACTION * emb["valid_ppl"],
                          higher_is_better=False)]),
        {"charcnn_params_M": cnn["params_M"], "embedding_params_M": emb["params_M"],
         "charcnn_ppl": cnn["valid_ppl"], "embedding_ppl": emb["valid_ppl"]}))
    return claims


def plot(rows: list[dict[str, Any]], path: Path) -> Path:
    """Validation perplexity per model, labelled with its steps and training CPU seconds."""
    labels = [f"{r['inputs']}+{r['softmax']}\n{r['steps']} steps, {r['train_cpu_s']:.0f} CPU s" for r in rows]
    return bar_plot(path, labels, [float(r["valid_ppl"]) for r in rows], "validation perplexity (exact softmax)",
                    "PTB word LMs: full vs sampled softmax at equal CPU time, embedding vs char-CNN inputs")
