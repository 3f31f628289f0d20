"""Failure policy as values: when to retry, how long to wait, when a transfer has stalled.

``RetryPolicy`` and ``Timeouts`` are frozen: the downloader consumes them and never changes them.
``RetryBudget`` is the per-transfer state, and it is a value too: ``failed()`` and
``interrupted()`` return new budgets (as urllib3's ``Retry.increment`` does), so the rules can be
tested without sockets and without sleeping, by injecting ``sleep`` and ``random``. The loop that
uses them (retry, wait, move to a refreshed URL or a mirror) is written once, in
:mod:`resumable.engine.recover`.

The budget counts *attempts that made no meaningful progress*. A 10 GB download over a flaky
link may be cut fifty times; as long as each attempt moved real amounts of data it is healthy and
must not be killed by a fixed attempt limit. But "any byte" is not progress: a server that sends
one byte per connection and then stalls would be retried forever, one stall timeout at a time. So
an attempt refills the budget only once the bytes moved since the last refill reach
:data:`MEANINGFUL_PROGRESS` (or whatever was left of the file); smaller amounts add up across
attempts, and each attempt below it uses the budget like one that fetched nothing. A slow but
moving transfer never fails an attempt at all (only a stall does), so it is never affected.
"""

from __future__ import annotations

import email.utils
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone

from ._checks import check_number
from .errors import InvalidArgument, RetriesExhausted, TransientError

__all__ = ["MEANINGFUL_PROGRESS", "RetryBudget", "RetryPolicy", "Timeouts", "parse_retry_after"]

MEANINGFUL_PROGRESS = 64 * 1024
"""Bytes that failed attempts must move (together, since the last refill) to refill the retry
budget; less than this only counts when it was all that was left of the file. With the default
8 attempts, a link cut again and again survives while it moves ~8 KiB per connection."""


@dataclass(frozen=True)
class Timeouts:
    """How long to wait before calling a connection dead. There is no overall timeout.

    Args:
        connect: seconds to establish a connection.
        stall: seconds without a single byte arriving (while waiting for the answer or inside the
            body) before the attempt is abandoned and retried. A slow but moving transfer is never
            interrupted, whatever its size; an HTTP answer's status line and headers, though,
            must all arrive within one stall timeout (a server trickling headers is abandoned).

    >>> Timeouts(connect=5, stall=30)
    Timeouts(connect=5, stall=30)
    """

    connect: float = 10.0
    stall: float = 60.0

    def __post_init__(self) -> None:
        for name in ("connect", "stall"):
            value = getattr(self, name)
            check_number(value, f"Timeouts.{name}")
            if not value > 0:
                raise InvalidArgument(f"Timeouts.{name} must be a positive number, got {value!r}")


