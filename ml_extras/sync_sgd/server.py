"""The parameter server (it runs in the calling process) and the worker-process lifecycle.

Sync mode (Chen et al. 2016): publish parameters version t, wait for the first N gradients
tagged t, average them, step the optimizer, publish t+1. Gradients tagged t that arrive after
the N-th, and any gradient tagged with an older step, are discarded, so a late gradient is
never applied. With b = 0 this is plain synchronous SGD. Async mode applies every gradient as
soon as it arrives, whatever parameter version it was computed at (Hogwild-style staleness).

A worker is dropped (with a WARNING log line) when its process exits, or when it has owed a
gradient for longer than ``worker_timeout`` seconds; a dropped-but-alive worker is killed so it
cannot come back. When fewer workers remain than a step needs, :class:`WorkerFailure` is raised.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import pickle
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist

from ml_extras.sync_sgd import protocol as P
from ml_extras.sync_sgd.pool import WorkerPool
from ml_extras.sync_sgd.worker import WorkerSpec

log = logging.getLogger("ml_extras.sync_sgd")

MODES = ("sync", "async")
_job_counter = [0]  # job names must be unique within a pool's store


class WorkerFailure(RuntimeError):
    """Too few workers are left to finish a step."""


@dataclass
class StepRecord:
    """What one optimizer step used: which (rank, iteration) gradients, of which tag, when."""

    step: int
    applied: list[tuple[int, int]]
    tags: list[int]
    seconds: float  # wall time of this step (publication to update), callbacks excluded
    wall_time: float  # training clock when the step finished (callbacks excluded)
    mean_loss: float


@dataclass
class TrainResult:
    """History of one or more :meth:`DataParallelSGD.train` calls."""

    steps: list[StepRecord] = field(default_factory=list)
    discarded_late: int = 0  # gradients whose step tag was not the current step (or surplus)
    dropped: dict[int, str] = field(default_factory=dict)
    total_seconds: float = 0.0

    @property
    def step_seconds(self) -> list[float]:
        return [s.seconds for s in self.steps]


class DataParallelSGD:
    """Data-parallel SGD with N aggregated + b backup workers; see the package docstring."""

    def __init__(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        loss_fn: Callable[[torch.nn.Module, Any], torch.Tensor],
        batch_fn: Callable[[int, int], Any],
        *,
        workers: int,
        backup: int = 0,
        mode: str = "sync",
        delay_fn: Callable[[int, int], float] | None = None,
        worker_timeout: float = 30.0,
        startup_timeout: float = 120.0,
        worker_threads: int = 1,
        worker_device: str = "cpu",
        seed: int = 0,
        host: str = "127.0.0.1",
        pool: WorkerPool | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError(f"sync_sgd: workers (N) must be >= 1, got {workers}")
        if backup < 0:
            raise ValueError(f"sync_sgd: backup (b) must be >= 0, got {backup}")
        if mode not in MODES:
            raise ValueError(f"sync_sgd: mode must be one of {MODES}, got {mode!r}")
        if worker_timeout <= 0 or startup_timeout <= 0:
            raise ValueError("sync_sgd: timeouts must be positive")
        self.model = model
        self.optimizer = optimizer
        self.params = P.trainable_parameters(model)
        opt_ids = {id(p) for group in optimizer.param_groups for p in group["params"]}
        if not opt_ids <= {id(p) for p in model.parameters()}:
            raise ValueError("sync_sgd: the optimizer holds parameters that are not the model's")
        self.dtype = self.params[0].dtype
        self.num_aggregate = workers
        self.num_backup = backup
        self.mode = mode
        self.worker_timeout = worker_timeout
        self.startup_timeout = startup_timeout
        self.host = host
        self.worker_threads = worker_threads
        self.pool = pool
        self._own_pool: WorkerPool | None = None
        self._job = ""
        self.result = TrainResult()
        self.step_count = 0
        self._spec_args = dict(loss_fn=loss_fn, batch_fn=batch_fn, delay_fn=delay_fn, mode=mode,
                               device=worker_device, seed=seed)
        for name in ("loss_fn", "batch_fn", "delay_fn"):
            try:
                pickle.dumps(self._spec_args[name])
            except Exception as exc:  # lambdas, closures, local classes
                raise TypeError(f"sync_sgd: {name} must be picklable (a module-level function or a "
                                f"picklable object), got {self._spec_args[name]!r}: {exc}") from exc
        self._processes: dict[int, Any] = {}
        self._active: set[int] = set()
        self._store: dist.TCPStore | None = None
        self._rx_store: dist.TCPStore | None = None
        self._inbox: queue.Queue[P.Message] = queue.Queue()
        self._rx_thread: threading.Thread | None = None
        # when each worker was handed parameters it still owes a gradient for (stall clock)
        self._owed_since: dict[int, float] = {}
        self._paused_seconds = 0.0
        self._clock_start = 0.0

    # ----- lifecycle -------------------------------------------------------------------------
    @property
    def num_workers(self) -> int:
        return self.num_aggregate + self.num_backup

    @property
    def required(self) -> int:
        """Live workers needed per step: N in sync mode, 1 in async mode."""
        return self.num_aggregate if self.mode == "sync" else 1

    def __enter__(self) -> DataParallelSGD:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Spawn N+b workers (or take them from ``pool``), hand them the job, wait until ready."""
        if self._store is not None:
            return
        if self.pool is None:
            self._own_pool = WorkerPool(self.num_workers, threads=self.worker_threads, host=self.host)
        pool = self.pool or self._own_pool
        assert pool is not None
        try:
            pool.start()
            pool.ensure(self.num_workers)
            assert pool.store is not None
            self._store = pool.store
            _job_counter[0] += 1
            self._job = f"sync_sgd/job-{os.getpid()}-{_job_counter[0]}"
            self._rx_store = self._store.clone()
            self._rx_store.set_timeout(datetime.timedelta(days=1))
            self._rx_thread = threading.Thread(target=self._receive_loop, args=(self._job,),
                                               name="sync_sgd-rx", daemon=True)
            self._rx_thread.start()
            self._publish(self.step_count, P.PAUSE)
            model_copy = pickle.loads(pickle.dumps(self.model))  # workers get a CPU-side copy
            spec = WorkerSpec(job=self._job, model=model_copy.to("cpu"), dtype=self.dtype, **self._spec_args)
            spec_bytes = pickle.dumps(spec)
            for rank in range(self.num_workers):
                self._processes[rank] = pool.processes[rank]
                pool.submit(rank, spec_bytes)
            self._wait_ready()
        except BaseException:
            self.close()
            raise

    def _wait_ready(self) -> None:
        pending = set(self._processes)
        deadline = time.monotonic() + self.startup_timeout
        while pending:
            try:
                message = self._inbox.get(timeout=0.05)
                if message.kind == P.KIND_READY:
                    pending.discard(message.rank)
                    self._active.add(message.rank)
            except queue.Empty:
                pass
            for rank in list(pending):
                code = self._processes[rank].exitcode
                if code is not None:
                    pending.discard(rank)
                    self._drop(rank, f"process exited with code {code} during start-up")
            if time.monotonic() > deadline:
                for rank in list(pending):
                    pending.discard(rank)
                    self._drop(rank, f"did not connect within {self.startup_timeout:g} s")
        if len(self._active) < self.required:
            raise WorkerFailure(f"sync_sgd: only {len(self._active)} of {self.num_workers} workers "
                                f"started, need {self.required}; dropped: {self.result.dropped}")

    def close(self) -> None:
        """Tell this job's workers to stop; a pool made here is shut down (processes reaped,
        killed if needed), a pool passed in keeps its workers for the next job."""
        if self._store is not None:
            with contextlib.suppress(Exception):
                self._publish(self.step_count, P.STOP, wake=set(self._processes))
            if self._rx_thread is not None:
                with contextlib.suppress(Exception):
                    sentinel = P.encode_message(P.Message(P.KIND_SENTINEL, -1))
                    self._store.queue_push(P.grad_queue(self._job), sentinel)
                self._rx_thread.join(timeout=3.0)
        if self._own_pool is not None:
            self._own_pool.close()
            self._own_pool = None
        self._processes.clear()
        self._active.clear()
        self._rx_thread = None
        self._rx_store = None
        self._store = None
        self._inbox = queue.Queue()

    def _receive_loop(self, job: str) -> None:
        """Pop messages in arrival order (blocking, so no polling) and hand them to the server."""
        assert self._rx_store is not None
        store, inbox = self._rx_store, self._inbox
        while True:
            try:
                raw = store.queue_pop(P.grad_queue(job), block=True)
            except Exception:  # spurious empty pop (see worker._blocking_pop), timeout, shut down
                if self._store is None:
                    return
                time.sleep(0.001)
                continue
            message = P.decode_message(raw, self.dtype)
            if message.kind == P.KIND_SENTINEL:
                return
            inbox.put(message)

    # ----- helpers ---------------------------------------------------------------------------
    def _clock(self) -> float:
        return time.perf_counter() - self._clock_start - self._paused_seconds

    def _publish(self, version: int, state: int, wake: set[int] | None = None) -> None:
        assert self._store is not None
        self._store.set(P.params_key(self._job), P.encode_params(version, state, P.flatten(self.params)))
        self._store.set(P.version_key(self._job), P.encode_version(version, state))
        for rank in sorted(self._active if wake is None else wake):
            self._store.queue_push(P.wake_key(self._job, rank), b"1")

    def _drop(self, rank: int, reason: str) -> None:
        self._active.discard(rank)
        self.result.dropped[rank] = reason
        process = self._processes.get(rank)
        if process is not None and process.is_alive():
            process.kill()  # a stalled worker must not come back with stale state
        log.warning("sync_sgd: dropped worker %d at step %d: %s (%d workers left, %d needed per step)",
                    rank, self.step_count, reason, len(self._active), self.required)

    def _owe(self, ranks: set[int], *, restart: bool) -> None:
        """Start the stall clock of workers just handed parameters (restart: even if running)."""
        now = time.monotonic()
        for rank in ranks:
            if restart or rank not in self._owed_since:
                self._owed_since[rank] = now

    def _check_workers(self) -> None:
        """Drop dead workers and those that owe a gradient for longer than the timeout."""
        now = time.monotonic()
        for rank in sorted(self._active):
            code = self._processes[rank].exitcode
            if code is not None:
                self._drop(rank, f"process exited with code {code}")
            elif now - self._owed_since.get(rank, now) > self.worker_timeout:
                self._drop(rank, f"no gradient for {self.worker_timeout:g} s (stalled)")
        if len(self._active) < self.required:
            raise WorkerFailure(
                f"sync_sgd: step {self.step_count} cannot complete: {len(self._active)} workers left, "
                f"need {self.required} (dropped: {self.result.dropped})")

    def _next_gradient(self) -> P.Message:
        """The next gradient from an active worker, checking liveness while waiting."""
        while True:
            try:
                message = self._inbox.get(timeout=0.02)
            except queue.Empty:
                self._check_workers()
                continue
            if message.kind != P.KIND_GRAD or message.rank not in self._active:
                continue
            return message

    def _apply(self, grads: list[torch.Tensor]) -> None:
        mean = torch.stack(grads).mean(dim=0) if len(grads) > 1 else grads[0]
        offset = 0
        for p in self.params:
            n = p.numel()
            p.grad = mean[offset:offset + n].view_as(p).to(device=p.device, dtype=p.dtype).clone()
            offset += n
        self.optimizer.step()

    def _drain(self) -> None:
        """Discard gradients left over from a previous train() call."""
        while True:
            try:
                message = self._inbox.get_nowait()
            except queue.Empty:
                return
            if message.kind == P.KIND_GRAD:
                self.result.discarded_late += 1

    # ----- training --------------------------------------------------------------------------
    def train(self, steps: int, on_step: Callable[[int, torch.nn.Module], None] | None = None) -> TrainResult:
        """Run ``steps`` optimizer steps; ``on_step(step, model)`` runs after each (off the clock).

        Starts and closes the workers itself unless used inside ``with DataParallelSGD(...)``.
        """
        if steps < 0:
            raise ValueError(f"sync_sgd: steps must be >= 0, got {steps}")
        started_here = self._store is None
        self.start()
        try:
            self._drain()
            self._clock_start = time.perf_counter()
            self._paused_seconds = 0.0
            run = self._train_sync if self.mode == "sync" else self._train_async
            try:
                run(steps, on_step)
            finally:
                self.result.total_seconds += self._clock()
                self._owed_since.clear()
                if not started_here:  # park the workers until the next train() call
                    self._publish(self.step_count, P.PAUSE)
        finally:
            if started_here:
                self.close()
        return self.result

    def _after_step(self, record: StepRecord, on_step: Callable[[int, torch.nn.Module], None] | None) -> None:
        self.result.steps.append(record)
        if on_step is not None:
            paused = time.perf_counter()
            on_step(record.step, self.model)
            self._paused_seconds += time.perf_counter() - paused

    def _train_sync(self, steps: int, on_step: Callable[[int, torch.nn.Module], None] | None) -> None:
        for _ in range(steps):
            step = self.step_count
            begin = self._clock()
            self._publish(step, P.RUN)
            self._owe(set(self._active), restart=False)
            self._check_workers()
            fresh: list[P.Message] = []
            while len(fresh) < self.num_aggregate:
                message = self._next_gradient()
                if message.step != step or any(m.rank == message.rank for m in fresh):
                    self.result.discarded_late += 1  # computed on older parameters: never applied
                    self._owe({message.rank}, restart=True)  # it now fetches the current step
                    continue
                self._owed_since.pop(message.rank, None)
                fresh.append(message)
            self._apply([m.grad for m in fresh])
            self.step_count += 1
            now = self._clock()
            record = StepRecord(step, [(m.rank, m.iteration) for m in fresh], [m.step for m in fresh],
                                now - begin, now, sum(m.loss for m in fresh) / len(fresh))
            self._after_step(record, on_step)

    def _train_async(self, steps: int, on_step: Callable[[int, torch.nn.Module], None] | None) -> None:
        self._publish(self.step_count, P.RUN)
        self._owe(set(self._active), restart=True)
        for _ in range(steps):
            begin = self._clock()
            message = self._next_gradient()
            self._owe({message.rank}, restart=True)
            self._apply([message.grad])
            step = self.step_count
            self.step_count += 1
            self._publish(self.step_count, P.RUN, wake=set())
            now = self._clock()
            record = StepRecord(step, [(message.rank, message.iteration)], [message.step],
                                now - begin, now, message.loss)
            self._after_step(record, on_step)
