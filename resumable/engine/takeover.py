"""Phase: another process took the partial over; wait for it to finish, or take it back.

Its lock did not hold (NFS, Lustre, or ``locking=False``). This transfer stops writing and lets
the other writer finish, then reports the file it published (``skipped``). If the other writer
goes quiet instead (it died), the partial is taken over again and resumed.

Quiet means nothing changed (destination, partial, sidecar) for a stall timeout plus the longest
backoff: the longest a live writer can be silent.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

from ..errors import Cancelled, PartialTakenOver
from ..partial import Partial
from .existing import Probe, look
from .result import DownloadResult
from .state import State

__all__ = ["POLL", "await_other_writer"]

log = logging.getLogger("resumable")

POLL = 0.05  # seconds between looks at the other writer's files


def await_other_writer(
    state: State, taken: PartialTakenOver, probe: Probe
) -> DownloadResult | None:
    """Wait for the writer that took the partial over: its published file (``skipped``), or
    ``None`` when it went quiet and this transfer should take the partial over again.

    Raises:
        Cancelled: the transfer was cancelled while waiting.
    """
    ctx = state.ctx
    log.warning("%s; waiting for the other writer to finish", taken)
    state.yielded = True  # the partial is the other writer's now: never tidy it away
    state.hasher.close()
    state.partial.close()
    stopped, state.partial = state.partial, Partial(ctx.dest)  # a new token for a take-over
    state.info, state.segments = None, None
    settings = ctx.settings
    quiet = settings.timeouts.stall + settings.retry.backoff_max
    wake = ctx.cancel or threading.Event()
    last: object = None
    checked: object = None  # the destination as last verified (each check may HEAD)
    since = time.monotonic()
    while True:
        seen = tuple(stamp(p) for p in (ctx.dest, state.partial.data, state.partial.meta))
        if seen[0] is not None and seen[1] is None and seen[0] != checked:
            checked = seen[0]
            published = look(state, probe)
            if published is not None:
                stopped.remove_orphan_sidecar()
                return published
        if seen != last:
            last, since = seen, time.monotonic()
        elif time.monotonic() - since > quiet:
            log.warning("the other writer of %s went quiet; taking over", state.partial.data)
            state.yielded = False
            return None
        if wake.wait(POLL):
            raise Cancelled("cancelled", url=ctx.url)


def stamp(path: Path) -> tuple[int, int, int] | None:
    """What changes when a writer works on ``path``: inode, size, modification time."""
    try:
        st = os.stat(path, follow_symlinks=False)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)
