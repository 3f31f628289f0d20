"""Progress as periodic log lines: what :class:`~resumable.TqdmProgress` does without a terminal.

A progress bar redraws one line with carriage returns. Written to a file, a CI log or a Slurm
``.out`` that becomes one endless line of garbage, so when the output is not a TTY (and not a
notebook) progress is reported as a complete line every ``interval`` seconds instead::

    resumable: 3/10 files, 1.2 GiB of 5.0 GiB (24%), 45.3 MiB/s, ETA 1:30; in flight: a.tar 45%

plus a line for each failed file and a last line when the renderer is closed.

Lines are records of the ``resumable.progress`` logger (INFO; failures WARNING) when logging
would show them (a handler exists on the logger's chain and the level is enabled), so they follow
the application's format. Otherwise they are written to ``file`` (default ``sys.stderr``): a
script that asked for progress sees it without setting up logging first, and a
``basicConfig(level=WARNING)`` does not silence progress that was asked for.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import TextIO

from ..urls import redact_text
from . import EventKind, ProgressEvent
from .tally import Tally

__all__ = ["LineProgress", "format_bytes", "format_duration"]

log = logging.getLogger("resumable.progress")


def format_bytes(n: float) -> str:
    """``1536`` -> ``"1.5 KiB"``; powers of 1024, as tqdm's bars show them."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def format_duration(seconds: float) -> str:
    """``90`` -> ``"1:30"``, ``3725`` -> ``"1:02:05"``."""
    minutes, secs = divmod(int(seconds + 0.5), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class LineProgress:
    """Report a :class:`Tally` as a log line every ``interval`` seconds (thread-safety is the
    caller's: :class:`~resumable.TqdmProgress` calls it under its lock)."""

    def __init__(
        self,
        tally: Tally,
        *,
        interval: float = 30.0,
        file: TextIO | None = None,
        max_shown: int = 4,
        clock: Callable[[], float] = time.monotonic,
        show_failures: bool = True,
    ) -> None:
        self._tally = tally
        self._show_failures = show_failures
        self._interval = interval
        self._file = file
        self._max_shown = max_shown
        self._clock = clock
        self._start = self._last = clock()
        self._last_fetched = 0
        self._rate = 0.0
        self._closed = False

    def on_event(self, event: ProgressEvent) -> None:
        """Called after the tally has taken ``event``."""
        if event.kind is EventKind.FAILED and self._show_failures:
            self._say(f"{event.path.name} failed: {event.error}", logging.WARNING)
        now = self._clock()
        if now - self._last >= self._interval:
            self._report(now)

    def close(self) -> None:
        """The last line: the totals."""
        tally = self._tally
        if tally.seen == 0 or self._closed:
            return
        self._closed = True
        elapsed = self._clock() - self._start
        rate = tally.fetched / elapsed if elapsed > 0 else 0.0
        self._say(
            f"{tally.files_label()}, {format_bytes(tally.fetched)} fetched in "
            f"{format_duration(elapsed)} ({format_bytes(rate)}/s)"
        )

    def _report(self, now: float) -> None:
        tally = self._tally
        fetched = tally.fetched
        self._rate = (fetched - self._last_fetched) / (now - self._last)
        self._last, self._last_fetched = now, fetched
        expected = tally.expected()
        text = f"{tally.files_label()}, {format_bytes(fetched)}"
        if expected:
            text += f" of {format_bytes(expected)} ({100 * fetched / expected:.0f}%)"
        text += f", {format_bytes(max(self._rate, 0.0))}/s"
        if expected and self._rate > 0:
            text += f", ETA {format_duration((expected - fetched) / self._rate)}"
        files = list(tally.in_flight.values())
        if files:
            shown = [
                f"{s.path.name} {100 * s.done / s.total:.0f}%"
                if s.total
                else f"{s.path.name} {format_bytes(s.done)}"
                for s in files[: self._max_shown]
            ]
            more = len(files) - len(shown)
            text += "; in flight: " + ", ".join(shown) + (f" (+{more} more)" if more else "")
        self._say(text)

    def say(self, text: str, level: int = logging.INFO) -> None:
        """One line, to the ``resumable.progress`` logger or the stream (see the module)."""
        self._say(text, level)

    def _say(self, text: str, level: int = logging.INFO) -> None:
        text = redact_text(text)  # the stream bypasses the loggers' redacting filter
        if log.isEnabledFor(level) and log.hasHandlers():
            log.log(level, "%s", text)
        else:
            stream = self._file if self._file is not None else sys.stderr
            stream.write(f"resumable: {text}\n")
            stream.flush()
