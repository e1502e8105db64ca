"""Tests for ml_extras.sync_sgd: the protocol pieces in-process, then two small worker pools
(3 and 2 processes) that check exact-N aggregation, no stale gradient, equivalence with
single-process SGD, and that killed or stalled workers neither hang nor corrupt training."""

from __future__ import annotations

import copy
import logging
import multiprocessing
import os
from collections.abc import Callable

import pytest
import torch

from ml_extras.sync_sgd import (
    ArrayBatches,
    DataParallelSGD,
    Faults,
    HeavyTailedDelay,
    StepRecord,
    WorkerFailure,
    WorkerPool,
    mse_loss,
)
from ml_extras.sync_sgd import protocol as P


def _regression(dtype: torch.dtype = torch.float64) -> tuple[torch.nn.Module, ArrayBatches]:
    torch.manual_seed(0)
    x = torch.randn(40, 3, dtype=dtype)
    y = x @ torch.tensor([[1.5], [-2.0], [0.5]], dtype=dtype) + 0.3
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1)).to(dtype)
    return model, ArrayBatches(x, y, batch_size=6, seed=3)


def _assert_no_children(trainer: DataParallelSGD, pids: list[int]) -> None:
    assert not trainer._processes
    assert multiprocessing.active_children() == []
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def _replay(model: torch.nn.Module, make_optimizer: Callable[[torch.nn.Module], torch.optim.Optimizer],
            batches: ArrayBatches, records: list[StepRecord]) -> torch.nn.Module:
    """Recompute every recorded step in-process at the *current* parameters: equal results mean
    each applied gradient was computed at the step it was applied to (no stale gradient)."""
    replica = copy.deepcopy(model)
    optimizer = make_optimizer(replica)
    for record in records:
        grads = []
        for rank, iteration in record.applied:
            replica.zero_grad()
            mse_loss(replica, batches(rank, iteration)).backward()
            grads.append([p.grad.clone() for p in replica.parameters()])
        for i, p in enumerate(replica.parameters()):
            p.grad = torch.stack([g[i] for g in grads]).mean(0)
        optimizer.step()
    return replica


# ----- in-process pieces ---------------------------------------------------------------------
def test_message_and_params_round_trip() -> None:
    grad = torch.randn(17, dtype=torch.float64)
    raw = P.encode_message(P.Message(P.KIND_GRAD, rank=3, iteration=9, step=5, loss=1.25, seconds=0.5, grad=grad))
    back = P.decode_message(raw, torch.float64)
    assert (back.kind, back.rank, back.iteration, back.step, back.loss) == (P.KIND_GRAD, 3, 9, 5, 1.25)
    assert torch.equal(back.grad, grad)
    version, state, flat = P.decode_params(P.encode_params(7, P.PAUSE, grad.float()), torch.float32)
    assert (version, state) == (7, P.PAUSE) and torch.equal(flat, grad.float())
    target = [torch.zeros(2, 3), torch.zeros(4)]
    P.load_flat_(target, torch.arange(10.0))
    assert target[1].tolist() == [6.0, 7.0, 8.0, 9.0]
    with pytest.raises(ValueError, match="needs 10"):
        P.load_flat_(target, torch.arange(9.0))


def test_heavy_tailed_delay_is_seeded_and_heavy_tailed() -> None:
    delay = HeavyTailedDelay(base=0.01, scale=0.01, alpha=1.5, cap=10.0, seed=1)
    draws = torch.tensor([delay(r, i) for r in range(4) for i in range(500)])
    assert delay(2, 7) == delay(2, 7) and delay(2, 7) != delay(3, 7)
    assert draws.min() >= 0.01
    assert draws.max() > draws.median() * 10  # a tail a Gaussian would not have
    with pytest.raises(ValueError):
        HeavyTailedDelay(alpha=0.0)


