"""What one download produced: :class:`DownloadResult`, the engine's answer, and the
:class:`ExtractResult` a processor adds to it.

Both are plain values. :class:`ExtractResult` is defined here, below the extract package that
fills it in, so the engine's answer never names a module above the engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

__all__ = ["DownloadResult", "ExtractResult", "Status"]

Status = Literal["downloaded", "resumed", "skipped"]


@dataclass(frozen=True, slots=True)
class DownloadResult:
    """What one download produced.

    Attributes:
        url: the source URL, credentials redacted.
        path: the destination, complete and verified.
        size: its size in bytes.
        sha256: its SHA-256, hex.
        status: ``"downloaded"``, ``"resumed"`` (bytes from an earlier interrupted call were
            kept) or ``"skipped"`` (the destination was already complete; nothing fetched).
        bytes_transferred: bytes fetched by this call.
        digests: every digest computed, ``{algorithm: hex}`` (SHA-256 and any requested).
        extracted: with ``process=``, what processing the archive produced
            (:class:`~resumable.extract.ExtractResult`); ``None`` without a processor.
    """

    url: str
    path: Path
    size: int
    sha256: str
    status: Status
    bytes_transferred: int
    digests: Mapping[str, str] = field(default_factory=dict, repr=False)
    extracted: ExtractResult | None = field(default=None, repr=False)


@dataclass(frozen=True)
class ExtractResult:
    """What processing a downloaded archive produced (``DownloadResult.extracted``).

    Attributes:
        archive: the archive (it no longer exists when ``archive_deleted``).
        status: ``"extracted"`` by this call, or ``"skipped"`` (recorded as done before).
        targets: the folders (or for :class:`Decompress` the file) the results are in.
        members: members written (files, folders, links).
        bytes: bytes written.
        unrouted: members that matched no route and were left out.
        archive_deleted: the archive was deleted after the extraction was recorded.
        streamed: the members were extracted while the archive downloaded.
    """

    archive: Path
    status: Literal["extracted", "skipped"]
    targets: tuple[Path, ...]
    members: int
    bytes: int
    unrouted: int = 0
    archive_deleted: bool = False
    streamed: bool = False
