"""Unsupervised byte-level language-model training (the only training the mLSTM ever gets)."""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ml_extras.sentiment_neuron.data import sample_windows
from ml_extras.sentiment_neuron.model import ByteMLSTM, MLSTMConfig


@dataclass
class TrainConfig:
    """Steps, not seconds, define a run so it repeats; ``max_seconds`` is only a safety stop."""

    steps: int = 600
    batch_size: int = 32
    window: int = 128
    lr: float = 3e-3
    clip_norm: float = 1.0
    max_seconds: float | None = None
    checkpoint_every: int = 0  # 0: no checkpoints


@dataclass
class TrainResult:
    steps_done: int
    seconds: float
    stopped_early: bool
    start_bits_per_byte: float
    final_bits_per_byte: float  # mean over the last 10% of steps
    history: list[float]


def _save(path: Path, model: ByteMLSTM, opt: torch.optim.Optimizer, sched: torch.optim.lr_scheduler.LRScheduler,
          step: int, history: list[float], rng: np.random.Generator) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"model": model.state_dict(), "config": asdict(model.config), "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(), "step": step, "history": history,
                "rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state()}, tmp)
    tmp.replace(path)  # an interrupted save never leaves a half-written checkpoint


def init_output_from_unigrams(model: ByteMLSTM, corpus: np.ndarray) -> None:
    """Start the decoder at the corpus byte frequencies (bias = log p, small weights).

    A fresh model otherwise spends its first ~100 steps (most of a quick run) learning them.
    """
    counts = np.bincount(corpus, minlength=model.decoder.out_features).astype(np.float64) + 0.5
    with torch.no_grad():
        model.decoder.bias.copy_(torch.from_numpy(np.log(counts / counts.sum())))
        model.decoder.weight.mul_(0.1)


def load_model(path: Path) -> ByteMLSTM:
    """The model stored in a checkpoint written by :func:`train_language_model`."""
    blob = torch.load(path, map_location="cpu", weights_only=False)
    model = ByteMLSTM(MLSTMConfig(**blob["config"]))
    model.load_state_dict(blob["model"])
    return model


def train_language_model(
    model: ByteMLSTM,
    corpus: np.ndarray,
    config: TrainConfig,
    seed: int,
    checkpoint: Path | None = None,
    resume: bool = False,
    progress: bool = True,
) -> TrainResult:
    """Adam on random windows with linear learning-rate decay; resumes from ``checkpoint`` if asked."""
    if config.steps < 1 or config.batch_size < 1 or config.window < 1:
        raise ValueError(f"steps, batch_size and window must be positive: {config}")
    rng = np.random.default_rng(seed)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.05, 1.0 - s / config.steps))
    history: list[float] = []
    start_step = 0
    if resume and checkpoint is not None and checkpoint.is_file():
        blob = torch.load(checkpoint, map_location="cpu", weights_only=False)
        if blob["config"] != asdict(model.config):
            raise ValueError(f"checkpoint {checkpoint} holds a model of {blob['config']}, not {asdict(model.config)}")
        model.load_state_dict(blob["model"])
        opt.load_state_dict(blob["optimizer"])
        sched.load_state_dict(blob["scheduler"])
        rng.bit_generator.state = blob["rng"]
        torch.set_rng_state(blob["torch_rng"])
        start_step, history = blob["step"], blob["history"]
    model.train()
    began = time.perf_counter()
    stopped_early = False
    step = start_step
    bar = tqdm(range(start_step, config.steps), desc="mLSTM LM", disable=not progress, initial=start_step,
               total=config.steps)
    for step in bar:
        window = sample_windows(corpus, config.batch_size, config.window, rng)
        loss = model.loss(window)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip_norm)
        opt.step()
        sched.step()
        history.append(loss.item() / math.log(2))
        bar.set_postfix(bits_per_byte=f"{history[-1]:.3f}")
        if checkpoint is not None and config.checkpoint_every and (step + 1) % config.checkpoint_every == 0:
            _save(checkpoint, model, opt, sched, step + 1, history, rng)
        if config.max_seconds is not None and time.perf_counter() - began > config.max_seconds:
            stopped_early = step + 1 < config.steps
            break
    else:
        step = config.steps - 1
    steps_done = step + 1 if history else start_step
    if checkpoint is not None and config.checkpoint_every:
        _save(checkpoint, model, opt, sched, steps_done, history, rng)
    model.eval()
    tail = history[-max(1, len(history) // 10):] if history else [float("nan")]
    return TrainResult(steps_done, time.perf_counter() - began, stopped_early,
                       history[0] if history else float("nan"), float(np.mean(tail)), history)
