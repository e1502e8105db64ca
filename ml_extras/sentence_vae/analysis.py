"""What the latent code buys: homotopies between sentences and imputation of missing final words."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ml_extras.ptb import Vocabulary, pad_sentences
from ml_extras.sentence_vae.model import LSTMLanguageModel, SentenceVAE


@torch.no_grad()
def encode_means(model: SentenceVAE, sentences: Sequence[Sequence[int]], vocab: Vocabulary) -> torch.Tensor:
    tokens, lengths = pad_sentences([[*s, vocab.eos_id] for s in sentences], vocab.pad_id)
    mean, _ = model.encode(tokens, lengths)
    return mean


@torch.no_grad()
def homotopy(
    model: SentenceVAE, first: Sequence[int], second: Sequence[int], vocab: Vocabulary, n_points: int = 5,
    ban_unk: bool = False,
) -> list[str]:
    """Greedy decodes along the straight line between two sentences' posterior means (optionally
    never emitting <unk>)."""
    model.eval()
    means = encode_means(model, [first, second], vocab)
    ts = torch.linspace(0.0, 1.0, n_points).unsqueeze(1)
    path = (1 - ts) * means[0] + ts * means[1]
    decoded = model.greedy_decode(path, vocab.bos_id, vocab.eos_id, max_len=max(len(first), len(second)) + 10,
                                  banned=(vocab.unk_id,) if ban_unk else ())
    model.train()
    return [" ".join(vocab.decode(ids)) for ids in decoded]


def _missing_word_nll(logits: torch.Tensor, targets: torch.Tensor, n_observed: int) -> tuple[float, int]:
    """Summed NLL of the targets after the observed prefix (the missing words, <eos> excluded)."""
    missing_logits = logits[:, n_observed:-1]
    missing_targets = targets[:, n_observed:-1]
    nll = F.cross_entropy(missing_logits.transpose(1, 2), missing_targets, reduction="sum")
    return nll.item(), missing_targets.numel()


@torch.no_grad()
def impute(
    vae: SentenceVAE,
    lm: LSTMLanguageModel,
    sentences: Sequence[Sequence[int]],
    vocab: Vocabulary,
    missing_fraction: float = 0.2,
    refinements: int = 2,
) -> tuple[dict[str, float], list[dict[str, str]]]:
    """Hide the last `missing_fraction` of each sentence's words and fill them back in.

    The VAE never sees the hidden words: its encoder reads the sentence with the gap filled by
    <unk>, the decoder greedily fills the gap given z, and that guess is re-encoded `refinements`
    times. Scored by the per-word NLL of the true missing words (teacher forced after the prefix)
    and by greedy word accuracy, against the LM that only sees the prefix.
    """
    if not 0.0 < missing_fraction < 1.0:
        raise ValueError(f"missing_fraction must be in (0, 1), got {missing_fraction}")
    vae.eval()
    lm.eval()
    stats = {"vae_nll": 0.0, "lm_nll": 0.0, "vae_correct": 0, "lm_correct": 0, "words": 0}
    examples: list[dict[str, str]] = []
    for sentence in sentences:
        n_missing = max(1, round(missing_fraction * len(sentence)))
        n_observed = len(sentence) - n_missing
        if n_observed < 1:
            continue
        observed = list(sentence[:n_observed])
        inputs = torch.tensor([[vocab.bos_id, *sentence]])
        targets = torch.tensor([[*sentence, vocab.eos_id]])
        prefix = torch.tensor([[vocab.bos_id, *observed]])

        guess = observed + [vocab.unk_id] * n_missing
        for _ in range(refinements + 1):
            z = encode_means(vae, [guess], vocab)
            filled = vae.greedy_decode(z, vocab.bos_id, vocab.eos_id, max_len=n_missing, prefix=prefix)[0]
            filled = (filled + [vocab.unk_id] * n_missing)[:n_missing]
            guess = observed + filled
        vae_nll, count = _missing_word_nll(vae.decode_logits(inputs, z), targets, n_observed)

        lm_logits, state = lm.decoder(prefix)
        lm_fill, token = [], lm_logits[:, -1].argmax(-1)
        for _ in range(n_missing):
            lm_fill.append(int(token))
            step_logits, state = lm.decoder(token.view(1, 1), state)
            token = step_logits[:, -1].argmax(-1)
        lm_nll, _ = _missing_word_nll(lm.decoder(inputs)[0], targets, n_observed)

        truth = list(sentence[n_observed:])
        stats["vae_nll"] += vae_nll
        stats["lm_nll"] += lm_nll
        stats["vae_correct"] += sum(a == b for a, b in zip(filled, truth))
        stats["lm_correct"] += sum(a == b for a, b in zip(lm_fill, truth))
        stats["words"] += count
        if len(examples) < 3:
            examples.append({
                "observed": " ".join(vocab.decode(observed)),
                "truth": " ".join(vocab.decode(truth, stop_at_eos=False)),
                "vae": " ".join(vocab.decode(filled, stop_at_eos=False)),
                "lm": " ".join(vocab.decode(lm_fill, stop_at_eos=False)),
            })
    vae.train()
    lm.train()
    words = max(stats["words"], 1)
    summary = {
        "vae_nll_per_word": stats["vae_nll"] / words,
        "lm_nll_per_word": stats["lm_nll"] / words,
        "vae_word_accuracy": stats["vae_correct"] / words,
        "lm_word_accuracy": stats["lm_correct"] / words,
        "missing_words": stats["words"],
    }
    return summary, examples
