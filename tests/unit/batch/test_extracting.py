"""A batch item with a processor (resumable/batch/extracting.py): the extraction is recorded in
the ledger's ``extracted`` rows, its events reach the batch's callback, a rerun skips it."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from archives import tar_bytes
from batchkit import engine, store

from resumable import Untar
from resumable.batch.job import Job
from resumable.progress import EventKind, ProgressEvent

URL = "mem://bucket/a.tar"
ARCHIVE = tar_bytes({"x/1.txt": b"one", "x/2.txt": b"two"})


def extracted_rows(dest: Path) -> list[str]:
    with closing(sqlite3.connect(dest / ".resumable" / "ledger.sqlite")) as db:
        return [path for (path,) in db.execute("SELECT path FROM extracted")]


def test_an_archive_is_extracted_recorded_and_skipped_on_a_rerun(tmp_path: Path) -> None:
    events: list[ProgressEvent] = []
    job = Job(
        engine(store({URL: ARCHIVE})), [URL], tmp_path, process=Untar(), progress=events.append
    )
    result = job.wait(timeout=30)
    assert result.failed == []
    [done] = result.ok
    assert done.extracted is not None
    assert done.extracted.status == "extracted"
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.txt"))
    assert len(files) == 2
    assert all(name.endswith(("x/1.txt", "x/2.txt")) for name in files)
    assert extracted_rows(tmp_path) == ["a.tar"]
    assert EventKind.DONE in {e.kind for e in events}

    source = store({URL: ARCHIVE})
    again = Job(engine(source), [URL], tmp_path, process=Untar()).wait(timeout=30)
    [skipped] = again.ok
    assert skipped.extracted is not None
    assert skipped.extracted.status == "skipped"
    assert source.calls == []  # the ledger and the extraction record decided


def test_a_failed_extraction_keeps_the_download_done(tmp_path: Path) -> None:
    result = Job(
        engine(store({URL: b"not a tar at all" * 64})), [URL], tmp_path, process=Untar()
    ).wait(timeout=30)
    [(_, error)] = result.failed
    assert type(error).__name__ in ("CorruptArchive", "ExtractionError")
    with closing(sqlite3.connect(tmp_path / ".resumable" / "ledger.sqlite")) as db:
        assert db.execute("SELECT state FROM items WHERE path = 'a.tar'").fetchall() == [("done",)]
