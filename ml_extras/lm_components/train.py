"""Truncated-BPTT training with timed steps, and exact (full-softmax) perplexity evaluation."""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from ml_extras.lm_components.model import WordLM
from ml_extras.ptb import bptt_windows


@dataclass
class TrainConfig:
    steps: int = 1000
    bptt: int = 20
    lr: float = 2e-3
    clip: float = 1.0
    checkpoint_every: int = 500
    # stop once the steps' summed CPU time reaches this (equal-compute comparisons); steps stays a cap
    cpu_budget_s: float | None = None


def _detach(state: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    return state[0].detach(), state[1].detach()


def train_lm(
    model: WordLM,
    rows: torch.Tensor,
    config: TrainConfig,
    seed: int = 0,
    checkpoint: Path | None = None,
    resume: bool = False,
    desc: str = "train",
) -> dict[str, float | list[float]]:
    """Adam over consecutive BPTT windows of batchified rows (wrapping around) for `config.steps`.

    Returns the median wall and CPU time of a step (forward+backward+update; the first steps are
    warm-up and dropped; CPU time is the steadier number on a shared machine), the training-loss
    curve, the steps done and their summed CPU time. With `config.cpu_budget_s`, training stops once
    the steps' CPU time reaches it (equal-compute comparisons, robust to other jobs on the cores).
    With `checkpoint`, saves state every `checkpoint_every` steps and when training stops.
    """
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    generator = torch.Generator().manual_seed(seed)
    step, losses, step_times, cpu_times = 0, [], [], []
    if resume and checkpoint is not None and checkpoint.exists():
        saved = torch.load(checkpoint, weights_only=False)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        step, losses, step_times = saved["step"], saved["losses"], saved["step_times"]
        cpu_times = saved["cpu_times"]
        generator.set_state(saved["generator"])
    windows = list(bptt_windows(rows, config.bptt))
    model.train()
    state = None
    bar = tqdm(total=config.steps, initial=step, desc=desc, leave=False, mininterval=2.0)
    def budget_left() -> bool:
        return config.cpu_budget_s is None or sum(cpu_times) < config.cpu_budget_s

    while step < config.steps and budget_left():
        inputs, targets = windows[step % len(windows)]
        if step % len(windows) == 0:
            state = None
        start, cpu_start = time.perf_counter(), time.process_time()
        loss, state = model.loss(inputs, targets, state, generator=generator)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), config.clip)
        optimizer.step()
        step_times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
        state = _detach(state)
        losses.append(loss.item())
        step += 1
        bar.update(1)
        if checkpoint is not None and (step % config.checkpoint_every == 0 or step == config.steps
                                       or not budget_left()):
            checkpoint.parent.mkdir(parents=True, exist_ok=True)
            torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
                        "losses": losses, "step_times": step_times, "cpu_times": cpu_times, "generator": generator.get_state(),
                        "config": asdict(config)}, checkpoint)
    bar.close()
    warm = min(5, len(step_times) - 1)
    return {"step_time_s": float(torch.tensor(step_times[warm:]).median()),
            "step_cpu_s": float(torch.tensor(cpu_times[warm:]).median()), "losses": losses,
            "steps_done": step, "train_cpu_s": float(sum(cpu_times))}


@torch.no_grad()
def perplexity(model: WordLM, rows: torch.Tensor, bptt: int = 35) -> float:
    """exp(mean exact cross-entropy) over every target token of the rows, state carried across windows."""
    model.eval()
    total, count, state = 0.0, 0, None
    for inputs, targets in bptt_windows(rows, bptt):
        loss, state = model.full_loss(inputs, targets, state)
        total += loss.item()
        count += targets.numel()
    model.train()
    return math.exp(total / count)
