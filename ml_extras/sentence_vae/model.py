"""LSTM language model and the sentence VAE built around the same decoder (so sizes match)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence


def _check_batch(tokens: torch.Tensor, lengths: torch.Tensor | None = None) -> None:
    if tokens.dim() != 2 or tokens.dtype != torch.long:
        raise ValueError(f"tokens must be a [batch, time] long tensor, got {tuple(tokens.shape)} {tokens.dtype}")
    if lengths is not None and (lengths.dim() != 1 or lengths.numel() != tokens.size(0)):
        raise ValueError(f"lengths must be [batch]={tokens.size(0)}, got {tuple(lengths.shape)}")


def token_nll(logits: torch.Tensor, targets: torch.Tensor, pad_id: int) -> torch.Tensor:
    """Per-sentence summed negative log-likelihood [B], padding excluded."""
    nll = F.cross_entropy(logits.transpose(1, 2), targets, ignore_index=pad_id, reduction="none")
    return nll.sum(dim=1)


class Decoder(nn.Module):
    """One-layer LSTM over (word-dropped) inputs, predicting the next token."""

    def __init__(self, embedding: nn.Embedding, hidden_dim: int) -> None:
        super().__init__()
        self.embedding = embedding
        self.lstm = nn.LSTM(embedding.embedding_dim, hidden_dim, batch_first=True)
        self.output = nn.Linear(hidden_dim, embedding.num_embeddings)

    def forward(
        self, inputs: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        hidden, state = self.lstm(self.embedding(inputs), state)
        return self.output(hidden), state


class LSTMLanguageModel(nn.Module):
    """The baseline: the VAE's decoder with a zero initial state (no latent code)."""

    def __init__(self, vocab_size: int, embed_dim: int, hidden_dim: int, pad_id: int = 0) -> None:
        super().__init__()
        self.pad_id = pad_id
        self.decoder = Decoder(nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id), hidden_dim)

    def forward(self, inputs: torch.Tensor, targets: torch.Tensor, **_: object) -> dict[str, torch.Tensor]:
        """Returns per-sentence `nll` [B]; the same keys as the VAE so training code is shared."""
        _check_batch(inputs)
        logits, _ = self.decoder(inputs)
        nll = token_nll(logits, targets, self.pad_id)
        return {"recon": nll, "kl": torch.zeros_like(nll), "logits": logits}


class SentenceVAE(nn.Module):
    """Bowman et al.'s VAE: LSTM encoder -> diagonal Gaussian q(z|x) -> z sets the decoder's initial state."""

    def __init__(self, vocab_size: int, embed_dim: int, hidden_dim: int, latent_dim: int, pad_id: int = 0) -> None:
        super().__init__()
        self.pad_id = pad_id
        self.latent_dim = latent_dim
        embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id)
        self.encoder = nn.LSTM(embed_dim, hidden_dim, batch_first=True)
        self.to_posterior = nn.Linear(hidden_dim, 2 * latent_dim)
        self.to_state = nn.Linear(latent_dim, 2 * hidden_dim)
        self.decoder = Decoder(embedding, hidden_dim)

    def encode(self, tokens: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and log-variance [B, latent] from the encoder's state at each true length."""
        _check_batch(tokens, lengths)
        packed = pack_padded_sequence(
            self.decoder.embedding(tokens), lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        _, (h_last, _) = self.encoder(packed)
        mean, logvar = self.to_posterior(h_last[-1]).chunk(2, dim=-1)
        return mean, logvar

    def initial_state(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h0, c0 = torch.tanh(self.to_state(z)).chunk(2, dim=-1)
        return h0.unsqueeze(0).contiguous(), c0.unsqueeze(0).contiguous()

    def decode_logits(self, inputs: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        logits, _ = self.decoder(inputs, self.initial_state(z))
        return logits

    def forward(
        self,
        inputs: torch.Tensor,
        targets: torch.Tensor,
        lengths: torch.Tensor | None = None,
        encoder_tokens: torch.Tensor | None = None,
        sample: bool = True,
    ) -> dict[str, torch.Tensor]:
        """Per-sentence reconstruction NLL and KL(q(z|x) || N(0, I)), both [B].

        `inputs` are the (possibly word-dropped) decoder inputs <bos> w1..wn; `targets` are
        w1..wn <eos>; the encoder reads `encoder_tokens` (default: the clean targets).
        """
        _check_batch(inputs, lengths)
        if inputs.shape != targets.shape:
            raise ValueError(f"inputs {tuple(inputs.shape)} and targets {tuple(targets.shape)} differ in shape")
        if lengths is None:
            lengths = (targets != self.pad_id).sum(dim=1)
        source = targets if encoder_tokens is None else encoder_tokens
        mean, logvar = self.encode(source, lengths)
        z = mean + torch.randn_like(mean) * (0.5 * logvar).exp() if sample else mean
        logits = self.decode_logits(inputs, z)
        kl = 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=-1)
        return {"recon": token_nll(logits, targets, self.pad_id), "kl": kl, "logits": logits, "z": z, "mean": mean}

    @torch.no_grad()
    def greedy_decode(
        self, z: torch.Tensor, bos_id: int, eos_id: int, max_len: int = 30, prefix: torch.Tensor | None = None,
        banned: tuple[int, ...] = (),
    ) -> list[list[int]]:
        """Most likely continuation token by token; `prefix` [B, P] (starting with <bos>) is forced first.

        `banned` tokens are never emitted (e.g. <unk>, which a small PTB model often ranks first
        because it stands for every rare word at once)."""

        def pick(step_logits: torch.Tensor) -> torch.Tensor:
            if banned:
                step_logits = step_logits.clone()
                step_logits[:, list(banned)] = float("-inf")
            return step_logits.argmax(-1)

        start = prefix if prefix is not None else torch.full((z.size(0), 1), bos_id, dtype=torch.long)
        logits, state = self.decoder(start, self.initial_state(z))
        next_token = pick(logits[:, -1])
        out = [[] for _ in range(z.size(0))]
        finished = torch.zeros(z.size(0), dtype=torch.bool)
        for _ in range(max_len):
            for i, token in enumerate(next_token.tolist()):
                if not finished[i]:
                    out[i].append(token)
            finished |= next_token == eos_id
            if bool(finished.all()):
                break
            logits, state = self.decoder(next_token.unsqueeze(1), state)
            next_token = pick(logits[:, -1])
        return out
