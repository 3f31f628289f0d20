"""The feeder of a batch: its inputs, consumed lazily into a small queue for the runner.

A generator of 100k items needs no more memory than a few dozen queued: the feeder thread tops
the queue up to a high mark and then sleeps until the runner's threads have taken it down to a
low mark. (A queue bounded at one size woke the feeder for every item taken: a GIL hand-over
per file.)

Neither end waits forever on the other: the feeder stops when no consumer is left to take its
items, and :meth:`Feeder.take` returns :data:`END` once the feeder is gone and the queue is
empty (or the batch is cancelled while the feeder is still inside the caller's ``items``).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from .._threads import POLL
from ..errors import InvalidArgument, ResumableError
from .items import Lister, Work, iter_work
from .tally import Tally

if TYPE_CHECKING:
    from .checksums import ChecksumTable
    from .revisits import Revisits

__all__ = ["END", "Feeder", "Input", "describe"]

END = object()
"""What :meth:`Feeder.take` returns once there is nothing more to take."""

Input = Work | tuple[object, Exception]
"""An item to run, or an input that could not be expanded with its typed error."""


class Feeder:
    """Feeds ``items`` to ``consumers`` threads (set before the feeder thread starts)."""

    def __init__(
        self,
        items: Iterable[object],
        lister: Lister,
        tally: Tally,
        cancel: threading.Event,
        *,
        checksums: ChecksumTable | None,
        high: int,
        revisits: Revisits | None = None,
    ) -> None:
        self._items = items
        self._lister = lister
        self._tally = tally
        self._cancel = cancel
        self._checksums = checksums
        self._queue: queue.Queue[object] = queue.Queue()
        self._high = high
        self._low = high // 2
        self._hungry = threading.Event()
        self._revisits = revisits  # items other processes hold, handed out again (see .claims)
        self.consumers: Sequence[threading.Thread] = ()
        """The threads taking items, one :data:`END` each at the end."""
        self.thread: threading.Thread | None = None
        """The thread running :meth:`feed` (``take`` watches whether it is alive)."""

    def feed(self) -> None:
        """Consume the inputs into the queue; run on the feeder thread."""
        try:
            for work in iter_work(self._items, self._lister):
                if self._cancel.is_set():
                    break
                if self._checksums is not None and isinstance(work, Work):
                    work = self._checksums.attach(work)
                self._tally.queued(+1)
                if not self._put(work) or not self._put_due():
                    return  # nobody left to take items (each death cancelled the job)
                if self._cancel.is_set():
                    break
            else:
                self._tally.exhausted()
                self._revisit()
        except BaseException as exc:  # the input iterator itself failed
            self._tally.failed("<input>", _input_error(exc))
        finally:
            for _ in self.consumers:
                self._queue.put(END)

    def _revisit(self) -> None:
        """Once the inputs are all sent: hand deferred items out again until every item is
        settled (complete, failed, or given up by a cancel)."""
        revisits = self._revisits
        while revisits is not None and not self._cancel.is_set():
            if not self._put_due() or revisits.settled(POLL):
                return

    def _put_due(self) -> bool:
        """Queue the deferred items whose time has come; ``False`` as :meth:`_put`."""
        for work in self._revisits.due() if self._revisits is not None else ():
            self._tally.queued(+1)
            if not self._put(work):  # type: ignore[arg-type]  # a Work, deferred by the steps
                return False
        return True

    def _put(self, work: Input) -> bool:
        """Queue ``work`` below the high mark; ``False`` if no consumer is alive to take it."""
        while not self._cancel.is_set():
            if self._queue.qsize() < self._high:
                if self._revisits is not None:
                    self._revisits.sent()
                self._queue.put(work)
                return True
            self._hungry.clear()
            if self._queue.qsize() >= self._high:  # (re-read: a set() may have come)
                self._hungry.wait(POLL)
            if not any(consumer.is_alive() for consumer in self.consumers):
                return False
        return True

    def take(self, timeout: float | None = None) -> object:
        """The next :data:`Input` (``queue.Empty`` after ``timeout``), or :data:`END`; wakes
        the feeder at the low mark.

        Never waits on a feeder that is gone: it always leaves an ``END`` per consumer, but a
        queue that stays empty once it died means the end as well. Nor, once cancelled, on one
        still inside the caller's ``items`` (a generator waiting for input)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if self._revisits is not None:
            self._revisits.take(None)  # done with the last item (see Revisits)
        while True:
            step = POLL if deadline is None else max(0.0, min(POLL, deadline - time.monotonic()))
            try:
                work = self._queue.get(timeout=step)
                break
            except queue.Empty:
                gone = self.thread is None or not self.thread.is_alive()
                if (gone or self._cancel.is_set()) and self._queue.empty():
                    return END
                if deadline is not None and time.monotonic() >= deadline:
                    raise
        if self._queue.qsize() <= self._low:
            self._hungry.set()
        if self._revisits is not None and work is not END:
            self._revisits.take(work)
        return work


def _input_error(exc: BaseException) -> ResumableError:
    """The items iterable raised: a typed error saying so (a listing's own errors are typed)."""
    if isinstance(exc, ResumableError):
        return exc
    error = InvalidArgument(f"the items given to the batch raised {describe(exc)}")
    error.__cause__ = exc
    return error


def describe(exc: BaseException) -> str:
    """``Type: text``, or the type alone when the exception has no text."""
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
