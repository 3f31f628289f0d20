"""What every processor shares: limits against bombs, routing by pattern, the running budget.

A processor is an immutable value (like :class:`~resumable.RetryPolicy`): it says *what* to do
with a verified archive; :mod:`resumable.extract._run` decides *when* (only after verification,
once per archive version) and :mod:`resumable.extract._stage` *how* results reach their folders
(staging, then rename).
"""

from __future__ import annotations

import errno
import fnmatch
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import ClassVar

from .._checks import check_bool, check_number
from .._paths import check_path_text, path_text
from ..errors import (
    ArchiveTooLarge,
    Cancelled,
    CorruptArchive,
    InvalidArgument,
    LocalError,
    ResumableError,
    UnsafeArchive,
)
from ..progress import EventKind, ProgressEvent

__all__ = [
    "Budget",
    "ExtractLimits",
    "Processor",
    "Route",
    "check_link",
    "codec_error",
    "member_error",
    "member_parts",
]

MiB = 1 << 20
Route = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class ExtractLimits:
    """Limits against decompression bombs, checked while extracting (before bytes are written
    where the archive declares sizes, and on the bytes actually written).

    Args:
        max_bytes: most bytes extracted from one archive (``None``: no fixed cap).
        max_members: most members (files, folders, links) in one archive.
        max_ratio: most extracted bytes per archive byte. It applies once the output passes
            ``ratio_floor`` bytes, so a small, well-compressed text file is never refused.
        ratio_floor: output size from which ``max_ratio`` applies.
    """

    max_bytes: int | None = None
    max_members: int | None = 10_000_000
    max_ratio: float | None = 200.0
    ratio_floor: int = 64 * MiB

    def __post_init__(self) -> None:
        for name in ("max_bytes", "max_members", "max_ratio", "ratio_floor"):
            value = getattr(self, name)
            if value is not None or name == "ratio_floor":
                check_number(value, f"ExtractLimits.{name}", integer=name == "max_members")
        for name in ("max_bytes", "max_members", "max_ratio"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or value <= 0):
                raise InvalidArgument(f"{name} must be positive or None, got {value!r}")
        if self.ratio_floor < 0:
            raise InvalidArgument(f"ratio_floor must be >= 0, got {self.ratio_floor!r}")


def _as_route(route: Mapping[str, str] | Iterable[tuple[str, str]] | None) -> Route:
    if route is None:
        return ()
    pairs = list(route.items()) if isinstance(route, Mapping) else list(route)
    checked = []
    for pair in pairs:
        if not (
            isinstance(pair, tuple) and len(pair) == 2 and all(isinstance(p, str) for p in pair)
        ):
            raise InvalidArgument(f"a route is a (pattern, folder) pair of strings, got {pair!r}")
        pattern, folder = pair
        if not pattern or not folder:
            raise InvalidArgument(f"empty pattern or folder in route {pair!r}")
        check_path_text(folder, "a route's folder")
        checked.append((pattern, os.fspath(folder)))
    if not checked:
        raise InvalidArgument("route is empty; leave it out to extract everything to one folder")
    return tuple(checked)


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


@dataclass(frozen=True)
class Processor:
    """Base of the processors (:class:`Untar`, :class:`Unzip`, :class:`Decompress`,
    :class:`AutoExtract`). Not used directly."""

    kind: ClassVar[str] = ""
    into: str | os.PathLike[str] | None = None
    route: Mapping[str, str] | Iterable[tuple[str, str]] | None = field(default=None, kw_only=True)
    delete_archive: bool = field(default=False, kw_only=True)
    limits: ExtractLimits = field(default_factory=ExtractLimits, kw_only=True)

    def __post_init__(self) -> None:
        object.__setattr__(self, "route", _as_route(self.route))
        if self.into is not None:
            object.__setattr__(self, "into", path_text(self.into, "into"))
        check_bool(self.delete_archive, "delete_archive")
        if self.route and self.into is not None:
            raise InvalidArgument(
                "give into= or route=, not both (a route ('*', folder) catches everything else)"
            )
        if not isinstance(self.limits, ExtractLimits):
            raise InvalidArgument(f"limits must be ExtractLimits, got {self.limits!r}")

    @property
    def routes(self) -> Route:
        return self.route  # type: ignore[return-value]  # normalised in __post_init__

    # -- what a processor decides -----------------------------------------------------------

    def resolve(self, archive: Path) -> Processor | None:
        """The processor to use for ``archive``: this one, or for :class:`AutoExtract` the one
        its name calls for (``None``: not an archive, leave it alone)."""
        return self

    def fingerprint(self) -> str:
        """What the result depends on (kind, folders, routes): a change means extract again.
        Limits and ``delete_archive`` are left out: they do not change what is extracted."""
        folders = ",".join(f"{p}={f}" for p, f in self.routes)
        return f"{self.kind}|into={self.into or ''}|route={folders}"

    def spec(self) -> str:
        """The canonical spec string (defaults left out) that
        :func:`~resumable.extract.from_spec` turns back into this value: written here, from
        the value's own fields, so the processors never import the spec parser above them."""
        parts = [self.kind]
        if self.into is not None:
            parts.append(f"into={self.into}")
        if self.routes:
            parts.append("route=" + ",".join(f"{p}={f}" for p, f in self.routes))
        if self.delete_archive:
            parts.append("delete")
        if getattr(self, "stream", False):
            parts.append("stream")
        default = ExtractLimits()
        for name, option in (
            ("max_bytes", "max-bytes"),
            ("max_members", "max-members"),
            ("max_ratio", "max-ratio"),
        ):
            value = getattr(self.limits, name)
            if value != getattr(default, name):
                parts.append(f"{option}={'none' if value is None else value}")
        return ":".join(parts)

    def targets(self, archive: Path) -> list[Path]:
        """The folders (or, for :class:`Decompress`, the file) results go to, by route index."""
        base = archive.parent
        if self.routes:
            return [base / folder for _, folder in self.routes]
        return [base / self.into] if self.into is not None else [self.default_target(archive)]

    def default_target(self, archive: Path) -> Path:
        """Where members go without ``into=`` or routes: a folder named after the archive."""
        return archive.with_name(strip_suffix(archive.name) or archive.name + ".d")

    def owns_target(self) -> bool:
        """The default target is this archive's own folder: replaced whole on re-extraction."""
        return self.into is None and not self.routes

    def route_of(self, parts: list[str]) -> int | None:
        """Index of the first route matching a member (``None``: skip it); 0 without routes.

        A pattern without ``/`` matches the member's file name (``*.jpg``); one with ``/``
        matches its whole path (``masks/*.json``).
        """
        if not self.routes:
            return 0
        name = "/".join(parts)
        for index, (pattern, _) in enumerate(self.routes):
            subject = name if "/" in pattern else parts[-1]
            if fnmatch.fnmatchcase(subject, pattern):
                return index
        return None

    def extract(self, archive: Path, staging: list[Path], budget: Budget) -> None:
        """Write the archive's members under ``staging[route index]``."""
        raise NotImplementedError


