"""The rows of the batch ledger: their schema, the :class:`Entry` value, and the one parse
boundary (:func:`parse_row`) between what SQLite holds and what the batch trusts.

See :mod:`resumable.batch.ledger` for why the ledger exists and how it is written.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from stat import S_ISREG
from typing import cast

__all__ = ["ADDED", "EXTRACTED", "FIELDS", "SCHEMA", "UPSERT", "Entry", "parse_row", "row_values"]

log = logging.getLogger("resumable")

SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    path TEXT PRIMARY KEY,
    identity TEXT NOT NULL,
    origin TEXT,
    state TEXT NOT NULL,
    size INTEGER,
    mtime_ns INTEGER,
    sha256 TEXT,
    etag TEXT,
    version TEXT,
    error TEXT,
    updated REAL NOT NULL,
    last_modified TEXT,
    written_size INTEGER,
    written_mtime_ns INTEGER
)
"""
FIELDS = (
    "path, identity, origin, state, size, mtime_ns, sha256, etag, version, error, updated, "
    "last_modified, written_size, written_mtime_ns"
)
# Columns newer than the first ledgers: added on open, NULL in the rows written before.
ADDED = {"last_modified": "TEXT", "written_size": "INTEGER", "written_mtime_ns": "INTEGER"}
# A new row replaces the old one, except for the record of this library's last write to the
# file: a row that does not write (a check, a failure) carries it over.
CARRIED = ("written_size", "written_mtime_ns")
# What resumable.extract recorded per archive: a JSON record (see extract/_record.py). A table of
# its own, so ledgers written before it existed gain it with CREATE TABLE IF NOT EXISTS.
EXTRACTED = """
CREATE TABLE IF NOT EXISTS extracted (
    path TEXT PRIMARY KEY,
    record TEXT NOT NULL,
    updated REAL NOT NULL
)
"""


@dataclass(frozen=True)
class Entry:
    """One ledger row."""

    path: str
    identity: str
    origin: str | None
    state: str
    size: int | None = None
    mtime_ns: int | None = None
    sha256: str | None = None
    etag: str | None = None
    version: str | None = None
    error: str | None = None
    updated: float = 0.0
    last_modified: str | None = None
    """The object's Last-Modified, for servers that send no ETag (sync compares it)."""
    written_size: int | None = None
    """Size of the file when this library last wrote it (promoted a download) here; ``None``
    if it never did, as far as this ledger knows (a file that was only checked, an old row)."""
    written_mtime_ns: int | None = None
    """Modification time of the file when this library last wrote it."""

    def unchanged_on_disk(self, path: Path) -> bool:
        """A done file still as this library left it (same size and modification time)."""
        try:
            st = path.stat()
        except OSError:
            return False
        return self.state == "done" and st.st_size == self.size and st.st_mtime_ns == self.mtime_ns

    def written_by_us(self, path: Path) -> bool:
        """``path`` is a regular file this library wrote and nobody changed since: what
        ``sync`` may delete. Proven only by the record of the write (same size and mtime as
        then), whatever the row's state (a later failed refetch leaves the file as written);
        a file that was only checked, or a row from before that record existed, is not.
        """
        if self.written_size is None or self.written_mtime_ns is None:
            return False
        try:
            st = os.lstat(path)
        except OSError:
            return False
        return (
            S_ISREG(st.st_mode)
            and st.st_size == self.written_size
            and st.st_mtime_ns == self.written_mtime_ns
        )


def row_values(entry: Entry, *, updated: float) -> tuple[object, ...]:
    return (
        entry.path,
        entry.identity,
        entry.origin,
        entry.state,
        entry.size,
        entry.mtime_ns,
        entry.sha256,
        entry.etag,
        entry.version,
        entry.error,
        updated,
        entry.last_modified,
        entry.written_size,
        entry.written_mtime_ns,
    )


_SHA256 = re.compile(r"[0-9a-f]{64}")
_STATES = ("partial", "done", "failed")


def parse_row(row: tuple[object, ...]) -> Entry | None:
    """The one parse boundary of a ledger row: an :class:`Entry` of the declared types, or
    ``None`` (logged) for a row no writer of this library made.

    SQLite stores any value in any column, and the file may have been edited or damaged: a
    ``sha256`` that is a number or not 64 hex digits would be reported as a file's digest, a
    ``size`` in text would never match. A discarded row makes its file verified (or fetched)
    again, and ``sync`` never deletes on its word.
    """
    names = [f.name for f in fields(Entry)]
    if len(row) != len(names):
        return None
    values = dict(zip(names, row, strict=True))
    bad = [name for name in names if not _ROW_CHECKS.get(name, _optional_text)(values[name])]
    if bad:
        log.warning(
            "ignoring the ledger row of %r: bad %s", _printable(values["path"]), ", ".join(bad)
        )
        return None
    values["updated"] = float(cast(float, values["updated"]))
    return Entry(**values)  # type: ignore[arg-type]


def _printable(value: object) -> str:
    return value[:200] if isinstance(value, str) else type(value).__name__


def _optional_text(value: object) -> bool:
    return value is None or isinstance(value, str)


def _optional_count(value: object) -> bool:
    return value is None or (isinstance(value, int) and value >= 0)


_ROW_CHECKS: dict[str, Callable[[object], bool]] = {
    "path": lambda v: isinstance(v, str) and bool(v),
    "identity": lambda v: isinstance(v, str),
    "state": lambda v: v in _STATES,
    "size": _optional_count,
    "mtime_ns": lambda v: v is None or isinstance(v, int),
    "sha256": lambda v: v is None or (isinstance(v, str) and bool(_SHA256.fullmatch(v))),
    "updated": lambda v: isinstance(v, (int, float)),
    "written_size": _optional_count,
    "written_mtime_ns": lambda v: v is None or isinstance(v, int),
}
"""How each column is checked; a column not listed (texts) must be a string or NULL."""


def upsert_sql() -> str:
    columns = [name.strip() for name in FIELDS.split(",")]
    updates = ", ".join(
        f"{c} = COALESCE(excluded.{c}, items.{c})" if c in CARRIED else f"{c} = excluded.{c}"
        for c in columns
        if c != "path"
    )
    return (
        f"INSERT INTO items ({FIELDS}) VALUES ({', '.join('?' * len(columns))}) "
        f"ON CONFLICT(path) DO UPDATE SET {updates}"
    )


UPSERT = upsert_sql()
