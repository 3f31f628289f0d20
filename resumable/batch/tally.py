"""The live counts of a running batch: what is queued, in flight, done, failed and deleted.

One lock guards them all, so a :meth:`Tally.status` snapshot is consistent (its counts, bytes
and files in flight are from the same instant). The feeder, the runners, the per-item steps and
``sync`` write here; the :class:`~resumable.Job` handle reads :meth:`Tally.status` and
:meth:`Tally.result`. Stored errors are light (:func:`resumable._light.light`): a batch of 100k
failures keeps no tracebacks nor responses alive.

Each item settled (:meth:`Tally.ok`, :meth:`Tally.failed`) is also handed, as a
:class:`~resumable.batch.completions.Completion`, to ``on_settled``: the one place every runner
and every path to an outcome goes through, so ``as_completed`` and ``prefetch`` see them all.
A tally made with ``retain=False`` keeps counts only: ``prefetch`` hands each result to its
consumer and must not hold 100k of them (``result()`` then lists no results).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from .._light import light
from ..progress import EventKind, ProgressEvent
from .completions import Completion
from .results import BatchResult, FileProgress, JobStatus

if TYPE_CHECKING:
    from ..engine import DownloadResult

__all__ = ["Tally"]

_LIVE = (EventKind.STARTED, EventKind.PROGRESS, EventKind.RETRYING)


class Tally:
    """Counts, results and failures of one batch; thread-safe."""

    def __init__(
        self,
        *,
        on_settled: Callable[[Completion], None] | None = None,
        retain: bool = True,
    ) -> None:
        self._lock = threading.Lock()
        self._on_settled = on_settled
        self._retain = retain
        self._ok: list[DownloadResult] = []
        self._failed: list[tuple[object, BaseException]] = []
        self._settled = {"ok": 0, "failed": 0}
        self._deleted: list[Path] = []
        self._in_flight: dict[Path, FileProgress] = {}
        self._counts = {"downloaded": 0, "resumed": 0, "skipped": 0, "queued": 0}
        self._bytes_done = 0  # bytes_transferred of finished files
        self._samples: deque[tuple[float, int]] = deque(maxlen=64)
        self._exhausted = False
        self._started = time.monotonic()

    # -- writers ----------------------------------------------------------------------------------

    def queued(self, change: int) -> None:
        """An input entered the queue (``+1``) or a runner took one (``-1``)."""
        with self._lock:
            self._counts["queued"] += change

    def exhausted(self) -> None:
        """The inputs are all consumed (from now on ``status()`` can estimate an ETA)."""
        with self._lock:
            self._exhausted = True

    @property
    def is_exhausted(self) -> bool:
        with self._lock:
            return self._exhausted

    def event(self, event: ProgressEvent) -> None:
        """A progress event of a file in flight (its bytes so far, for ``status()``)."""
        if event.kind in _LIVE:
            with self._lock:
                self._in_flight[event.path] = FileProgress(event.path, event.done, event.total)

    def in_flight(self, path: Path) -> FileProgress | None:
        """What is known of the file at ``path`` while it is in flight."""
        with self._lock:
            return self._in_flight.get(path)

    def settled(self, path: Path) -> None:
        """The file at ``path`` is no longer in flight (done, failed or given up)."""
        with self._lock:
            self._in_flight.pop(path, None)

    def ok(self, result: DownloadResult, key: object = None) -> None:
        """An item is complete; ``key``: the work item it came from (for ``on_settled``)."""
        with self._lock:
            if self._retain:
                self._ok.append(result)
            self._settled["ok"] += 1
            self._counts[result.status] += 1
            self._bytes_done += result.bytes_transferred
        if self._on_settled is not None:
            self._on_settled(Completion(key, result=result))

    def failed(self, item: object, exc: BaseException, key: object = None) -> None:
        """``item`` failed with ``exc``; ``key``: its work item, if it had one."""
        light(exc)  # kept until the batch is dropped: no frames, no responses (see _light)
        with self._lock:
            if self._retain:
                self._failed.append((item, exc))
            self._settled["failed"] += 1
        if self._on_settled is not None:
            self._on_settled(Completion(item if key is None else key, error=exc))

    def deleted(self, path: Path) -> None:
        with self._lock:
            self._deleted.append(path)

    # -- readers ----------------------------------------------------------------------------------

    def result(self, *, cancelled: bool) -> BatchResult:
        with self._lock:
            return BatchResult(
                ok=list(self._ok),
                failed=list(self._failed),
                cancelled=cancelled,
                deleted=list(self._deleted),
            )

    def status(self, *, finished: bool, cancelled: bool) -> JobStatus:
        """A snapshot; the rate is measured over the last few calls (at least a second)."""
        now = time.monotonic()
        with self._lock:
            in_flight = tuple(self._in_flight.values())
            current = self._bytes_done + sum(f.done for f in in_flight)
            self._samples.append((now, current))
            then, earlier = self._samples[0]
            if now - then < 1.0 or len(self._samples) < 2:
                then, earlier = self._started, 0
            rate = (current - earlier) / (now - then) if now > then else 0.0
            finished_files = self._settled["ok"] + self._settled["failed"]
            left = self._counts["queued"] + len(in_flight)
            eta = None
            if self._exhausted and finished_files and rate > 0:
                average = self._bytes_done / finished_files
                remaining = left * average - sum(f.done for f in in_flight)
                eta = max(0.0, remaining / rate)
            return JobStatus(
                queued=self._counts["queued"],
                active=len(in_flight),
                downloaded=self._counts["downloaded"],
                resumed=self._counts["resumed"],
                skipped=self._counts["skipped"],
                failed=self._settled["failed"],
                bytes_transferred=current,
                rate=rate,
                eta=eta if left else 0.0,
                in_flight=in_flight,
                errors=tuple(self._failed),
                finished=finished,
                cancelled=cancelled,
                inputs_read=self._exhausted,
            )