def test_bad_input_is_rejected() -> None:
    model, batches = _regression()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(TypeError, match="picklable"):
        DataParallelSGD(model, opt, lambda m, b: m(b[0]).sum(), batches, workers=2)
    with pytest.raises(ValueError, match="workers"):
        DataParallelSGD(model, opt, mse_loss, batches, workers=0)
    with pytest.raises(ValueError, match="mode"):
        DataParallelSGD(model, opt, mse_loss, batches, workers=1, mode="hogwild")
    with pytest.raises(ValueError, match="not the model's"):
        DataParallelSGD(model, torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.1),
                        mse_loss, batches, workers=1)
    with pytest.raises(ValueError, match="targets"):
        ArrayBatches(torch.zeros(5, 2), torch.zeros(4), batch_size=2)


# ----- real worker processes -----------------------------------------------------------------
def test_backup_worker_applies_exactly_n_fresh_gradients_survives_a_kill_and_fails_on_a_stall(caplog) -> None:
    """N=2, b=1: rank 2 always straggles, rank 0 is SIGKILLed (training goes on with 1 and 2),
    then rank 1 stalls past the timeout, leaving 1 < N workers: a clear failure, no hang."""
    model, batches = _regression()
    initial = copy.deepcopy(model)

    def make_optimizer(m: torch.nn.Module) -> torch.optim.Optimizer:
        return torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9)

    faults = Faults(slow={2: 0.05}, kill_at={0: 4}, stall_at={1: 12}, stall_seconds=60.0)
    trainer = DataParallelSGD(model, make_optimizer(model), mse_loss, batches, workers=2, backup=1,
                              delay_fn=faults, worker_timeout=1.0, startup_timeout=60.0)
    with caplog.at_level(logging.WARNING, logger="ml_extras.sync_sgd"), trainer:
        pids = [p.pid for p in trainer._processes.values()]
        result = trainer.train(10)
        assert set(result.dropped) == {0} and "exited with code -9" in result.dropped[0]
        assert all(sorted(r for r, _ in record.applied) == [1, 2] for record in result.steps[-3:])
        with pytest.raises(WorkerFailure, match="1 workers left, need 2"):
            trainer.train(20)
    _assert_no_children(trainer, pids)

    assert 10 < len(result.steps) < 30
    for record in result.steps:
        assert len(record.applied) == 2 and len({r for r, _ in record.applied}) == 2
        assert record.tags == [record.step] * 2  # only gradients computed at this very step
    assert result.discarded_late > 0  # the straggler's gradients came late and were dropped
    assert set(result.dropped) == {0, 1} and "stalled" in result.dropped[1]
    assert "dropped worker 0" in caplog.text and "dropped worker 1" in caplog.text

    # replaying the recorded (rank, iteration) batches at the current parameters gives the same
    # model: every applied gradient was fresh, and the failed step applied nothing
    expected = _replay(initial, make_optimizer, batches, result.steps)
    for got, want in zip(model.parameters(), expected.parameters()):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


