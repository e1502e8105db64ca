"""Benchmark helpers that must not crash where they are meant to report."""

from dexhand.bench.simulation import _failure_reason


def _raise(exc: BaseException) -> BaseException:
    try:
        raise exc
    except BaseException as caught:  # noqa: BLE001 - we want the traceback attached
        return caught


def test_failure_reason_of_a_bare_assert_names_where_it_fired() -> None:
    # A message-less AssertionError, as gymnasium-robotics' joint-type check raises on new MuJoCo
    # (pytest rewrites plain asserts in test files, so raise it explicitly).
    reason = _failure_reason(_raise(AssertionError()))
    assert reason.startswith("AssertionError at ")
    assert "test_bench.py" in reason and "raise exc" in reason


def test_failure_reason_keeps_only_the_first_line_of_a_message() -> None:
    reason = _failure_reason(_raise(ValueError("joint type mismatch\nsecond line")))
    assert reason == "ValueError: joint type mismatch"
