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

Why a separate record of writes (``written_size``, ``written_mtime_ns``): ``sync`` deletes only
files this library wrote. A row is also ``done`` for a file that was already there and only
checked; the record of a write is set only when a download promoted the file, carried over by
later rows that do not write it, and trusted only while the file keeps that size and mtime.
Rows from before the record existed have none: their files are never deleted.

Why a writer thread: one commit per file behind one lock made every worker of a batch of small
files queue on the ledger. Records go to a queue and are committed in batches (at most ~50 ms
apart); reads use their own connection (WAL readers never wait for the writer). A crash loses at
most the last batch of rows, and those files are then verified again on the rerun. The queue is
bounded, so a writer that falls behind slows the workers down rather than growing memory.

Why a failed writer is an error, not a hang: on a full disk the writer's commit fails
(``database or disk is full``) and the thread ends. Every wait on it (``flush``, a full queue)
checks that it is alive, and everything after that (``record``, ``flush``, ``close`` with rows
still queued) raises a :class:`LocalError` naming the ledger and the reason; a batch fails its
items with it instead of waiting forever. Files already downloaded stay as they are; without
their rows a rerun verifies them again instead of trusting them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from .._threads import Guarded, join_queue, put_while
from ..errors import LocalError
from ..urls import redact_text
from .ledgers import MAIN, choose, fold
from .rows import ADDED, EXTRACTED, FIELDS, SCHEMA, UPSERT, Entry, parse_row, row_values

if TYPE_CHECKING:
    import sqlite3

    from .claims import Claims

__all__ = ["Entry", "Ledger", "parse_row"]  # Entry, parse_row: see .rows

log = logging.getLogger("resumable")

_BACKLOG = 2000  # rows queued for the writer at most (see Ledger.__init__)
_GATHER = 0.05  # seconds the writer lets rows gather before one transaction commits them


