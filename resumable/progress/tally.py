"""Totals across files, built from progress events: the numbers behind an overall bar.

Renderers (:class:`~resumable.TqdmProgress`, its log-line fallback, the fsspec adapter) all need
the same arithmetic, and it is easy to get wrong: events carry *absolute* per-file values, a
file can be rewound (a restart from zero after the server ignored ``Range``), a resumed file
starts with bytes this run did not fetch, and a batch of 100k files must not keep 100k records.

So a :class:`Tally` keeps one record per file *in flight* and folds finished files into sums.
For each file it remembers ``base``, the lowest ``done`` seen: bytes that were already on disk
when this run first saw the file. ``fetched`` (bytes this run moved forward) and ``expected``
(bytes this run has to move) exclude them, so a rate computed from ``fetched`` is honest, and
a rewind lowers ``base`` (the bytes are to be fetched again) instead of producing a negative
count.

Not thread-safe: renderers hold their own lock around :meth:`Tally.add`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import EventKind, ProgressEvent

__all__ = ["FileState", "Tally"]

_ENDS = (EventKind.DONE, EventKind.SKIPPED, EventKind.FAILED)


@dataclass
class FileState:
    """One file in flight: bytes on disk (``done``), size if known, and the bytes it had
    when first seen (``base``, lowered by a rewind)."""

    path: Path
    done: int
    total: int | None
    base: int


class Tally:
    """Running totals over every file seen so far.

    Args:
        total_files: how many files the batch holds, if the caller knows (for ``N/M files``
            and to estimate the bytes of files not seen yet).
    """

    def __init__(self, total_files: int | None = None) -> None:
        self.total_files = total_files
        self.in_flight: dict[Path, FileState] = {}
        self.finished = 0  # done or skipped
        self.failed = 0
        self.skipped = 0
        # Sums over finished files (in-flight files are added on demand).
        self._done = 0
        self._size = 0
        self._base = 0
        self._base_known = 0  # bases of files whose size is known
        self._seen_known = 0  # finished files whose size is known
        self._unknown = 0  # finished files whose size was never known

    def add(self, event: ProgressEvent) -> FileState | None:
        """Account for one event; return the file's state (``None`` once it has ended)."""
        state = self.in_flight.get(event.path)
        if state is None:
            state = FileState(event.path, event.done, event.total, event.done)
            self.in_flight[event.path] = state
        state.done = event.done
        if event.total is not None:
            state.total = event.total
        state.base = min(state.base, event.done)
        if event.kind not in _ENDS:
            return state
        del self.in_flight[event.path]
        if event.kind is EventKind.FAILED:
            self.failed += 1
        else:
            self.finished += 1
            self.skipped += event.kind is EventKind.SKIPPED
        self._done += state.done
        self._base += state.base
        if state.total is None:
            self._unknown += 1
        else:
            self._size += state.total
            self._base_known += state.base
            self._seen_known += 1
        return None

    @property
    def seen(self) -> int:
        """Files seen so far (finished, failed or in flight)."""
        return self.finished + self.failed + len(self.in_flight)

    @property
    def done(self) -> int:
        """Bytes on disk across every file seen (absolute, resumed bytes included)."""
        return self._done + sum(s.done for s in self.in_flight.values())

    @property
    def size(self) -> int:
        """Sum of the sizes known so far."""
        return self._size + sum(s.total or 0 for s in self.in_flight.values())

    @property
    def fetched(self) -> int:
        """Bytes this run moved forward: ``done`` less what was on disk when each file was
        first seen (and less bytes thrown away by a rewind)."""
        return self.done - self._base - sum(s.base for s in self.in_flight.values())

    def expected(self) -> int | None:
        """Bytes this run has to fetch in all: the known sizes less their ``base``, plus, when
        ``total_files`` is known, the files not seen yet at the average seen so far. ``None``
        while no size is known."""
        known = [s for s in self.in_flight.values() if s.total is not None]
        count = self._seen_known + len(known)
        if not count:
            return None
        total = self._size - self._base_known + sum((s.total or 0) - s.base for s in known)
        unseen = (self.total_files or 0) - self.seen
        if unseen > 0:
            total += unseen * total // count
        return max(total, self.fetched)

    def files_label(self) -> str:
        """``"3/10 files"``, or ``"3 files"`` when the count is not known; failures appended."""
        if self.total_files is not None:
            text = f"{self.finished}/{self.total_files} files"
        else:
            text = f"{self.finished} file{'' if self.finished == 1 else 's'}"
        return text + (f", {self.failed} failed" if self.failed else "")
