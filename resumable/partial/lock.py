"""``D.partial.lock``: one process at a time does the work of a destination.

The lock is only an optimisation: on NFS/Lustre/GPFS a lock can "succeed" for everyone, so
correctness rests on the owner token in the sidecar (a writer that sees another token stops) and
on the inode check at promote. A failure to lock therefore costs duplicate work at worst, and is
logged and ignored.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import Cancelled

__all__ = ["hold_lock"]

log = logging.getLogger("resumable")


@contextlib.contextmanager
def hold_lock(
    lockfile: Path, data: Path, *, blocking: bool = True, cancel: threading.Event | None = None
) -> Iterator[bool]:
    """Hold ``lockfile`` while downloading into ``data``; yield whether to go on.

    On a filesystem without working locks this yields ``True`` without a lock. With
    ``blocking=False`` a lock held by someone else yields ``False`` at once. The lock file is
    removed on release when ``data`` is gone (the destination is in place, or nothing was
    kept); a waiter then re-checks the destination before doing any work. Setting ``cancel``
    ends a wait for the lock with :class:`~resumable.errors.Cancelled`.
    """
    from filelock import FileLock, Timeout

    lock = FileLock(str(lockfile))
    try:
        _acquire(lock, blocking, cancel)
    except Timeout:
        yield False
        return
    except OSError as exc:
        log.warning("could not lock %s (%s); continuing without a lock", lockfile, exc)
        yield True
        return
    try:
        yield True
    finally:
        if not data.exists():
            with contextlib.suppress(OSError):
                os.unlink(lockfile)
        lock.release()


def _acquire(lock: Any, blocking: bool, cancel: threading.Event | None) -> None:
    """``lock.acquire(blocking=...)``, in short waits that give up when ``cancel`` is set (the
    lock's holder may be another process downloading the same file for a long time)."""
    if not blocking or cancel is None:
        lock.acquire(blocking=blocking)
        return
    from filelock import Timeout

    while True:
        if cancel.is_set():
            raise Cancelled(f"cancelled while waiting for {lock.lock_file}")
        try:
            lock.acquire(timeout=0.1)
            return
        except Timeout:
            continue
