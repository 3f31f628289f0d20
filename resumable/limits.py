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
    """At most ``per_host`` connections to each host (``None``: unlimited)."""

    def __init__(self, per_host: int | None) -> None:
        if per_host is not None and per_host < 1:
            raise InvalidArgument(f"per-host connections must be >= 1, got {per_host!r}")
        self.per_host = per_host
        self._slots: dict[str, threading.BoundedSemaphore] = {}
        self._lock = threading.Lock()

    def _semaphore(self, host: str) -> threading.BoundedSemaphore | None:
        if self.per_host is None:
            return None
        with self._lock:
            slot = self._slots.get(host)
            if slot is None:
                slot = self._slots[host] = threading.BoundedSemaphore(self.per_host)
            return slot

    @contextlib.contextmanager
    def hold(self, host: str, cancel: threading.Event | None = None) -> Iterator[None]:
        """Wait for a slot (checking ``cancel`` twice a second) and hold it."""
        slot = self._semaphore(host)
        if slot is None:
            yield
            return
        while not slot.acquire(timeout=0.5):
            if cancel is not None and cancel.is_set():
                raise Cancelled(f"cancelled while waiting for a connection to {host}")
        try:
            yield
        finally:
            slot.release()

    def try_take(self, host: str) -> Callable[[], None] | None:
        """Take a free slot without waiting; return its release function, or ``None``."""
        slot = self._semaphore(host)
        if slot is None:
            return lambda: None
        return slot.release if slot.acquire(blocking=False) else None
