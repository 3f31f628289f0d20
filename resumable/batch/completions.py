"""Items as they settle: the log behind :meth:`Job.as_completed <resumable.Job.as_completed>`.

Every item of a batch ends in exactly one :class:`Completion` (its result, or its error), made
where the :class:`~resumable.batch.tally.Tally` counts it: after the file is verified and in
place (or skipped by the ledger), and with a processor after its extraction is recorded. That
one place serves both runners (local threads, the executor fan-out) and every path to an
outcome (downloaded, skipped, failed before or after its download, lost with a chunk).

:class:`Completions` is an append-only log read by any number of iterators, each from its
start: ``as_completed()`` called after the job ended yields everything, and called twice yields
everything twice. It holds references to the results the tally keeps anyway. Readers wait in
short steps (:data:`~resumable._threads.POLL`) so that Ctrl-C reaches them at once, and they ask
``ended()`` between steps, so a job whose threads died never leaves a reader waiting.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from .._threads import POLL
from ..errors import InvalidArgument

if TYPE_CHECKING:
    from ..engine import DownloadResult

__all__ = ["Completion", "Completions", "Errors", "check_errors"]

Errors = Literal["raise", "skip"]


@dataclass(frozen=True)
class Completion:
    """One item settled: ``result`` (complete, verified, in place) or ``error`` (typed).

    ``key`` says which: the :class:`~resumable.batch.items.Work` the runner settled, or for a
    failure outside any item (an input that could not be expanded, a thread that died) what the
    tally records it under (the raw input, ``"<input>"``, ``"<resumable-worker-0>"``...).
    """

    key: object
    result: DownloadResult | None = None
    error: BaseException | None = None


def check_errors(errors: object) -> Errors:
    """``errors=``: ``"raise"`` or ``"skip"``, else an :class:`InvalidArgument`."""
    if errors not in ("raise", "skip"):
        raise InvalidArgument(f'errors must be "raise" or "skip", got {errors!r}')
    return errors


class Completions:
    """An append-only, thread-safe log of :class:`Completion` values (see the module doc)."""

    def __init__(self) -> None:
        self._log: list[Completion] = []
        self._changed = threading.Condition()

    def add(self, completion: Completion) -> None:
        with self._changed:
            self._log.append(completion)
            self._changed.notify_all()

    def __len__(self) -> int:
        with self._changed:
            return len(self._log)

    def follow(self, ended: Callable[[], bool]) -> Iterator[Completion]:
        """Every completion, in the order they came, then those still to come, until
        ``ended()`` (no more will come) and all were given.

        ``ended()`` is asked *before* the log is read: once it is true every completion was
        added (the job sets its end after the last), so nothing added in between is lost.
        """
        given = 0
        while True:
            over = ended()
            with self._changed:
                if given == len(self._log):
                    if over:
                        return
                    self._changed.wait(POLL)  # short: Ctrl-C, and a dead job, seen at once
                    continue
                fresh = self._log[given:]
            given += len(fresh)
            yield from fresh
