"""Worker processes that outlive one training job.

Spawning a worker costs an interpreter plus ``import torch`` (seconds on a busy 2-core box), so
an experiment with several configurations, or a PPO loop that calls the optimizer every
iteration, keeps one pool and submits a job per run. The pool hosts the c10d TCPStore (on
loopback, a port picked by the OS) that all jobs talk through.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from collections.abc import Iterator
from typing import Any

import torch.distributed as dist
import torch.multiprocessing as mp

from ml_extras.sync_sgd import protocol as P
from ml_extras.sync_sgd.worker import pool_main


@contextlib.contextmanager
def _child_environment(**values: str) -> Iterator[None]:
    """Environment for spawned children only (restored in the parent right after start)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


class WorkerPool:
    """``size`` spawned workers (ranks 0..size-1) plus the store; ``with WorkerPool(6) as pool``."""

    def __init__(self, size: int, *, threads: int = 1, host: str = "127.0.0.1") -> None:
        if size < 1:
            raise ValueError(f"WorkerPool: size must be >= 1, got {size}")
        self.size = size
        self.threads = threads
        self.host = host
        self.store: dist.TCPStore | None = None
        self.processes: dict[int, Any] = {}

    def __enter__(self) -> WorkerPool:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Host the store and spawn every worker (they connect in the background)."""
        if self.store is None:
            self.store = dist.TCPStore(self.host, 0, is_master=True, wait_for_workers=False,
                                       timeout=datetime.timedelta(seconds=60))
        self.ensure(self.size)

    def ensure(self, size: int) -> None:
        """Make ranks 0..size-1 live processes, (re)spawning missing or dead ones."""
        if self.store is None:
            raise RuntimeError("WorkerPool: start() it first")
        self.size = max(self.size, size)
        context = mp.get_context("spawn")
        with _child_environment(MASTER_ADDR=self.host, MASTER_PORT=str(self.store.port),
                                TORCH_CPP_LOG_LEVEL="ERROR", OMP_NUM_THREADS=str(self.threads)):
            for rank in range(size):
                process = self.processes.get(rank)
                if process is not None and process.is_alive():
                    continue
                if process is not None:
                    process.join(timeout=0)
                    with contextlib.suppress(Exception):  # forget jobs queued for the dead one
                        while self.store.queue_len(P.job_queue(rank)):
                            self.store.queue_pop(P.job_queue(rank), block=False)
                process = context.Process(target=pool_main, args=(rank, self.host, self.store.port, self.threads),
                                          name=f"sync_sgd-worker-{rank}", daemon=True)
                process.start()
                self.processes[rank] = process

    def submit(self, rank: int, job_bytes: bytes) -> None:
        """Queue a pickled job for one worker."""
        if self.store is None:
            raise RuntimeError("WorkerPool: start() it first")
        self.store.queue_push(P.job_queue(rank), job_bytes)

    def close(self) -> None:
        """Ask every worker to exit, then kill whatever has not within a few seconds."""
        if self.store is not None:
            for rank in self.processes:
                with contextlib.suppress(Exception):
                    self.store.queue_push(P.job_queue(rank), b"")
        for process in self.processes.values():
            process.join(timeout=3.0)
        for process in self.processes.values():
            if process.is_alive():
                process.kill()
                process.join(timeout=3.0)
        self.processes.clear()
        self.store = None
