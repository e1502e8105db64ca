"""The worker process: fetch the newest parameters, compute one gradient, push it tagged with
the parameter version it was computed at, repeat until the server says stop.

It runs in a process started by torch.multiprocessing (spawn), so everything it needs arrives
as one pickled :class:`WorkerSpec`.
"""

from __future__ import annotations

import datetime
import os
import pickle
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from ml_extras.sync_sgd import protocol as P


@dataclass
class WorkerSpec:
    """Everything a worker needs; pickled once by the server (so it must be picklable)."""

    model: torch.nn.Module
    loss_fn: Callable[[torch.nn.Module, Any], torch.Tensor]
    batch_fn: Callable[[int, int], Any]
    delay_fn: Callable[[int, int], float] | None
    mode: str
    host: str
    port: int
    dtype: torch.dtype
    threads: int = 1
    device: str = "cpu"
    seed: int = 0
    store_timeout_s: float = 24 * 3600.0


def _connect(spec: WorkerSpec) -> dist.TCPStore:
    return dist.TCPStore(spec.host, spec.port, is_master=False, wait_for_workers=False,
                         timeout=datetime.timedelta(seconds=spec.store_timeout_s))


def worker_main(rank: int, spec_bytes: bytes) -> None:
    """Entry point of worker ``rank`` (the server is the parent process, not a rank here).

    On a clean stop it leaves with ``os._exit(0)``: tearing torch down takes a second or more
    per process on a busy machine and there is nothing to flush. Errors propagate normally
    (traceback, non-zero exit code), which the server sees as a dead worker.
    """
    _run_worker(rank, pickle.loads(spec_bytes))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _run_worker(rank: int, spec: WorkerSpec) -> None:
    """Fetch parameters, compute, push; returns when the server publishes STOP."""
    os.environ.setdefault("MASTER_ADDR", spec.host)
    os.environ.setdefault("MASTER_PORT", str(spec.port))
    torch.set_num_threads(spec.threads)
    torch.manual_seed(spec.seed * 1_000_003 + rank)
    store = _connect(spec)
    model = spec.model.to(spec.device)
    model.train()
    params = P.trainable_parameters(model)
    store.queue_push(P.GRAD_QUEUE, P.encode_message(P.Message(P.KIND_READY, rank)))

    last_version = -1
    iteration = 0
    while True:
        version, state = P.decode_version(store.get(P.VERSION)) if store.check([P.VERSION]) else (-1, P.PAUSE)
        if state == P.STOP:
            return
        nothing_new = spec.mode == "sync" and version <= last_version
        if state == P.PAUSE or nothing_new or version < 0:
            store.queue_pop(P.wake_key(rank), block=True)  # blocks until the next publication
            continue
        version, state, flat = P.decode_params(store.get(P.PARAMS), spec.dtype)
        if state != P.RUN:
            continue
        P.load_flat_(params, flat.to(spec.device))
        last_version = version

        batch = spec.batch_fn(rank, iteration)
        start = time.perf_counter()
        model.zero_grad(set_to_none=True)
        loss = spec.loss_fn(model, batch)
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            raise TypeError("sync_sgd: loss_fn must return a scalar tensor")
        loss.backward()
        grad = P.flat_grads(params)
        seconds = time.perf_counter() - start
        if spec.delay_fn is not None:  # simulated straggler (or an injected fault)
            delay = float(spec.delay_fn(rank, iteration))
            if delay > 0:
                time.sleep(delay)
                seconds += delay
        message = P.Message(P.KIND_GRAD, rank, iteration, version, float(loss.detach()), seconds, grad)
        store.queue_push(P.GRAD_QUEUE, P.encode_message(message))
        iteration += 1
