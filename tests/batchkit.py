"""Shared by the batch unit tests: an engine over in-memory objects, and ledger reads."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from resumable.engine import Engine, Settings
from resumable.testing import FaultySource, MemorySource

OBJECTS = {f"mem://bucket/d/f{i}.bin": bytes([i]) * (1000 + i) for i in range(5)}


def store(objects: dict[str, bytes] | None = None) -> FaultySource:
    """A source over ``objects`` (default: five small files) that records its calls."""
    return FaultySource(MemorySource(dict(OBJECTS if objects is None else objects)))


def engine(source: object, workers: int = 2) -> Engine:
    return Engine(Settings(workers=workers), {"mem": source})  # type: ignore[dict-item]


def rows(dest: Path) -> dict[str, tuple[str, int | None]]:
    """``{path: (state, size)}`` of the ledger in ``dest``, as committed."""
    with closing(sqlite3.connect(dest / ".resumable" / "ledger.sqlite")) as db:
        return {p: (s, n) for p, s, n in db.execute("SELECT path, state, size FROM items")}
