"""Phase: is the destination already the complete file? Then skip it, fetching nothing.

An existing ``dest`` is ``skipped`` only when it proves to be the file: the expected size and
digests when the caller gave them; otherwise the remote size (a metadata request), plus a
checksum the source vouches for. A metadata request that fails says nothing either way: the
file is downloaded (see ``Transfer.probe``).
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable
from pathlib import Path

from ..errors import InvalidArgument, LocalError
from ..progress import EventKind
from ..sources import RemoteInfo
from ..verify import Digests, hash_file
from .result import DownloadResult
from .state import State

__all__ = ["Probe", "check", "dest_size", "look", "make_parent"]

log = logging.getLogger("resumable")

Probe = Callable[[str], "RemoteInfo | None"]
"""``probe(why)``: the object's metadata, or ``None`` (logged with ``why``) when unavailable."""


def dest_size(dest: Path) -> int | None:
    """The size of ``dest`` (following a symlink), or ``None`` when there is none yet.

    Raises:
        InvalidArgument: ``dest`` is a directory, a FIFO, a socket or a device.
        LocalError: it cannot be examined.
    """
    try:
        st = os.stat(dest)
    except (FileNotFoundError, NotADirectoryError):  # the folder is made (or refused) later
        return None
    except OSError as exc:
        raise LocalError(f"cannot read {dest}: {exc.strerror}", path=str(dest)) from exc
    if stat.S_ISDIR(st.st_mode):
        raise InvalidArgument(
            f"dest {dest} is a directory; give the file's path",
            kept="nothing was fetched and nothing on disk was changed",
        )
    if not stat.S_ISREG(st.st_mode):  # a FIFO, socket or device is not ours to replace
        raise InvalidArgument(
            f"dest {dest} exists and is not a regular file (a FIFO, socket or "
            "device); give the path of a file",
            kept="nothing was fetched and nothing on disk was changed",
        )
    return st.st_size


def make_parent(dest: Path) -> None:
    """Create ``dest``'s folder.

    Raises:
        LocalError: it cannot be created (nothing was fetched, nothing changed).
    """
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        # FileExistsError: a file stands where a directory of the path should be.
        reason = "Not a directory" if isinstance(exc, FileExistsError) else exc.strerror
        err = LocalError(f"cannot create {dest.parent}: {reason}", path=str(dest.parent))
        err.kept = "nothing was fetched and nothing on disk was changed"
        raise err from exc


def check(state: State, size: int | None, probe: Probe) -> DownloadResult | None:
    """A ``skipped`` result if ``dest`` (of ``size`` bytes, ``None``: absent) is already the
    complete file; ``None`` when it has to be downloaded."""
    ctx = state.ctx
    dest = ctx.dest
    if size is None:
        return None
    if ctx.size is not None and size != ctx.size:
        return None
    if not ctx.expected and ctx.size is None:
        remote = probe("cannot check the existing file; downloading")
        if remote is None:
            return None
        if remote.size is None or remote.size != size:
            log.info("%s exists but does not match the remote size; downloading", dest)
            return None
        state.use_provider_checksum(remote)
    wanted = {**ctx.expected, **state.provider}
    digests = Digests(wanted)
    try:
        hash_file(dest, digests.update)
    except OSError as exc:
        raise LocalError(f"cannot read {dest}: {exc.strerror}", path=str(dest)) from exc
    actual = digests.hexdigests()
    if any(actual[a] != v for a, v in wanted.items()):
        log.info("%s exists but fails verification; downloading a fresh copy", dest)
        return None
    state.emit(EventKind.SKIPPED, done=size, total=size)
    return state.result("skipped", size, actual)


def look(state: State, probe: Probe) -> DownloadResult | None:
    """:func:`check` of ``dest`` as it is now (another writer may have published it)."""
    return check(state, dest_size(state.ctx.dest), probe)
