"""Who runs a batch's items: the :class:`Runner` protocol, and the local runner (threads).

A :class:`~resumable.Job` is composed of a feeder, the per-item :class:`~resumable.batch.steps.
Steps`, a tally and a runner; the runner only decides *where* the downloads run:

- :class:`LocalRunner`: ``workers`` threads here, each running one item at a time, start to
  finish (:meth:`Steps.run <resumable.batch.steps.Steps.run>`).
- :class:`~resumable.batch.fanout.FanoutRunner`: one dispatcher thread that checks items here
  and sends their downloads to a ``concurrent.futures.Executor`` in chunks.

Both take their items from the same :class:`~resumable.batch.feeder.Feeder` and settle them
through the same steps, so a batch behaves the same (ledger, ``sync``, status, cancel) whichever
runs it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, cast

from .._threads import Guarded
from ..cancel import CancelToken, watching
from .feeder import END, Feeder
from .items import Work

if TYPE_CHECKING:
    from ..engine import Engine
    from .steps import Steps
    from .tally import Tally

__all__ = ["Batch", "LocalRunner", "Runner"]


@dataclass(frozen=True)
class Batch:
    """What a runner works with: the parts of one running batch.

    Attributes:
        engine: runs the downloads (its ``settings``: workers, timeouts).
        steps: the per-item check, download and record.
        feeder: the items, one at a time (``take()``, :data:`~resumable.batch.feeder.END`).
        tally: the counts (``queued(-1)`` for each item taken).
        cancel: set once the batch is cancelled.
        sync_dir: collects directories to fsync once, when the batch ends.
        died: report that a runner's thread is dying (a bug, memory): the batch stops.
    """

    engine: Engine
    steps: Steps
    feeder: Feeder
    tally: Tally
    cancel: CancelToken
    sync_dir: Callable[[Path], None]
    died: Callable[[BaseException], None]


class Runner(Protocol):
    """Runs the items of a batch."""

    def threads(self, batch: Batch) -> list[threading.Thread]:
        """The threads (made, not started) that take ``batch.feeder``'s items until
        :data:`~resumable.batch.feeder.END` and leave each item settled."""
        ...

    def close(self) -> None:
        """Release what the runner holds, once its threads have ended or never started."""
        ...


class LocalRunner:
    """``workers`` threads in this process, one item at a time each."""

    def __init__(self, workers: int) -> None:
        self.workers = workers

    def threads(self, batch: Batch) -> list[threading.Thread]:
        return [
            Guarded(_work, args=(batch,), name=f"resumable-worker-{i}", on_error=batch.died)
            for i in range(self.workers)
        ]

    def close(self) -> None:
        """Nothing to release: the threads are the runner."""


def _work(batch: Batch) -> None:
    while (work := batch.feeder.take()) is not END:
        batch.tally.queued(-1)
        if batch.cancel.is_set():
            continue
        if not isinstance(work, Work):  # an input that could not be expanded: (raw, error)
            raw, error = cast("tuple[object, Exception]", work)
            batch.steps.input_failed(raw, error)
            continue
        with watching(batch.cancel):  # the item's requests (a sync's HEAD too) stop on cancel
            batch.steps.run(work, batch.sync_dir)
