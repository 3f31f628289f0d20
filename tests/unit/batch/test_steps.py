"""The per-item steps shared by both runners (resumable/batch/steps.py and task.py): admit,
download, settle, and what each writes to the ledger and the tally."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from batchkit import OBJECTS, engine, rows, store

from resumable import InvalidArgument, LocalError
from resumable.batch.items import Item, Work
from resumable.batch.ledger import Ledger
from resumable.batch.steps import Steps, stopped_by
from resumable.batch.tally import Tally
from resumable.batch.task import Outcome, Task, download
from resumable.cancel import CancelToken
from resumable.errors import Cancelled, SourceNotFound
from resumable.progress import EventKind, ProgressEvent

URL = "mem://bucket/d/f0.bin"


class Parts:
    def __init__(self, tmp_path: Path, source: object) -> None:
        self.engine = engine(source)
        self.ledger = Ledger(tmp_path)
        self.tally = Tally()
        self.cancel = CancelToken()
        self.events: list[ProgressEvent] = []
        self.steps = Steps(
            self.engine, self.ledger, tmp_path, self.tally, self.cancel, self.events.append
        )


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[Parts]:
    made = Parts(tmp_path, store())
    yield made
    made.ledger.close()


def work(url: str = URL, rel: str = "f0.bin") -> Work:
    return Work(Item(url), rel, None)


def test_admit_gives_a_task_with_the_absolute_destination(parts: Parts, tmp_path: Path) -> None:
    task = parts.steps.admit(7, work())
    assert task is not None
    assert (task.key, task.url, Path(task.dest)) == (7, URL, tmp_path.resolve() / "f0.bin")
    assert not task.refresh


def test_a_destination_is_admitted_once(parts: Parts) -> None:
    parts.steps.admit(0, work())
    with pytest.raises(InvalidArgument, match="already used"):
        parts.steps.admit(1, work("mem://bucket/d/f1.bin"))


def test_run_downloads_and_records(parts: Parts, tmp_path: Path) -> None:
    parts.steps.run(work(), lambda folder: None)
    parts.ledger.flush()
    assert (tmp_path / "f0.bin").read_bytes() == OBJECTS[URL]
    assert rows(tmp_path) == {"f0.bin": ("done", 1000)}
    assert [r.status for r in parts.tally.result(cancelled=False).ok] == ["downloaded"]


def test_a_done_file_is_skipped_by_the_ledger_with_one_event(tmp_path: Path) -> None:
    first = Parts(tmp_path, store())
    first.steps.run(work(), lambda folder: None)
    first.ledger.close()
    source = store()
    again = Parts(tmp_path, source)
    assert again.steps.admit(0, work()) is None  # settled here: nothing to download
    again.ledger.close()
    assert source.calls == []
    assert [e.kind for e in again.events] == [EventKind.SKIPPED]
    assert [r.status for r in again.tally.result(cancelled=False).ok] == ["skipped"]


def test_download_returns_errors_as_outcomes(parts: Parts, tmp_path: Path) -> None:
    task = Task(3, "mem://bucket/d/none.bin", str(tmp_path / "none.bin"))
    outcome = download(parts.engine, task, lambda e: None, parts.cancel, lambda f: None)
    assert outcome.key == 3
    assert outcome.result is None
    assert isinstance(outcome.error, SourceNotFound)
    assert not outcome.partial


def test_settle_records_a_failure_as_failed_or_partial(parts: Parts, tmp_path: Path) -> None:
    error = SourceNotFound("gone", url=URL)
    parts.steps.settle(work(), Outcome(0, error=error, partial=False))
    parts.steps.settle(
        work("mem://bucket/d/f1.bin", "f1.bin"), Outcome(1, error=error, partial=True)
    )
    parts.ledger.flush()
    assert rows(tmp_path) == {"f0.bin": ("failed", None), "f1.bin": ("partial", None)}
    assert len(parts.tally.result(cancelled=False).failed) == 2


def test_settle_emits_the_final_event_before_recording(parts: Parts, tmp_path: Path) -> None:
    final = ProgressEvent(EventKind.FAILED, URL, tmp_path / "f0.bin", 0, 1000)
    parts.steps.settle(work(), Outcome(0, error=SourceNotFound("gone"), final=final))
    assert parts.events == [final]


def test_a_callback_error_fails_the_item_with_it(parts: Parts) -> None:
    boom = ValueError("the user's callback")
    parts.steps.settle(work(), Outcome(0, error=SourceNotFound("gone")), boom)
    [(item, exc)] = parts.tally.result(cancelled=False).failed
    assert exc is boom
    assert isinstance(item, Item)


def test_a_task_never_started_is_not_recorded(parts: Parts, tmp_path: Path) -> None:
    parts.steps.settle(work(), Outcome(0, started=False))
    parts.ledger.flush()
    assert rows(tmp_path) == {}
    assert parts.tally.result(cancelled=False).failed == []


def test_a_cancelled_item_keeps_no_failed_row(parts: Parts, tmp_path: Path) -> None:
    parts.steps.fail(work(), Cancelled("stopped"))
    parts.ledger.flush()
    assert rows(tmp_path) == {}  # its partial stays resumable, not "failed"


def test_a_system_exit_from_the_callback_stops_the_batch(tmp_path: Path) -> None:
    def callback(event: ProgressEvent) -> None:
        raise SystemExit(3)

    made = Parts(tmp_path, store())
    made.steps = Steps(made.engine, made.ledger, tmp_path, made.tally, made.cancel, callback)
    made.steps.run(work(), lambda folder: None)
    made.ledger.close()
    [(_, exc)] = made.tally.result(cancelled=True).failed
    assert isinstance(exc, Cancelled)
    assert "SystemExit" in str(exc)
    assert made.cancel.is_set()


def test_a_ledger_that_cannot_be_written_fails_items_before_they_start(
    parts: Parts, tmp_path: Path
) -> None:
    parts.ledger.close()  # its writer is gone: like a full disk
    with pytest.raises(LocalError, match="not started"):
        parts.steps.admit(0, work())


def test_an_input_that_failed_is_counted(parts: Parts) -> None:
    parts.steps.input_failed("mem://bucket/{", InvalidArgument("bad template"))
    [(item, exc)] = parts.tally.result(cancelled=False).failed
    assert item == "mem://bucket/{"
    assert isinstance(exc, InvalidArgument)


def test_stopped_by_names_the_exception() -> None:
    error = stopped_by(KeyboardInterrupt())
    assert isinstance(error, Cancelled)
    assert "KeyboardInterrupt" in str(error)
    assert isinstance(error.__cause__, KeyboardInterrupt)


def test_download_collects_the_folders_to_sync(parts: Parts, tmp_path: Path) -> None:
    folders: list[Path] = []
    task = Task(0, URL, str(tmp_path / "sub" / "f0.bin"))
    outcome = download(parts.engine, task, lambda e: None, threading.Event(), folders.append)
    assert outcome.result is not None
    assert outcome.stat is not None
    assert folders == [tmp_path / "sub"]
