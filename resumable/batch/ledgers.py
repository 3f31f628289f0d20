"""Which ledger file a process writes when several share a destination, and folding them.

SQLite's locks are POSIX locks, which NFS and Lustre do not reliably provide (with Lustre's
``localflock`` or an NFS client without a lock daemon they succeed for everyone), and its WAL
mode needs a shared-memory file that processes on different machines cannot share. Two
processes writing one ``ledger.sqlite`` there can corrupt it. So no ledger file ever has two
writers at once:

- the process that holds the claim ``ledger`` (:mod:`.claims`: an exclusive file kept alive by a
  heartbeat, no lock) writes ``.resumable/ledger.sqlite``, as a single process always did;
- every other process writes a ledger of its own, ``.resumable/ledgers/<token>.sqlite``, held
  by the claim ``ledger-<token>``;
- whoever opens the main ledger first folds into it the side ledgers whose writers are gone
  (their claim released, or stale), the newer row winning for each path, then deletes them. So
  the next run, and ``sync``, see what every process did.

The truth *between* processes during a run is not in any ledger: it is in the claim files
(``done``/``failed`` records) and the destination files themselves (see :mod:`.claims`). A
ledger is each process's own record, for skipping files by ``stat`` on a later run and for
``sync``'s proof of what this library wrote. A process writing a side ledger does not see the
main ledger's history: on a rerun, files it claims are verified again (hashed, or a metadata
request) instead of skipped by ``stat``; ``sync`` run by it deletes nothing it did not write
itself. Correct, only slower: the process holding the main ledger skips as before.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from .claims import Claim, Claims
from .rows import FIELDS, UPSERT, parse_row, row_values

if TYPE_CHECKING:
    import sqlite3

__all__ = ["MAIN", "choose", "fold"]

log = logging.getLogger("resumable")

MAIN = "ledger.sqlite"
_SIDE = "ledgers"
_NEWER = " WHERE excluded.updated >= items.updated"  # a row older than the main one's is history
_EXTRACTED = (
    "INSERT INTO extracted (path, record, updated) VALUES (?, ?, ?) ON CONFLICT(path) DO "
    "UPDATE SET record = excluded.record, updated = excluded.updated "
    "WHERE excluded.updated >= extracted.updated"
)


def choose(folder: Path, claims: Claims) -> tuple[Path, Claim | None]:
    """The ledger this process writes in ``folder`` (``dest_dir/.resumable``), and its claim
    (``None`` when the claims cannot be written: a full disk, where the ledger fails too)."""
    got = claims.acquire("ledger")
    if isinstance(got, Claim) or got is None:
        return folder / MAIN, got
    own = claims.acquire(f"ledger-{claims.token}")  # a fresh random name: always ours
    if not isinstance(own, Claim):  # the claims cannot be written: the main one, as always
        return folder / MAIN, None
    (folder / _SIDE).mkdir(exist_ok=True)
    return folder / _SIDE / f"{claims.token}.sqlite", own


def fold(db: sqlite3.Connection, folder: Path, claims: Claims) -> None:
    """Fold into the main ledger (``db``) every side ledger whose writer is gone."""
    for side in sorted((folder / _SIDE).glob("*.sqlite")):
        claim = claims.acquire(f"ledger-{side.stem}")
        if not isinstance(claim, Claim):
            continue  # its writer is alive: a later run folds it
        try:
            _fold_one(db, side)
        except Exception as exc:  # a damaged side ledger: its files are verified again
            log.warning("could not fold the ledger %s into the main one: %s", side, exc)
        finally:
            for suffix in ("", "-wal", "-shm", "-journal"):
                with contextlib.suppress(OSError):
                    os.unlink(f"{side}{suffix}")
            claims.release(claim)


def _fold_one(db: sqlite3.Connection, side: Path) -> None:
    import sqlite3

    other = sqlite3.connect(side, isolation_level=None, timeout=5)
    try:
        rows = other.execute(f"SELECT {FIELDS} FROM items").fetchall()
        try:
            extracted = other.execute("SELECT path, record, updated FROM extracted").fetchall()
        except sqlite3.OperationalError:  # no such table
            extracted = []
    finally:
        other.close()
    with db:
        db.execute("BEGIN")
        for row in rows:
            entry = parse_row(row)  # the one parse boundary: anyone may have written the file
            if entry is not None:
                db.execute(UPSERT + _NEWER, row_values(entry, updated=entry.updated))
        for path, record, updated in extracted:
            if isinstance(path, str) and isinstance(record, str):
                db.execute(_EXTRACTED, (path, record, updated))
    log.debug("folded %d rows of %s into the main ledger", len(rows), side.name)
