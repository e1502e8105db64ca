"""Training loop for the pose CNN: augmentation, TensorBoard, checkpoints (last.pt / best.pt), resume, tqdm.

With ``learners`` > 1 (or ``backup`` > 0) each optimizer step is data-parallel through
``ml_extras.sync_sgd.DataParallelSGD``: K + B worker processes each draw batch_size // K training
samples, augment them with a generator seeded by (seed, start epoch, rank, iteration), and send
the gradient of :func:`batch_loss`; the first K are averaged and applied here, where the model,
optimizer, scheduler, checkpoints, TensorBoard and progress bar live. BatchNorm running statistics
stay in the workers, so they are re-estimated here before each validation (see
:func:`recalibrate_batchnorm`).
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.nn import functional as F
from tqdm import tqdm

from sim.configio import to_dict
from vision.config import AugmentConfig, TrainConfig
from vision.model import PoseNet, quat_to_matrix, rotation_angle, sixd_to_matrix
from vision.runtime.geometry import pixel_to_net, triangulate_centre
from vision.runtime.pipeline import ImagePipeline, PipelineConfig

if TYPE_CHECKING:
    from ml_extras.sync_sgd import DataParallelSGD, WorkerPool

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


def centre_loss(x: torch.Tensor, uv: torch.Tensor, uv_true: torch.Tensor) -> torch.Tensor:
    """Huber loss of the image-centre head in units of 10 net pixels, over the cameras that show the cube
    (not blacked out, centre inside the image)."""
    shown = (x.flatten(2).amax(-1) > 0) & (uv_true.abs().amax(-1) < 1.0)
    scale = x.shape[-1] / 20.0  # normalized units -> 10-pixel units
    per = F.smooth_l1_loss(uv * scale, uv_true * scale, beta=0.1, reduction="none").sum(-1)
    return (per * shown).sum() / shown.sum().clamp_min(1)


def batch_loss(model, x, pos_true, rmat_true, cfg: TrainConfig, uv_true: torch.Tensor | None = None):
    out = model(x)
    pos, rot6d, err = out[:3]
    r = sixd_to_matrix(rot6d)
    pos_loss = F.smooth_l1_loss(pos / 0.01, pos_true / 0.01, beta=0.1)
    rot_loss = ((r - rmat_true) ** 2).sum((1, 2)).add(1e-8).sqrt().mean()
    with torch.no_grad():
        pos_mm, rot_deg = pose_errors(pos, rot6d, pos_true, rmat_true)
    actual = torch.stack([pos_mm, rot_deg], -1)
    if cfg.err_loss == "nll":  # Laplace NLL of the actual errors with scale err: minimised at err = E[error]
        scale = err.clamp_min(0.05)
        err_loss = (actual / scale + torch.log(scale)).mean()
    else:
        err_loss = F.smooth_l1_loss(err / 10, actual / 10)
    loss = pos_loss + cfg.rot_weight * rot_loss + cfg.err_weight * err_loss
    parts = {"pos_loss": pos_loss.item(), "rot_loss": rot_loss.item(), "err_loss": err_loss.item()}
    if len(out) > 3 and uv_true is not None:
        uv_loss = centre_loss(x, out[3], uv_true)
        loss = loss + cfg.centre_weight * uv_loss
        parts["centre_loss"] = uv_loss.item()
    return loss, parts


@dataclass
class BatchLoss:
    """Picklable ``loss_fn(model, batch)`` for the learners: :func:`batch_loss` without the parts."""

    cfg: TrainConfig

    def __call__(self, model: torch.nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        device = next(model.parameters()).device
        x, pos, rmat, uv = (t.to(device) for t in batch)
        return batch_loss(model, x, pos, rmat, self.cfg, uv)[0]


_IMAGE_CACHE: dict[str, np.ndarray] = {}


def _shared_images(path: str) -> np.ndarray:
    """The prepared images, memory-mapped once per process (workers share the page cache)."""
    if path not in _IMAGE_CACHE:
        _IMAGE_CACHE[path] = np.load(path, mmap_mode="r")
    return _IMAGE_CACHE[path]


@dataclass
class AugmentedShards:
    """Picklable ``batch_fn(rank, iteration)`` for the learners: ``shard_size`` training samples
    drawn without replacement and augmented, both seeded by (seed, offset, rank, iteration), so a
    run is reproducible whatever order the gradients arrive in. The images are read from a .npy
    file (memory-mapped) instead of being pickled into every worker's job."""

    images_path: str
    pos: torch.Tensor
    rmat: torch.Tensor
    uv: torch.Tensor
    train_index: np.ndarray
    shard_size: int
    augment: AugmentConfig
    seed: int
    offset: int = 0  # e.g. the epoch a resumed run starts at, so it does not replay the first draws

    def __call__(self, rank: int, iteration: int) -> tuple[torch.Tensor, ...]:
        rng = np.random.default_rng([self.seed, self.offset, rank, iteration])
        idx = np.sort(rng.choice(self.train_index, min(self.shard_size, len(self.train_index)), replace=False))
        gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
        images = _shared_images(self.images_path)[idx]
        x = augment(torch.from_numpy(ImagePipeline.to_input(images)), self.augment, gen)
        return x, self.pos[idx], self.rmat[idx], self.uv[idx]


