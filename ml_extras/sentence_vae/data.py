"""PTB sentences as (decoder inputs, targets, lengths) batches for the VAE and the LM baseline."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ml_extras.ptb import Vocabulary, load_sentences, pad_sentences


@dataclass
class SentenceBatch:
    """<bos> w1..wn as decoder inputs, w1..wn <eos> as targets (and the encoder's input), length n+1."""

    inputs: torch.Tensor
    targets: torch.Tensor
    lengths: torch.Tensor

    @property
    def n_tokens(self) -> int:
        return int(self.lengths.sum())


def make_batch(encoded: Sequence[Sequence[int]], vocab: Vocabulary) -> SentenceBatch:
    """Pad a list of word-id lists (no specials) into one SentenceBatch."""
    inputs, lengths = pad_sentences([[vocab.bos_id, *s] for s in encoded], vocab.pad_id)
    targets, _ = pad_sentences([[*s, vocab.eos_id] for s in encoded], vocab.pad_id)
    return SentenceBatch(inputs, targets, lengths)


@dataclass
class PTBSentences:
    vocab: Vocabulary
    train: list[list[int]]
    valid: list[list[int]]


def load_ptb_sentences(
    max_train: int | None, max_valid: int | None, max_len: int | None, max_vocab: int | None
) -> PTBSentences:
    """Encoded train/valid sentences; the vocabulary is built from the (sub-sampled) training split."""
    train_words = load_sentences("train", max_train, max_len)
    valid_words = load_sentences("valid", max_valid, max_len)
    vocab = Vocabulary.build(train_words, max_size=max_vocab)
    return PTBSentences(vocab, [vocab.encode(s) for s in train_words], [vocab.encode(s) for s in valid_words])
