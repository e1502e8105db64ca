"""The straggler experiment: step time vs number of backup workers, and test accuracy vs wall
time for async / sync / sync+backup on digits, with seeded heavy-tailed worker delays."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ml_extras.sync_sgd.data import load_digits_split
from ml_extras.sync_sgd.model import accuracy, make_mlp
from ml_extras.sync_sgd.pool import WorkerPool
from ml_extras.sync_sgd.server import DataParallelSGD
from ml_extras.sync_sgd.tasks import ArrayBatches, HeavyTailedDelay, cross_entropy_loss

log = logging.getLogger("ml_extras.sync_sgd")


@dataclass
class ExperimentConfig:
    """Sizes of one experiment; ``quick()`` fits in about a minute on 2 shared cores."""

    workers: int = 8  # N, gradients averaged per sync step
    backups: tuple[int, ...] = (0, 1, 2, 4)
    steps: int = 300  # sync steps; async runs steps * N single-gradient updates
    batch_size: int = 16  # per worker
    lr: float = 0.5
    hidden: int = 32
    delay_base: float = 0.01  # seconds every gradient costs (the straggler-free step time)
    delay_scale: float = 0.005  # Lomax scale of the heavy tail
    delay_alpha: float = 1.5
    delay_cap: float = 0.5
    eval_every: int = 10  # sync steps between test evaluations (async: eval_every * N updates)
    worker_timeout: float = 30.0
    seed: int = 0

    @classmethod
    def quick(cls, seed: int = 0) -> ExperimentConfig:
        return cls(workers=4, backups=(0, 1, 2), steps=60, eval_every=5, seed=seed)


@dataclass
class RunSpec:
    name: str
    mode: str
    backup: int
    stragglers: bool


def run_specs(config: ExperimentConfig) -> list[RunSpec]:
    """Straggler-free sync, sync with each b, and async on N + max(b) workers."""
    specs = [RunSpec("sync b=0, no stragglers", "sync", 0, False)]
    specs += [RunSpec(f"sync b={b}", "sync", b, True) for b in config.backups]
    specs.append(RunSpec(f"async ({config.workers + max(config.backups)} workers)", "async",
                         max(config.backups), True))
    return specs


def modelled_step_seconds(delay: HeavyTailedDelay, workers: int, backup: int, steps: int) -> float:
    """Mean step time the seeded delays alone imply: each step waits for the N-th fastest of the
    N + b gradients. A count-based figure that other jobs on the machine cannot inflate."""
    if workers < 1 or backup < 0 or steps < 1:
        raise ValueError("modelled_step_seconds needs workers >= 1, backup >= 0, steps >= 1")
    per_step = [sorted(delay(rank, step) for rank in range(workers + backup))[workers - 1] for step in range(steps)]
    return float(np.mean(per_step))


def run_one(spec: RunSpec, config: ExperimentConfig, pool: WorkerPool | None = None) -> dict[str, Any]:
    """Train one configuration (on ``pool``'s processes if given); return its row and curve."""
    x_train, y_train, x_test, y_test = load_digits_split(config.seed)
    model = make_mlp(x_train.shape[1], config.hidden, int(y_train.max()) + 1, seed=config.seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr)
    delay = HeavyTailedDelay(base=config.delay_base, scale=config.delay_scale if spec.stragglers else 0.0,
                             alpha=config.delay_alpha, cap=config.delay_cap, seed=config.seed)
    batches = ArrayBatches(x_train, y_train, config.batch_size, seed=config.seed)
    is_async = spec.mode == "async"
    updates = config.steps * config.workers if is_async else config.steps
    eval_every = config.eval_every * config.workers if is_async else config.eval_every
    equal_step = config.steps  # the "equal steps" comparison point (same number of updates)
    curve: list[dict[str, float]] = [{"step": 0, "wall_s": 0.0, "test_acc": accuracy(model, x_test, y_test)}]
    trainer = DataParallelSGD(model, optimizer, cross_entropy_loss, batches, workers=config.workers,
                              backup=spec.backup, mode=spec.mode, delay_fn=delay,
                              worker_timeout=config.worker_timeout, seed=config.seed, pool=pool)

    def on_step(step: int, trained: torch.nn.Module) -> None:
        done = step + 1
        if done % eval_every == 0 or done == equal_step or done == updates:
            wall = trainer.result.steps[-1].wall_time
            curve.append({"step": done, "wall_s": wall, "test_acc": accuracy(trained, x_test, y_test)})

    result = trainer.train(updates, on_step=on_step)
    seconds = np.array(result.step_seconds)
    staleness = [r.step - t for r in result.steps for t in r.tags]
    acc_at_equal = next(c["test_acc"] for c in curve if c["step"] == equal_step)
    row = {
        "run": spec.name,
        "N": config.workers if not is_async else 1,
        "b": spec.backup if not is_async else 0,
        "workers": config.workers + spec.backup,
        "updates": len(result.steps),
        "step_ms": 1000 * float(seconds.mean()),
        "p50_ms": 1000 * float(np.median(seconds)),
        "p90_ms": 1000 * float(np.quantile(seconds, 0.9)),
        f"acc@{equal_step}": acc_at_equal,
        "final_acc": curve[-1]["test_acc"],
        "train_s": result.total_seconds,
        "dropped_grads": result.discarded_late,
        "mean_staleness": float(np.mean(staleness)),
        "model_step_ms": 1000 * modelled_step_seconds(delay, config.workers, spec.backup, config.steps)
        if not is_async else "",
    }
    return {"row": row, "curve": curve, "spec": asdict(spec)}


def run_experiment(config: ExperimentConfig, checkpoint_dir: Path | None = None,
                   resume: bool = False) -> list[dict[str, Any]]:
    """Every run in turn; with a checkpoint folder each finished run is saved (torch.save) and
    ``resume`` skips runs already saved there."""
    from tqdm import tqdm

    outputs = []
    specs = run_specs(config)
    # spawned on first use (not at all when every run is resumed), then reused by every run
    pool = WorkerPool(config.workers + max(config.backups))
    try:
        for spec in tqdm(specs, desc="sync_sgd runs", leave=False):
            outputs.append(_run_or_resume(spec, config, pool, checkpoint_dir, resume))
    finally:
        pool.close()
    return outputs


def _run_or_resume(spec: RunSpec, config: ExperimentConfig, pool: WorkerPool,
                   checkpoint_dir: Path | None, resume: bool) -> dict[str, Any]:
    """One run, or its saved checkpoint when resuming with the same config."""
    path = None
    if checkpoint_dir is not None:
        checkpoint_dir.mkdir(parents=True, exist_ok=True)
        slug = "".join(c if c.isalnum() else "_" for c in spec.name)
        path = checkpoint_dir / f"{slug}.pt"
        if resume and path.exists():
            saved = torch.load(path, weights_only=False)
            if saved.get("config") == asdict(config):
                log.info("sync_sgd: resumed %s from %s", spec.name, path)
                return saved["output"]
    output = run_one(spec, config, pool)
    if path is not None:
        torch.save({"config": asdict(config), "output": output}, path)
    return output


def plot(outputs: list[dict[str, Any]], config: ExperimentConfig, path: Path) -> None:
    """Step time vs b, and test accuracy vs wall time and vs updates (PNG, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = {o["spec"]["name"]: o for o in outputs}
    sync = [o for o in outputs if o["spec"]["mode"] == "sync" and o["spec"]["stragglers"]]
    free = next(o for o in outputs if not o["spec"]["stragglers"])
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    bs = [o["spec"]["backup"] for o in sync]
    axes[0].plot(bs, [o["row"]["step_ms"] for o in sync], "o-", label="mean")
    axes[0].plot(bs, [o["row"]["p90_ms"] for o in sync], "s--", label="90th percentile")
    axes[0].axhline(free["row"]["step_ms"], color="gray", ls=":", label="no stragglers (b=0)")
    axes[0].set(xlabel="backup workers b", ylabel="step time (ms)", xticks=bs,
                title=f"sync step time, N={config.workers}")
    axes[0].legend()
    shown = [f"async ({config.workers + max(config.backups)} workers)", "sync b=0", f"sync b={max(config.backups)}"]
    for name in shown:
        curve = rows[name]["curve"]
        axes[1].plot([c["wall_s"] for c in curve], [c["test_acc"] for c in curve], ".-", label=name)
        axes[2].plot([c["step"] for c in curve], [c["test_acc"] for c in curve], ".-", label=name)
    axes[1].set(xlabel="training wall time (s)", ylabel="test accuracy", title="accuracy vs wall time")
    axes[2].set(xlabel="optimizer updates", ylabel="test accuracy", xscale="log",
                title="accuracy vs updates (async: 1 gradient each)")
    axes[1].legend()
    axes[2].axvline(config.steps, color="gray", ls=":")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
