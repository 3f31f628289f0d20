"""A file only its writer knows the name of: how files that fit in one answer are written.

A small file's bookkeeping under the ``.partial`` protocol (a lock file, a sidecar written twice,
a shared partial name, owner checks) cost more than its bytes: three quarters of the time of a
batch of 256 KiB shards. For a file that the first answer delivers whole, none of it is needed
when the bytes go to a file with a unique random name, ``.D.<128-bit token>.partial``, beside
the destination ``D``:

- nobody else opens it, so racing writers cannot interleave bytes (each publishes its own
  complete, verified file and the last rename wins): this is what the lock and the owner token
  are for in the ``.partial`` protocol;
- it is renamed onto ``D`` only after it was verified and fsynced, so ``D`` only ever appears
  complete;
- an error or Ctrl-C removes it. Only a kill -9 or a power cut can leave one behind: a hidden
  file of at most one block (``block_size``), which no destination can be confused with (no
  destination may end in ``.partial``).

Why not an anonymous ``O_TMPFILE`` inode, which would leave nothing even then: it needs
``linkat`` through ``/proc/self/fd`` to be named, which some sandboxes and network filesystems
refuse (EXDEV on the machines this was written on), and it exists only on Linux.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path

from .partial import fsync_dir, helper_path, local_error

__all__ = ["PrivateFile"]


try:  # buffers one pwritev takes at most (1024 on Linux and macOS)
    _IOV_MAX = max(os.sysconf("SC_IOV_MAX"), 16)
except (AttributeError, ValueError, OSError):
    _IOV_MAX = 16  # the POSIX minimum
_FLAGS = (
    os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
)


class PrivateFile:
    """A uniquely named hidden file beside ``dest``, renamed onto it by :meth:`publish`."""

    def __init__(self, dest: Path, make_parent: Callable[[], None] | None = None) -> None:
        """``make_parent``: creates the destination's folder when it is missing (tried only
        then: in a batch the folder almost always exists, and a ``mkdir`` per file costs)."""
        self.dest = dest
        self.end = 0  # bytes written from the start (what an interrupted write left on disk)
        self.path = helper_path(dest, f".{os.urandom(16).hex()}.partial", lead=".")
        try:
            try:
                self._fd: int | None = os.open(self.path, _FLAGS, 0o644)
            except FileNotFoundError:
                if make_parent is None:
                    raise
                make_parent()
                self._fd = os.open(self.path, _FLAGS, 0o644)
        except OSError as exc:
            raise local_error(exc, "opening the partial", self.path) from exc

    def write(self, blocks: list[bytes | memoryview], offset: int) -> None:
        """Write ``blocks`` one after the other from ``offset``, in one ``pwritev`` when the
        system takes them whole."""
        views = [memoryview(block) for block in blocks if block]
        try:
            while views:
                written = os.pwritev(self._require(), views[:_IOV_MAX], offset)
                offset += written
                self.end = max(self.end, offset)
                while views and written >= len(views[0]):  # drop what was written
                    written -= len(views[0])
                    views.pop(0)
                if views and written:
                    views[0] = views[0][written:]
        except OSError as exc:
            raise local_error(exc, "writing the partial", self.path) from exc

    def publish(self, sync_dir: Callable[[Path], None] | None = None) -> None:
        """fsync, rename onto the destination, fsync the directory (or call ``sync_dir``)."""
        try:
            os.fsync(self._require())
            os.replace(self.path, self.dest)
        except OSError as exc:
            raise local_error(exc, f"moving the partial onto {self.dest}", self.path) from exc
        self._close_fd()
        (sync_dir or fsync_dir)(self.dest.parent)

    def discard(self) -> None:
        """Close and remove the file (nothing is published)."""
        if self._fd is not None:
            self._close_fd()
            with contextlib.suppress(OSError):
                os.unlink(self.path)

    def _close_fd(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _require(self) -> int:
        if self._fd is None:
            raise RuntimeError("the file is closed")
        return self._fd
