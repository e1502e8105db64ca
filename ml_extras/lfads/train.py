"""Training loop and the synthetic-data experiment (LFADS vs smoothing vs factor analysis)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from ml_extras.common import seed_everything
from ml_extras.lfads.baselines import best_smoothing_width, factor_analysis_rates, rate_r2, smooth_spikes
from ml_extras.lfads.data import generate_chaotic_rnn_data, split_by_trial
from ml_extras.lfads.model import LFADS, LFADSConfig


@dataclass
class TrainConfig:
    steps: int
    batch_size: int = 64
    lr: float = 1e-2
    kl_warmup_steps: int = 0
    l2_weight: float = 1e-4
    grad_clip: float = 200.0
    checkpoint: Path | None = None
    checkpoint_every: int = 200
    resume: bool = False


def train_lfads(model: LFADS, data: torch.Tensor, config: TrainConfig, desc: str = "lfads") -> list[float]:
    """Adam with KL warm-up, gradient clipping and exponential learning-rate decay; returns losses."""
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, eps=1e-8)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.2 ** (1.0 / max(1, config.steps)))
    history: list[float] = []
    start = 0
    if config.resume and config.checkpoint is not None and config.checkpoint.is_file():
        state = torch.load(config.checkpoint, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start, history = state["step"], state["history"]
    else:
        model.init_readout_from_data(data)
    model.train()
    generator = torch.Generator().manual_seed(start)
    for step in tqdm(range(start, config.steps), desc=desc, leave=False, mininterval=2.0):
        batch = data[torch.randint(0, len(data), (config.batch_size,), generator=generator)]
        kl_weight = min(1.0, (step + 1) / config.kl_warmup_steps) if config.kl_warmup_steps else 1.0
        loss, _ = model.loss(batch, kl_weight=kl_weight, l2_weight=config.l2_weight)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        scheduler.step()
        history.append(loss.item())
        done = step + 1
        if config.checkpoint is not None and (done % config.checkpoint_every == 0 or done == config.steps):
            config.checkpoint.parent.mkdir(parents=True, exist_ok=True)
            torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(), "step": done, "history": history}, config.checkpoint)
    return history


def run_synthetic(quick: bool, seed: int, out: Path, resume: bool = False) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The paper's chaotic-RNN benchmark: rate R^2 on held-out trials for each method."""
    n_conditions = 40 if quick else 200
    data = generate_chaotic_rnn_data(n_conditions=n_conditions, trials_per_condition=10, seed=seed)
    train_idx, valid_idx = split_by_trial(len(data.spikes), 0.2, seed)
    spikes_tr, spikes_va = data.spikes[train_idx], data.spikes[valid_idx]
    rates_tr, rates_va = data.rates[train_idx], data.rates[valid_idx]
    info = {"trials_train": len(train_idx), "trials_valid": len(valid_idx), "neurons": data.spikes.shape[2],
            "bins": data.spikes.shape[1], "mean_rate_hz": float(data.rates.mean()),
            "max_rate_hz": float(data.rates.max()), "mean_count_per_bin": float(data.spikes.mean())}
    rows = []
    width = best_smoothing_width(spikes_tr, rates_tr, data.bin_s)
    rows.append({"method": f"Gaussian smoothing (sd {width:g} bins)",
                 "rate_r2_valid": rate_r2(smooth_spikes(spikes_va, width, data.bin_s), rates_va)})
    n_factors = 8
    fa_rates = factor_analysis_rates(spikes_tr, spikes_va, n_factors, width, data.bin_s, seed)
    rows.append({"method": f"smoothing + factor analysis ({n_factors})", "rate_r2_valid": rate_r2(fa_rates, rates_va)})
    seed_everything(seed)
    if quick:  # small enough for ~1 CPU-minute of training on a slow shared core
        config = LFADSConfig(n_channels=data.spikes.shape[2], factor_size=n_factors, encoder_size=32,
                             controller_encoder_size=16, controller_size=16, generator_size=48)
    else:
        # sized to finish in <= 30 minutes on 2 cores shared with other jobs (about 0.5-1 s a step there)
        config = LFADSConfig(n_channels=data.spikes.shape[2], factor_size=n_factors, encoder_size=64,
                             controller_encoder_size=32, controller_size=32, generator_size=64)
    model = LFADS(config)
    steps = 250 if quick else 1500
    train_config = TrainConfig(steps=steps, batch_size=32 if quick else 64, kl_warmup_steps=steps * 3 // 4 if quick else 500,
                               checkpoint=None if quick else out / "lfads_synthetic.pt", resume=resume)
    x_tr = torch.from_numpy(spikes_tr).float()
    history = train_lfads(model, x_tr, train_config)
    inferred = model.infer_rates(torch.from_numpy(spikes_va).float(), data.bin_s).numpy()
    rows.append({"method": f"LFADS ({steps} steps)", "rate_r2_valid": rate_r2(inferred, rates_va)})
    info["lfads_loss_first_last"] = [history[0], float(np.mean(history[-20:]))]
    return rows, info


