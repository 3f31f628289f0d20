"""The batch ledger: what this library put in a destination directory, and how each item went.

``dest_dir/.resumable/ledger.sqlite`` holds one row per destination path (relative to
``dest_dir``): the URL's identity (credentials and signatures removed), the batch input it came
from (a template or prefix, for ``sync``), its state (``partial``, ``done``, ``failed``), and for
done files the size, modification time, SHA-256 and the object's validators.

Why SQLite: a rerun over 100k items looks each one up without loading the ledger into memory,
writes are atomic, and the file survives ``kill -9`` (WAL mode; ``synchronous=NORMAL`` loses at
most the last commits on a power cut, and then the item is simply downloaded again).

Why record mtime and SHA-256: a rerun skips a done file by ``stat`` alone, instead of re-hashing
10 GB shards; a file that was modified since (another mtime or size) is verified again.

Why a writer thread: one commit per file behind one lock made every worker of a batch of small
files queue on the ledger. Records go to a queue and are committed in batches (at most ~50 ms
apart); reads use their own connection (WAL readers never wait for the writer). A crash loses at
most the last batch of rows, and those files are then verified again on the rerun. The queue is
bounded, so a writer that falls behind slows the workers down rather than growing memory.
"""

from __future__ import annotations

import os
import queue
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .errors import LocalError, redact_text

__all__ = ["Entry", "Ledger"]

