"""Extract a tar while it downloads: a reader that follows ``A.partial`` as the bytes land.

The download writes ``A.partial`` as usual and reports each step with absolute offsets; the
:class:`Follower` sees those events, and its ``read`` hands the tar parser (on another thread)
the bytes up to the last reported offset, waiting for more until the download is verified.

Resume and verification are not given up: nothing streamed is promoted until the download has
verified, and the follower hashes every byte it handed over, so the streamed extraction is used
only if those bytes are exactly the verified file (a restart, a changed object or a segmented
partial shows up as a different hash or an event going backwards). Otherwise the staging is
thrown away and the verified file is extracted the ordinary way. After ``kill -9`` the rerun
resumes the download and streams again, re-reading the bytes already on disk first.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
from pathlib import Path

from .._threads import POLL
from ..partial import Partial
from ..progress import EventKind, ProgressEvent

__all__ = ["Follower", "StreamStopped"]


class StreamStopped(Exception):
    """Internal: the download went a way streaming cannot follow; extract the file instead."""


class Follower(io.RawIOBase):
    """A read-only stream over ``A.partial``, limited to the bytes the download reported."""

    def __init__(self, archive: Path) -> None:
        super().__init__()
        self._partial = Partial(archive)
        self._cond = threading.Condition()
        self._owner = threading.current_thread()  # the download's thread: the only writer
        self._fd: int | None = None
        self._limit = 0
        self._pos = 0
        self._state = "waiting"  # -> "complete" or "stopped"
        self.reason = ""
        self.total: int | None = None
        self._hash = hashlib.sha256()

    # -- the download's side ----------------------------------------------------------------

    def observe(self, event: ProgressEvent) -> None:
        """Called with every download event; never raises (it must not stop the download)."""
        with self._cond:
            if self._state == "stopped":
                return
            if event.total is not None:
                self.total = event.total
            kind = event.kind
            if kind is EventKind.STARTED and self._fd is None:
                self._open()
            if kind in (EventKind.STARTED, EventKind.PROGRESS, EventKind.RETRYING):
                if event.done < self._limit:
                    self._stop("the download restarted")
                else:
                    self._limit = event.done
            elif kind in (EventKind.VERIFIED, EventKind.DONE):
                self._limit = max(self._limit, event.done)
                self._state = "complete"
            elif kind in (EventKind.FAILED, EventKind.SKIPPED):
                self._stop(f"the download was {kind.value}")
            self._cond.notify_all()

    def stop(self, reason: str, *, force: bool = True) -> None:
        """Make the parser give up (``force=False``: unless the download completed)."""
        with self._cond:
            if force or self._state == "waiting":
                self._stop(reason)
            self._cond.notify_all()

    def _stop(self, reason: str) -> None:
        if self._state != "stopped":
            self._state = "stopped"
            self.reason = reason

    def _open(self) -> None:
        sidecar = self._partial.read_sidecar()
        if sidecar is not None and sidecar.ranges is not None:
            self._stop("the partial is segmented (not written in order)")
            return
        try:
            self._fd = os.open(self._partial.data, os.O_RDONLY)
        except OSError as exc:
            self._stop(f"cannot read the partial: {exc}")

    # -- the parser's side ------------------------------------------------------------------

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        with self._cond:
            while True:
                if self._state == "stopped":
                    raise StreamStopped(self.reason)
                if self._limit > self._pos:
                    break
                if self._state == "complete":
                    return 0
                if not self._owner.is_alive():  # nobody left to report more bytes
                    self._stop("the download's thread ended")
                    continue
                self._cond.wait(POLL)
            want = min(len(buffer), self._limit - self._pos)
            fd = self._fd
        if fd is None:
            raise StreamStopped("the partial was never opened")
        data = self._landed(fd, want)
        buffer[: len(data)] = data
        self._hash.update(data)
        self._pos += len(data)
        return len(data)

    def _landed(self, fd: int, want: int) -> bytes:
        """Up to ``want`` reported bytes from the partial, waiting for them to land: a single
        stream reports bytes as they arrive and a helper thread writes them a moment later
        (at most a few blocks behind). A restart is told by the events (they go backwards),
        and a download that ended without completing stops the wait."""
        while not (data := os.pread(fd, want, self._pos)):
            with self._cond:
                if self._state == "stopped":
                    raise StreamStopped(self.reason)
                if self._state == "complete":  # everything reported is on disk by now
                    raise StreamStopped("the partial became shorter (the download restarted)")
                if not self._owner.is_alive():
                    self._stop("the download's thread ended")
                    continue
                self._cond.wait(POLL)
        return data

    def tell(self) -> int:
        return self._pos

    def drain(self) -> None:
        """Read (and hash) what the parser left, up to the end of the verified file."""
        while self.read(1 << 20):
            pass

    def sha256(self) -> str:
        return self._hash.hexdigest()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        super().close()
