"""The Job handle (resumable/batch/job.py) over in-memory objects: results, status, reruns,
cancel, the end hook and failures that stay per item."""

from __future__ import annotations

from pathlib import Path

import pytest
from batchkit import OBJECTS, engine, rows, store

from resumable import InvalidArgument
from resumable.batch.job import Job
from resumable.errors import SourceNotFound


def test_a_batch_downloads_every_item_and_records_it(tmp_path: Path) -> None:
    source = store()
    job = Job(engine(source), list(OBJECTS), tmp_path)
    result = job.wait(timeout=30)
    assert sorted(r.path.name for r in result.ok) == [f"f{i}.bin" for i in range(5)]
    assert result.failed == []
    assert not result.cancelled
    for url, data in OBJECTS.items():
        assert (tmp_path / url.rsplit("/", 1)[1]).read_bytes() == data
    assert rows(tmp_path) == {f"f{i}.bin": ("done", 1000 + i) for i in range(5)}
    status = job.status()
    assert (status.downloaded, status.queued, status.active, status.finished) == (5, 0, 0, True)
    assert job.done()


def test_a_rerun_skips_by_the_ledger_without_asking_the_source(tmp_path: Path) -> None:
    Job(engine(store()), list(OBJECTS), tmp_path).wait(timeout=30)
    source = store()
    result = Job(engine(source), list(OBJECTS), tmp_path).wait(timeout=30)
    assert [r.status for r in result.ok] == ["skipped"] * 5
    assert source.calls == []  # stat alone decided


def test_a_file_changed_on_disk_is_fetched_again(tmp_path: Path) -> None:
    Job(engine(store()), list(OBJECTS), tmp_path).wait(timeout=30)
    (tmp_path / "f1.bin").write_bytes(b"changed")
    source = store()
    result = Job(engine(source), list(OBJECTS), tmp_path).wait(timeout=30)
    statuses = {r.path.name: r.status for r in result.ok}
    assert statuses["f1.bin"] == "downloaded"
    assert (tmp_path / "f1.bin").read_bytes() == OBJECTS["mem://bucket/d/f1.bin"]
    assert sorted(s for n, s in statuses.items() if n != "f1.bin") == ["skipped"] * 4


def test_failures_are_per_item_and_in_the_ledger(tmp_path: Path) -> None:
    items = [
        "mem://bucket/d/f0.bin",
        "mem://bucket/d/missing.bin",
        ("mem://bucket/d/f1.bin", "f0.bin"),
        42,
    ]
    result = Job(engine(store()), items, tmp_path).wait(timeout=30)
    assert [r.path.name for r in result.ok] == ["f0.bin"]
    errors = sorted(type(exc).__name__ for _, exc in result.failed)
    assert errors == ["InvalidArgument", "InvalidArgument", "SourceNotFound"]
    assert rows(tmp_path)["missing.bin"] == ("failed", None)
    assert "1 files downloaded, 3 errors" in result.summary


def test_an_input_iterator_that_raises_fails_the_input_only(tmp_path: Path) -> None:
    def items():  # type: ignore[no-untyped-def]
        yield "mem://bucket/d/f0.bin"
        raise RuntimeError("the generator broke")

    result = Job(engine(store()), items(), tmp_path).wait(timeout=30)
    assert [r.path.name for r in result.ok] == ["f0.bin"]
    [(item, exc)] = result.failed
    assert item == "<input>"
    assert isinstance(exc, InvalidArgument)
    assert "RuntimeError: the generator broke" in str(exc)


def test_a_cancelled_job_starts_nothing_more(tmp_path: Path) -> None:
    def endless():  # type: ignore[no-untyped-def]
        i = 0
        while True:
            yield (f"mem://bucket/d/f{i % 5}.bin", f"copy-{i}.bin")
            i += 1

    job = Job(engine(store()), endless(), tmp_path)
    job.cancel()
    result = job.wait(timeout=30)
    assert result.cancelled
    assert job.status().cancelled
    with pytest.raises(Exception, match="cancelled"):
        result.raise_for_errors()


def test_the_end_hook_runs_once_when_the_job_ends(tmp_path: Path) -> None:
    ended: list[int] = []
    job = Job(engine(store()), list(OBJECTS), tmp_path, on_end=lambda: ended.append(1))
    job.wait(timeout=30)
    assert ended == [1]


def test_a_progress_callback_sees_each_file_end(tmp_path: Path) -> None:
    kinds: dict[str, list[str]] = {}
    job = Job(
        engine(store()),
        list(OBJECTS),
        tmp_path,
        progress=lambda e: kinds.setdefault(e.path.name, []).append(e.kind.value),
    )
    job.wait(timeout=30)
    assert sorted(kinds) == [f"f{i}.bin" for i in range(5)]
    assert all(events[-1] == "done" for events in kinds.values())


def test_a_wait_that_times_out_says_so(tmp_path: Path) -> None:
    def slow():  # type: ignore[no-untyped-def]
        import time

        time.sleep(1.0)
        yield "mem://bucket/d/f0.bin"

    job = Job(engine(store()), slow(), tmp_path)
    with pytest.raises(TimeoutError, match="still running"):
        job.wait(timeout=0.05)
    assert job.wait(timeout=30).ok


def test_a_missing_object_fails_with_source_not_found(tmp_path: Path) -> None:
    result = Job(engine(store({})), ["mem://bucket/d/x.bin"], tmp_path).wait(timeout=30)
    assert [type(e) for _, e in result.failed] == [SourceNotFound]