def synthetic_joint_state_records(n_joints: int = 6, duration_s: float = 8.0, rate_hz: float = 100.0,
                                  noise: float = 0.02, seed: int = 0) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """JointState-like dict records of a smooth hand motion (jittered stamps, shuffled joint order).

    Stands in for a recorded bag so the loader -> LFADS path can be exercised without ROS.
    Returns the records and the clean (noise-free) signal functions' parameters.
    """
    rng = np.random.default_rng(seed)
    names = [f"rh_J{k:02d}" for k in range(n_joints)]
    freqs, phases = rng.uniform(0.3, 1.5, n_joints), rng.uniform(0, 2 * np.pi, n_joints)
    times = np.sort(np.arange(0.0, duration_s, 1.0 / rate_hz) + rng.uniform(0, 0.3 / rate_hz, int(duration_s * rate_hz)))
    records = []
    for t in times:
        order = rng.permutation(n_joints)
        clean = np.sin(2 * np.pi * freqs * t + phases)
        velocity = 2 * np.pi * freqs * np.cos(2 * np.pi * freqs * t + phases)
        records.append({"header": {"stamp": {"secs": int(t), "nsecs": int((t - int(t)) * 1e9)}},
                        "name": [names[k] for k in order],
                        "position": list(clean[order] + noise * rng.normal(size=n_joints)),
                        "velocity": list(velocity[order] + noise * rng.normal(size=n_joints))})
    return records, {"names": names, "freqs": freqs, "phases": phases}


def run_joint_state_demo(seed: int, steps: int = 150) -> dict[str, Any]:
    """Loader -> Gaussian LFADS on synthetic joint states; reports reconstruction R^2 of positions."""
    from ml_extras.lfads.joint_states import joint_states_to_lfads

    records, _ = synthetic_joint_state_records(seed=seed)
    batch = joint_states_to_lfads(records, bin_s=0.02, window_bins=50, stride_bins=10, fields=("position", "velocity"))
    seed_everything(seed)
    model = LFADS(LFADSConfig(n_channels=batch.data.shape[-1], encoder_size=32, controller_encoder_size=16,
                              controller_size=16, generator_size=32, factor_size=4, likelihood="gaussian"))
    history = train_lfads(model, batch.data, TrainConfig(steps=steps, batch_size=16, lr=5e-3,
                                                         kl_warmup_steps=steps // 2), desc="joint states")
    recon = model.infer_rates(batch.data, bin_s=1.0).numpy()
    target = batch.data.numpy()
    return {"windows": int(batch.data.shape[0]), "channels": batch.channel_names,
            "loss_first_last": [history[0], float(np.mean(history[-10:]))],
            "reconstruction_r2": rate_r2(recon, target)}
