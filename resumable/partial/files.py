"""Small utilities for the files the library keeps on local disk: names beside a destination,
directory fsync, space reservation, and the typed error for a failed local operation.

Shared by the partial, the private-destination staging and extraction's records, so they live
apart from any one of them.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from ..errors import LocalError

__all__ = ["fsync_dir", "helper_path", "local_error", "reserve"]


def helper_path(dest: Path, suffix: str, lead: str = "") -> Path:
    """The path of a file the library keeps beside ``dest``: ``<lead><name><suffix>``, or,
    when that name is longer than the filesystem takes, ``<lead><stem>~<hash><suffix>``.

    Any name the filesystem accepts must work, but ``NAME.partial.json`` is 13 bytes longer
    than ``NAME``: a legal name of 243-255 bytes had no room for its helpers. The shortened
    form keeps as much of the name as fits (cut on a character boundary, for people reading
    the directory) and a 64-bit hash of the whole name (so two long names that share their
    start never share a helper), and it still ends in ``suffix``. Names that fit are
    unchanged, so partials written before this rule still resume.
    """
    import hashlib

    name = dest.name
    plain = lead + name + suffix
    length = len(plain.encode("utf-8", "surrogateescape"))
    if length <= _SAFE_NAME_MAX:
        return dest.with_name(plain)
    limit = _name_max(dest.parent)
    if length <= limit:
        return dest.with_name(plain)
    digest = hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    tail = f"~{digest}{suffix}"
    room = limit - len((lead + tail).encode("utf-8", "surrogateescape"))
    stem = name.encode("utf-8", "surrogateescape")[: max(room, 0)]
    return dest.with_name(lead + stem.decode("utf-8", "ignore") + tail)


_SAFE_NAME_MAX = 143  # no common filesystem takes fewer bytes (eCryptfs); longer names ask
_name_maxes: dict[str, int] = {}


def _name_max(folder: Path) -> int:
    """The longest file name in bytes that ``folder`` takes (asked once per folder)."""
    key = str(folder)
    known = _name_maxes.get(key)
    if known is not None:
        return known
    try:
        limit = int(os.pathconf(key, "PC_NAME_MAX"))
    except (OSError, ValueError):  # not there yet, or the system cannot say: not remembered
        return 255
    if len(_name_maxes) < 4096:
        _name_maxes[key] = limit
    return limit


def fsync_dir(path: Path) -> None:
    """fsync a directory so a rename in it survives a power cut (skipped where unsupported)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def local_error(exc: OSError, doing: str, path: Path) -> LocalError:
    """The typed error for a failed operation on a partial (a full disk says what to do)."""
    reason = os.strerror(exc.errno) if exc.errno else str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        # Not "the partial resumes": whether it does is for ``kept`` to say (nothing may be
        # kept, or nothing that could be resumed).
        reason = f"{reason} (free some space, then run again)"
    err = LocalError(f"{doing} failed: {reason}", path=str(path))
    err.errno = exc.errno
    return err


def reserve(fd: int, size: int, path: Path, name: str) -> None:
    """Reserve ``size`` bytes for the file open at ``fd``, failing up front with a clear error
    when they do not fit (``path`` is the file, ``name`` what the message calls it).

    ``posix_fallocate`` where the filesystem supports it (no fragmentation, no ENOSPC
    halfway); otherwise a sparse ``ftruncate``, after a free-space check.
    """
    current = os.fstat(fd).st_size
    needed = size - current
    if needed <= 0:
        return
    try:
        st = os.statvfs(path.parent)
    except OSError:
        st = None
    if st is not None and st.f_blocks and st.f_bavail * st.f_frsize < needed:
        raise LocalError(
            f"not enough disk space for {name}: needs {needed} more bytes, "
            f"{st.f_bavail * st.f_frsize} free in {path.parent}",
            path=str(path),
        )
    try:
        os.posix_fallocate(fd, current, needed)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            raise local_error(exc, "reserving space for the partial", path) from exc
        try:
            os.ftruncate(fd, size)  # filesystems without fallocate (some FUSE, NFS)
        except OSError as again:
            raise local_error(again, "reserving space for the partial", path) from again
