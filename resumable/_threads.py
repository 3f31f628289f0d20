"""Threads that cannot die silently, and waits that cannot outlive what they wait for.

Why: a helper thread that dies from an exception leaves its waiters waiting for something that
will never come. The ledger's writer died on a full disk (``database or disk is full``) and every
batch that flushed the ledger (``sync=True``, a processor) waited on ``queue.join()`` forever.

Two rules, one mechanism each:

- Every thread the library starts is a :class:`Guarded` thread: whatever escapes its target
  (even a ``BaseException``) is kept in ``error`` and handed to ``on_error``, whose job is to turn
  it into a typed error for the thread's waiters (fail the items, stop the batch). Nothing is
  left to ``threading.excepthook``, which only prints.
- Every wait on another thread goes through :func:`join_queue` or :func:`put_while`: they wait
  in short steps and give up (``False``) once what they wait for is no longer alive, instead of
  ``queue.join()`` or a blocking ``put`` that only that thread could end.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["POLL", "Guarded", "join_queue", "put_while"]

log = logging.getLogger("resumable")

POLL = 0.1
"""Seconds between two liveness checks of a wait (short: a dead peer is noticed at once)."""

OnError = Callable[[BaseException], None]


class Guarded(threading.Thread):
    """A daemon thread whose death is never silent: see the module docstring.

    ``on_error`` runs on the dying thread, after ``error`` is set; if it raises in turn, that is
    logged (the thread is gone either way, and ``error`` still says why).
    """

    def __init__(
        self,
        target: Callable[..., object],
        *,
        name: str,
        args: tuple[Any, ...] = (),
        on_error: OnError | None = None,
    ) -> None:
        super().__init__(name=name, daemon=True)
        self._call: Callable[[], object] | None = lambda: target(*args)
        self._on_error = on_error
        self.error: BaseException | None = None

    def run(self) -> None:
        call, self._call = self._call, None  # drop the target's references once it ran
        try:
            assert call is not None
            call()
        except BaseException as exc:
            self.error = exc
            self._report(exc)

    def _report(self, exc: BaseException) -> None:
        if self._on_error is None:
            log.error("thread %s stopped: %s: %s", self.name, type(exc).__name__, exc)
            return
        try:
            self._on_error(exc)
        except BaseException:
            log.exception("thread %s stopped, and reporting why failed", self.name)


def join_queue(pending: queue.Queue[Any], alive: Callable[[], bool]) -> bool:
    """``pending.join()`` while ``alive()``: ``True`` once every task is done, ``False`` if the
    consumer stopped first (its tasks will never be done)."""
    with pending.all_tasks_done:
        while pending.unfinished_tasks:
            if not alive():
                return False
            pending.all_tasks_done.wait(POLL)
    return True


def put_while(target: queue.Queue[Any], item: object, alive: Callable[[], bool]) -> bool:
    """``target.put(item)`` while ``alive()``: ``False`` (not put) if the consumer stopped
    first, since nobody would make room in a full queue then."""
    while alive():
        try:
            target.put(item, timeout=POLL)
            return True
        except queue.Full:
            continue
    return False