class Ledger:
    """The ledger of one destination directory. Thread-safe; one connection, one lock."""

    DIRNAME = ".resumable"

    def __init__(self, dest_dir: Path, claims: Claims | None = None) -> None:
        import sqlite3  # here, not at module level: ``import resumable`` stays cheap

        folder = dest_dir / self.DIRNAME
        self._path = folder / MAIN
        self._claims, self._claim = claims, None  # with claims: one writer per file, ever
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if claims is not None:  # processes sharing dest_dir: see .ledgers
                self._path, self._claim = choose(folder, claims)
            try:
                self._db = self._open(self._path)
            except _Unusable as bad:  # read from disk, so untrusted: never a dead end
                _move_aside(self._path, str(bad))
                self._db = self._open(self._path)
            if claims is not None and self._path.name == MAIN:
                fold(self._db, folder, claims)
            self._writer_db = self._connect(self._path)
        except (OSError, sqlite3.Error, _Unusable) as exc:
            self._release()
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
        self._failure: str | None = None  # why the writer stopped, once it has
        self._writer = Guarded(self._write, name="resumable-ledger", on_error=self._writer_failed)
        try:
            self._writer.start()
        except RuntimeError as exc:  # "can't start new thread"
            self._db.close()
            self._writer_db.close()
            message = f"cannot start the ledger's writer in {folder}: {exc}"
            raise LocalError(message, path=str(folder)) from None

    @classmethod
    def _open(cls, path: Path) -> sqlite3.Connection:
        """Open (or create) the ledger and bring its tables up to date.

        Raises:
            _Unusable: the file is not an SQLite database, is corrupt, or its ``items`` table
                lacks columns this library reads (not a ledger it wrote).
        """
        import sqlite3

        try:
            db = cls._connect(path)
        except sqlite3.DatabaseError as exc:
            if _corrupt(exc):
                raise _Unusable(str(exc)) from exc
            raise
        try:
            db.execute(SCHEMA)
            columns = {row[1] for row in db.execute("PRAGMA table_info(items)")}
            missing = set(FIELDS.split(", ")) - set(ADDED) - columns
            if missing:
                raise _Unusable(f"its items table has no {', '.join(sorted(missing))} column")
            for column, kind in ADDED.items():
                if column not in columns:
                    db.execute(f"ALTER TABLE items ADD COLUMN {column} {kind}")
            db.execute(EXTRACTED)
            db.execute("SELECT path FROM items LIMIT 1").fetchall()
        except sqlite3.DatabaseError as exc:
            db.close()
            if _corrupt(exc):
                raise _Unusable(str(exc)) from exc
            raise
        except _Unusable:
            db.close()
            raise
        return db

    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        import sqlite3

        db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.Error:
            db.close()
            raise
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

    def _writer_failed(self, exc: BaseException) -> None:
        """The writer's commit failed (a full disk, an I/O error): say why, for every waiter."""
        reason = str(exc) or type(exc).__name__
        if "full" in reason or "I/O" in reason:
            reason += " (free some space, then run the batch again: finished files are kept)"
        self._failure = f"cannot write the ledger {self._path}: {reason}"

    def _check(self) -> None:
        """Raise a fresh :class:`LocalError` if the writer has stopped (each raise its own
        error: one shared instance would carry one thread's traceback into another's)."""
        if not self._writer.is_alive():
            message = self._failure or f"the writer of the ledger {self._path} stopped"
            raise LocalError(message, path=str(self._path))

    def _put(self, item: tuple[str, tuple[object, ...]] | None) -> None:
        """Queue a statement, waiting while the backlog is full (never forever: a writer that
        died would never make room, and what it would not commit must not look recorded)."""
        self._check()
        if not put_while(self._pending, item, self._writer.is_alive):
            self._check()

    def flush(self) -> None:
        """Wait until every record so far is committed (a stopped writer raises LocalError)."""
        if not join_queue(self._pending, self._writer.is_alive):
            self._check()

    @property
    def broken(self) -> str | None:
        """Why the ledger cannot be written any more, or ``None`` while it can."""
        return None if self._writer.is_alive() else self._failure or "its writer stopped"

    def get(self, path: str) -> Entry | None:
        """The committed row for ``path`` (rows queued by ``record`` appear once committed)."""
        if path not in self._known:
            return None
        with self._lock:
            query = f"SELECT {FIELDS} FROM items WHERE path = ?"
            row = self._db.execute(query, (path,)).fetchone()
        return parse_row(row) if row else None

    def record(self, entry: Entry) -> None:
        """Queue ``entry`` as the row of its path (the record of a write is carried over)."""
        self._put((UPSERT, row_values(entry, updated=time.time())))
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
        written: bool = False,
    ) -> None:
        """``stat``: ``(size, mtime_ns)`` as seen where the file was written (another machine's
        disk, for a fanned-out batch); by default ``file`` is stat'ed here. ``written``: this
        library has just written the file (a download promoted it), as opposed to a file that
        was only checked; only such a record lets ``sync`` delete the file later."""
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
                written_size=size if written else None,
                written_mtime_ns=mtime_ns if written else None,
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
        return row[0] if row and isinstance(row[0], str) else None

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
                f"SELECT {FIELDS} FROM items WHERE origin = ? ORDER BY path", (origin,)
            ).fetchall()
        for row in rows:
            entry = parse_row(row)
            if entry is not None:
                yield entry

    def errors(self) -> list[Entry]:
        """Items whose last run failed (what a rerun can report before starting)."""
        self.flush()
        with self._lock:
            rows = self._db.execute(
                f"SELECT {FIELDS} FROM items WHERE state IN ('failed', 'partial') ORDER BY path"
            ).fetchall()
        return [entry for entry in map(parse_row, rows) if entry is not None]

    def close(self) -> None:
        """Commit what is queued, stop the writer, close both connections.

        Raises:
            LocalError: the writer stopped with rows still queued (they were never recorded).
        """
        try:
            if put_while(self._pending, None, self._writer.is_alive):
                self._writer.join()  # alive, and told to end once the queue is committed
            if self._pending.unfinished_tasks:
                self._check()
        finally:
            with self._lock:
                self._db.close()
            self._writer_db.close()
            self._release()

    def _release(self) -> None:
        """Give up this ledger's claim (once its connections are closed)."""
        if self._claims is not None and self._claim is not None:
            self._claims.release(self._claim)
            self._claim = None


class _Unusable(Exception):
    """The ledger file is not one this library can read (see :meth:`Ledger._open`)."""


def _corrupt(exc: sqlite3.DatabaseError) -> bool:
    """Whether SQLite says the file is not a database, or a damaged one (not: locked, full)."""
    code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+
    if code is not None:
        return code & 0xFF in (11, 26)  # SQLITE_CORRUPT, SQLITE_NOTADB
    text = str(exc)
    return "not a database" in text or "malformed" in text


def _move_aside(path: Path, why: str) -> None:
    """Keep an unusable ledger for a post-mortem, out of the way of a new one.

    Nothing is lost that matters: without its rows, files are verified again instead of
    skipped by ``stat``, and ``sync`` deletes nothing it cannot prove it wrote.
    """
    aside = path.with_name(f"{path.name}.bad-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}")
    log.warning("the ledger %s is unusable (%s); moved it to %s", path, why, aside.name)
    os.replace(path, aside)
    for suffix in ("-wal", "-shm", "-journal"):  # they belong to the old file
        with contextlib.suppress(FileNotFoundError):
            os.replace(f"{path}{suffix}", f"{aside}{suffix}")