def test_plain_sync_matches_single_process_sgd_then_async_then_a_job_fails_cleanly_on_a_kill() -> None:
    """One pool of 2 processes, three jobs. Job 1 (b=0, no delays) must equal single-process SGD
    on the concatenated batch; job 2 is async; job 3 reuses the same processes, rank 1 is killed
    at its first gradient, leaving 1 < N workers: WorkerFailure, and the parameters are untouched."""
    model, batches = _regression()
    untrained = copy.deepcopy(model)
    reference = copy.deepcopy(model)
    ref_opt = torch.optim.SGD(reference.parameters(), lr=0.1, momentum=0.5)
    steps = 5
    with WorkerPool(2) as pool:
        pids = [p.pid for p in pool.processes.values()]
        trainer = DataParallelSGD(model, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.5), mse_loss,
                                  batches, workers=2, backup=0, pool=pool, startup_timeout=60.0)
        result = trainer.train(steps)
        assert [sorted(r.applied) for r in result.steps] == [[(0, s), (1, s)] for s in range(steps)]
        for step in range(steps):
            xs, ys = zip(*(batches(rank, step) for rank in range(2)))
            ref_opt.zero_grad()
            mse_loss(reference, (torch.cat(xs), torch.cat(ys))).backward()
            ref_opt.step()
        for got, want in zip(model.parameters(), reference.parameters()):
            torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
        assert [p.pid for p in pool.processes.values()] == pids and all(p.is_alive() for p in pool.processes.values())

        # job 2, async on a fresh copy of the untrained model: one gradient per update, computed
        # at the current or an older parameter version; it must still learn
        async_model = copy.deepcopy(untrained)
        full_batch = (batches.inputs, batches.targets)
        with torch.no_grad():
            loss_before = float(mse_loss(async_model, full_batch))
        async_trainer = DataParallelSGD(async_model, torch.optim.SGD(async_model.parameters(), lr=0.05), mse_loss,
                                        batches, workers=2, mode="async", pool=pool)
        async_result = async_trainer.train(30)
        assert all(len(r.applied) == 1 and r.tags[0] <= r.step for r in async_result.steps)
        with torch.no_grad():
            assert float(mse_loss(async_model, full_batch)) < 0.7 * loss_before

        before = [p.detach().clone() for p in model.parameters()]
        second = DataParallelSGD(model, torch.optim.SGD(model.parameters(), lr=0.1), mse_loss, batches,
                                 workers=2, delay_fn=Faults(kill_at={1: 0}), pool=pool, worker_timeout=5.0)
        with pytest.raises(WorkerFailure, match="need 2"):
            second.train(3)
        assert second.result.steps == [] and "exited with code -9" in second.result.dropped[1]
        for got, want in zip(model.parameters(), before):  # the failed step applied nothing
            assert torch.equal(got, want)
    assert not pool.processes
    _assert_no_children(second, pids)


# ---------------------------------------------------------------- claims

def test_modelled_step_time_waits_for_the_nth_fastest_gradient() -> None:
    from ml_extras.sync_sgd.experiment import modelled_step_seconds
    from ml_extras.sync_sgd.tasks import HeavyTailedDelay

    flat = HeavyTailedDelay(base=0.01, scale=0.0)
    assert modelled_step_seconds(flat, 4, 2, 5) == pytest.approx(0.01)
    heavy = HeavyTailedDelay(base=0.01, scale=0.05, alpha=1.5, cap=1.0, seed=3)
    times = [modelled_step_seconds(heavy, 4, b, 200) for b in (0, 1, 2)]
    assert times[0] > times[1] > times[2] > 0.01
    with pytest.raises(ValueError):
        modelled_step_seconds(heavy, 0, 1, 10)


def _toy_rows(async_acc=0.90, b2_acc=0.95, b2_ms=20.0, b2_model=18.0):
    return [{"run": "sync b=0, no stragglers", "N": 4, "b": 0, "step_ms": 10.0, "p90_ms": 11.0, "model_step_ms": 10.0,
             "acc@60": 0.95},
            {"run": "sync b=0", "N": 4, "b": 0, "step_ms": 40.0, "p90_ms": 80.0, "model_step_ms": 30.0, "acc@60": 0.94},
            {"run": "sync b=2", "N": 4, "b": 2, "step_ms": b2_ms, "p90_ms": 30.0, "model_step_ms": b2_model,
             "acc@60": b2_acc},
            {"run": "async (6 workers)", "N": 1, "b": 0, "step_ms": 3.0, "p90_ms": 5.0, "model_step_ms": "",
             "acc@60": async_acc}]


def test_sync_sgd_claims_follow_the_figures() -> None:
    from ml_extras.sync_sgd.claims import sync_sgd_claims

    step, acc = sync_sgd_claims(_toy_rows(), 60)
    assert step["holds"] and acc["holds"]
    assert step["figures"]["model_step_ms"] == {"b=0": 30.0, "b=2": 18.0}
    assert not sync_sgd_claims(_toy_rows(b2_ms=45.0), 60)[0]["holds"]
    assert not sync_sgd_claims(_toy_rows(b2_model=31.0), 60)[0]["holds"]
    assert not sync_sgd_claims(_toy_rows(async_acc=0.96), 60)[1]["holds"]
    with pytest.raises(ValueError):
        sync_sgd_claims(_toy_rows()[2:], 60)
