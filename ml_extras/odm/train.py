"""Experiment 1: learn a digit classifier from unlabelled digit sequences with a known prior.

Arms, all evaluated by per-digit accuracy on held-out images:
* ``supervised-few``: cross-entropy on the few labelled images only;
* ``odm``: ODM cost on unlabelled sequences only (no labels at all);
* ``odm+few``: ODM cost plus cross-entropy on the few labels;
* ``supervised-all``: every training label (the ceiling).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ml_extras.odm.data import DigitSplit, SequenceSampler, few_labels
from ml_extras.odm.divergence import odm_loss
from ml_extras.odm.model import MLPClassifier


@dataclass
class SequenceSettings:
    """Size of the sequence experiment."""

    source: str = "sklearn"
    length: int = 3
    successors: int = 3
    steps: int = 600
    batch: int = 512
    lr: float = 3e-3
    label_weight: float = 1.0
    restarts: int = 3
    labels_per_class: tuple[int, ...] = (1, 5)


def accuracy(model: torch.nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    with torch.no_grad():
        return float((model(torch.from_numpy(x)).argmax(1).numpy() == y).mean())


def train_arm(split: DigitSplit, prior: np.ndarray, labelled: np.ndarray | None, use_odm: bool,
              settings: SequenceSettings, seed: int, checkpoint: Path | None = None,
              resume: bool = False) -> tuple[torch.nn.Module, list[float]]:
    """One training run; returns the model and its loss curve (ODM + label terms)."""
    torch.manual_seed(seed)
    model = MLPClassifier(split.train_x.shape[1], split.num_classes)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    sampler = SequenceSampler(split.train_x, split.train_y, prior, seed=seed)
    prior_t = torch.as_tensor(prior, dtype=torch.float32)
    start_step, losses = 0, []
    if resume and checkpoint is not None and checkpoint.exists():
        state = torch.load(checkpoint, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start_step, losses = state["step"], state["losses"]
        sampler.rng = state["rng"]
    if labelled is not None:
        lab_x = torch.from_numpy(split.train_x[labelled])
        lab_y = torch.from_numpy(split.train_y[labelled])
    for step in range(start_step, settings.steps):
        loss = torch.zeros(())
        if use_odm:
            images, _ = sampler.sample(settings.batch)  # the labels are never used
            flat = torch.from_numpy(images.reshape(-1, images.shape[-1]))
            probs = F.softmax(model(flat), dim=1).reshape(settings.batch, settings.length, -1)
            loss = loss + odm_loss(probs, prior_t)
        if labelled is not None:
            loss = loss + settings.label_weight * F.cross_entropy(model(lab_x), lab_y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
        if checkpoint is not None and (step + 1) % 200 == 0:
            checkpoint.parent.mkdir(parents=True, exist_ok=True)
            torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step + 1,
                        "losses": losses, "rng": sampler.rng}, checkpoint)
    return model, losses


def held_out_odm(model: torch.nn.Module, split: DigitSplit, prior: np.ndarray, settings: SequenceSettings,
                 seed: int) -> float:
    """ODM cost on sequences of unseen images: label-free model selection among restarts."""
    sampler = SequenceSampler(split.test_x, split.test_y, prior, seed=seed + 999)
    images, _ = sampler.sample(4 * settings.batch)
    with torch.no_grad():
        flat = torch.from_numpy(images.reshape(-1, images.shape[-1]))
        probs = F.softmax(model(flat), dim=1).reshape(images.shape[0], settings.length, -1)
        return float(odm_loss(probs, torch.as_tensor(prior, dtype=torch.float32)))


def run_sequences(split: DigitSplit, prior: np.ndarray, settings: SequenceSettings, seed: int,
                  out: Path | None = None, resume: bool = False) -> list[dict[str, Any]]:
    """All arms; ODM arms keep the restart with the lowest held-out ODM cost (no labels needed)."""
    arms: list[tuple[str, int, bool]] = [("supervised-all", -1, False), ("odm", 0, True)]
    for k in settings.labels_per_class:
        arms += [(f"supervised-{k}/class", k, False), (f"odm+{k}/class", k, True)]
    rows = []
    for name, per_class, use_odm in tqdm(arms, desc="odm arms"):
        labelled = (np.arange(len(split.train_y)) if per_class < 0
                    else few_labels(split.train_y, per_class, seed) if per_class > 0 else None)
        restarts = settings.restarts if use_odm else 1
        candidates = []
        for restart in range(restarts):
            ckpt = None if out is None else out / "odm_ckpt" / f"{name.replace('/', '_')}_{restart}.pt"
            steps = settings if use_odm else SequenceSettings(**{**settings.__dict__, "steps": settings.steps // 2})
            model, losses = train_arm(split, prior, labelled, use_odm, steps, seed + 17 * restart, ckpt, resume)
            select = held_out_odm(model, split, prior, settings, seed) if use_odm else 0.0
            candidates.append((select, model, losses))
        select, model, losses = min(candidates, key=lambda c: c[0])
        rows.append({
            "arm": name, "labels": 0 if labelled is None else len(labelled),
            "test_acc": accuracy(model, split.test_x, split.test_y),
            "loss_first": losses[0], "loss_last": float(np.mean(losses[-20:])),
            "heldout_odm": held_out_odm(model, split, prior, settings, seed),
            "restarts": restarts,
        })
    return rows
