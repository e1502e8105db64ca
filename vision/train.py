"""Training loop for the pose CNN: augmentation, TensorBoard, checkpoints (last.pt / best.pt), resume, tqdm."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F
from tqdm import tqdm

from sim.configio import to_dict
from vision.config import AugmentConfig, TrainConfig
from vision.model import PoseNet, quat_to_matrix, rotation_angle, sixd_to_matrix
from vision.runtime.pipeline import ImagePipeline, PipelineConfig

CAMERAS = ("cam_left", "cam_right", "cam_top")


def prepare_images(images: np.ndarray, pipeline: ImagePipeline, cameras=CAMERAS) -> np.ndarray:
    """(N, n_cams, H, W, 3) raw renders -> (N, n_cams, S, S, 3) uint8 through the shared pipeline."""
    n = pipeline.config.net_size
    out = np.empty((len(images), len(cameras), n, n, 3), np.uint8)
    for i in range(len(images)):
        for j, cam in enumerate(cameras):
            out[i, j] = pipeline.prepare(cam, images[i, j])
    return out


def augment(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """Photometric jitter, small shifts, noise and one-camera blackout on a (B, C, 3, S, S) batch."""
    b, c = x.shape[:2]
    shape = (b, c, 1, 1, 1)
    contrast = 1 + (torch.rand(shape, generator=gen) * 2 - 1) * cfg.contrast
    bright = (torch.rand(shape, generator=gen) * 2 - 1) * cfg.brightness
    colour = 1 + (torch.rand((b, c, 3, 1, 1), generator=gen) * 2 - 1) * 0.05
    x = ((x - 0.5) * contrast + 0.5 + bright) * colour
    if cfg.shift_px:
        dx, dy = torch.randint(-cfg.shift_px, cfg.shift_px + 1, (2,), generator=gen).tolist()
        x = torch.roll(x, shifts=(dy, dx), dims=(3, 4))
    x = x + torch.randn(x.shape, generator=gen) * cfg.noise_std
    x = x.clamp(0, 1)
    if cfg.camera_dropout > 0:
        drop = torch.rand(b, generator=gen) < cfg.camera_dropout
        which = torch.randint(0, c, (b,), generator=gen)
        mask = torch.ones(b, c, 1, 1, 1)
        mask[drop, which[drop]] = 0
        x = x * mask
    return x


def pose_errors(pos, rot6d, pos_true, rmat_true) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample position error (mm) and rotation error (deg)."""
    pos_mm = (pos - pos_true).norm(dim=-1) * 1000
    rot_deg = torch.rad2deg(rotation_angle(sixd_to_matrix(rot6d), rmat_true))
    return pos_mm, rot_deg


def batch_loss(model, x, pos_true, rmat_true, cfg: TrainConfig):
    pos, rot6d, err = model(x)
    r = sixd_to_matrix(rot6d)
    pos_loss = F.smooth_l1_loss(pos / 0.01, pos_true / 0.01, beta=0.1)
    rot_loss = ((r - rmat_true) ** 2).sum((1, 2)).add(1e-8).sqrt().mean()
    with torch.no_grad():
        pos_mm, rot_deg = pose_errors(pos, rot6d, pos_true, rmat_true)
    err_loss = F.smooth_l1_loss(err / 10, torch.stack([pos_mm, rot_deg], -1) / 10)
    loss = pos_loss + cfg.rot_weight * rot_loss + cfg.err_weight * err_loss
    return loss, {"pos_loss": pos_loss.item(), "rot_loss": rot_loss.item(), "err_loss": err_loss.item()}


@torch.no_grad()
def evaluate_torch(model, images: np.ndarray, pos: np.ndarray, quat: np.ndarray, batch: int = 128) -> dict[str, Any]:
    """Errors of a torch model on prepared uint8 images (no augmentation)."""
    model.eval()
    device = next(model.parameters()).device
    pos_errs, rot_errs, pred_errs = [], [], []
    for s in range(0, len(images), batch):
        x = torch.from_numpy(ImagePipeline.to_input(images[s:s + batch])).to(device)
        p, r6, err = model(x)
        pm, rd = pose_errors(p, r6, torch.from_numpy(pos[s:s + batch]).float().to(device),
                             quat_to_matrix(torch.from_numpy(quat[s:s + batch]).float()).to(device))
        pos_errs.append(pm.cpu().numpy())
        rot_errs.append(rd.cpu().numpy())
        pred_errs.append(err.cpu().numpy())
    pm, rd, pe = np.concatenate(pos_errs), np.concatenate(rot_errs), np.concatenate(pred_errs)
    return {"pos_mm_median": float(np.median(pm)), "pos_mm_p90": float(np.percentile(pm, 90)),
            "rot_deg_median": float(np.median(rd)), "rot_deg_p90": float(np.percentile(rd, 90)),
            "pred_err_median": np.median(pe, axis=0).tolist()}


def load_prepared(data: Path, pipeline: ImagePipeline) -> dict[str, np.ndarray]:
    from vision.data import load_dataset

    raw = load_dataset(data)
    return {"images": prepare_images(raw["images"], pipeline), "pos": raw["pos"], "quat": raw["quat"]}


