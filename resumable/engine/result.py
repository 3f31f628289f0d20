"""What one download produced: :class:`DownloadResult`, the engine's answer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from ..extract import ExtractResult

__all__ = ["DownloadResult", "Status"]

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
