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
import logging
import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Protocol, cast

from ..errors import LocalError
from ..partial import helper_path

__all__ = ["ExtractRecord", "ExtractionRows", "LedgerStore", "MarkerStore", "RecordStore"]

FORMAT = 1
MAX_RECORD = 16 << 20  # bytes: a record is its targets' names and a few fields
log = logging.getLogger("resumable")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _count(value: object) -> bool:
    return _is_int(value) and cast(int, value) >= 0


def _optional_text(value: object) -> bool:
    return value is None or isinstance(value, str)


def _texts(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) and v for v in value)


_SHA256 = re.compile(r"[0-9a-f]{64}")
_CHECKS: dict[str, Callable[[object], bool]] = {
    "state": lambda v: v in ("extracting", "done", "failed"),
    "fingerprint": lambda v: isinstance(v, str),
    "identity": lambda v: isinstance(v, str),
    "sha256": lambda v: v is None or (isinstance(v, str) and bool(_SHA256.fullmatch(v))),
    "size": lambda v: v is None or _count(v),
    "etag": _optional_text,
    "version": _optional_text,
    "last_modified": _optional_text,
    "targets": _texts,
    "owned": _texts,
    "members": _count,
    "bytes": _count,
    "archive_deleted": lambda v: isinstance(v, bool),
    "error": _optional_text,
}
"""What each field of a record read from disk must be (see ExtractRecord.from_json)."""


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
        import json

        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ExtractRecord | None:
        """The one parse boundary of a record: an :class:`ExtractRecord` whose every field has
        its declared type, or ``None`` (logged; the archive is then extracted again).

        A record is read from disk (``A.extracted.json``, or the ledger, where SQLite stores
        anything), so it is untrusted: a ``sha256`` that is a number was reported as the
        archive's digest, a target that is a number was taken for a file descriptor.
        """
        import json

        try:
            data = json.loads(text, parse_constant=_no_constant)
        except (ValueError, RecursionError) as exc:
            log.warning("ignoring an unreadable extraction record (%s)", type(exc).__name__)
            return None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            return None  # another format (or none): not ours to read, extracted again
        if not _is_int(data["format"]):
            return None
        names = {f.name for f in fields(cls)}
        bad = sorted(str(k) for k in data if k not in names)
        bad += sorted(n for n, check in _CHECKS.items() if n in data and not check(data[n]))
        missing = [n for n in ("state", "fingerprint", "identity") if n not in data]
        if bad or missing:
            log.warning("ignoring an extraction record with bad fields: %s", bad or missing)
            return None
        data["targets"] = tuple(data.get("targets", ()))
        data["owned"] = tuple(data.get("owned", ()))
        return cls(**data)

    def with_(self, **changes: Any) -> ExtractRecord:
        return replace(self, **changes)


class RecordStore(Protocol):
    def load(self) -> ExtractRecord | None: ...

    def save(self, record: ExtractRecord, *, durable: bool = False) -> None: ...


class MarkerStore:
    """``A.extracted.json`` beside the archive ``A`` (single downloads)."""

    def __init__(self, archive: Path) -> None:
        self.path = helper_path(archive, ".extracted.json")
        self._tmp = helper_path(archive, ".extracted.json.tmp")

    def load(self) -> ExtractRecord | None:
        try:
            with open(self.path, "rb") as f:
                raw = f.read(MAX_RECORD + 1)
            if len(raw) > MAX_RECORD:
                raise ValueError(f"larger than {MAX_RECORD} bytes")
            return ExtractRecord.from_json(raw.decode("utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
            log.warning("ignoring the unreadable record %s (%s)", self.path, exc)
            return None

    def save(self, record: ExtractRecord, *, durable: bool = False) -> None:
        tmp = self._tmp
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


class ExtractionRows(Protocol):
    """Where a batch keeps extraction records: its ledger (``extracted`` table)."""

    def get_extraction(self, path: str) -> str | None: ...

    def record_extraction(self, path: str, record: str) -> None: ...

    def flush(self) -> None: ...


class LedgerStore:
    """One archive's row in the batch ledger's ``extracted`` table."""

    def __init__(self, ledger: ExtractionRows, rel: str) -> None:
        self.ledger = ledger
        self.rel = rel

    def load(self) -> ExtractRecord | None:
        text = self.ledger.get_extraction(self.rel)
        return ExtractRecord.from_json(text) if text is not None else None

    def save(self, record: ExtractRecord, *, durable: bool = False) -> None:
        self.ledger.record_extraction(self.rel, record.to_json())
        if durable:
            self.ledger.flush()
