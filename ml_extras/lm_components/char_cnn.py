"""Char-CNN word encoder (Kim et al. 2016, used as the input layer by Jozefowicz et al. 2016).

Words become vectors built from their spelling, so the input layer's size no longer grows with
the vocabulary: character embeddings -> 1-D convolutions of several widths -> max over time ->
highway layers -> a projection to the LSTM's input size.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class Highway(nn.Module):
    """y = g * relu(W x) + (1 - g) * x with a learned gate g (lets deep stacks pass x through)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.transform = nn.Linear(dim, dim)
        self.gate = nn.Linear(dim, dim)
        nn.init.constant_(self.gate.bias, -2.0)  # start close to the identity

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = torch.sigmoid(self.gate(x))
        return gate * torch.relu(self.transform(x)) + (1 - gate) * x


class CharCNNWordEncoder(nn.Module):
    """Maps word ids to vectors computed from a fixed [V, max_word_len] character table."""

    def __init__(
        self,
        char_table: torch.Tensor,
        char_vocab_size: int,
        output_dim: int,
        char_embed_dim: int = 16,
        widths: Sequence[int] = (1, 2, 3, 4, 5),
        filters: Sequence[int] = (32, 32, 64, 64, 64),
        n_highway: int = 1,
    ) -> None:
        super().__init__()
        if char_table.dim() != 2:
            raise ValueError(f"char_table must be [vocab, max_word_len], got {tuple(char_table.shape)}")
        if len(widths) != len(filters):
            raise ValueError(f"widths {tuple(widths)} and filters {tuple(filters)} differ in length")
        if max(widths) > char_table.size(1):
            raise ValueError(f"widest filter {max(widths)} exceeds max_word_len {char_table.size(1)}")
        self.register_buffer("char_table", char_table.long(), persistent=False)
        self.char_embedding = nn.Embedding(char_vocab_size, char_embed_dim, padding_idx=0)
        self.convs = nn.ModuleList(nn.Conv1d(char_embed_dim, f, w) for w, f in zip(widths, filters))
        width = sum(filters)
        self.highways = nn.Sequential(*(Highway(width) for _ in range(n_highway)))
        self.projection = nn.Linear(width, output_dim)

    def encode_words(self, word_ids: torch.Tensor) -> torch.Tensor:
        """[N] word ids -> [N, output_dim]."""
        chars = self.char_embedding(self.char_table[word_ids]).transpose(1, 2)  # [N, E, L]
        pooled = [torch.tanh(conv(chars)).amax(dim=-1) for conv in self.convs]
        return self.projection(self.highways(torch.cat(pooled, dim=-1)))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Any-shape word ids -> same shape + [output_dim]; each distinct word is encoded once."""
        if tokens.dtype != torch.long:
            raise ValueError(f"tokens must be long word ids, got {tokens.dtype}")
        unique, inverse = torch.unique(tokens, return_inverse=True)
        return self.encode_words(unique)[inverse]
