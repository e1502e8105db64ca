"""Synchronous SGD with backup workers (Chen, Pan, Monga, Bengio, Jozefowicz 2016).

N + b worker processes compute gradients; each step averages the first N that arrive and drops
the b late ones, so a step costs the N-th fastest worker instead of the slowest. ``backup=0`` is
plain synchronous SGD; ``mode="async"`` applies every gradient as it arrives (stale ones too).

Public API::

    from ml_extras.sync_sgd import DataParallelSGD, ArrayBatches, cross_entropy_loss

    model = MyNet()                                   # any torch.nn.Module (picklable)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)   # any torch.optim optimizer
    batches = ArrayBatches(x_train, y_train, batch_size=32)   # batch_fn(rank, iteration)
    trainer = DataParallelSGD(model, optimizer, cross_entropy_loss, batches,
                              workers=4, backup=2, mode="sync", worker_timeout=30.0)
    result = trainer.train(steps=200, on_step=lambda step, model: ...)
    result.steps[-1].applied        # [(rank, iteration), ...]: exactly N per sync step

- ``loss_fn(model, batch) -> scalar tensor`` and ``batch_fn(rank, iteration) -> batch`` run in
  the workers, so they must be picklable (module-level functions or dataclasses, no lambdas).
  ``iteration`` counts that worker's gradients; with b = 0 it equals the step number.
- The model and optimizer live in the calling process, which is the parameter server (rank 0
  of the protocol). Only trainable parameters are synchronised; buffers (e.g. BatchNorm
  running statistics) are not.
- ``train`` spawns the workers (torch.multiprocessing, spawn) and reaps them on return; use
  ``with DataParallelSGD(...) as trainer:`` to keep them alive across several ``train`` calls,
  or ``with WorkerPool(size) as pool:`` and ``DataParallelSGD(..., pool=pool)`` to reuse the
  processes across trainers (spawning costs seconds per process; a PPO loop wants this).
- ``delay_fn(rank, iteration) -> seconds`` adds a sleep after each gradient (simulated
  stragglers, :class:`HeavyTailedDelay`; or injected :class:`Faults`).
- A worker whose process dies, or that owes a gradient for more than ``worker_timeout`` s, is
  dropped with a WARNING log line (and killed); if fewer than N remain, :class:`WorkerFailure`.

Transport: one c10d ``TCPStore`` hosted by the server on loopback (``127.0.0.1``, a free port
chosen by the OS). Its FIFO queue gives the exact arrival order that "first N" needs; a gloo or
nccl collective cannot (it needs every rank, and a dead peer breaks it). Gradients carry the
step number of the parameters they were computed from, and the server applies only those
tagged with the current step, so a late gradient from step t is never applied at step t+1.
Workers may compute on a GPU (``worker_device="cuda"``); tensors cross as bytes.

Run ``python -m ml_extras.sync_sgd --quick`` for the straggler experiment on sklearn digits.
"""

from __future__ import annotations

from ml_extras.sync_sgd.pool import WorkerPool
from ml_extras.sync_sgd.server import DataParallelSGD, StepRecord, TrainResult, WorkerFailure
from ml_extras.sync_sgd.tasks import ArrayBatches, Faults, HeavyTailedDelay, cross_entropy_loss, mse_loss

__all__ = [
    "ArrayBatches",
    "DataParallelSGD",
    "Faults",
    "HeavyTailedDelay",
    "StepRecord",
    "TrainResult",
    "WorkerFailure",
    "WorkerPool",
    "cross_entropy_loss",
    "mse_loss",
]
