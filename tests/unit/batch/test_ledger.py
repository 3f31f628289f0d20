"""The ledger (resumable/batch/ledger.py, rows.py): rows written through the writer thread,
read back as checked entries, the record of writes carried over, bad files moved aside."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from resumable import LocalError
from resumable.batch.ledger import Ledger
from resumable.batch.rows import Entry, parse_row

SHA = "ab" * 32


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    made = Ledger(tmp_path)
    yield made
    made.close()


def done(
    ledger: Ledger, tmp_path: Path, name: str, *, written: bool, origin: str | None = None
) -> Path:
    path = tmp_path / name
    if not path.exists():  # a second row for the same file leaves it as it is
        path.write_bytes(b"x" * 10)
    ledger.done(
        name,
        path,
        identity=f"https://h/{name}",
        origin=origin,
        sha256=SHA,
        etag='"e"',
        written=written,
    )
    ledger.flush()
    return path


def test_a_done_row_reads_back_with_the_file_stat(ledger: Ledger, tmp_path: Path) -> None:
    path = done(ledger, tmp_path, "a.bin", written=True)
    entry = ledger.get("a.bin")
    assert entry is not None
    assert (entry.state, entry.size, entry.sha256, entry.etag) == ("done", 10, SHA, '"e"')
    assert entry.mtime_ns == path.stat().st_mtime_ns
    assert entry.unchanged_on_disk(path)
    assert entry.written_by_us(path)


def test_a_file_touched_since_is_no_longer_unchanged(ledger: Ledger, tmp_path: Path) -> None:
    path = done(ledger, tmp_path, "a.bin", written=True)
    path.write_bytes(b"y" * 11)
    entry = ledger.get("a.bin")
    assert entry is not None
    assert not entry.unchanged_on_disk(path)
    assert not entry.written_by_us(path)


def test_a_check_carries_the_record_of_the_write_over(ledger: Ledger, tmp_path: Path) -> None:
    path = done(ledger, tmp_path, "a.bin", written=True)
    done(ledger, tmp_path, "a.bin", written=False)  # the same bytes, only checked this time
    ledger.failed("a.bin", identity="https://h/a.bin", origin=None, error="boom", partial=False)
    ledger.flush()
    entry = ledger.get("a.bin")
    assert entry is not None
    assert entry.state == "failed"
    assert entry.written_size == 10
    assert entry.written_by_us(path)


def test_a_file_only_checked_is_not_ours(ledger: Ledger, tmp_path: Path) -> None:
    path = done(ledger, tmp_path, "a.bin", written=False)
    entry = ledger.get("a.bin")
    assert entry is not None
    assert not entry.written_by_us(path)


def test_errors_by_origin_and_forget(ledger: Ledger, tmp_path: Path) -> None:
    done(ledger, tmp_path, "a.bin", written=True, origin="tpl")
    done(ledger, tmp_path, "b.bin", written=True, origin="other")
    ledger.failed("c.bin", identity="https://h/c.bin", origin="tpl", error="x", partial=True)
    assert [e.path for e in ledger.by_origin("tpl")] == ["a.bin", "c.bin"]
    assert [(e.path, e.state) for e in ledger.errors()] == [("c.bin", "partial")]
    ledger.forget("a.bin")
    ledger.flush()
    assert ledger.get("a.bin") is None


def test_error_texts_are_redacted_on_disk(ledger: Ledger, tmp_path: Path) -> None:
    ledger.failed(
        "a.bin",
        identity="https://h/a.bin",
        origin=None,
        error="https://h/a.bin?sig=SECRET1234 failed",
        partial=False,
    )
    ledger.flush()
    with closing(sqlite3.connect(tmp_path / ".resumable" / "ledger.sqlite")) as db:
        [(error,)] = db.execute("SELECT error FROM items").fetchall()
    assert "SECRET1234" not in error


def test_extraction_records_round_trip(ledger: Ledger) -> None:
    assert ledger.get_extraction("a.tar") is None
    ledger.record_extraction("a.tar", '{"state": "done"}')
    ledger.flush()
    assert ledger.get_extraction("a.tar") == '{"state": "done"}'


def test_a_closed_ledger_refuses_new_rows(tmp_path: Path) -> None:
    made = Ledger(tmp_path)
    made.close()
    assert made.broken is not None
    with pytest.raises(LocalError, match="ledger"):
        made.failed("a.bin", identity="i", origin=None, error="x", partial=False)


def test_a_file_that_is_not_a_ledger_is_moved_aside(tmp_path: Path) -> None:
    folder = tmp_path / Ledger.DIRNAME
    folder.mkdir()
    (folder / "ledger.sqlite").write_bytes(b"not a database at all" * 100)
    made = Ledger(tmp_path)
    made.close()
    assert list(folder.glob("ledger.sqlite.bad-*"))
    with closing(sqlite3.connect(folder / "ledger.sqlite")) as db:
        assert db.execute("SELECT count(*) FROM items").fetchone() == (0,)


def test_a_row_no_writer_made_is_discarded() -> None:
    good = ("a.bin", "id", None, "done", 10, 1, SHA, None, None, None, 1.0, None, None, None)
    assert parse_row(good) == Entry("a.bin", "id", None, "done", 10, 1, SHA, updated=1.0)
    for index, value in ((3, "weird"), (4, "10"), (6, "not hex"), (0, "")):
        bad = list(good)
        bad[index] = value
        assert parse_row(tuple(bad)) is None
    assert parse_row(good[:-1]) is None


def test_a_ledger_folder_that_cannot_be_made_is_a_local_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(LocalError, match="cannot open the ledger"):
        Ledger(tmp_path / "file")
    assert os.path.isfile(tmp_path / "file")
