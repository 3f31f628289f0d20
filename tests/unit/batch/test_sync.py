"""``sync`` (resumable/batch/sync.py): deletes only what this library wrote, nobody changed, and
the source confirms is gone; asks the source whether an object changed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from batchkit import engine, rows

from resumable.batch.items import Item, Work
from resumable.batch.job import Job
from resumable.batch.ledger import Ledger
from resumable.batch.sync import Sync
from resumable.batch.tally import Tally
from resumable.cancel import CancelToken
from resumable.errors import AccessDenied
from resumable.testing import FaultySource, MemorySource

PREFIX = "mem://bucket/d/"


@pytest.fixture
def memory() -> MemorySource:
    return MemorySource({f"{PREFIX}a.bin": b"a" * 100, f"{PREFIX}b.bin": b"b" * 200})


def mirror(memory: MemorySource, dest: Path) -> FaultySource:
    """One ``sync`` batch of the prefix; returns the source it used (its calls)."""
    source = FaultySource(memory)
    Job(engine(source), [PREFIX], dest, sync=True).wait(timeout=30)
    return source


@pytest.fixture
def parts(memory: MemorySource, tmp_path: Path) -> Iterator[tuple[Sync, Ledger, Tally]]:
    mirror(memory, tmp_path)
    ledger, tally = Ledger(tmp_path), Tally()
    yield Sync(engine(memory), ledger, tmp_path, tally, CancelToken()), ledger, tally
    ledger.close()


def test_a_file_gone_at_the_source_is_deleted(memory: MemorySource, tmp_path: Path) -> None:
    mirror(memory, tmp_path)
    memory.delete(f"{PREFIX}b.bin")
    source = FaultySource(memory)
    result = Job(engine(source), [PREFIX], tmp_path, sync=True).wait(timeout=30)
    assert result.deleted == [tmp_path / "b.bin"]
    assert not (tmp_path / "b.bin").exists()
    assert (tmp_path / "a.bin").exists()
    assert set(rows(tmp_path)) == {"a.bin"}
    assert source.calls.count("stat") >= 1  # the source was asked, not only the listing


def test_a_file_changed_locally_is_kept(
    parts: tuple[Sync, Ledger, Tally], memory: MemorySource, tmp_path: Path
) -> None:
    sync, _, tally = parts
    (tmp_path / "b.bin").write_bytes(b"mine now")
    memory.delete(f"{PREFIX}b.bin")
    sync.delete_if_ours("b.bin", f"{PREFIX}b.bin", listed=False)
    assert (tmp_path / "b.bin").read_bytes() == b"mine now"
    assert tally.result(cancelled=False).deleted == []


def test_an_object_still_listed_is_not_gone(
    parts: tuple[Sync, Ledger, Tally], memory: MemorySource, tmp_path: Path
) -> None:
    sync, _, _ = parts
    memory.delete(f"{PREFIX}b.bin")
    sync.delete_if_ours("b.bin", f"{PREFIX}b.bin", listed=True)
    assert (tmp_path / "b.bin").exists()


def test_a_source_that_does_not_answer_proves_nothing(memory: MemorySource, tmp_path: Path) -> None:
    mirror(memory, tmp_path)
    memory.delete(f"{PREFIX}b.bin")
    busy = FaultySource(memory).fail_stat(AccessDenied("403 on HEAD"))
    ledger = Ledger(tmp_path)
    try:
        sync = Sync(engine(busy), ledger, tmp_path, Tally(), CancelToken())
        assert not sync.gone(f"{PREFIX}b.bin", listed=False)
    finally:
        ledger.close()
    assert (tmp_path / "b.bin").exists()


def test_remote_changed_compares_the_validators(
    parts: tuple[Sync, Ledger, Tally], memory: MemorySource
) -> None:
    sync, ledger, _ = parts
    work = Work(Item(f"{PREFIX}a.bin"), "a.bin", PREFIX, listed=True)
    entry = ledger.get("a.bin")
    assert entry is not None
    assert not sync.remote_changed(work, entry)
    memory.put(f"{PREFIX}a.bin", b"A" * 100)  # a new version, same size
    assert sync.remote_changed(work, entry)


def test_an_incomplete_listing_prunes_nothing(
    parts: tuple[Sync, Ledger, Tally], memory: MemorySource, tmp_path: Path
) -> None:
    sync, _, tally = parts
    memory.delete(f"{PREFIX}b.bin")
    sync.saw(Work(Item(f"{PREFIX}a.bin"), "a.bin", f"{PREFIX}", listed=True))
    sync.incomplete(PREFIX)
    sync.delete_missing({"a.bin"})
    assert (tmp_path / "b.bin").exists()
    assert tally.result(cancelled=False).deleted == []


def test_delete_missing_deletes_what_the_run_did_not_see(
    parts: tuple[Sync, Ledger, Tally], memory: MemorySource, tmp_path: Path
) -> None:
    sync, _, tally = parts
    memory.delete(f"{PREFIX}b.bin")
    sync.saw(Work(Item(f"{PREFIX}a.bin"), "a.bin", "mem://bucket/d/", listed=True))
    sync.delete_missing({"a.bin"})
    assert tally.result(cancelled=False).deleted == [tmp_path / "b.bin"]
