"""Limits shared by every transfer of one downloader: bandwidth, byte budgets, connections.

- :class:`TokenBucket` meters bytes. ``rate_limit`` is a bucket holding a fraction of a second
  of traffic; AIStore-style ``limit_bph`` (bytes per hour) is a bucket whose capacity is one hour,
  so a budget can be spent at full speed and then refills at ``bph / 3600`` per second.
- :class:`HostSlots` caps connections per host. A file's first connection waits for a slot;
  the extra connections of a segmented download take one only if it is free, so files never
  wait on each other's segments (no deadlock, and small files are not starved by large ones).
  A host that answers 429/503 gets fewer connections for a while (an adaptive window).

Both are thread-safe and take an optional ``threading.Event``: a cancelled job stops waiting.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from ._checks import check_number
from .errors import Cancelled, CannotConnect, ConnectionFailed, InvalidArgument, ServerBusy

__all__ = ["HostSlots", "Release", "TokenBucket"]

log = logging.getLogger("resumable")


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
    """At most ``per_host`` connections to each host and ``total`` overall (``None``: no cap),
    with a per-host window that adapts to the server (AIMD, as TCP's congestion window).

    One scheduler for files and their segments: a file's first connection waits for a slot,
    a segment's extra connection takes one only if both caps have room.

    **Adapting.** A host has no window until it pushes back (:meth:`observe`: a 429, a 503, S3's
    ``SlowDown``, a reset connection). Then the window is half the connections in use (at least
    one), and the pace half the requests started in the last second (a rate limit refuses short
    requests that one connection alone sends too fast), each cut at most once per
    :data:`COOLDOWN` so that a burst of answers to requests already in flight counts once. A
    pushback at about the level of the host's last one (no lower than :data:`SAME_LIMIT` of it)
    is the same limit again: that cut keeps :data:`GENTLE_CUT` of the level, not half (halving
    a steady limit at every probe left a server that serves 4 connections a third idle, the
    window a sawtooth between 2 and 5). Every connection that ends without pushback widens the
    window by ``1/window`` (one connection per window's worth of answers), except the last
    connection below the width refused last time, ``window`` times slower (the limit is probed
    now and then, not every round), and the pace by ``1/pace`` (about one request a second
    more each second). Once the window is as wide as the most connections ever used (or
    ``per_host``), and the pace twice the fastest one a pushback came at, neither holds (a pace
    released at the rate the server refused brings an unpaced burst and the next refusal). A
    retry's backoff gives its slot back (:meth:`away`), so retries are paced by the window too,
    and a ``Retry-After`` holds new connections to the host until it passes: the other workers
    do not fill the pause with requests the server will refuse.
    """

    COOLDOWN = 1.0
    """Seconds between two cuts of one host's window."""

    def __init__(
        self,
        per_host: int | None,
        total: int | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        for name, value in (("per-host", per_host), ("total", total)):
            if value is not None:
                check_number(value, f"{name} connections", integer=True)
            if value is not None and value < 1:
                raise InvalidArgument(f"{name} connections must be >= 1, got {value!r}")
        self.per_host = per_host
        self.total = total
        self._all = threading.BoundedSemaphore(total) if total is not None else None
        self._hosts: dict[str, _Host] = {}
        self._lock = threading.Lock()
        self._clock = clock
        self._local = threading.local()  # the slots each thread holds, by host (see away())
        self._seen: weakref.WeakSet[BaseException] = weakref.WeakSet()

    def _host(self, host: str) -> _Host:
        """``host``'s state (made on first use); called under the lock."""
        state = self._hosts.get(host)
        if state is None:
            state = self._hosts[host] = _Host()
        return state

    def window(self, host: str) -> float | None:
        """The host's adaptive window now (``None``: it never pushed back, or recovered)."""
        with self._lock:
            found = self._hosts.get(host)
            return None if found is None else found.window

    @contextlib.contextmanager
    def hold(self, host: str, cancel: threading.Event | None = None) -> Iterator[None]:
        """Wait for a slot (checking ``cancel`` twice a second) and hold it."""
        held: dict[str, Release] = self._local.__dict__.setdefault("held", {})
        held[host] = self._wait(host, cancel)
        try:
            yield
        finally:
            release = held.pop(host, None)
            if release is not None:  # (None: taking it back after a backoff was cancelled)
                release()

    @contextlib.contextmanager
    def away(self, host: str, cancel: threading.Event | None = None) -> Iterator[None]:
        """Give back the slot this thread holds for ``host`` (see :meth:`hold`) while it waits
        (a retry's backoff holds no connection), then wait for one again, within the host's
        window: retries are paced by it like new requests. Without a held slot: nothing."""
        held: dict[str, Release] = getattr(self._local, "held", {})
        release = held.pop(host, None)
        if release is None:
            yield
            return
        release(widen=False)  # not an answer without pushback: the window stays
        try:
            yield
        finally:
            held[host] = self._wait(host, cancel)

    def _wait(self, host: str, cancel: threading.Event | None) -> Release:
        while (release := self.try_take(host)) is None:
            if cancel is not None and cancel.wait(0.05):
                raise Cancelled(f"cancelled while waiting for a connection to {host}")
            if cancel is None:
                threading.Event().wait(0.05)
        return release

    def try_take(self, host: str) -> Release | None:
        """Take a slot under every cap without waiting; return its release, or ``None``."""
        with self._lock:
            state = self._host(host)
            now = self._clock()
            if not state.open(now, self.per_host):
                return None
            if self._all is not None and not self._all.acquire(blocking=False):
                return None
            state.started(now)
        released = False

        def release(widen: bool = True) -> None:
            nonlocal released
            with self._lock:
                if released:
                    return
                released = True
                state.in_use -= 1
                if widen:
                    state.widen(self.per_host)
            if self._all is not None:
                self._all.release()

        return release

    def observe(self, host: str, error: BaseException) -> None:
        """Narrow ``host``'s window if ``error`` is a server's pushback: a 429 or 503 (S3's
        ``SlowDown`` is a 503), or a connection it reset; other failures say nothing of load."""
        with self._lock:
            if error in self._seen:  # one refusal counts once, however often it is reported
                return
            self._seen.add(error)
        if isinstance(error, ServerBusy) and error.status in (429, 503):
            self.pushed_back(host, error.retry_after)
        elif isinstance(error, ConnectionFailed) and not isinstance(error, CannotConnect):
            self.pushed_back(host)

    def pushed_back(self, host: str, retry_after: float | None = None) -> None:
        """The server at ``host`` refused a request for load (see the class): narrow its
        window, and hold new connections for ``retry_after`` seconds when it said so."""
        with self._lock:
            state = self._host(host)
            now = self._clock()
            if retry_after is not None and retry_after > 0:
                state.not_before = max(state.not_before, now + min(retry_after, 300.0))
            if now - state.cut_at < self.COOLDOWN:
                return
            window, rate = state.cut(now)
        paced = f" and {rate:.1f} requests/s" if rate is not None else ""
        log.info("%s pushed back: at most %d connections%s to it for now", host, int(window), paced)


class Release(Protocol):
    """Gives a slot back; ``widen=False`` when the connection ended for a backoff."""

    def __call__(self, widen: bool = True) -> None: ...


MIN_RATE = 1.0
"""The slowest pace a pushback leads to, in requests a second."""
PACED_FROM = 4
"""Requests started in the last second from which a pushback also sets a pace: below it,
the retry's own backoff spaces the few requests enough."""
SAME_LIMIT = 0.75
"""A pushback at no less than this fraction of the level (connections, requests a second) of
the host's last one is at the same limit: the cut keeps :data:`GENTLE_CUT` of it, not half."""
GENTLE_CUT = 0.8
"""What a pushback at the same limit keeps of the level: 5 connections refused by a server
that serves 4 leave a window of 4."""


def _cut(level: float, last: float | None) -> float:
    """The level after a pushback at ``level`` when the previous one was at ``last``: half of
    it, or :data:`GENTLE_CUT` of it when the server refused at about the same level again."""
    if last is not None and level >= SAME_LIMIT * last:
        return level * GENTLE_CUT
    return level / 2


@dataclass
class _Host:
    """One host's connections: in use, the most ever, the adaptive window and pace."""

    in_use: int = 0
    peak: int = 0
    window: float | None = None
    rate: float | None = None
    """Requests started a second at most (``None``: as many as the window allows)."""
    refused_width: float | None = None
    """Connections in use at the last pushback."""
    refused_rate: float | None = None
    """Requests a second at the last pushback that set a pace."""
    fastest: float = 0.0
    """The fastest pace a pushback came at: from twice it on, no pace."""
    next_start: float = 0.0
    starts: deque[float] = field(default_factory=deque)
    cut_at: float = float("-inf")
    not_before: float = 0.0

    def open(self, now: float, per_host: int | None) -> bool:
        """Whether a connection may start now: no Retry-After pending, the pace allows it,
        and fewer are in use than the cap and the window."""
        if now < self.not_before or (self.rate is not None and now < self.next_start):
            return False
        room = per_host
        if self.window is not None:
            room = int(self.window) if room is None else min(room, int(self.window))
        return room is None or self.in_use < room

    def started(self, now: float) -> None:
        """A connection started: count it, and space the next one when paced."""
        self.in_use += 1
        self.peak = max(self.peak, self.in_use)
        self.starts.append(now)
        self._forget(now)
        if self.rate is not None:
            self.next_start = max(self.next_start, now) + 1 / self.rate

    def widen(self, per_host: int | None) -> None:
        """An answer without pushback (additive increase); at full width, no limit again."""
        if self.window is not None:
            step = 1 / self.window
            if self.refused_width is not None and self.window + 1 >= self.refused_width:
                step /= self.window  # the last connection below the width refused: probe slowly
            self.window += step
            widest = self.peak if per_host is None else min(self.peak, per_host)
            if self.window >= widest:
                self.window = None  # as wide as ever needed: no window again
        if self.rate is not None:  # about one request/s more each second
            self.rate += 1 / self.rate
            if self.rate >= 2 * self.fastest:
                self.rate = None  # well past any pace a pushback came at: no pacing

    def cut(self, now: float) -> tuple[float, float | None]:
        """A pushback (multiplicative decrease): of the connections in use, and of the requests
        of the last second when there were enough of them to need a pace, half (or
        :data:`GENTLE_CUT` at the same limit as the last pushback). Returns the new window and
        pace."""
        self.cut_at = now
        width = float(self.in_use if self.window is None else min(int(self.window), self.in_use))
        self.window = max(1.0, _cut(width, self.refused_width))
        self.refused_width = width
        self._forget(now)
        recent = float(len(self.starts))
        if self.rate is not None or recent >= PACED_FROM:
            pace = recent if self.rate is None else min(self.rate, recent)
            self.rate = max(MIN_RATE, _cut(pace, self.refused_rate))
            self.refused_rate = pace
            self.fastest = max(self.fastest, pace)
            self.next_start = now + 1 / self.rate
        return self.window, self.rate

    def _forget(self, now: float) -> None:
        """Keep the starts of the last second only: the rate now."""
        while self.starts and self.starts[0] < now - 1.0:
            self.starts.popleft()
