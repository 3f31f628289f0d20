"""Progress events: what the downloader reports, and a null default.

The downloader never prints. It calls a user-supplied callable with a :class:`ProgressEvent`
carrying *absolute* values (``done`` bytes of this file so far, ``total`` if known), so that a
retry that rewinds a file (the server ignored Range and the download restarted) is just a smaller
``done``, not a negative increment the consumer has to understand.

An exception raised by the callback is never swallowed: it stops that download, and the partial
stays on disk to be resumed by the next call (a notebook user pressing "stop" relies on this).

Renderers live in this package's modules, which import these types and nothing imports them
back: :class:`~resumable.TqdmProgress` (bars, widgets or log lines, :mod:`resumable.progress.bars`,
over :mod:`.lines` and :mod:`.tally`) and :class:`~resumable.FsspecCallbackProgress` (feeds an
``fsspec.callbacks.Callback``, :mod:`resumable.progress.fsspec`). Neither tqdm nor fsspec is
imported until a renderer is used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

__all__ = ["EventKind", "ProgressCallback", "ProgressEvent", "null_progress"]


class EventKind(str, Enum):
    """What happened. A download emits ``started``, then ``progress`` events, possibly
    ``retrying``, then ``verified`` and ``done`` — or ``skipped``, or ``failed``.

    With a processor (``process=Untar(...)``, see :mod:`resumable.extract`), a verified archive
    then emits ``extracting`` events (``done``/``total``: archive bytes read so far / its size;
    ``members``: members written) and ``extracted`` once the result is in place."""

    STARTED = "started"
    PROGRESS = "progress"
    RETRYING = "retrying"
    VERIFIED = "verified"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"
    EXTRACTING = "extracting"
    EXTRACTED = "extracted"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class ProgressEvent:
    """One progress report for one file.

    Attributes:
        kind: what happened.
        url: the source URL, credentials redacted.
        path: the final destination path.
        done: bytes of this file on disk so far (absolute; it can go down after a restart).
        total: the file's size, or ``None`` when the source does not say.
        error: for ``retrying`` and ``failed``, the error.
        wait: for ``retrying``, the seconds until the next attempt.
        members: for ``extracting`` and ``extracted``, the archive members written so far.
    """

    kind: EventKind
    url: str
    path: Path
    done: int
    total: int | None
    error: BaseException | None = None
    wait: float | None = None
    members: int | None = None


ProgressCallback = Callable[[ProgressEvent], Any]


def null_progress(event: ProgressEvent) -> None:
    """The default callback: ignores every event."""
