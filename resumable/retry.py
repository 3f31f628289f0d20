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

A connection that cannot even be made (:class:`~resumable.errors.CannotConnect`,
:class:`~resumable.errors.ConnectTimeout`) before the file has a single byte is most likely a
mistyped or dead address, not a blip: it gets ``RetryPolicy.connect_attempts`` quick attempts
(as urllib3's ``Retry(connect=...)``), so ``download("http://typo.example/x")`` fails within
seconds. Once the file has bytes (moved by this budget, or on disk from an earlier run), the same
refusal is a server restarting mid-download and uses the ordinary budget.

Retrying is visible: from the :data:`WARN_AFTER`-th failure in a row a retry is logged at
WARNING, at most once per host every :data:`WARN_EVERY` seconds (a long outage over a batch of
thousands of files says so once a minute, with a count, not once per file).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

from ._checks import check_number
from .errors import (
    CannotConnect,
    ConnectTimeout,
    InvalidArgument,
    RetriesExhausted,
    TransientError,
)

log = logging.getLogger("resumable")

__all__ = [
    "MEANINGFUL_PROGRESS",
    "WARN_AFTER",
    "WARN_EVERY",
    "RetryBudget",
    "RetryPolicy",
    "Timeouts",
    "parse_retry_after",
]


MEANINGFUL_PROGRESS = 64 * 1024
"""Bytes that failed attempts must move (together, since the last refill) to refill the retry
budget; less than this only counts when it was all that was left of the file. With the default
8 attempts, a link cut again and again survives while it moves ~8 KiB per connection."""

WARN_AFTER = 2
"""Failed attempts in a row (without progress) from which a retry is logged at WARNING: one
failure is an ordinary blip (INFO), a second one in a row is worth seeing."""

WARN_EVERY = 60.0
"""Seconds between two retry WARNINGs about one host; the retries in between are counted and
the next WARNING says how many there were."""


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


def shared_random() -> float:
    """``random.random()`` of the module's shared generator, imported at the first retry
    rather than by ``import resumable`` (issue 18 item 7)."""
    import random

    return random.random()


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
        connect_attempts: attempts while the connection cannot be made at all (unknown host,
            refused, connect timeout) and the file has no byte yet: a wrong or dead address
            then fails in seconds, as a ``ConnectionError`` (or ``TimeoutError``). Never more
            than ``attempts``. Once the file has bytes, such failures use ``attempts``.

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
    random: Callable[[], float] = field(default=shared_random, repr=False, compare=False)
    connect_attempts: int = 3

    def __post_init__(self) -> None:
        check_number(self.attempts, "RetryPolicy.attempts", integer=True)
        check_number(self.connect_attempts, "RetryPolicy.connect_attempts", integer=True)
        for name in ("backoff", "multiplier", "backoff_max", "jitter", "retry_after_max"):
            check_number(getattr(self, name), f"RetryPolicy.{name}")
        if not callable(self.sleep) or not callable(self.random):
            raise InvalidArgument("RetryPolicy.sleep and RetryPolicy.random must be callables")
        for name in ("attempts", "connect_attempts"):
            if getattr(self, name) < 1:
                raise InvalidArgument(
                    f"RetryPolicy.{name} must be >= 1, got {getattr(self, name)!r}"
                )
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
    connect_failures: int = 0  # of ``failures``, those that could not connect at all
    started: bool = False  # the file has bytes: a refused connection is a server gone away

    def resuming(self, on_disk: int) -> RetryBudget:
        """This budget for a file that already holds ``on_disk`` bytes (a resumed partial):
        when it has any, connect failures use the ordinary budget, not ``connect_attempts``.

        >>> RetryPolicy().budget().resuming(1024).started
        True
        """
        return replace(self, started=True) if on_disk > 0 else self

    def interrupted(self, error: TransientError) -> tuple[RetryBudget, float]:
        """An attempt made progress, then broke: retry at once-backoff, using none of the budget.

        Returns the new budget (consecutive failures back to 0) and the wait before resuming.
        """
        after = replace(
            self,
            failures=0,
            attempts=self.attempts + 1,
            progress=0,
            connect_failures=0,
            started=True,
        )
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
        started = self.started or amount > 0
        return replace(self, progress=progress, started=started).failed(error, url=url)

    def failed(self, error: TransientError, *, url: str | None = None) -> tuple[RetryBudget, float]:
        """Record a failed attempt; return the new budget and how long to sleep before the next.

        A failure to connect at all while the file has no byte counts against
        ``policy.connect_attempts`` as well (see the module's docstring).

        Raises:
            RetriesExhausted: ``policy.attempts`` consecutive attempts made no progress, or
                ``policy.connect_attempts`` of them could not connect before the file had a
                byte. The class is of the error's family (``ConnectionError``,
                ``TimeoutError``: see :meth:`RetriesExhausted.after`), and the error is chained
                as ``__cause__``.
        """
        connecting = not self.started and isinstance(error, (CannotConnect, ConnectTimeout))
        after = replace(
            self,
            failures=self.failures + 1,
            attempts=self.attempts + 1,
            connect_failures=self.connect_failures + connecting,
        )
        limit = min(self.policy.connect_attempts, self.policy.attempts) if connecting else None
        if after.failures >= self.policy.attempts or (
            limit is not None and after.connect_failures >= limit
        ):
            raise RetriesExhausted.after(
                error, url=url or error.url, attempts=after.attempts
            ) from error
        delay = self.policy.delay(after.failures, error.retry_after)
        if after.failures >= WARN_AFTER:
            gives_up = self.policy.attempts if limit is None else limit
            _WARNINGS.retrying(error, url, f"{after.failures} of at most {gives_up}", delay)
        return after, delay


class _RetryWarnings:
    """The WARNINGs about retries, at most one per host every ``every`` seconds."""

    def __init__(self, every: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.every, self.clock = every, clock
        self._lock = threading.Lock()
        self._hosts: dict[str, tuple[float, int]] = {}  # host -> (last warning, retries since)

    def retrying(self, error: TransientError, url: str | None, count: str, delay: float) -> None:
        """Log this retry at WARNING if its host's last WARNING is old enough, else count it."""
        try:
            host = urlsplit(error.url or url or "").netloc
        except ValueError:  # an unparsable URL (a bad IPv6 literal): one key for all of them
            host = ""
        now = self.clock()
        with self._lock:
            last, since = self._hosts.get(host, (None, 0))
            if last is not None and now - last < self.every:
                self._hosts[host] = (last, since + 1)
                return
            self._hosts.pop(host, None)
            self._hosts[host] = (now, 0)
            while len(self._hosts) > 1024:  # the least recently warned-about host goes
                del self._hosts[next(iter(self._hosts))]
        more = f" ({since} more retries on this host since the last warning)" if since else ""
        log.warning("failed attempt %s, retrying in %.1fs: %s%s", count, delay, error, more)


_WARNINGS = _RetryWarnings(WARN_EVERY)


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
    # Imported here: email.utils (with socket, calendar and datetime) is ~7 ms that
    # ``import resumable`` need not pay for a header most servers never send.
    import email.utils
    from datetime import datetime, timezone

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    current = now if now is not None else datetime.now(timezone.utc).timestamp()
    return max(0.0, when.timestamp() - current)
