"""Where "this archive version is extracted" is recorded, so a rerun can trust it.

A record names the archive's object (URL identity), the version extracted (SHA-256, size and
the validators the source gave), the processor's fingerprint (kind, folders, routes), the
targets, and whether the archive was deleted afterwards. States: ``extracting`` (written before
anything is promoted, so an interrupted extraction is never mistaken for a done one), ``done``
(written after every member is in place, and made durable before the archive is deleted) and
``failed``.

- A single ``download(..., process=...)`` keeps it in ``A.extracted.json`` beside the archive
  ``A`` (written atomically: temp file, fsync, ``os.replace``). It stays when the archive is
  deleted: it is what lets a rerun skip the download.
- A batch keeps it in the ledger (``dest_dir/.resumable/ledger.sqlite``, table ``extracted``,
  one row per archive path), flushed before any archive is deleted.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import LocalError

if TYPE_CHECKING:
    from ..ledger import Ledger

__all__ = ["ExtractRecord", "LedgerStore", "MarkerStore", "RecordStore"]

FORMAT = 1


@dataclass(frozen=True)
class ExtractRecord:
    state: str
    fingerprint: str
    identity: str
    sha256: str | None = None
    size: int | None = None
    etag: str | None = None
    version: str | None = None
    last_modified: str | None = None
    targets: tuple[str, ...] = ()
    owned: tuple[str, ...] = ()
    """Targets this library created whole for the archive (replaced whole next time)."""
    members: int = 0
    bytes: int = 0
    archive_deleted: bool = False
    error: str | None = None
    format: int = field(default=FORMAT)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ExtractRecord | None:
        try:
            data: dict[str, Any] = json.loads(text)
            if data.get("format") != FORMAT:
                return None
            data["targets"] = tuple(data.get("targets", ()))
            data["owned"] = tuple(data.get("owned", ()))
            return cls(**data)
        except (ValueError, TypeError):
            return None  # unreadable: not trusted, the archive is extracted again

    def with_(self, **changes: Any) -> ExtractRecord:
        return replace(self, **changes)


class RecordStore(Protocol):
    def load(self) -> ExtractRecord | None: ...

    def save(self, record: ExtractRecord, *, durable: bool = False) -> None: ...


class MarkerStore:
    """``A.extracted.json`` beside the archive ``A`` (single downloads)."""

    def __init__(self, archive: Path) -> None:
        self.path = archive.with_name(archive.name + ".extracted.json")

    def load(self) -> ExtractRecord | None:
        try:
            return ExtractRecord.from_json(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError):
            return None

    def save(self, record: ExtractRecord, *, durable: bool = False) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            with open(tmp, "w", encoding="utf-8") as out:
                out.write(record.to_json())
                out.flush()
                if durable:
                    os.fsync(out.fileno())
            os.replace(tmp, self.path)
            if durable:
                fd = os.open(self.path.parent, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise LocalError(
                f"cannot write {self.path}: {exc.strerror}", path=str(self.path)
            ) from exc


class LedgerStore:
    """One archive's row in the batch ledger's ``extracted`` table."""

    def __init__(self, ledger: Ledger, rel: str) -> None:
        self.ledger = ledger
        self.rel = rel

    def load(self) -> ExtractRecord | None:
        text = self.ledger.get_extraction(self.rel)
        return ExtractRecord.from_json(text) if text is not None else None

    def save(self, record: ExtractRecord, *, durable: bool = False) -> None:
        self.ledger.record_extraction(self.rel, record.to_json())
        if durable:
            self.ledger.flush()
