"""The three experiments: binary-image VAEs, 2-D reverse-KL fits, and the cube-render VAE."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from ml_extras.common import seed_everything
from ml_extras.iaf.data import load_binarized, load_cube_renders
from ml_extras.iaf.density import TARGETS, FlowDensity, fit_reverse_kl, kl_to_target, log_normalizer
from ml_extras.iaf.model import VAE, build_image_vae, build_vector_vae


@dataclass
class TrainConfig:
    epochs: int
    batch_size: int = 100
    lr: float = 1e-3
    kl_warmup_epochs: int = 0  # linear KL annealing; reported bounds always use weight 1
    checkpoint: Path | None = None
    resume: bool = False


@torch.no_grad()
def _valid_elbo(model: VAE, valid: torch.Tensor) -> float:
    """Mean ELBO (weight 1) of a held-out set, from a fixed noise seed so epochs compare fairly."""
    model.eval()
    state = torch.random.get_rng_state()
    torch.manual_seed(12345)
    value = torch.cat([model.elbo(valid[s:s + 500]) for s in range(0, len(valid), 500)]).mean().item()
    torch.random.set_rng_state(state)
    model.train()
    return value


def train_vae(model: VAE, train: torch.Tensor, config: TrainConfig, desc: str = "vae",
              valid: torch.Tensor | None = None) -> list[float]:
    """Adam on the negative ELBO; saves (model, optimizer, epoch, history) each epoch if asked.

    With ``valid``, keeps the weights of the epoch with the best held-out ELBO (early stopping:
    a small training set overfits long before the last epoch) and leaves ``model.best_epoch``.
    """
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    history: list[float] = []
    start_epoch = 0
    best: tuple[float, int, dict | None] = (float("-inf"), 0, None)
    if config.resume and config.checkpoint is not None and config.checkpoint.is_file():
        state = torch.load(config.checkpoint, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch, history = state["epoch"], state["history"]
        best = state.get("best", best)
    n = len(train)
    for epoch in tqdm(range(start_epoch, config.epochs), desc=desc, leave=False):
        model.train()
        kl_weight = min(1.0, (epoch + 1) / config.kl_warmup_epochs) if config.kl_warmup_epochs else 1.0
        order = torch.randperm(n)
        total = 0.0
        for start in range(0, n, config.batch_size):
            batch = train[order[start:start + config.batch_size]]
            loss = -model.elbo(batch, kl_weight=kl_weight).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        history.append(total / n)
        if valid is not None and kl_weight >= 1.0:  # compare only full-weight (true) bounds
            value = _valid_elbo(model, valid)
            if value > best[0]:
                best = (value, epoch + 1, {k: v.clone() for k, v in model.state_dict().items()})
        if config.checkpoint is not None:
            config.checkpoint.parent.mkdir(parents=True, exist_ok=True)
            torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "epoch": epoch + 1, "history": history, "best": best}, config.checkpoint)
    if valid is not None and best[2] is not None:
        model.load_state_dict(best[2])
        model.best_epoch = best[1]
    return history


@torch.no_grad()
def evaluate_bounds(model: VAE, data: torch.Tensor, k: int, batch_size: int = 100) -> tuple[float, float]:
    """Mean test ELBO (1 sample per draw, averaged over k) and IWAE-k bound, in nats per example."""
    model.eval()
    elbos, iwaes = [], []
    for start in range(0, len(data), batch_size):
        batch = data[start:start + batch_size]
        log_w = torch.cat([model.log_weights(batch, min(100, k - s)) for s in range(0, k, 100)], 0)
        elbos.append(log_w.mean(0))
        iwaes.append(torch.logsumexp(log_w, 0) - np.log(k))
    return torch.cat(elbos).mean().item(), torch.cat(iwaes).mean().item()


def run_binary_images(dataset: str, quick: bool, seed: int, out: Path, resume: bool = False,
                      k: int | None = None, epochs: int | None = None) -> list[dict[str, Any]]:
    """Diagonal vs IAF posterior on one binarized data set: test ELBO and IWAE-k log-likelihood."""
    limit = None if not quick else (None if dataset == "digits" else 2000)
    train_np, test_np = load_binarized(dataset, limit=limit, seed=seed)
    if not quick and dataset == "fashion":  # 54k training images; 2,000 test images keep IWAE-1000 affordable
        test_np = test_np[:2000]
    train, test = torch.from_numpy(train_np), torch.from_numpy(test_np)
    n_valid = max(100, len(train) // 10)  # held out from training for early stopping
    train, valid = train[:-n_valid], train[-n_valid:]
    latent = 8 if dataset == "digits" else 32
    hidden = 256 if dataset == "digits" else 400
    full_epochs = {"digits": 300, "mnist": 100, "fashion": 20}  # fashion: 15x the images per epoch
    epochs = epochs or ((40 if dataset == "digits" else 15) if quick else full_epochs[dataset])
    k = k or (200 if quick else 1000)
    rows = []
    for posterior in ("diag", "iaf"):
        seed_everything(seed)
        model = build_vector_vae(train.shape[1], latent, posterior, hidden=hidden)
        config = TrainConfig(epochs=epochs, kl_warmup_epochs=max(1, epochs // 10),
                             checkpoint=None if quick else out / f"iaf_{dataset}_{posterior}_es.pt", resume=resume)
        history = train_vae(model, train, config, desc=f"{dataset}/{posterior}", valid=valid)
        seed_everything(seed + 1)
        elbo, iwae = evaluate_bounds(model, test, k)
        train_elbo, _ = evaluate_bounds(model, train[: len(test)], 1)
        rows.append({"experiment": f"{dataset} ({train.shape[1]} px)", "posterior": posterior,
                     "epochs": epochs, "best_epoch": getattr(model, "best_epoch", epochs),
                     "train_elbo": train_elbo, "test_elbo": elbo,
                     f"test_iwae_k{k}": iwae, "gap_nats": iwae - elbo, "final_train_loss": history[-1]})
    return rows


def run_density(quick: bool, seed: int) -> list[dict[str, Any]]:
    """Reverse-KL fits of a diagonal Gaussian and an IAF to 2-D unnormalized densities."""
    steps = 600 if quick else 6000
    rows = []
    for name, log_density in TARGETS.items():
        log_z = log_normalizer(log_density)
        for label, n_steps in (("diag", 0), ("iaf x4", 4)):
            seed_everything(seed)
            model = FlowDensity(2, n_steps=n_steps)
            fit_reverse_kl(model, log_density, steps)
            seed_everything(seed + 1)
            rows.append({"experiment": f"2-D {name}", "posterior": label, "steps": steps,
                         "kl_nats": kl_to_target(model, log_density, log_z)})
    return rows


def run_cube(quick: bool, seed: int, out: Path, resume: bool = False, latent: int = 8) -> list[dict[str, Any]]:
    """Conv VAE (diag and IAF posteriors) on 64x64 cube renders; reconstruction MSE vs PCA.

    Raises MissingDataError when the simulator's render function is not available.
    """
    # quick: 768 renders and 20 epochs took 125 s of the 2 cores, the whole quick mode 145 s (2026-12-07),
    # over its 2 minutes; now 45 s and 66 s. full: fits the shared 2 cores
    n_train, n_test = (384, 96) if quick else (3000, 500)
    images, _ = load_cube_renders(n_train + n_test, size=64, seed=seed)
    train, test = torch.from_numpy(images[:n_train]), torch.from_numpy(images[n_train:])
    epochs = 12 if quick else 30
    flat_train, flat_test = images[:n_train].reshape(n_train, -1), images[n_train:].reshape(n_test, -1)
    mean_image = flat_train.mean(0)
    rows = [{"experiment": "cube renders 64x64", "posterior": "mean image", "latent": 0,
             "test_mse": float(((flat_test - mean_image) ** 2).mean()), "test_elbo": "-"}]
    from sklearn.decomposition import PCA

    pca = PCA(n_components=latent, random_state=seed).fit(flat_train)
    pca_rec = pca.inverse_transform(pca.transform(flat_test))
    rows.append({"experiment": "cube renders 64x64", "posterior": f"PCA {latent}", "latent": latent,
                 "test_mse": float(((flat_test - pca_rec) ** 2).mean()), "test_elbo": "-"})
    for posterior in ("diag", "iaf"):
        seed_everything(seed)
        model = build_image_vae(latent, posterior)
        config = TrainConfig(epochs=epochs, batch_size=32, lr=2e-3, kl_warmup_epochs=max(1, epochs // 2),
                             checkpoint=None if quick else out / f"iaf_cube_{posterior}.pt", resume=resume)
        train_vae(model, train, config, desc=f"cube/{posterior}")
        model.eval()
        with torch.no_grad():
            recon = torch.cat([model.reconstruct(test[s:s + 64]) for s in range(0, n_test, 64)])
            elbo, _ = evaluate_bounds(model, test, 1, batch_size=64)
        rows.append({"experiment": "cube renders 64x64", "posterior": f"VAE {posterior}", "latent": latent,
                     "test_mse": float((recon - test).pow(2).mean()), "test_elbo": elbo})
    return rows