@torch.no_grad()
def recalibrate_batchnorm(model: torch.nn.Module, batches: list[torch.Tensor]) -> None:
    """Re-estimate BatchNorm running statistics as the plain average over ``batches`` (train-mode
    forward passes, no gradient). The learners normalise with batch statistics and their running
    averages never reach this process, so validation and checkpoints need this."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average
    model.train()
    for x in batches:
        model(x)
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum


BN_RECALIBRATION_BATCHES = 16


@torch.no_grad()
def evaluate_torch(model, images: np.ndarray, pos: np.ndarray, quat: np.ndarray, batch: int = 128,
                   cameras: list[dict[str, Any]] | None = None, pipeline: PipelineConfig | None = None) -> dict[str, Any]:
    """Errors of a torch model on prepared uint8 images (no augmentation). With a centre head and the
    samples' ``cameras`` (``vision.data.sample_cameras``), also the triangulated position's errors (``tri_mm_*``)."""
    model.eval()
    device = next(model.parameters()).device
    pos_errs, rot_errs, pred_errs, uvs, preds = [], [], [], [], []
    for s in range(0, len(images), batch):
        x = torch.from_numpy(ImagePipeline.to_input(images[s:s + batch])).to(device)
        out = model(x)
        p, r6, err = out[:3]
        if len(out) > 3:
            uvs.append(out[3].cpu().numpy())
            preds.append(p.cpu().numpy())
        pm, rd = pose_errors(p, r6, torch.from_numpy(pos[s:s + batch]).float().to(device),
                             quat_to_matrix(torch.from_numpy(quat[s:s + batch]).float()).to(device))
        pos_errs.append(pm.cpu().numpy())
        rot_errs.append(rd.cpu().numpy())
        pred_errs.append(err.cpu().numpy())
    pm, rd, pe = np.concatenate(pos_errs), np.concatenate(rot_errs), np.concatenate(pred_errs)
    metrics = {"pos_mm_median": float(np.median(pm)), "pos_mm_p90": float(np.percentile(pm, 90)),
               "rot_deg_median": float(np.median(rd)), "rot_deg_p90": float(np.percentile(rd, 90)),
               "pred_err_median": np.median(pe, axis=0).tolist()}
    if uvs and cameras is not None and pipeline is not None:
        uv, net_pos = np.concatenate(uvs), np.concatenate(preds)
        found = [triangulate_centre(uv[i], cameras[i], pipeline.input_size, pipeline.crop) for i in range(len(uv))]
        tri = np.array([net_pos[i] if t is None else t.point for i, t in enumerate(found)])
        tm = np.linalg.norm(tri - pos, axis=1) * 1000
        residuals = [t.residual_px for t in found if t is not None]
        metrics.update({"tri_mm_median": float(np.median(tm)), "tri_mm_p90": float(np.percentile(tm, 90)),
                        "tri_residual_px_median": float(np.median(residuals)) if residuals else float("nan")})
    return metrics


def centre_labels(pos: np.ndarray, cameras: list[dict[str, Any]], pipeline: PipelineConfig) -> np.ndarray:
    """(N, n_cams, 2) normalized image position of the cube centre in each camera (the centre head's target)."""
    out = np.zeros((len(pos), len(cameras[0]) if cameras else 0, 2), np.float32)
    for i, cams in enumerate(cameras):
        for j, geom in enumerate(cams.values()):
            out[i, j] = pixel_to_net(geom.project(pos[i][None])[0], pipeline.input_size, pipeline.crop)
    return out


def stored_pipeline(data: Path) -> dict | None:
    """The pipeline settings a generated folder's images were stored with (None: raw camera frames)."""
    for name in ("metadata.json", "gen_config.json"):
        path = Path(data) / name
        if path.is_file():
            meta = json.loads(path.read_text())
            if "pipeline" in meta:
                return meta["pipeline"]
            gen = meta.get("gen_config", {})
            if gen.get("net_size"):
                return {"input_size": gen["image_size"], "net_size": gen["net_size"], "crop": gen["crop"],
                        "color_order": "rgb"}
            return None
    return None


def load_prepared(data: Path, pipeline: ImagePipeline, max_samples: int = 0) -> dict[str, np.ndarray]:
    """Network-resolution uint8 images and labels of a generated folder (its first ``max_samples``; 0: all).
    Raw frames go through ``pipeline``; frames stored already prepared must have been made with the same settings."""
    from vision.data import load_dataset, sample_cameras

    raw = load_dataset(data, max_samples)
    stored = stored_pipeline(data)
    if stored is None:
        images = prepare_images(raw["images"], pipeline)
    else:
        want = pipeline.config.to_dict()
        bad = [k for k in ("input_size", "net_size", "crop") if stored.get(k) != want[k]]
        if bad:
            raise ValueError(f"{data}: images were stored through the pipeline {stored}, the training wants "
                             f"{want} ({', '.join(bad)} differ): set them equal or regenerate")
        images = raw["images"]
    cameras = sample_cameras(raw, pipeline.config.input_size)
    return {"images": images, "pos": raw["pos"], "quat": raw["quat"], "cameras": cameras,
            "uv": centre_labels(raw["pos"], cameras, pipeline.config)}


def split_indices(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(validation, training) indices. Sample i is in validation when the i-th draw of a stream seeded
    by ``seed`` is below ``val_fraction``, so the split of the first samples stays the same when more
    shards arrive (a resumed run never trains on its earlier validation samples). At least one each."""
    u = np.random.default_rng(seed).random(n)
    val = np.flatnonzero(u < val_fraction)
    if len(val) == 0:
        val = np.array([int(np.argmin(u))])
    tr = np.setdiff1d(np.arange(n), val)
    return val, tr


def build_model(cfg: TrainConfig, n_cams: int = 3) -> PoseNet:
    return PoseNet(n_cams, cfg.net_size, cfg.channels, cfg.strides, cfg.feature_dim, cfg.hidden,
                   arch=cfg.arch, keypoints=cfg.keypoints, keypoint_level=cfg.keypoint_level,
                   centre_head=cfg.centre_head)


def initialize_from(model: PoseNet, path: Path, images: torch.Tensor) -> list[str]:
    """Load the weights of a checkpoint or an exported ONNX model into ``model``; returns the names of the
    parameters the file did not have. ``images``: a batch to re-estimate BatchNorm statistics from, since
    an exported model has them folded into its convolutions (``vision.export.unfold_batchnorm``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"init_from: no such file {path}")
    if path.suffix == ".onnx":
        from vision.export import load_onnx_weights

        return load_onnx_weights(model, path, images)
    state = torch.load(path, weights_only=False, map_location="cpu")
    missing, unexpected = model.load_state_dict(state.get("model", state), strict=False)
    if unexpected:
        raise ValueError(f"init_from: {path} has parameters this model lacks: {', '.join(unexpected)}")
    return list(missing)


class ProgressSchedule:
    """Warm-up, then cosine decay of the learning rate to ``final`` x lr, over the larger of the steps done
    out of ``total_steps`` and the training seconds done out of ``time_limit_s`` (when set): a run cut by
    its time limit still ends annealed. Same step()/state_dict() interface as torch's schedulers."""

    def __init__(self, opt, lr: float, total_steps: int, time_limit_s: float = 0.0, warmup: float = 0.03,
                 final: float = 0.02, clock: Callable[[], float] | None = None) -> None:
        self.opt, self.lr, self.total_steps, self.time_limit_s = opt, lr, max(1, total_steps), time_limit_s
        self.warmup, self.final = warmup, final
        self.clock = clock or (lambda: 0.0)  # training seconds done so far
        self.steps = 0
        self._apply()

    def progress(self) -> float:
        p = self.steps / self.total_steps
        if self.time_limit_s:
            p = max(p, self.clock() / self.time_limit_s)
        return min(1.0, p)

    def current_lr(self) -> float:
        p = self.progress()
        if p < self.warmup:
            return self.lr * max(p / self.warmup, 0.01)
        q = (p - self.warmup) / max(1e-9, 1 - self.warmup)
        return self.lr * (self.final + (1 - self.final) * 0.5 * (1 + math.cos(math.pi * q)))

    def _apply(self) -> None:
        for group in self.opt.param_groups:
            group["lr"] = self.current_lr()

    def step(self) -> None:
        self.steps += 1
        self._apply()

    def state_dict(self) -> dict:
        return {"steps": self.steps}

    def load_state_dict(self, state: dict) -> None:
        self.steps = int(state.get("steps", 0))
        self._apply()


def train(cfg: TrainConfig, data: Path, out: Path, resume: bool = False, command: str = "",
          progress: bool = True, pool: WorkerPool | None = None,
          delay_fn: Callable[[int, int], float] | None = None) -> dict[str, Any]:
    """Train on the generated folder ``data``; returns the best validation figures, the checkpoint
    path and the mean training loss of each epoch run (``epoch_losses``).

    With ``cfg.learners`` > 1 or ``cfg.backup`` > 0 the steps are data-parallel; ``pool`` reuses
    already spawned learner processes (else they are spawned and reaped here) and ``delay_fn``
    injects straggling or faults into them (``ml_extras.sync_sgd.HeavyTailedDelay``, ``Faults``).
    """
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    out.mkdir(parents=True, exist_ok=True)
    cfg.validate()
    pipe_cfg = PipelineConfig(input_size=_image_size(data), net_size=cfg.net_size, crop=cfg.crop)
    ds = load_prepared(data, ImagePipeline(pipe_cfg), cfg.max_samples)
    n = len(ds["pos"])
    val, tr = split_indices(n, cfg.val_fraction, cfg.seed)
    if len(tr) < 1:
        raise ValueError(f"{data}: {n} samples leave none for training after the validation split")

    device = torch.device(cfg.device)
    model = build_model(cfg)
    if cfg.init_from and not resume:
        sample = torch.from_numpy(ImagePipeline.to_input(ds["images"][tr[:256]]))
        fresh = initialize_from(model, Path(cfg.init_from), sample)
        print(f"initialized from {cfg.init_from}" + (f"; fresh: {', '.join(fresh)}" if fresh else ""))
    model = model.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    epoch_len = min(cfg.epoch_size, len(tr)) if cfg.epoch_size else len(tr)
    steps_per_epoch = math.ceil(epoch_len / cfg.batch_size)
    start_epoch, best, trained_s = 0, math.inf, 0.0
    epoch_t0: list[float] = []  # perf_counter at the current epoch's start (the schedule's clock)
    if cfg.schedule == "cosine":
        sched = ProgressSchedule(opt, cfg.lr, cfg.epochs * steps_per_epoch, cfg.time_limit_s,
                                 clock=lambda: trained_s + (time.perf_counter() - epoch_t0[0] if epoch_t0 else 0.0))
    else:
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch,
                                                    pct_start=0.15)
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
    uv = torch.from_numpy(ds["uv"]).float().to(device)
    val_cameras = [ds["cameras"][i] for i in val]
    metrics: dict[str, Any] = {}
    meta = {"config": to_dict(cfg), "pipeline": pipe_cfg.to_dict(), "cameras": list(CAMERAS), "data": str(data),
            "n_train": len(tr), "n_val": len(val), "command": command}
    epoch_losses: list[float] = []
    with contextlib.ExitStack() as stack:
        learners = _start_learners(cfg, stack, images, pos, rmat, uv, tr, out, start_epoch, model, opt, pool, delay_fn)
        for epoch in range(start_epoch, cfg.epochs):
            if cfg.time_limit_s and trained_s >= cfg.time_limit_s:
                print(f"time limit {cfg.time_limit_s:.0f} s reached after {epoch} epochs")
                break
            model.train()
            t0 = time.perf_counter()
            epoch_t0[:] = [t0]
            bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False,
                       disable=not progress)
            if learners is None:
                def out_of_time(trained_s: float = trained_s, t0: float = t0) -> bool:  # this epoch's clock
                    return bool(cfg.time_limit_s) and trained_s + time.perf_counter() - t0 >= cfg.time_limit_s

                losses = _local_epoch(cfg, model, opt, sched, writer, bar, epoch, steps_per_epoch, tr, gen,
                                      images, pos, rmat, uv, device, out_of_time)
            else:
                losses = _parallel_epoch(learners, sched, writer, bar, epoch, steps_per_epoch)
                recalibrate_batchnorm(model, _recalibration_batches(cfg, images, tr, gen, device))
            bar.close()
            epoch_losses.append(float(np.mean(losses)))
            trained_s += time.perf_counter() - t0
            epoch_t0.clear()
            metrics = evaluate_torch(model, images[val], ds["pos"][val], ds["quat"][val], cameras=val_cameras,
                                     pipeline=pipe_cfg)
            for name in ("pos_mm_median", "pos_mm_p90", "rot_deg_median", "rot_deg_p90", "tri_mm_median"):
                if name in metrics:
                    writer.add_scalar(f"val/{name}", metrics[name], epoch)
            # both relative to the goal; with a centre head the position that ships is the triangulated one
            score = metrics.get("tri_mm_median", metrics["pos_mm_median"]) / 2.0 + metrics["rot_deg_median"] / 3.0
            ck = {"model": {k: v.cpu() for k, v in model.state_dict().items()}, "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                  "epoch": epoch, "best_score": min(best, score), "trained_s": trained_s, "val": metrics, **meta}
            torch.save(ck, last_path)
            if score < best:
                best = score
                torch.save(ck, best_path)
            tri = f" (triangulated {metrics['tri_mm_median']:.2f} mm)" if "tri_mm_median" in metrics else ""
            print(f"epoch {epoch + 1}: val position median {metrics['pos_mm_median']:.2f} mm{tri}, orientation median "
                  f"{metrics['rot_deg_median']:.2f} deg ({trained_s:.0f} s trained)", flush=True)
    writer.close()
    ck = torch.load(best_path, weights_only=False)
    (out / "best.json").write_text(json.dumps({"epoch": ck["epoch"], "val": ck["val"], **meta}, indent=2))
    return {"checkpoint": str(best_path), "epoch": ck["epoch"], "val_pos_mm_median": ck["val"]["pos_mm_median"],
            "val_rot_deg_median": ck["val"]["rot_deg_median"], "val": ck["val"], "last": metrics,
            "epoch_losses": epoch_losses}


def revalidate(checkpoint: Path) -> dict[str, Any]:
    """Recompute a checkpoint's validation figures on the validation split of the data it was trained on
    (same seed and fraction) and save them into it; returns them."""
    from sim.configio import from_dict

    ck = torch.load(checkpoint, weights_only=False)
    cfg = from_dict(TrainConfig, ck["config"])
    pipe_cfg = PipelineConfig(**{k: ck["pipeline"][k] for k in ("input_size", "net_size", "crop")})
    ds = load_prepared(Path(ck["data"]), ImagePipeline(pipe_cfg), cfg.max_samples)
    val, _ = split_indices(len(ds["pos"]), cfg.val_fraction, cfg.seed)
    model = build_model(cfg, len(ck["cameras"]))
    model.load_state_dict(ck["model"])
    ck["val"] = evaluate_torch(model, ds["images"][val], ds["pos"][val], ds["quat"][val],
                               cameras=[ds["cameras"][i] for i in val], pipeline=pipe_cfg)
    torch.save(ck, checkpoint)
    return ck["val"]


def _local_epoch(cfg: TrainConfig, model, opt, sched, writer, bar, epoch: int, steps_per_epoch: int,
                 tr: np.ndarray, gen: torch.Generator, images: np.ndarray, pos: torch.Tensor, rmat: torch.Tensor,
                 uv: torch.Tensor, device: torch.device, out_of_time: Callable[[], bool] | None = None) -> list[float]:
    """One epoch in this process (learners=1): steps_per_epoch batches drawn without replacement
    (an epoch_size shorter than the training set is a fresh random part of it); ends early when
    ``out_of_time()``."""
    losses = []  # detached tensors: no extra device sync per step
    perm = tr[torch.randperm(len(tr), generator=gen).numpy()]
    for k in bar:
        if out_of_time is not None and out_of_time():
            break
        idx = perm[k * cfg.batch_size:(k + 1) * cfg.batch_size]
        x = augment(torch.from_numpy(ImagePipeline.to_input(images[idx])), cfg.augment, gen).to(device)
        loss, parts = batch_loss(model, x, pos[idx], rmat[idx], cfg, uv[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.detach())
        step = epoch * steps_per_epoch + k
        if k % 10 == 0:
            writer.add_scalar("train/loss", loss.item(), step)
            for name, v in parts.items():
                writer.add_scalar(f"train/{name}", v, step)
            bar.set_postfix(loss=f"{loss.item():.3f}")
    return torch.stack(losses).cpu().tolist() if losses else [float("nan")]


def _start_learners(cfg: TrainConfig, stack: contextlib.ExitStack, images: np.ndarray, pos: torch.Tensor,
                    rmat: torch.Tensor, uv: torch.Tensor, tr: np.ndarray, out: Path, start_epoch: int, model, opt,
                    pool: WorkerPool | None, delay_fn: Callable[[int, int], float] | None) -> DataParallelSGD | None:
    """Spawn (or take from ``pool``) the K + B learners for the whole run; None when learners=1."""
    if cfg.learners == 1 and cfg.backup == 0:
        return None
    from ml_extras.sync_sgd import DataParallelSGD

    scratch = Path(tempfile.mkdtemp(prefix=".learners-", dir=out))
    stack.callback(shutil.rmtree, scratch, ignore_errors=True)
    images_path = scratch / "images.npy"
    np.save(images_path, images)
    batches = AugmentedShards(str(images_path), pos.cpu(), rmat.cpu(), uv.cpu(), np.asarray(tr), cfg.batch_size // cfg.learners,
                              cfg.augment, cfg.seed, offset=start_epoch)
    learners = DataParallelSGD(model, opt, BatchLoss(cfg), batches, workers=cfg.learners, backup=cfg.backup,
                               mode="sync", delay_fn=delay_fn, worker_timeout=cfg.learner_timeout,
                               worker_threads=cfg.threads, worker_device=cfg.device, seed=cfg.seed, pool=pool)
    return stack.enter_context(learners)


def _parallel_epoch(learners: DataParallelSGD, sched, writer, bar, epoch: int, steps_per_epoch: int) -> list[float]:
    """One epoch of data-parallel steps; scheduler, TensorBoard and the bar advance after each."""
    first = learners.step_count
    losses: list[float] = []

    def on_step(step: int, model: torch.nn.Module) -> None:
        sched.step()
        k = step - first
        loss = learners.result.steps[-1].mean_loss
        losses.append(loss)
        bar.update(1)
        if k % 10 == 0:
            writer.add_scalar("train/loss", loss, epoch * steps_per_epoch + k)
            bar.set_postfix(loss=f"{loss:.3f}", learners=learners.num_workers - len(learners.result.dropped))

    learners.train(steps_per_epoch, on_step=on_step)
    writer.add_scalar("learners/dropped", len(learners.result.dropped), epoch)
    writer.add_scalar("learners/discarded_late", learners.result.discarded_late, epoch)
    return losses


def _recalibration_batches(cfg: TrainConfig, images: np.ndarray, tr: np.ndarray, gen: torch.Generator,
                           device: torch.device) -> list[torch.Tensor]:
    """Augmented training batches (as the learners see them) for :func:`recalibrate_batchnorm`."""
    perm = tr[torch.randperm(len(tr), generator=gen).numpy()]
    n = min(BN_RECALIBRATION_BATCHES, math.ceil(len(tr) / cfg.batch_size))
    return [augment(torch.from_numpy(ImagePipeline.to_input(images[perm[k * cfg.batch_size:(k + 1) * cfg.batch_size]])),
                    cfg.augment, gen).to(device) for k in range(n)]


def _image_size(data: Path) -> int:
    for name in ("metadata.json", "gen_config.json"):
        meta = Path(data) / name
        if meta.is_file():
            return int(json.loads(meta.read_text())["gen_config"]["image_size"])
    from vision.data import load_dataset

    return int(load_dataset(data)["images"].shape[2])
