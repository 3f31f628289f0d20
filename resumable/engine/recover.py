"""The one retry-and-recover loop: every request of the engine fails and recovers the same way.

A single stream, each piece of a segmented download, the direct path, a ``stat`` (HEAD) and a
listing all meet the same two kinds of failure:

- **Transient** (a cut, a stall, a 5xx, a 429): count it against the :class:`RetryBudget`
  (a value: each count returns a new one, as urllib3's ``Retry.increment`` does), report it,
  wait the backoff, cancellably, and try again. An attempt that moved meaningful bytes costs
  nothing (see :mod:`resumable.retry`).
- **Permanent** (a 403, a 404, a certificate, or a spent budget on a dead host): ask the
  :class:`~resumable.locator.Locator` for a refreshed URL or the next mirror; with one, start
  again with a fresh budget; without one, raise.

:class:`Recovery` holds the budget and these two rules; the callers keep what differs (what an
attempt is, how much it moved, what a retry is reported as). ``call``/``locate`` are the whole
loop for one-shot requests; a transfer, whose attempts have outcomes of their own (restart,
fall back to one stream), drives its own loop and calls :meth:`Recovery.failed` and
:meth:`Recovery.refused` from it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Hashable, Iterable, Iterator
from contextlib import AbstractContextManager
from typing import TypeVar

from ..errors import Cancelled, ResumableError, RetriesExhausted, TransientError
from ..locator import PERMANENT, Locator, Target
from ..retry import RetryBudget, RetryPolicy
from ..urls import redact

__all__ = ["Recovery", "Report", "listing"]

log = logging.getLogger("resumable")

T = TypeVar("T")

Report = Callable[[ResumableError, float], object]
"""``report(error, wait)``: a retry is coming after ``wait`` seconds (0 after a new URL)."""


def _quiet(error: ResumableError, wait: float) -> None:
    """The default report: nothing beyond the log line."""


class Recovery:
    """The retry budget of one request (or one piece) and what to do when an attempt fails.

    Args:
        policy: the retry policy (backoff, attempts, the ``sleep`` that tests replace).
        locator: replaces a URL that failed for good; ``None``: a permanent failure is final.
        url: the name errors carry; ``None``: the URL of the attempt that failed.
        report: called before each wait (the transfer emits ``RETRYING``).
        wake: ends a backoff early when set (default: ``cancel``).
        cancel: set by the caller to stop: after a backoff it raises :class:`Cancelled`.
        what: how the log names what is retried.
        failed_over: called when a permanent failure moved the download to another mirror
            (before ``report``): another server's validators differ for the same bytes.
        idle: a context around each backoff (the transfer gives its host slot back while it
            waits, and takes one again, within the host's window, before it retries).
    """

    def __init__(
        self,
        policy: RetryPolicy,
        locator: Locator | None = None,
        *,
        url: str | None = None,
        report: Report = _quiet,
        wake: threading.Event | None = None,
        cancel: threading.Event | None = None,
        what: str | None = None,
        failed_over: Callable[[], object] = lambda: None,
        idle: Callable[[], AbstractContextManager[object]] = contextlib.nullcontext,
    ) -> None:
        self.policy = policy
        self.locator = locator
        self.url = url
        self.report = report
        self.cancel = cancel
        self.wake = wake if wake is not None else cancel
        self.what = what
        self.failed_over = failed_over
        self.idle = idle
        self.budget: RetryBudget = policy.budget()

    def fresh(self) -> None:
        """Start a new budget (a new URL, or a new transfer of the same file)."""
        self.budget = self.policy.budget()

    def failed(
        self,
        error: TransientError,
        target: Target | None = None,
        *,
        moved: int = 0,
        remaining: int | None = None,
        on_disk: int = 0,
    ) -> None:
        """An attempt with ``target`` failed with ``error`` after moving ``moved`` new bytes
        (of the ``remaining`` still missing when it started): count it, report it, wait.
        ``on_disk``: bytes the file already holds; with any, a connection that cannot be made
        is a server gone away mid-download and uses the whole budget, not the few quick
        ``connect_attempts`` a dead or mistyped host gets (see :mod:`resumable.retry`).

        When the budget is spent, a refreshed URL or a mirror starts over with a fresh budget
        at once (no wait); without one, :class:`RetriesExhausted` is raised.

        Raises:
            RetriesExhausted: no budget and no other URL.
            Cancelled: ``cancel`` was set during the wait.
        """
        url = self.url or (target.url if target is not None else None)
        self.budget = self.budget.resuming(on_disk)
        try:
            self.budget, wait = self.budget.moved(error, moved, remaining=remaining, url=url)
        except RetriesExhausted as gave_up:
            self.refused(gave_up, target)
            return
        self._pause(error, wait, url)

    def interrupted(self, error: TransientError) -> None:
        """An attempt made progress, then broke: wait the first backoff, using no budget."""
        self.budget, wait = self.budget.interrupted(error)
        self._pause(error, wait, self.url)

    def refused(self, error: ResumableError, target: Target | None) -> None:
        """A permanent failure of a request made with ``target``: continue with a refreshed
        URL or a mirror (fresh budget), or raise ``error`` when there is none."""
        if self.locator is None or target is None:
            raise error
        mirror = self.locator.mirror
        if not self.locator.recover(error, target):
            raise error
        self.fresh()
        if self.locator.mirror != mirror:
            self.failed_over()
        self.report(error, 0.0)

    def _pause(self, error: TransientError, wait: float, url: str | None) -> None:
        name = self.what or redact(url or "")
        log.info("retrying %s in %.1fs after: %s", name, wait, error)
        self.report(error, wait)
        with self.idle():  # a backoff holds no connection: its slot serves others meanwhile
            self.policy.wait(wait, self.wake)
        if self.cancel is not None and self.cancel.is_set():
            raise Cancelled("cancelled", url=url)  # woken from the backoff

    def call(self, attempt: Callable[[], T]) -> T:
        """``attempt()``, retried on transient errors (a one-shot request without a locator)."""
        while True:
            try:
                return attempt()
            except TransientError as exc:
                self.failed(exc)

    def locate(self, attempt: Callable[[Target], T]) -> T:
        """``attempt(target)`` on the locator's current URL, retried on transient errors and
        moved to a refreshed URL or a mirror on permanent ones (a ``stat``, a HEAD)."""
        assert self.locator is not None, "locate() needs a locator"
        while True:
            target = self.locator.current()
            try:
                result = attempt(target)
            except TransientError as exc:
                self.failed(exc, target)
                continue
            except PERMANENT as exc:
                self.refused(exc, target)
                continue
            self.locator.succeeded(target)
            return result


def listing(
    recovery: Recovery, start: Callable[[], Iterable[T]], key: Callable[[T], Hashable]
) -> Iterator[T]:
    """Iterate ``start()``, starting it over after a transient error (a listing that breaks).

    A generator that raised cannot continue, so the iteration starts over and skips what was
    already yielded (remembered by a 64-bit hash of ``key(item)``: a few dozen bytes per item,
    where the items themselves are never kept). A restart that yields something new counts as
    progress, like a transfer that moved bytes: only restarts that yield nothing new use the
    budget.
    """
    seen: set[int] = set()
    while True:
        fresh = False
        try:
            for item in start():
                marker = hash(key(item))
                if marker in seen:
                    continue
                seen.add(marker)
                fresh = True
                yield item
            return
        except TransientError as exc:
            if fresh:
                recovery.interrupted(exc)
            else:
                recovery.failed(exc)
