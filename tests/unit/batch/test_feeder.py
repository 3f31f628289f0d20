"""The feeder (resumable/batch/feeder.py) and the tally (tally.py): lazy inputs between a low
and a high mark, the end of the input, counts and the ETA."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

from resumable.batch.feeder import END, Feeder
from resumable.batch.items import Work
from resumable.batch.tally import Tally
from resumable.engine import DownloadResult
from resumable.progress import EventKind, ProgressEvent
from resumable.sources import RemoteInfo


def no_listing(prefix: str) -> Iterator[tuple[str, RemoteInfo]]:
    raise AssertionError(prefix)


def running(feeder: Feeder) -> None:
    feeder.consumers = [threading.current_thread()]  # this test takes the items
    feeder.thread = threading.Thread(target=feeder.feed, daemon=True)
    feeder.thread.start()


def test_inputs_are_consumed_lazily_up_to_the_high_mark() -> None:
    pulled: list[int] = []

    def items() -> Iterator[str]:
        for i in range(1000):
            pulled.append(i)
            yield f"https://h/{i}.bin"

    tally = Tally()
    feeder = Feeder(items(), no_listing, tally, threading.Event(), checksums=None, high=16)
    running(feeder)
    first = feeder.take(timeout=5)
    assert isinstance(first, Work)
    assert first.rel == "0.bin"
    assert len(pulled) <= 20  # not the whole generator
    taken = 1
    while feeder.take(timeout=5) is not END:
        taken += 1
    assert taken == 1000
    assert tally.is_exhausted


def test_a_bad_input_is_passed_on_with_its_error() -> None:
    tally = Tally()
    feeder = Feeder([42], no_listing, tally, threading.Event(), checksums=None, high=4)
    running(feeder)
    raw, error = feeder.take(timeout=5)  # type: ignore[misc]
    assert raw == 42
    assert "batch item" in str(error)
    assert feeder.take(timeout=5) is END


def test_a_cancelled_feeder_ends_the_takers() -> None:
    cancel = threading.Event()

    def forever() -> Iterator[str]:
        while True:
            yield "https://h/x.bin"

    feeder = Feeder(forever(), no_listing, Tally(), cancel, checksums=None, high=4)
    running(feeder)
    cancel.set()
    while feeder.take(timeout=5) is not END:
        pass
    assert feeder.thread is not None
    feeder.thread.join(5)
    assert not feeder.thread.is_alive()


def test_the_tally_counts_and_estimates() -> None:
    tally = Tally()
    for _ in range(3):
        tally.queued(+1)
    path = Path("/d/a.bin")
    tally.queued(-1)
    tally.event(ProgressEvent(EventKind.PROGRESS, "u", path, 50, 100))
    status = tally.status(finished=False, cancelled=False)
    assert (status.queued, status.active, status.bytes_transferred) == (2, 1, 50)
    assert status.eta is None  # the input is not exhausted yet
    tally.settled(path)
    tally.ok(DownloadResult("u", path, 100, "0" * 64, "downloaded", 100, {}))
    tally.exhausted()
    status = tally.status(finished=False, cancelled=False)
    assert (status.downloaded, status.active, status.bytes_transferred) == (1, 0, 100)
    result = tally.result(cancelled=False)
    assert [r.path for r in result.ok] == [path]
    assert "1 files downloaded" in result.summary
