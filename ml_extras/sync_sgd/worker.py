"""The worker process: fetch the newest parameters, compute one gradient, push it tagged with
the parameter version it was computed at, repeat until the server says stop.

It runs in a process started by torch.multiprocessing (spawn) and may serve several jobs in a
row (spawning costs seconds per process); each job arrives as one pickled :class:`WorkerSpec`.
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
    """One training job for a worker; pickled by the server (so it must be picklable)."""

    job: str  # key prefix of this job in the store
    model: torch.nn.Module
    loss_fn: Callable[[torch.nn.Module, Any], torch.Tensor]
    batch_fn: Callable[[int, int], Any]
    delay_fn: Callable[[int, int], float] | None
    mode: str
    dtype: torch.dtype
    device: str = "cpu"
    seed: int = 0


def pool_main(rank: int, host: str, port: int, threads: int) -> None:
    """Entry point of pool worker ``rank``: run jobs until told to shut down.

    The server is the parent process (it hosts the store), not one of these ranks. On a clean
    shut-down the worker leaves with ``os._exit(0)``: tearing torch down takes a second or more
    per process on a busy machine and there is nothing to flush. Errors propagate normally
    (traceback, non-zero exit code), which the server sees as a dead worker.
    """
    os.environ.setdefault("MASTER_ADDR", host)
    os.environ.setdefault("MASTER_PORT", str(port))
    torch.set_num_threads(threads)
    store = dist.TCPStore(host, port, is_master=False, wait_for_workers=False,
                          timeout=datetime.timedelta(days=1))
    while True:
        raw = _blocking_pop(store, P.job_queue(rank))
        if not raw:
            break
        run_job(rank, pickle.loads(raw), store)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _blocking_pop(store: dist.Store, key: str) -> bytes:
    """Pop from a store queue, waiting for a value. The blocking pop can come back empty-handed
    (QueueEmptyError: we saw it after a long wait under heavy load, with nothing popped by anyone
    else), so retry after a short nap instead of dying."""
    while True:
        try:
            return store.queue_pop(key, block=True)
        except dist.QueueEmptyError:
            time.sleep(0.01)


def run_job(rank: int, spec: WorkerSpec, store: dist.Store) -> None:
    """Fetch parameters, compute, push; returns when the server publishes STOP for this job."""
    torch.manual_seed(spec.seed * 1_000_003 + rank)
    model = spec.model.to(spec.device)
    model.train()
    params = P.trainable_parameters(model)
    grads, version_key, wake = P.grad_queue(spec.job), P.version_key(spec.job), P.wake_key(spec.job, rank)
    store.queue_push(grads, P.encode_message(P.Message(P.KIND_READY, rank)))

    last_version = -1
    iteration = 0
    while True:
        version, state = P.decode_version(store.get(version_key)) if store.check([version_key]) else (-1, P.PAUSE)
        if state == P.STOP:
            return
        nothing_new = spec.mode == "sync" and version <= last_version
        if state == P.PAUSE or nothing_new or version < 0:
            _blocking_pop(store, wake)  # blocks until the next publication
            continue
        version, state, flat = P.decode_params(store.get(P.params_key(spec.job)), spec.dtype)
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
        store.queue_push(grads, P.encode_message(message))
        iteration += 1
