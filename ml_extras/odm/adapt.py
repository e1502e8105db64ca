"""Experiment 2: one-shot domain adaptation from clean to randomized cube renders with ODM.

A CNN is trained on clean renders labelled by which cube face points up (6 classes, derived from
the quaternion). On randomized renders we get one labelled image per class plus the label
distribution; arms compare source-only, fine-tuning on the 6 labels, and fine-tuning with the
ODM cost on unlabelled target images added (matching the predicted class marginal to the prior).
Renders come from ``sim.datasets.render_cube_images`` (imported lazily) and are cached in --out.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ml_extras.common import MissingDataError
from ml_extras.odm.data import few_labels
from ml_extras.odm.divergence import marginal_odm_loss
from ml_extras.odm.model import SmallCNN

NUM_FACES = 6


@dataclass
class AdaptSettings:
    """Size of the adaptation experiment."""

    size: int = 32
    n_source: int = 600
    n_target: int = 600
    n_test: int = 300
    source_epochs: int = 30
    adapt_steps: int = 100
    batch: int = 32
    odm_batch: int = 128
    lr: float = 2e-3
    odm_weight: float = 1.0


def quaternion_to_matrix(quats: np.ndarray) -> np.ndarray:
    """Rotation matrices (n, 3, 3) from unit quaternions (n, 4) in wxyz order."""
    q = np.asarray(quats, dtype=np.float64)
    if q.ndim != 2 or q.shape[1] != 4:
        raise ValueError(f"quaternions must be (n, 4) wxyz, got shape {q.shape}")
    q = q / np.linalg.norm(q, axis=1, keepdims=True)
    w, x, y, z = q.T
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
        np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
        np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
    ], axis=1)


def face_up_labels(quats: np.ndarray) -> np.ndarray:
    """Which cube face points up: 0..5 for the cube frame's +x, -x, +y, -y, +z, -z.

    World up expressed in the cube frame is R^T e_z, i.e. the third row of R; the face whose
    normal is closest to it is on top.
    """
    up_in_cube = quaternion_to_matrix(quats)[:, 2, :]
    axis = np.abs(up_in_cube).argmax(axis=1)
    negative = up_in_cube[np.arange(len(axis)), axis] < 0
    return 2 * axis + negative.astype(np.int64)


def load_renders(n: int, size: int, randomize: bool, seed: int, cache: Path | None) -> tuple[np.ndarray, np.ndarray]:
    """Images as float32 (n, 3, size, size) in [0, 1] and face-up labels; cached as .npz."""
    path = None if cache is None else cache / f"cube_{n}_{size}_{int(randomize)}_{seed}.npz"
    if path is not None and path.exists():
        stored = np.load(path)
        images, quats = stored["images"], stored["quats"]
    else:
        try:
            from sim.datasets import render_cube_images
        except ImportError as exc:
            raise MissingDataError("sim.datasets.render_cube_images is not available in this checkout") from exc
        images, quats = render_cube_images(n, size=size, randomize=randomize, seed=seed)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            np.savez_compressed(path, images=images, quats=quats)
    if images.shape != (n, size, size, 3) or quats.shape != (n, 4):
        raise ValueError(f"renders have shapes {images.shape}, {quats.shape}; expected ({n}, {size}, {size}, 3), ({n}, 4)")
    x = images.astype(np.float32).transpose(0, 3, 1, 2) / 255.0
    return x, face_up_labels(quats)


def _accuracy(model: torch.nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(torch.from_numpy(x[i : i + 256])).argmax(1) for i in range(0, len(x), 256)])
    model.train()
    return float((pred.numpy() == y).mean())


def train_source(x: np.ndarray, y: np.ndarray, settings: AdaptSettings, seed: int) -> SmallCNN:
    """Supervised training on clean renders."""
    torch.manual_seed(seed)
    model = SmallCNN(NUM_FACES)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    rng = np.random.default_rng(seed)
    for _ in tqdm(range(settings.source_epochs), desc="source epochs", leave=False):
        for batch in np.array_split(rng.permutation(len(y)), max(1, len(y) // settings.batch)):
            loss = F.cross_entropy(model(torch.from_numpy(x[batch])), torch.from_numpy(y[batch]))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model


def adapt(base: SmallCNN | None, shots_x: np.ndarray, shots_y: np.ndarray, target_x: np.ndarray,
          prior: np.ndarray, use_odm: bool, settings: AdaptSettings, seed: int) -> tuple[SmallCNN, list[float]]:
    """Fine-tune (or train from scratch when base is None) on the shots, optionally with ODM."""
    torch.manual_seed(seed)
    model = SmallCNN(NUM_FACES)
    if base is not None:
        model.load_state_dict(base.state_dict())
    # fine-tuning on six images overfits fast: a 10x smaller step keeps the source features
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr / (10 if base is not None else 1))
    rng = np.random.default_rng(seed)
    shots = (torch.from_numpy(shots_x), torch.from_numpy(shots_y))
    prior_t = torch.as_tensor(prior, dtype=torch.float32)
    losses = []
    for _ in range(settings.adapt_steps):
        loss = F.cross_entropy(model(shots[0]), shots[1])
        if use_odm:
            batch = rng.choice(len(target_x), settings.odm_batch, replace=False)
            probs = F.softmax(model(torch.from_numpy(target_x[batch])), dim=1)
            loss = loss + settings.odm_weight * marginal_odm_loss(probs, prior_t)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return model, losses


def run_adaptation(settings: AdaptSettings, seed: int, cache: Path | None) -> list[dict[str, Any]]:
    """Source-only vs 6-shot fine-tuning vs 6-shot + ODM, accuracy on randomized test renders."""
    src_x, src_y = load_renders(settings.n_source, settings.size, False, seed, cache)
    tgt_x, tgt_y = load_renders(settings.n_target, settings.size, True, seed + 1, cache)
    test_x, test_y = load_renders(settings.n_test, settings.size, True, seed + 2, cache)
    # the known label distribution: class frequencies of the (labelled) source set
    prior = np.bincount(src_y, minlength=NUM_FACES).astype(np.float64) + 1.0
    prior /= prior.sum()
    shot_idx = few_labels(tgt_y, 1, seed)
    shots_x, shots_y = tgt_x[shot_idx], tgt_y[shot_idx]
    unlabelled = np.delete(tgt_x, shot_idx, axis=0)  # target labels below this line are never used
    source = train_source(src_x, src_y, settings, seed)
    rows = [{"arm": "source-only", "target_labels": 0, "clean_acc": _accuracy(source, src_x, src_y),
             "target_test_acc": _accuracy(source, test_x, test_y)}]
    arms = [("scratch on 6 shots", None, False), ("fine-tune on 6 shots", source, False),
            ("fine-tune 6 shots + ODM", source, True), ("scratch 6 shots + ODM", None, True)]
    for name, base, use_odm in tqdm(arms, desc="adaptation arms", leave=False):
        model, _ = adapt(base, shots_x, shots_y, unlabelled, prior, use_odm, settings, seed)
        rows.append({"arm": name, "target_labels": NUM_FACES, "clean_acc": _accuracy(model, src_x, src_y),
                     "target_test_acc": _accuracy(model, test_x, test_y)})
    return rows
