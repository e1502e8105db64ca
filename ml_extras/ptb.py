"""Penn Treebank (Mikolov's 10k-word version, from the offline `treebank` package) for ml_extras.

One loader shared by the sentence VAE (padded sentence batches) and the large-LM components
(a continuous token stream cut into truncated-BPTT windows, plus per-word character ids for a
char-CNN). Kept torch-light: token ids are plain lists / tensors built on request.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import torch

from ml_extras.common import require

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPLITS = ("train", "valid", "test")
# Character-level markers for the char-CNN: padding, begin-of-word, end-of-word.
CHAR_PAD, CHAR_BOW, CHAR_EOW = 0, 1, 2


def load_sentences(split: str, max_sentences: int | None = None, max_len: int | None = None) -> list[list[str]]:
    """Tokenized PTB sentences of one split; optionally the first `max_sentences` of length <= `max_len`.

    Raises MissingDataError when the `treebank` package is absent, ValueError on an unknown split.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown PTB split {split!r}; expected one of {SPLITS}")
    treebank = require("treebank")
    text: str = treebank.penn[split]
    sentences: list[list[str]] = []
    for line in text.split("\n"):
        words = line.split()
        if not words or (max_len is not None and len(words) > max_len):
            continue
        sentences.append(words)
        if max_sentences is not None and len(sentences) >= max_sentences:
            break
    return sentences


@dataclass
class Vocabulary:
    """Word <-> id map with the special tokens first (pad=0, bos=1, eos=2, unk=3)."""

    words: list[str] = field(default_factory=lambda: [PAD, BOS, EOS, UNK])
    counts: list[int] = field(default_factory=lambda: [0, 0, 0, 0])

    def __post_init__(self) -> None:
        self.index = {w: i for i, w in enumerate(self.words)}

    @classmethod
    def build(cls, sentences: Sequence[Sequence[str]], max_size: int | None = None) -> Vocabulary:
        """Most frequent words first; words beyond `max_size` (specials included) map to <unk>."""
        counter = Counter(w for s in sentences for w in s)
        vocab = cls()
        unk_count = counter.pop(UNK, 0)
        ranked = counter.most_common()
        room = None if max_size is None else max(0, max_size - len(vocab.words))
        kept, dropped = (ranked, []) if room is None else (ranked[:room], ranked[room:])
        for word, count in kept:
            vocab.words.append(word)
            vocab.counts.append(count)
        vocab.counts[vocab.index[UNK]] = unk_count + sum(c for _, c in dropped)
        vocab.counts[vocab.index[EOS]] = len(sentences)
        vocab.__post_init__()
        return vocab

    def __len__(self) -> int:
        return len(self.words)

    @property
    def pad_id(self) -> int:
        return self.index[PAD]

    @property
    def bos_id(self) -> int:
        return self.index[BOS]

    @property
    def eos_id(self) -> int:
        return self.index[EOS]

    @property
    def unk_id(self) -> int:
        return self.index[UNK]

    def encode(self, words: Sequence[str]) -> list[int]:
        unk = self.unk_id
        return [self.index.get(w, unk) for w in words]

    def decode(self, ids: Sequence[int], stop_at_eos: bool = True) -> list[str]:
        out = []
        for i in ids:
            if stop_at_eos and i == self.eos_id:
                break
            if i in (self.pad_id, self.bos_id):
                continue
            out.append(self.words[i])
        return out

    def unigram(self, power: float = 1.0) -> torch.Tensor:
        """Word frequencies raised to `power`, normalised; pad/bos get zero mass (never predicted)."""
        counts = torch.tensor(self.counts, dtype=torch.float64).clamp_min(1.0)
        counts[self.pad_id] = 0.0
        counts[self.bos_id] = 0.0
        probs = counts**power
        return (probs / probs.sum()).float()

    def char_table(self, max_word_len: int = 16) -> torch.Tensor:
        """[V, max_word_len] character ids per word, wrapped in begin/end-of-word markers.

        Characters are bytes shifted by 3 (ids 0-2 are pad/bow/eow), so the char vocabulary is 259.
        Long words are truncated (keeping the end-of-word marker).
        """
        if max_word_len < 3:
            raise ValueError(f"max_word_len must be >= 3 to hold the markers, got {max_word_len}")
        table = torch.full((len(self.words), max_word_len), CHAR_PAD, dtype=torch.long)
        for i, word in enumerate(self.words):
            body = [b + 3 for b in word.encode("utf-8")][: max_word_len - 2]
            chars = [CHAR_BOW, *body, CHAR_EOW]
            table[i, : len(chars)] = torch.tensor(chars)
        return table


CHAR_VOCAB_SIZE = 256 + 3


def stream_ids(sentences: Sequence[Sequence[str]], vocab: Vocabulary) -> torch.Tensor:
    """All sentences as one token stream, each followed by <eos> (the usual PTB LM set-up)."""
    ids: list[int] = []
    for s in sentences:
        ids.extend(vocab.encode(s))
        ids.append(vocab.eos_id)
    return torch.tensor(ids, dtype=torch.long)


def batchify(stream: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Cut a 1-D token stream into `batch_size` parallel rows: [batch_size, n // batch_size]."""
    if stream.dim() != 1:
        raise ValueError(f"stream must be 1-D, got shape {tuple(stream.shape)}")
    columns = stream.numel() // batch_size
    if columns < 2:
        raise ValueError(f"stream of {stream.numel()} tokens is too short for batch_size {batch_size}")
    return stream[: columns * batch_size].view(batch_size, columns)


def bptt_windows(rows: torch.Tensor, length: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(inputs, targets) windows of `length` steps over batchified rows; targets shifted by one."""
    for start in range(0, rows.size(1) - 1, length):
        end = min(start + length, rows.size(1) - 1)
        yield rows[:, start:end], rows[:, start + 1 : end + 1]


def pad_sentences(sentences: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad id lists into [B, T_max]; also returns their lengths [B]."""
    if not sentences:
        raise ValueError("cannot pad an empty list of sentences")
    lengths = torch.tensor([len(s) for s in sentences], dtype=torch.long)
    out = torch.full((len(sentences), int(lengths.max())), pad_id, dtype=torch.long)
    for i, s in enumerate(sentences):
        out[i, : len(s)] = torch.tensor(s, dtype=torch.long)
    return out, lengths


def sentence_batches(
    encoded: Sequence[Sequence[int]], batch_size: int, generator: torch.Generator | None = None
) -> Iterator[list[Sequence[int]]]:
    """Shuffled mini-batches of encoded sentences, sorted by length inside each batch (less padding)."""
    order = torch.randperm(len(encoded), generator=generator).tolist()
    for start in range(0, len(order), batch_size):
        batch = [encoded[i] for i in order[start : start + batch_size]]
        yield sorted(batch, key=len, reverse=True)