_SUFFIXES = (
    ".tar.gz",
    ".tar.bz2",
    ".tar.xz",
    ".tar.zst",
    ".tgz",
    ".tbz2",
    ".txz",
    ".tzst",
    ".tar",
    ".zip",
    ".gz",
    ".bz2",
    ".xz",
    ".zst",
)


def strip_suffix(name: str) -> str:
    """``sa_000000.tar`` -> ``sa_000000``; ``x.tar.gz`` -> ``x``; a name without one: as is."""
    lower = name.lower()
    for suffix in _SUFFIXES:
        if lower.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


class Budget:
    """Counts what an extraction wrote, enforces the limits, reports progress, honours cancel.

    ``position`` is a callable giving how far through the archive the reader is (bytes), so
    progress events show the archive's progress whatever the compression.
    """

    def __init__(
        self,
        limits: ExtractLimits,
        *,
        archive: Path,
        url: str,
        size: Callable[[], int | None],
        emit: Callable[[ProgressEvent], None],
        cancel: threading.Event | None = None,
    ) -> None:
        self.limits = limits
        self.archive = archive
        self.url = url
        self._size = size
        self._emit = emit
        self.cancel = cancel
        self.members = 0
        self.bytes = 0
        self.unrouted = 0
        self.position: Callable[[], int] = lambda: 0

    def member(self, declared: int = 0) -> None:
        """A member is about to be written (``declared``: the size its header announces)."""
        if self.cancel is not None and self.cancel.is_set():
            raise Cancelled("cancelled during extraction", url=self.url)
        self.members += 1
        limit = self.limits.max_members
        if limit is not None and self.members > limit:
            self._too_large("max_members", limit, self.members, "members")
        self._check(self.bytes + max(declared, 0))

    def wrote(self, amount: int) -> None:
        """``amount`` more bytes were written (checked as they come: sizes can lie)."""
        self.bytes += amount
        self._check(self.bytes)

    def report(self, final: bool = False) -> None:
        kind = EventKind.EXTRACTED if final else EventKind.EXTRACTING
        size = self._size()
        done = size if final and size is not None else self.position()
        self._emit(ProgressEvent(kind, self.url, self.archive, done, size, members=self.members))

    def _check(self, total: int) -> None:
        limits = self.limits
        if limits.max_bytes is not None and total > limits.max_bytes:
            self._too_large("max_bytes", limits.max_bytes, total, "bytes")
        size = self._size()
        if limits.max_ratio is not None and size and total > limits.ratio_floor:
            ratio = total / size
            if ratio > limits.max_ratio:
                raise ArchiveTooLarge(
                    f"extracting would write {total} bytes from a {size}-byte archive, a ratio "
                    f"over {limits.max_ratio:g} (ExtractLimits.max_ratio): a decompression "
                    "bomb? Nothing was promoted; raise the limit if the archive is trusted",
                    path=str(self.archive),
                    limit="max_ratio",
                    expected=limits.max_ratio,
                    actual=ratio,
                )

    def _too_large(self, name: str, limit: float, actual: float, what: str) -> None:
        raise ArchiveTooLarge(
            f"the archive holds more than {limit:g} {what} (ExtractLimits.{name}); nothing was "
            "promoted; raise the limit if the archive is trusted",
            path=str(self.archive),
            limit=name,
            expected=limit,
            actual=actual,
        )
