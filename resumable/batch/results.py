"""What a batch reports: its :class:`BatchResult` at the end, and :class:`JobStatus` snapshots
while it runs (with the :class:`FileProgress` of each file in flight).

Values only: the live counts behind them are kept by :class:`~resumable.batch.tally.Tally`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import BatchError, Cancelled
from ..progress.lines import format_bytes  # one unit system: binary, as the bars

if TYPE_CHECKING:
    from ..engine import DownloadResult

__all__ = ["BatchResult", "FileProgress", "JobStatus"]


@dataclass(frozen=True)
class BatchResult:
    """The outcome of a batch. Per-item failures are here, never raised by ``download_many``.

    Attributes:
        ok: one :class:`DownloadResult` per file now complete (downloaded, resumed, skipped).
        failed: ``(item, error)`` pairs, ``error`` a typed :class:`ResumableError`.
        cancelled: the job was cancelled before every item ran.
        deleted: files removed by ``sync`` (downloaded earlier, gone at the source).
    """

    ok: list[DownloadResult] = field(default_factory=list)
    failed: list[tuple[object, BaseException]] = field(default_factory=list)
    cancelled: bool = False
    deleted: list[Path] = field(default_factory=list)

    def raise_for_errors(self) -> None:
        """Raise :class:`BatchError` if any item failed (or the job was cancelled)."""
        if self.failed:
            raise BatchError(self.failed, succeeded=len(self.ok))
        if self.cancelled:
            raise Cancelled(f"the batch was cancelled after {len(self.ok)} files")

    @property
    def summary(self) -> str:
        """One line, e.g. ``Done: 120 files downloaded, 3 resumed, 10 skipped, 21 errors``."""
        counts = {"downloaded": 0, "resumed": 0, "skipped": 0}
        for result in self.ok:
            counts[result.status] += 1
        # Items stopped by the cancel are not errors: their partials are kept to resume.
        stopped = sum(isinstance(exc, Cancelled) for _, exc in self.failed)
        errors = len(self.failed) - stopped
        if self.cancelled:
            text = f"Cancelled: {len(self.ok)} files done ({counts['downloaded']} downloaded"
        else:
            text = f"Done: {counts['downloaded']} files downloaded"
        for status in ("resumed", "skipped"):
            if counts[status]:
                text += f", {counts[status]} {status}"
        text += ")" if self.cancelled else ""
        if stopped:
            text += f", {stopped} in flight kept resumable"
        if self.deleted:
            text += f", {len(self.deleted)} deleted by sync"
        if self.cancelled and not errors:
            return text
        return f"{text}, {errors} error{'s' if errors != 1 else ''}"

    def __str__(self) -> str:
        return self.summary


@dataclass(frozen=True)
class FileProgress:
    """A file in flight: its path, bytes on disk so far, and size if known."""

    path: Path
    done: int
    total: int | None


@dataclass(frozen=True)
class JobStatus:
    """A snapshot of a running (or finished) job. ``str()`` gives a one-line summary."""

    queued: int
    active: int
    downloaded: int
    resumed: int
    skipped: int
    failed: int
    bytes_transferred: int
    rate: float
    """Bytes per second over the last few seconds."""
    eta: float | None
    """Seconds left, estimated from finished files once the input is exhausted; else None."""
    in_flight: tuple[FileProgress, ...]
    errors: tuple[tuple[object, BaseException], ...]
    finished: bool
    cancelled: bool
    inputs_read: bool = True
    """Whether every input has been read. A cancelled job stops reading them: its ``queued``
    counts only those read and not started, not the rest of a generator or template."""

    def __str__(self) -> str:
        done = self.downloaded + self.resumed + self.skipped
        eta = f", ETA {self.eta:.0f}s" if self.eta is not None else ""
        state = "cancelled" if self.cancelled else "finished" if self.finished else "running"
        counts = f"{self.failed} failed, {self.active} active, {self.queued} queued"
        if self.cancelled:  # stopped by the cancel is not failed: those partials are kept
            stopped = sum(isinstance(exc, Cancelled) for _, exc in self.errors)
            errors = self.failed - stopped
            counts = f"{stopped} in flight kept resumable, " + (
                f"{errors} failed, " if errors else ""
            )
            counts += f"{self.active} active, {self.queued} not started"
            counts += "" if self.inputs_read else " (and the inputs not yet read)"
        return (
            f"{state}: {done} done ({self.skipped} skipped), {counts}; "
            f"{format_bytes(self.bytes_transferred)} at {format_bytes(self.rate)}/s{eta}"
        )