@dataclass(frozen=True)
class RetryPolicy:
    """When and how to retry transient failures (connection errors, stalls, 5xx, 429).

    The wait before retry ``n`` (1-based) is ``min(backoff_max, backoff * multiplier ** (n - 1))``,
    scaled by a random factor in ``[1 - jitter, 1]`` so that many clients cut at once do not come
    back in lock-step. A server's ``Retry-After`` replaces the computed wait (capped at
    ``retry_after_max``).

    Args:
        attempts: consecutive attempts *without meaningful progress* allowed before giving up;
            attempts that together moved :data:`MEANINGFUL_PROGRESS` new bytes refill the budget.
        backoff: first wait, in seconds.
        multiplier: growth of the wait per failed attempt.
        backoff_max: longest computed wait.
        jitter: fraction of the wait that is randomised (0 = none, 1 = "full jitter").
        retry_after_max: longest wait accepted from a server's Retry-After.
        sleep: the function that waits (inject a fake in tests).
        random: returns a float in [0, 1) (inject a fixed one in tests).

    >>> RetryPolicy(attempts=3, jitter=0, random=lambda: 0.0).delay(3)
    2.0
    """

    attempts: int = 8
    backoff: float = 0.5
    multiplier: float = 2.0
    backoff_max: float = 30.0
    jitter: float = 0.5
    retry_after_max: float = 300.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)
    random: Callable[[], float] = field(default=random.random, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_number(self.attempts, "RetryPolicy.attempts", integer=True)
        for name in ("backoff", "multiplier", "backoff_max", "jitter", "retry_after_max"):
            check_number(getattr(self, name), f"RetryPolicy.{name}")
        if not callable(self.sleep) or not callable(self.random):
            raise InvalidArgument("RetryPolicy.sleep and RetryPolicy.random must be callables")
        if self.attempts < 1:
            raise InvalidArgument(f"RetryPolicy.attempts must be >= 1, got {self.attempts!r}")
        if self.backoff < 0 or self.backoff_max < 0 or self.retry_after_max < 0:
            raise InvalidArgument("RetryPolicy waits must not be negative")
        if self.multiplier < 1:
            raise InvalidArgument(f"RetryPolicy.multiplier must be >= 1, got {self.multiplier!r}")
        if not 0 <= self.jitter <= 1:
            raise InvalidArgument(f"RetryPolicy.jitter must be within [0, 1], got {self.jitter!r}")

    @classmethod
    def never(cls) -> RetryPolicy:
        """A policy that gives up at the first failed attempt that made no progress.

        An attempt that made meaningful progress before breaking is still resumed (that never
        costs budget).
        """
        return cls(attempts=1)

    def delay(self, failures: int, retry_after: float | None = None) -> float:
        """Seconds to wait after ``failures`` consecutive failures without progress."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.retry_after_max)
        base = min(self.backoff_max, self.backoff * self.multiplier ** max(failures - 1, 0))
        return base * (1.0 - self.jitter * self.random())

    def wait(self, seconds: float, wake: threading.Event | None = None) -> None:
        """Sleep ``seconds`` with the policy's ``sleep``. When that is the real ``time.sleep``
        and ``wake`` is given, setting ``wake`` ends the wait early (a cancelled job or a
        stopped segmented download must not sleep out a 30 s backoff)."""
        if wake is not None and self.sleep is time.sleep:
            wake.wait(seconds)
        else:
            self.sleep(seconds)

    def budget(self) -> RetryBudget:
        """A fresh budget for one transfer."""
        return RetryBudget(self)


@dataclass(frozen=True)
class RetryBudget:
    """What is left of the retry budget for one transfer (a value: methods return new budgets).

    >>> b = RetryPolicy(attempts=2).budget()
    >>> b.failures
    0
    """

    policy: RetryPolicy
    failures: int = 0
    attempts: int = 0
    progress: int = 0  # bytes moved by failed attempts since the budget was last refilled

    def interrupted(self, error: TransientError) -> tuple[RetryBudget, float]:
        """An attempt made progress, then broke: retry at once-backoff, using none of the budget.

        Returns the new budget (consecutive failures back to 0) and the wait before resuming.
        """
        after = replace(self, failures=0, attempts=self.attempts + 1, progress=0)
        return after, self.policy.delay(1, error.retry_after)

    def moved(
        self,
        error: TransientError,
        amount: int,
        *,
        remaining: int | None = None,
        url: str | None = None,
    ) -> tuple[RetryBudget, float]:
        """An attempt moved ``amount`` new bytes, then broke: :meth:`interrupted` if that (with
        what earlier failed attempts moved) is meaningful progress, else :meth:`failed`.

        ``remaining``: the bytes that were still missing when the attempt started; moving all
        of them is meaningful however few they were.

        Raises:
            RetriesExhausted: as :meth:`failed`.
        """
        needed = MEANINGFUL_PROGRESS if remaining is None else min(MEANINGFUL_PROGRESS, remaining)
        progress = self.progress + max(amount, 0)
        if amount > 0 and progress >= max(needed, 1):
            return self.interrupted(error)
        return replace(self, progress=progress).failed(error, url=url)

    def failed(self, error: TransientError, *, url: str | None = None) -> tuple[RetryBudget, float]:
        """Record a failed attempt; return the new budget and how long to sleep before the next.

        Raises:
            RetriesExhausted: ``policy.attempts`` consecutive attempts made no progress (the
                error is chained as ``__cause__``).
        """
        after = replace(self, failures=self.failures + 1, attempts=self.attempts + 1)
        if after.failures >= self.policy.attempts:
            raise RetriesExhausted(
                url=url or error.url, attempts=after.attempts, reason=error.message
            ) from error
        return after, self.policy.delay(after.failures, error.retry_after)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date), or ``None``.

    >>> parse_retry_after("7")
    7.0
    >>> parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0)
    10.0
    """
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    current = now if now is not None else datetime.now(timezone.utc).timestamp()
    return max(0.0, when.timestamp() - current)
