"""RetryPolicy, RetryBudget and Retry-After parsing: pure values, no sockets, no sleeping."""

from __future__ import annotations

import dataclasses

import pytest

from resumable import (
    ConnectionFailed,
    InvalidArgument,
    RetriesExhausted,
    RetryPolicy,
    ServerBusy,
    Timeouts,
)
from resumable.retry import parse_retry_after


def test_delay_grows_exponentially_and_is_capped() -> None:
    policy = RetryPolicy(backoff=0.5, multiplier=2, backoff_max=3, jitter=0)
    assert [policy.delay(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_jitter_scales_the_wait_down_by_the_random_draw() -> None:
    low = RetryPolicy(backoff=4, jitter=0.5, random=lambda: 0.999999)
    high = RetryPolicy(backoff=4, jitter=0.5, random=lambda: 0.0)
    assert low.delay(1) == pytest.approx(2.0, rel=1e-5)
    assert high.delay(1) == 4.0


def test_retry_after_replaces_the_computed_wait_and_is_capped() -> None:
    policy = RetryPolicy(backoff=1, jitter=0, retry_after_max=60)
    assert policy.delay(1, retry_after=7) == 7
    assert policy.delay(5, retry_after=0) == 0
    assert policy.delay(1, retry_after=3600) == 60


def test_budget_counts_only_attempts_without_progress() -> None:
    policy = RetryPolicy(attempts=3, jitter=0, backoff=1)
    error = ConnectionFailed("reset", url="https://h/f")
    budget = policy.budget()
    budget, wait1 = budget.failed(error)
    budget, wait2 = budget.failed(error)
    assert (budget.failures, wait1, wait2) == (2, 1.0, 2.0)
    # An attempt that moved bytes and then broke uses none of the budget.
    budget, wait = budget.interrupted(error)
    assert (budget.failures, budget.attempts, wait) == (0, 3, 1.0)
    budget, wait = budget.failed(error)
    assert (budget.failures, budget.attempts, wait) == (1, 4, 1.0)


def test_budget_runs_out_with_a_typed_error_chaining_the_cause() -> None:
    policy = RetryPolicy(attempts=2)
    error = ServerBusy(url="https://u:pw@h/f", status=503, retry_after=1)
    budget, _ = policy.budget().failed(error)
    with pytest.raises(RetriesExhausted) as info:
        budget.failed(error)
    assert info.value.__cause__ is error
    assert info.value.attempts == 2
    assert "503" in str(info.value)
    assert "pw" not in str(info.value)


def test_server_retry_after_is_used_for_the_wait() -> None:
    policy = RetryPolicy(attempts=5, backoff=100)
    _, wait = policy.budget().failed(ServerBusy(status=429, retry_after=2.5))
    assert wait == 2.5


def test_policies_are_immutable_values() -> None:
    policy = RetryPolicy()
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.attempts = 3  # type: ignore[misc]
    assert RetryPolicy(attempts=3) == RetryPolicy(attempts=3, sleep=lambda s: None)
    assert RetryPolicy.never().attempts == 1


@pytest.mark.parametrize(
    "kwargs",
    [{"attempts": 0}, {"backoff": -1}, {"multiplier": 0.5}, {"jitter": 1.5}, {"backoff_max": -2}],
)
def test_invalid_policies_are_rejected(kwargs: dict[str, float]) -> None:
    with pytest.raises(InvalidArgument):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("kwargs", [{"connect": 0}, {"stall": -1}])
def test_invalid_timeouts_are_rejected(kwargs: dict[str, float]) -> None:
    with pytest.raises(InvalidArgument):
        Timeouts(**kwargs)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("120", 120.0),
        (" 3 ", 3.0),
        ("Sat, 21 Nov 2026 06:00:30 GMT", 30.0),
        ("Sat, 21 Nov 2026 05:00:00 GMT", 0.0),  # in the past: retry now
        ("soon", None),
        ("-5", None),
        (None, None),
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    now = 1795240800.0  # Sat, 21 Nov 2026 06:00:00 GMT
    assert parse_retry_after(header, now=now) == expected


def test_wait_uses_the_injected_sleep_and_a_wake_event_only_for_real_sleeps() -> None:
    import threading
    import time

    slept: list[float] = []
    RetryPolicy(sleep=slept.append).wait(3.0, threading.Event())
    assert slept == [3.0]  # an injected sleep is always used (tests never really wait)
    wake = threading.Event()
    threading.Timer(0.05, wake.set).start()
    began = time.monotonic()
    RetryPolicy().wait(30.0, wake)  # the real sleep: the event ends it early
    assert time.monotonic() - began < 5
