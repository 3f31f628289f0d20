"""The one retry-and-recover loop (resumable.engine.recover): budgets, waits, cancels, refreshed
URLs and mirrors, and listings started over. No sockets, no sleeping: an injected ``sleep``
records the waits, MemorySource/FaultySource count the calls."""

from __future__ import annotations

import threading

import pytest

from resumable import (
    AccessDenied,
    Cancelled,
    ConnectionFailed,
    InvalidArgument,
    RetriesExhausted,
    RetryPolicy,
    ServerBusy,
    SourceNotFound,
)
from resumable.engine.recover import Recovery, listing
from resumable.errors import ResumableError
from resumable.locator import Locator
from resumable.testing import FaultySource, MemorySource

URL = "mem://b/f"
MIRROR = "mem://m/f"


def policy(attempts: int = 3, waits: list[float] | None = None) -> RetryPolicy:
    sleep = waits.append if waits is not None else (lambda s: None)
    return RetryPolicy(attempts=attempts, backoff=1, multiplier=2, jitter=0, sleep=sleep)


def test_call_retries_transient_errors_and_reports_each_retry() -> None:
    attempts: list[int] = []
    seen: list[tuple[str, float]] = []

    def flaky() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise ServerBusy(status=503, retry_after=1.5)
        return "ok"

    waits: list[float] = []
    recovery = Recovery(
        policy(5, waits), url="https://h/f", report=lambda e, w: seen.append((str(e), w))
    )
    assert recovery.call(flaky) == "ok"
    assert len(attempts) == 3
    assert [w for _, w in seen] == [1.5, 1.5]
    assert waits == [1.5, 1.5]


def test_call_gives_up_with_retries_exhausted_and_lets_permanent_errors_through() -> None:
    def down() -> None:
        raise ConnectionFailed("refused")

    with pytest.raises(RetriesExhausted) as caught:
        Recovery(policy(2)).call(down)
    assert caught.value.attempts == 2
    assert isinstance(caught.value.__cause__, ConnectionFailed)

    def missing() -> None:
        raise InvalidArgument("bad")

    with pytest.raises(InvalidArgument):
        Recovery(policy(2)).call(missing)


def test_backoff_grows_and_meaningful_progress_costs_no_budget() -> None:
    waits: list[float] = []
    recovery = Recovery(policy(3, waits))
    cut = ConnectionFailed("cut")
    recovery.failed(cut)  # nothing moved: budget used
    recovery.failed(cut)
    assert waits == [1.0, 2.0]
    recovery.failed(cut, moved=64 * 1024)  # meaningful: the budget is refilled
    assert recovery.budget.failures == 0
    recovery.failed(cut, moved=10, remaining=10)  # everything that was left: meaningful too
    assert recovery.budget.failures == 0
    recovery.failed(cut)
    recovery.failed(cut)
    with pytest.raises(RetriesExhausted):
        recovery.failed(cut)


def test_a_cancel_ends_the_backoff_and_raises_cancelled() -> None:
    cancel = threading.Event()
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        cancel.set()  # the user cancels during the wait

    recovery = Recovery(RetryPolicy(attempts=5, sleep=sleep, jitter=0), cancel=cancel)
    with pytest.raises(Cancelled):
        recovery.failed(ConnectionFailed("cut"))
    assert len(waits) == 1


def test_a_wake_without_cancel_only_shortens_the_wait() -> None:
    stop = threading.Event()
    stop.set()
    recovery = Recovery(RetryPolicy(attempts=5, backoff=30, jitter=0), wake=stop)
    recovery.failed(ConnectionFailed("cut"))  # the real sleep, woken at once: no exception
    assert recovery.budget.failures == 1


def test_locate_moves_to_a_mirror_after_a_permanent_failure_with_a_fresh_budget() -> None:
    store = MemorySource({URL: b"a", MIRROR: b"a"})
    first = FaultySource(store).fail_stat(ConnectionFailed("x"), SourceNotFound("gone", url=URL))
    second = FaultySource(store)
    locator = Locator([URL, MIRROR], [first, second])
    reports: list[tuple[ResumableError, float]] = []
    moved: list[int] = []
    recovery = Recovery(
        policy(3),
        locator,
        report=lambda e, w: reports.append((e, w)),
        failed_over=lambda: moved.append(locator.mirror),
    )
    info = recovery.locate(lambda target: target.source.stat(target.url))
    assert info.url == MIRROR
    assert first.calls == ["stat", "stat"]
    assert second.calls == ["stat"]
    assert moved == [1]
    assert [w for _, w in reports] == [pytest.approx(1.0), 0.0]
    assert isinstance(reports[1][0], SourceNotFound)
    assert recovery.budget.failures == 0  # the mirror started with a fresh budget
    assert locator.failovers == 1


def test_a_spent_budget_fails_over_at_once_and_the_last_url_raises() -> None:
    store = MemorySource({URL: b"a"})
    down = ConnectionFailed("refused")
    first = FaultySource(store).fail_stat(down, down)
    second = FaultySource(store).fail_stat(down, down)
    waits: list[float] = []
    recovery = Recovery(policy(2, waits), Locator([URL, MIRROR], [first, second]))
    with pytest.raises(RetriesExhausted) as caught:
        recovery.locate(lambda target: target.source.stat(target.url))
    assert first.calls == ["stat", "stat"]
    assert second.calls == ["stat", "stat"]
    assert waits == [1.0, 1.0]  # one backoff per URL; the failover itself does not wait
    assert caught.value.url is not None
    assert "m/f" in caught.value.url


def test_refused_refreshes_a_signed_url_once_per_failing_url() -> None:
    asked: list[str] = []

    def refresh(url: str) -> str | None:
        asked.append(url)
        return URL + "?sig=2"

    locator = Locator([URL], [MemorySource()], refresh)
    recovery = Recovery(policy(), locator)
    target = locator.current()
    recovery.refused(AccessDenied("expired", url=URL), target)
    recovery.refused(AccessDenied("expired", url=URL), target)  # same old target: no new call
    assert asked == [URL]
    assert locator.current().url == URL + "?sig=2"


def test_without_a_locator_a_permanent_failure_is_raised() -> None:
    with pytest.raises(SourceNotFound):
        Recovery(policy()).refused(SourceNotFound("gone"), None)


def test_listing_starts_over_skips_what_was_yielded_and_progress_costs_nothing() -> None:
    store = MemorySource({f"mem://b/{n}": b"x" for n in range(5)})
    cut = ConnectionFailed("cut")
    faulty = FaultySource(store).cut_list(2, cut).cut_list(0, cut).cut_list(4, cut)
    waits: list[float] = []
    recovery = Recovery(policy(2, waits))
    names = [u for u, _ in listing(recovery, lambda: faulty.list("mem://b/"), lambda e: e[0])]
    assert names == [f"mem://b/{n}" for n in range(5)]
    assert faulty.calls == ["list"] * 4
    # 2 new, then none (budget: 1 failure), then 2 new (refilled), then the last one.
    assert waits == [1.0, 1.0, 1.0]


def test_listing_that_never_yields_anything_new_gives_up() -> None:
    store = MemorySource({"mem://b/0": b"x"})
    cut = ConnectionFailed("cut")
    faulty = FaultySource(store).cut_list(0, cut).cut_list(0, cut)
    recovery = Recovery(policy(2))
    with pytest.raises(RetriesExhausted):
        list(listing(recovery, lambda: faulty.list("mem://b/"), lambda e: e[0]))
    assert faulty.calls == ["list", "list"]
