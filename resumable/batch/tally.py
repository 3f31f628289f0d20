"""The live counts of a running batch: what is queued, in flight, done, failed and deleted.

One lock guards them all, so a :meth:`Tally.status` snapshot is consistent (its counts, bytes
and files in flight are from the same instant). The feeder, the runners, the per-item steps and
``sync`` write here; the :class:`~resumable.Job` handle reads :meth:`Tally.status` and
:meth:`Tally.result`. Stored errors are light (:func:`resumable._light.light`): a batch of 100k
failures keeps no tracebacks nor responses alive.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING

from .._light import light
from ..progress import EventKind, ProgressEvent
from .results import BatchResult, FileProgress, JobStatus

if TYPE_CHECKING:
    from ..engine import DownloadResult

__all__ = ["Tally"]

_LIVE = (EventKind.STARTED, EventKind.PROGRESS, EventKind.RETRYING)


class Tally:
    """Counts, results and failures of one batch; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ok: list[DownloadResult] = []
        self._failed: list[tuple[object, BaseException]] = []
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

    def ok(self, result: DownloadResult) -> None:
        with self._lock:
            self._ok.append(result)
            self._counts[result.status] += 1
            self._bytes_done += result.bytes_transferred

    def failed(self, item: object, exc: BaseException) -> None:
        light(exc)  # kept until the batch is dropped: no frames, no responses (see _light)
        with self._lock:
            self._failed.append((item, exc))

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
            finished_files = len(self._ok) + len(self._failed)
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
                failed=len(self._failed),
                bytes_transferred=current,
                rate=rate,
                eta=eta if left else 0.0,
                in_flight=in_flight,
                errors=tuple(self._failed),
                finished=finished,
                cancelled=cancelled,
                inputs_read=self._exhausted,
            )
