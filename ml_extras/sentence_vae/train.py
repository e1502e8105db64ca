"""Training and evaluation loops shared by the VAE and the LSTM LM (the LM just has KL = 0)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from ml_extras.ptb import Vocabulary, sentence_batches
from ml_extras.sentence_vae.data import make_batch
from ml_extras.sentence_vae.schedules import KLAnnealing, word_dropout


@dataclass
class TrainConfig:
    steps: int = 1000
    batch_size: int = 32
    lr: float = 1e-3
    clip: float = 5.0
    word_dropout: float = 0.0
    annealing: KLAnnealing = KLAnnealing("none")
    checkpoint_every: int = 500


def loss_for_step(out: dict[str, torch.Tensor], n_sentences: int, kl_weight: float) -> torch.Tensor:
    """Per-sentence average of reconstruction NLL + weighted KL (the weighted negative ELBO)."""
    return (out["recon"] + kl_weight * out["kl"]).sum() / n_sentences


def train_model(
    model: nn.Module,
    train: Sequence[Sequence[int]],
    vocab: Vocabulary,
    config: TrainConfig,
    seed: int = 0,
    checkpoint: Path | None = None,
    resume: bool = False,
    desc: str = "train",
) -> list[dict[str, float]]:
    """Adam on mini-batches for `config.steps` steps; returns a short history (loss, recon, KL, weight).

    With `checkpoint` set, saves model/optimizer/step every `checkpoint_every` steps and at the end;
    `resume` picks up from that file when it exists.
    """
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    generator = torch.Generator().manual_seed(seed)
    step, history = 0, []
    if resume and checkpoint is not None and checkpoint.exists():
        state = torch.load(checkpoint, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step, history = state["step"], state["history"]
        generator.set_state(state["generator"])
    protected = (vocab.pad_id, vocab.bos_id)
    model.train()
    bar = tqdm(total=config.steps, initial=step, desc=desc, leave=False, mininterval=2.0)
    while step < config.steps:
        for encoded in sentence_batches(train, config.batch_size, generator):
            if step >= config.steps:
                break
            batch = make_batch(encoded, vocab)
            inputs = word_dropout(batch.inputs, config.word_dropout, vocab.unk_id, protected, generator)
            out = model(inputs, batch.targets, lengths=batch.lengths)
            weight = config.annealing.weight(step)
            loss = loss_for_step(out, len(encoded), weight)
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), config.clip)
            optimizer.step()
            step += 1
            bar.update(1)
            if step % 50 == 0 or step == config.steps:
                n = len(encoded)
                history.append({"step": step, "loss": loss.item(), "recon": out["recon"].sum().item() / n,
                                "kl": out["kl"].sum().item() / n, "kl_weight": weight})
            if checkpoint is not None and (step % config.checkpoint_every == 0 or step == config.steps):
                checkpoint.parent.mkdir(parents=True, exist_ok=True)
                torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
                            "history": history, "generator": generator.get_state(),
                            "config": {**asdict(config), "annealing": asdict(config.annealing)}}, checkpoint)
    bar.close()
    return history


@torch.no_grad()
def evaluate(
    model: nn.Module, sentences: Sequence[Sequence[int]], vocab: Vocabulary, batch_size: int = 128, seed: int = 0
) -> dict[str, float]:
    """Negative ELBO per sentence (an upper bound on NLL for the VAE, exact for the LM), its
    per-word perplexity (words + <eos>) and the mean KL, on clean (undropped) inputs."""
    model.eval()
    torch.manual_seed(seed)
    total_recon = total_kl = 0.0
    total_tokens = 0
    for start in range(0, len(sentences), batch_size):
        batch = make_batch(sentences[start : start + batch_size], vocab)
        out = model(batch.inputs, batch.targets, lengths=batch.lengths)
        total_recon += out["recon"].sum().item()
        total_kl += out["kl"].sum().item()
        total_tokens += batch.n_tokens
    model.train()
    n = len(sentences)
    nll = total_recon + total_kl
    return {"nll": nll / n, "ppl": math.exp(nll / total_tokens), "kl": total_kl / n, "recon": total_recon / n}
