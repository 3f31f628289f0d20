"""What an archive member may be: a clean relative name, a link that stays below its folder,
and the typed error for a member that cannot be written.

Shared by the tar and zip processors, which refuse an unsafe member before writing anything of
it (see ``docs/extraction.md``, "Safety").
"""

from __future__ import annotations

import errno
from pathlib import PurePosixPath

from ..errors import CorruptArchive, LocalError, ResumableError, UnsafeArchive

__all__ = ["check_link", "codec_error", "member_error", "member_parts"]


def member_parts(name: str, path: str | None = None) -> list[str]:
    """A member's name as clean relative parts, or :class:`UnsafeArchive` if it would escape.

    Absolute names (``/etc/passwd``, ``C:\\\\x``) and ``..`` are refused outright rather than
    rewritten, as GNU tar's stripping would: an archive that carries them was not made for us.
    """
    posix = name.replace("\\", "/")
    if posix.startswith("/") or (len(posix) > 1 and posix[1] == ":"):
        raise UnsafeArchive(f"member {name!r} has an absolute path", path=path, member=name)
    parts = [p for p in PurePosixPath(posix).parts if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchive(f"member {name!r} climbs out with '..'", path=path, member=name)
    if "\x00" in posix:
        raise UnsafeArchive(f"member {name!r} has a NUL byte in its name", path=path, member=name)
    return parts


def codec_error(exc: BaseException) -> bool:
    """An error raised by a decompressor we do not import by name (``zstandard.ZstdError``)."""
    return type(exc).__module__.split(".")[0] in ("zstandard", "zstd")


def member_error(exc: OSError, archive: str, member: str | None) -> ResumableError:
    """An ``OSError`` while writing a member: the disk's failure (:class:`LocalError`), or one
    the archive's own shape caused (:class:`CorruptArchive`): a member that is both a file
    and a folder, a name that exists twice in incompatible kinds, a link loop."""
    if exc.errno in _SHAPE_ERRNOS:
        return CorruptArchive(
            f"member {member!r} cannot be created: {exc.strerror} (the archive holds "
            "conflicting members)",
            path=archive,
            member=member,
        )
    return LocalError(f"extracting {archive} failed: {exc}", path=archive)


_SHAPE_ERRNOS = {errno.EEXIST, errno.ENOTDIR, errno.EISDIR, errno.ELOOP, errno.ENOTEMPTY}


def check_link(name: str, target: str, path: str | None = None) -> None:
    """Refuse a symlink or hard link whose target is absolute or holds ``..`` at all.

    Stricter than ``filter="data"``, on purpose: a link that only points downwards cannot
    lead outside, whatever other links it passes through, and checking that needs no
    ``realpath`` of a half-built tree. Data sets rarely need upward links.
    """
    posix = target.replace("\\", "/")
    if not posix or posix.startswith("/") or (len(posix) > 1 and posix[1] == ":"):
        raise UnsafeArchive(
            f"link {name!r} points to the absolute path {target!r}", path=path, member=name
        )
    if ".." in PurePosixPath(posix).parts:
        raise UnsafeArchive(
            f"link {name!r} points upwards ({target!r}); links must stay below their folder",
            path=path,
            member=name,
        )
