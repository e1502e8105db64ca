"""Word-level LM assembled from the components: (embedding | char-CNN) -> LSTMP -> (full | sampled) softmax."""

from __future__ import annotations

import torch
from torch import nn

from ml_extras.lm_components.char_cnn import CharCNNWordEncoder
from ml_extras.lm_components.lstmp import LSTMP
from ml_extras.lm_components.sampled_softmax import SampledSoftmax

INPUT_KINDS = ("embedding", "charcnn")
SOFTMAX_KINDS = ("full", "sampled")


class WordLM(nn.Module):
    """Next-word model; `loss` trains with the chosen softmax, `full_loss` always scores exactly."""

    def __init__(
        self,
        vocab_size: int,
        proposal: torch.Tensor,
        input_kind: str = "embedding",
        softmax_kind: str = "full",
        embed_dim: int = 128,
        hidden_dim: int = 256,
        proj_dim: int = 128,
        num_samples: int = 256,
        char_table: torch.Tensor | None = None,
        char_vocab_size: int = 259,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if input_kind not in INPUT_KINDS:
            raise ValueError(f"unknown input kind {input_kind!r}; expected one of {INPUT_KINDS}")
        if softmax_kind not in SOFTMAX_KINDS:
            raise ValueError(f"unknown softmax kind {softmax_kind!r}; expected one of {SOFTMAX_KINDS}")
        self.softmax_kind = softmax_kind
        if input_kind == "charcnn":
            if char_table is None or char_table.size(0) != vocab_size:
                raise ValueError("the char-CNN input needs a char_table with one row per vocabulary word")
            self.inputs: nn.Module = CharCNNWordEncoder(char_table, char_vocab_size, embed_dim)
        else:
            self.inputs = nn.Embedding(vocab_size, embed_dim)
        self.dropout = nn.Dropout(dropout)
        self.rnn = LSTMP(embed_dim, hidden_dim, proj_dim)
        self.softmax = SampledSoftmax(proj_dim, vocab_size, proposal, num_samples)

    def hidden(
        self, tokens: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        if tokens.dim() != 2:
            raise ValueError(f"tokens must be [batch, time], got {tuple(tokens.shape)}")
        out, state = self.rnn(self.dropout(self.inputs(tokens)), state)
        return self.dropout(out), state

    def loss(
        self, tokens: torch.Tensor, targets: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Mean training loss over the window (sampled or full, per `softmax_kind`) and the carried state."""
        out, state = self.hidden(tokens, state)
        flat, flat_targets = out.reshape(-1, out.size(-1)), targets.reshape(-1)
        if self.softmax_kind == "sampled":
            per_token = self.softmax.sampled_loss(flat, flat_targets, generator=generator)
        else:
            per_token = self.softmax.full_loss(flat, flat_targets)
        return per_token.mean(), state

    def full_loss(
        self, tokens: torch.Tensor, targets: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Summed exact cross-entropy over the window (for perplexity) and the carried state."""
        out, state = self.hidden(tokens, state)
        return self.softmax.full_loss(out.reshape(-1, out.size(-1)), targets.reshape(-1)).sum(), state