_SCHEMA = """
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
    last_modified TEXT
)
"""
_FIELDS = (
    "path, identity, origin, state, size, mtime_ns, sha256, etag, version, error, updated, "
    "last_modified"
)
_ADDED = {"last_modified": "TEXT"}  # columns newer than the first ledgers: added on open
_BACKLOG = 2000  # rows queued for the writer at most (see Ledger.__init__)
_GATHER = 0.05  # seconds the writer lets rows gather before one transaction commits them
# What resumable.extract recorded per archive: a JSON record (see extract/_record.py). A table of
# its own, so ledgers written before it existed gain it with CREATE TABLE IF NOT EXISTS.
_EXTRACTED = """
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

    def unchanged_on_disk(self, path: Path) -> bool:
        """A done file still as this library left it (same size and modification time)."""
        try:
            st = path.stat()
        except OSError:
            return False
        return self.state == "done" and st.st_size == self.size and st.st_mtime_ns == self.mtime_ns


class Ledger:
    """The ledger of one destination directory. Thread-safe; one connection, one lock."""

    DIRNAME = ".resumable"

    def __init__(self, dest_dir: Path) -> None:
        folder = dest_dir / self.DIRNAME
        try:
            folder.mkdir(parents=True, exist_ok=True)
            self._path = folder / "ledger.sqlite"
            self._db = self._connect(self._path)
            self._db.execute(_SCHEMA)
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(items)")}
            for column, kind in _ADDED.items():
                if column not in columns:
                    self._db.execute(f"ALTER TABLE items ADD COLUMN {column} {kind}")
            self._db.execute(_EXTRACTED)
            self._writer_db = self._connect(folder / "ledger.sqlite")
        except (OSError, sqlite3.Error) as exc:
            message = f"cannot open the ledger in {folder}: {exc}"
            raise LocalError(message, path=str(folder)) from exc
        self._lock = threading.Lock()  # the read connection
        # The paths already in the ledger, read once: a fresh directory then needs no lookups,
        # and a rerun looks up only the paths it knows.
        self._known = {row[0] for row in self._db.execute("SELECT path FROM items")}
        # Bounded: if the writer falls behind (a starved thread on a busy machine), workers wait
        # for it instead of the backlog growing with the batch (100k rows held ~100 MiB).
        self._pending: queue.Queue[tuple[str, tuple[object, ...]] | None] = queue.Queue(
            maxsize=_BACKLOG
        )
        self._writer = threading.Thread(target=self._write, name="resumable-ledger", daemon=True)
        self._writer.start()

    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        return db

    def _write(self) -> None:
        """Commit queued statements in batches until ``close()``."""
        stop = False
        while not stop:
            batch = [self._pending.get()]
            if batch[0] is not None:
                # Sleep while rows gather, then take them all: waiting on the queue instead
                # woke this thread once per row, a GIL hand-over per downloaded file.
                time.sleep(_GATHER)
            while len(batch) < _BACKLOG:
                try:
                    batch.append(self._pending.get_nowait())
                except queue.Empty:
                    break
            statements = [item for item in batch if item is not None]
            stop = len(statements) != len(batch)
            if statements:
                with self._writer_db:  # one transaction
                    self._writer_db.execute("BEGIN")
                    for sql, values in statements:
                        self._writer_db.execute(sql, values)
            for _ in batch:
                self._pending.task_done()

    def _put(self, item: tuple[str, tuple[object, ...]] | None) -> None:
        """Queue a statement, waiting while the backlog is full (never forever: a writer that
        died would never make room)."""
        while True:
            try:
                self._pending.put(item, timeout=1.0)
                return
            except queue.Full:
                if not self._writer.is_alive():
                    raise LocalError(
                        "the ledger's writer stopped; the batch cannot record its items",
                        path=str(self._path),
                    ) from None

    def flush(self) -> None:
        """Wait until every record so far is committed."""
        self._pending.join()

    def get(self, path: str) -> Entry | None:
        """The committed row for ``path`` (rows queued by ``record`` appear once committed)."""
        if path not in self._known:
            return None
        with self._lock:
            query = f"SELECT {_FIELDS} FROM items WHERE path = ?"
            row = self._db.execute(query, (path,)).fetchone()
        return Entry(*row) if row else None

    def record(self, entry: Entry) -> None:
        values = _values(entry, updated=time.time())
        sql = f"INSERT OR REPLACE INTO items ({_FIELDS}) VALUES ({', '.join('?' * 12)})"
        self._put((sql, values))
        self._known.add(entry.path)

    def done(
        self,
        path: str,
        file: Path,
        *,
        identity: str,
        origin: str | None,
        sha256: str,
        etag: str | None = None,
        version: str | None = None,
        last_modified: str | None = None,
        stat: tuple[int, int] | None = None,
    ) -> None:
        """``stat``: ``(size, mtime_ns)`` as seen where the file was written (another machine's
        disk, for a fanned-out batch); by default ``file`` is stat'ed here."""
        if stat is None:
            st = os.stat(file)
            stat = (st.st_size, st.st_mtime_ns)
        size, mtime_ns = stat
        self.record(
            Entry(
                path,
                identity,
                origin,
                "done",
                size,
                mtime_ns,
                sha256,
                etag,
                version,
                last_modified=last_modified,
            )
        )

    def failed(
        self, path: str, *, identity: str, origin: str | None, error: str, partial: bool
    ) -> None:
        state = "partial" if partial else "failed"
        # Any exception's text may end here (a progress callback's too): none reaches the disk
        # with a credential in it.
        self.record(Entry(path, identity, origin, state, error=redact_text(error)))

    def get_extraction(self, path: str) -> str | None:
        """The committed extraction record of the archive at ``path`` (JSON), if any."""
        with self._lock:
            row = self._db.execute(
                "SELECT record FROM extracted WHERE path = ?", (path,)
            ).fetchone()
        return str(row[0]) if row else None

    def record_extraction(self, path: str, record: str) -> None:
        """Queue an extraction record (``flush()`` makes it committed)."""
        sql = "INSERT OR REPLACE INTO extracted (path, record, updated) VALUES (?, ?, ?)"
        self._put((sql, (path, record, time.time())))

    def forget(self, path: str) -> None:
        self._put(("DELETE FROM items WHERE path = ?", (path,)))

    def by_origin(self, origin: str) -> Iterator[Entry]:
        """Every entry a batch input produced, streamed (for sync)."""
        self.flush()
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_FIELDS} FROM items WHERE origin = ? ORDER BY path", (origin,)
            ).fetchall()
        for row in rows:
            yield Entry(*row)

    def errors(self) -> list[Entry]:
        """Items whose last run failed (what a rerun can report before starting)."""
        self.flush()
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_FIELDS} FROM items WHERE state IN ('failed', 'partial') ORDER BY path"
            ).fetchall()
        return [Entry(*row) for row in rows]

    def close(self) -> None:
        """Commit what is queued, stop the writer, close both connections."""
        if self._writer.is_alive():
            self._put(None)
            self._writer.join()
        with self._lock:
            self._db.close()
        self._writer_db.close()


def _values(entry: Entry, *, updated: float) -> tuple[object, ...]:
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
    )
