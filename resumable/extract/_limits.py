"""Limits against decompression bombs, and the running budget that enforces them.

:class:`ExtractLimits` is the caller's value (what one archive may produce); a
:class:`Budget` is made per extraction and counts what the processor writes, member by member
and byte by byte, so a lying header or a bomb stops before the disk fills. It also reports the
extraction's progress and honours cancellation, since it is the one place called per member.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .._checks import check_number
from ..errors import ArchiveTooLarge, Cancelled, InvalidArgument
from ..progress import EventKind, ProgressEvent

__all__ = ["Budget", "ExtractLimits"]

MiB = 1 << 20


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
