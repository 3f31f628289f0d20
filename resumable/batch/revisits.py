"""Items to look at again: the ones another live process holds (see :mod:`.claims`).

A batch call returns only when each of its items is complete or failed for good, also the items
other processes are downloading. A worker that finds an item claimed by a live process does not
wait for it (it would sit idle while other items could download): it *defers* the item here,
and the feeder hands it out again after a delay, until the other process has
finished it (then it is reported as skipped: the file is in place), failed it for good, or died
(its claim goes stale and the item is taken over, resuming its ``.partial``).

The feeder must not end while any item may still be deferred: it knows how many items it sent,
and a worker is done with an item when it asks for the next one (each local worker runs one
item at a time). So :meth:`Revisits.settled` is true once every item sent has been given back
and none waits here.

The delay starts short (``interval``: the last items of a batch are noticed soon after the
process holding them finishes) and doubles at each look up to ``longest``, so a 10 GB shard
another process fetches for minutes costs a read of its claim every few seconds, not ten.
"""

from __future__ import annotations

import heapq
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..engine import Engine
    from .claims import Claims

__all__ = ["Revisits", "cooperate"]


class Revisits:
    """The deferred items of one batch, and the count of items out with the workers."""

    def __init__(self, interval: float, longest: float = 2.0) -> None:
        self.interval = interval
        self.longest = max(interval, longest)
        self._delays: dict[str, float] = {}  # by key: the next delay of an item looked at before
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # an item given back or deferred
        self._waiting: list[tuple[float, int, object]] = []  # a heap, by due time
        self._count = 0  # ties in due time go in order of deferral
        self._out = 0  # items sent and not yet given back
        self._holding: set[int] = set()  # workers (thread idents) that hold an item

    def sent(self) -> None:
        """The feeder queued an item (a new one or a revisit)."""
        with self._lock:
            self._out += 1

    def take(self, item: object | None) -> None:
        """A worker asked for its next item (it is done with the last one) and got ``item``
        (``None``: nothing, the end)."""
        me = threading.get_ident()
        with self._lock:
            if me in self._holding:
                self._holding.discard(me)
                self._out -= 1
                self._changed.notify_all()
            if item is not None:
                self._holding.add(me)

    def defer(self, work: object, key: str) -> None:
        """Look at ``work`` (named ``key``) again after a while (called while holding it)."""
        with self._lock:
            delay = self._delays.get(key, self.interval)
            self._delays[key] = min(2 * delay, self.longest)
            self._count += 1
            heapq.heappush(self._waiting, (time.monotonic() + delay, self._count, work))
            self._changed.notify_all()

    def due(self) -> list[object]:
        """The deferred items whose time has come."""
        now = time.monotonic()
        out = []
        with self._lock:
            while self._waiting and self._waiting[0][0] <= now:
                out.append(heapq.heappop(self._waiting)[2])
        return out

    def settled(self, timeout: float) -> bool:
        """Every item sent was given back, and none waits to be looked at again. Otherwise
        wait until that may have changed, or the next deferred item is due (at most
        ``timeout`` seconds), and say ``False``."""
        with self._lock:
            if self._out <= 0 and not self._waiting:
                return True
            if self._waiting:
                timeout = min(timeout, self._waiting[0][0] - time.monotonic())
            if timeout > 0:
                self._changed.wait(timeout)
            return False


def cooperate(engine: Engine, dest_dir: Path, local: bool) -> tuple[Claims | None, Revisits | None]:
    """The claims and revisits of a batch into ``dest_dir``: on for the local runner unless the
    downloader was made with ``locking=False`` (no coordination between processes wanted).

    The executor fan-out has none: its single dispatcher sends many items at once, so a worker's
    "next item" says nothing of the last one, and one caller already splits its batch over the
    executor's workers."""
    if not (local and engine.settings.locking):
        return None, None
    from .claims import Claims

    claims = Claims(dest_dir / ".resumable" / "claims")
    return claims, Revisits(min(0.1, claims.lease / 8), min(0.5, claims.lease / 4))
