"""Limits shared by every transfer of one downloader: bandwidth, byte budgets, connections.

- :class:`TokenBucket` meters bytes. ``rate_limit`` is a bucket holding a fraction of a second
  of traffic; AIStore-style ``limit_bph`` (bytes per hour) is a bucket whose capacity is one hour,
  so a budget can be spent at full speed and then refills at ``bph / 3600`` per second.
- :class:`HostSlots` caps connections per host. A file's first connection waits for a slot;
  the extra connections of a segmented download take one only if it is free, so files never
  wait on each other's segments (no deadlock, and small files are not starved by large ones).

Both are thread-safe and take an optional ``threading.Event``: a cancelled job stops waiting.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator

from ._checks import check_number
from .errors import Cancelled, InvalidArgument

__all__ = ["HostSlots", "TokenBucket"]


class TokenBucket:
    """A token bucket in bytes, debt-based: a large take is allowed and repaid by waiting.

    Each caller subtracts what it took and sleeps off its own share of the debt, so many
    threads together never exceed ``rate`` (after the initial ``capacity`` burst).

    >>> bucket = TokenBucket(rate=1e6, capacity=1e5, clock=lambda: 0.0, sleep=lambda s: None)
    >>> bucket.take(300_000)
    0.2
    """

    def __init__(
        self,
        rate: float,
        capacity: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        check_number(rate, "a rate (bytes/s)")
        if not rate > 0:
            raise InvalidArgument(f"a rate must be a positive number of bytes/s, got {rate!r}")
        self.rate = float(rate)
        self.capacity = float(capacity) if capacity is not None else max(self.rate / 8, 65536.0)
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.capacity
        self._stamp = clock()
        self._lock = threading.Lock()

    def take(self, amount: int, cancel: threading.Event | None = None) -> float:
        """Account for ``amount`` bytes; wait until they are within the rate. Returns the wait."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            self._tokens -= amount
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            if cancel is not None:
                cancel.wait(wait)
            else:
                self._sleep(wait)
        return wait


class HostSlots:
    """At most ``per_host`` connections to each host and ``total`` overall (``None``: no cap).

    One scheduler for files and their segments: a file's first connection waits for a slot,
    a segment's extra connection takes one only if both caps have room.
    """

    def __init__(self, per_host: int | None, total: int | None = None) -> None:
        for name, value in (("per-host", per_host), ("total", total)):
            if value is not None:
                check_number(value, f"{name} connections", integer=True)
            if value is not None and value < 1:
                raise InvalidArgument(f"{name} connections must be >= 1, got {value!r}")
        self.per_host = per_host
        self.total = total
        self._all = threading.BoundedSemaphore(total) if total is not None else None
        self._slots: dict[str, threading.BoundedSemaphore] = {}
        self._lock = threading.Lock()

    def _semaphores(self, host: str) -> list[threading.BoundedSemaphore]:
        found = [self._all] if self._all is not None else []
        if self.per_host is not None:
            with self._lock:
                slot = self._slots.get(host)
                if slot is None:
                    slot = self._slots[host] = threading.BoundedSemaphore(self.per_host)
            found.append(slot)
        return found

    @contextlib.contextmanager
    def hold(self, host: str, cancel: threading.Event | None = None) -> Iterator[None]:
        """Wait for a slot (checking ``cancel`` twice a second) and hold it."""
        while (release := self.try_take(host)) is None:
            if cancel is not None and cancel.wait(0.05):
                raise Cancelled(f"cancelled while waiting for a connection to {host}")
            if cancel is None:
                threading.Event().wait(0.05)
        try:
            yield
        finally:
            release()

    def try_take(self, host: str) -> Callable[[], None] | None:
        """Take a slot under every cap without waiting; return its release, or ``None``."""
        taken: list[threading.BoundedSemaphore] = []
        for semaphore in self._semaphores(host):
            if not semaphore.acquire(blocking=False):
                for held in taken:
                    held.release()
                return None
            taken.append(semaphore)

        def release() -> None:
            for held in taken:
                held.release()

        return release