def build_model(cfg: TrainConfig, n_cams: int = 3) -> PoseNet:
    return PoseNet(n_cams, cfg.net_size, cfg.channels, cfg.strides, cfg.feature_dim, cfg.hidden)


def train(cfg: TrainConfig, data: Path, out: Path, resume: bool = False, command: str = "",
          progress: bool = True) -> dict[str, Any]:
    """Train on the generated folder ``data``; returns the best validation figures and checkpoint path."""
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    out.mkdir(parents=True, exist_ok=True)
    pipe_cfg = PipelineConfig(input_size=_image_size(data), net_size=cfg.net_size, crop=cfg.crop)
    ds = load_prepared(data, ImagePipeline(pipe_cfg))
    n = len(ds["pos"])
    order = np.random.default_rng(cfg.seed).permutation(n)
    n_val = max(1, int(round(n * cfg.val_fraction)))
    val, tr = order[:n_val], order[n_val:]
    if len(tr) < 1:
        raise ValueError(f"{data}: {n} samples leave none for training after the validation split")

    device = torch.device(cfg.device)
    model = build_model(cfg).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(len(tr) / cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch,
                                                pct_start=0.15)
    start_epoch, best, trained_s = 0, math.inf, 0.0
    last_path, best_path = out / "last.pt", out / "best.pt"
    if resume:
        if not last_path.is_file():
            raise FileNotFoundError(f"--resume: no checkpoint at {last_path}")
        ck = torch.load(last_path, weights_only=False, map_location=device)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        start_epoch, best, trained_s = ck["epoch"] + 1, ck["best_score"], ck.get("trained_s", 0.0)

    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(out / "tb"))
    gen = torch.Generator().manual_seed(cfg.seed + start_epoch)
    images, pos = ds["images"], torch.from_numpy(ds["pos"]).float().to(device)
    rmat = quat_to_matrix(torch.from_numpy(ds["quat"]).float()).to(device)
    metrics: dict[str, Any] = {}
    meta = {"config": to_dict(cfg), "pipeline": pipe_cfg.to_dict(), "cameras": list(CAMERAS), "data": str(data),
            "n_train": len(tr), "n_val": len(val), "command": command}
    for epoch in range(start_epoch, cfg.epochs):
        if cfg.time_limit_s and trained_s >= cfg.time_limit_s:
            print(f"time limit {cfg.time_limit_s:.0f} s reached after {epoch} epochs")
            break
        model.train()
        t0 = time.perf_counter()
        perm = tr[torch.randperm(len(tr), generator=gen).numpy()]
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False, disable=not progress)
        for k in bar:
            idx = perm[k * cfg.batch_size:(k + 1) * cfg.batch_size]
            x = augment(torch.from_numpy(ImagePipeline.to_input(images[idx])), cfg.augment, gen).to(device)
            loss, parts = batch_loss(model, x, pos[idx], rmat[idx], cfg)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step = epoch * steps_per_epoch + k
            if k % 10 == 0:
                writer.add_scalar("train/loss", loss.item(), step)
                for name, v in parts.items():
                    writer.add_scalar(f"train/{name}", v, step)
                bar.set_postfix(loss=f"{loss.item():.3f}")
        trained_s += time.perf_counter() - t0
        metrics = evaluate_torch(model, images[val], ds["pos"][val], ds["quat"][val])
        for name in ("pos_mm_median", "pos_mm_p90", "rot_deg_median", "rot_deg_p90"):
            writer.add_scalar(f"val/{name}", metrics[name], epoch)
        score = metrics["pos_mm_median"] / 2.0 + metrics["rot_deg_median"] / 3.0  # both relative to the goal
        ck = {"model": {k: v.cpu() for k, v in model.state_dict().items()}, "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
              "epoch": epoch, "best_score": min(best, score), "trained_s": trained_s, "val": metrics, **meta}
        torch.save(ck, last_path)
        if score < best:
            best = score
            torch.save(ck, best_path)
        print(f"epoch {epoch + 1}: val position median {metrics['pos_mm_median']:.2f} mm, orientation median "
              f"{metrics['rot_deg_median']:.2f} deg ({trained_s:.0f} s trained)", flush=True)
    writer.close()
    ck = torch.load(best_path, weights_only=False)
    (out / "best.json").write_text(json.dumps({"epoch": ck["epoch"], "val": ck["val"], **meta}, indent=2))
    return {"checkpoint": str(best_path), "epoch": ck["epoch"], "val_pos_mm_median": ck["val"]["pos_mm_median"],
            "val_rot_deg_median": ck["val"]["rot_deg_median"], "val": ck["val"], "last": metrics}


def _image_size(data: Path) -> int:
    meta = Path(data) / "metadata.json"
    if meta.is_file():
        return int(json.loads(meta.read_text())["gen_config"]["image_size"])
    from vision.data import load_dataset

    return int(load_dataset(data)["images"].shape[2])
