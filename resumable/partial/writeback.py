"""Background writeback of a growing file, so the sync before promote is short."""

from __future__ import annotations

import logging
import os
import threading

from .._threads import Guarded

__all__ = ["Flusher"]

log = logging.getLogger("resumable")


class Flusher:
    """Flushes a growing file to disk in the background, so the sync before promote is short.

    ``kick()`` asks for an ``fdatasync`` on a helper thread (at most one at a time; kicks while
    one runs merge). The same writeback happens either way, but it overlaps the download instead
    of following it, and most of a single-stream partial is durable while it grows.
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._wanted = threading.Event()
        self._closing = False
        self.error: OSError | None = None  # why it stopped early (the final sync reports it)
        self._thread = Guarded(self._run, name="resumable-flush")
        self._thread.start()

    def kick(self) -> None:
        self._wanted.set()

    def _run(self) -> None:
        while True:
            self._wanted.wait()
            self._wanted.clear()
            if self._closing:
                return
            try:
                os.fdatasync(self._fd)
            except OSError as exc:
                self.error = exc
                log.debug("background flush of fd %d stopped: %s", self._fd, exc)
                return  # the final sync before promote reports problems

    def close(self) -> None:
        """Stop the thread (before the file descriptor is closed)."""
        self._closing = True
        self._wanted.set()
        self._thread.join()
