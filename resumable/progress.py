"""Progress events: what the downloader reports, a null default, and a tqdm adapter.

The downloader never prints. It calls a user-supplied callable with a :class:`ProgressEvent`
carrying *absolute* values (``done`` bytes of this file so far, ``total`` if known), so that a
retry that rewinds a file (the server ignored Range and the download restarted) is just a smaller
``done``, not a negative increment the consumer has to understand.

An exception raised by the callback is never swallowed: it stops that download, and the partial
stays on disk to be resumed by the next call (a notebook user pressing "stop" relies on this).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

__all__ = ["EventKind", "ProgressCallback", "ProgressEvent", "TqdmProgress", "null_progress"]


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


_EXTRACT_KINDS = (EventKind.EXTRACTING, EventKind.EXTRACTED)

ProgressCallback = Callable[[ProgressEvent], Any]


def null_progress(event: ProgressEvent) -> None:
    """The default callback: ignores every event."""


class TqdmProgress:
    """Render progress events as tqdm bars, one per file in flight.

    Uses ``tqdm.auto``, so notebooks get widgets and terminals get text bars. ``tqdm`` is imported
    when the first instance is made, never by ``import resumable``. Safe to share between the
    threads of a batch.

    >>> import resumable
    >>> resumable.download(url, "shard.tar", progress=resumable.TqdmProgress())  # doctest: +SKIP

    Args:
        leave: keep finished bars on screen.
        **tqdm_kwargs: passed to every ``tqdm`` bar (``file=``, ``disable=``, ``mininterval=``).
    """

    def __init__(self, *, leave: bool = True, **tqdm_kwargs: Any) -> None:
        from tqdm.auto import tqdm

        self._tqdm = tqdm
        self._leave = leave
        self._kwargs = tqdm_kwargs
        self._bars: dict[Path, Any] = {}
        self._lock = threading.Lock()

    def __call__(self, event: ProgressEvent) -> None:
        with self._lock:
            if event.kind in _EXTRACT_KINDS:
                self._extract(event)
                return
            bar = self._bars.get(event.path)
            if bar is None:
                if event.kind in (EventKind.FAILED, EventKind.SKIPPED) and event.done == 0:
                    return
                bar = self._open(event)
            if event.total is not None and bar.total != event.total:
                bar.total = event.total
            # Absolute values: a rewind after a restart is a negative update, which tqdm accepts.
            if event.done != bar.n:
                bar.update(event.done - bar.n)
            if event.kind is EventKind.RETRYING:
                bar.set_postfix_str(f"retrying in {event.wait or 0:.1f}s: {event.error}"[:60])
            elif event.kind is EventKind.VERIFIED:
                bar.set_postfix_str("verified")
            elif event.kind in (EventKind.DONE, EventKind.SKIPPED, EventKind.FAILED):
                if event.kind is not EventKind.DONE:
                    bar.set_postfix_str(event.kind.value)
                bar.close()
                del self._bars[event.path]

    def _extract(self, event: ProgressEvent) -> None:
        """Extraction: a bar of its own (archive bytes read), the member count as postfix."""
        key = event.path.with_name(event.path.name + " (extract)")
        bar = self._bars.get(key)
        if bar is None:
            bar = self._open(event, key)
        if event.done != bar.n:
            bar.update(event.done - bar.n)
        bar.set_postfix_str(f"{event.members or 0} members", refresh=False)
        if event.kind is EventKind.EXTRACTED:
            bar.close()
            del self._bars[key]

    def _open(self, event: ProgressEvent, key: Path | None = None) -> Any:
        options: dict[str, Any] = {
            "total": event.total,
            "initial": event.done,
            "unit": "B",
            "unit_scale": True,
            "unit_divisor": 1024,
            "desc": (key or event.path).name,
            "leave": self._leave,
            "dynamic_ncols": True,
        }
        options.update(self._kwargs)
        bar = self._tqdm(**options)
        self._bars[key or event.path] = bar
        return bar

    def close(self) -> None:
        """Close every bar still open (after an interrupted batch)."""
        with self._lock:
            for bar in self._bars.values():
                bar.close()
            self._bars.clear()

    def __enter__(self) -> TqdmProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
