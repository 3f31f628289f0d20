"""The worker side of a fanned-out batch: progress thinning, and everything that crosses a process
boundary (results, errors, events, the downloader's configuration) pickling intact."""

from __future__ import annotations

import pickle
import threading
import time
from pathlib import Path

import pytest
from unit.test_errors import every_error

import resumable
from resumable.batch.chunks import (
    ChunkResult,
    DownloaderSpec,
    Outcome,
    Reporter,
    Task,
    _downloader_for,
    _downloaders,
    picklable,
)
from resumable.batch.fanout import spec_of
from resumable.batch.items import Work
from resumable.progress import EventKind, ProgressEvent
from resumable.sources import RemoteInfo


def event(kind: EventKind, done: int, name: str = "a.bin", **extra: object) -> ProgressEvent:
    return ProgressEvent(kind, "https://h/" + name, Path("/d") / name, done, 1000, **extra)  # type: ignore[arg-type]


def roundtrip(obj: object) -> object:
    return pickle.loads(pickle.dumps(obj))


# -- Reporter -------------------------------------------------------------------------------------


def test_reporter_keeps_lifecycle_events_and_only_the_latest_byte_count() -> None:
    reporter = Reporter(publish=None)
    reporter(event(EventKind.STARTED, 0))
    for done in range(1, 500):
        reporter(event(EventKind.PROGRESS, done))
    busy = resumable.ServerBusy(status=503, retry_after=1)
    reporter(event(EventKind.RETRYING, 499, error=busy, wait=1.0))
    reporter(event(EventKind.PROGRESS, 600))
    reporter(event(EventKind.PROGRESS, 1000))
    reporter(event(EventKind.VERIFIED, 1000))
    reporter(event(EventKind.DONE, 1000))
    sent = reporter.close()
    assert [(e.kind, e.done) for e in sent] == [
        (EventKind.STARTED, 0),
        (EventKind.PROGRESS, 499),
        (EventKind.RETRYING, 499),
        (EventKind.PROGRESS, 1000),
        (EventKind.VERIFIED, 1000),
    ]
    final = reporter.final(Path("/d/a.bin"))  # set aside for the item's outcome
    assert final is not None
    assert final.kind is EventKind.DONE
    assert reporter.final(Path("/d/a.bin")) is None


def test_reporter_sends_thinned_batches_at_its_interval() -> None:
    batches: list[list[ProgressEvent]] = []
    arrived = threading.Event()

    def publish(batch: list[ProgressEvent]) -> None:
        batches.append(batch)
        arrived.set()

    reporter = Reporter(publish, interval=0.05)
    reporter(event(EventKind.STARTED, 0))
    for done in range(1, 1000):
        reporter(event(EventKind.PROGRESS, done))
    assert arrived.wait(5)
    rest = reporter.close()
    sent = [e for batch in batches for e in batch] + rest
    assert [e.kind for e in sent] == [EventKind.STARTED, EventKind.PROGRESS]
    assert sent[-1].done == 999


def test_reporter_survives_a_failing_channel(caplog: pytest.LogCaptureFixture) -> None:
    def broken(batch: list[ProgressEvent]) -> None:
        raise ConnectionError("scheduler gone")

    reporter = Reporter(broken, interval=0.01)
    reporter(event(EventKind.STARTED, 0))
    deadline = time.monotonic() + 5
    while "could not send progress" not in caplog.text:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert reporter.close() == []


# -- pickling -------------------------------------------------------------------------------------


@pytest.mark.parametrize("err", every_error(), ids=lambda e: type(e).__name__)
def test_every_error_crosses_a_process_boundary_inside_an_outcome(
    err: resumable.ResumableError,
) -> None:
    final = event(EventKind.FAILED, 10, error=err)
    copy = roundtrip(Outcome(3, error=err, partial=True, final=final))
    assert isinstance(copy, Outcome)
    assert type(copy.error) is type(err)
    assert str(copy.error) == str(err)
    assert copy.error.__dict__ == err.__dict__
    assert copy.final is not None
    assert type(copy.final.error) is type(err)


def test_every_result_type_pickles() -> None:
    result = resumable.DownloadResult(
        url="https://h/a.bin",
        path=Path("/d/a.bin"),
        size=3,
        sha256="ab" * 32,
        status="resumed",
        bytes_transferred=1,
        digests={"sha256": "ab" * 32, "md5": "cd" * 16},
    )
    info = RemoteInfo("https://h/a.bin", 3, '"e"', "Sat, 01 Jan 2024", "7", {"md5": "x"}, True)
    item = resumable.Item("https://h/a.bin", "x/a.bin", 3, "ab" * 32, ["md5:" + "cd" * 16])
    failure = resumable.SourceNotFound("HTTP 404", url="https://h/b.bin")
    batch = resumable.BatchResult([result], [(item, failure)], False, [Path("/d/gone")])
    status = resumable.JobStatus(
        1, 1, 1, 0, 0, 1, 10, 2.5, None, (resumable.FileProgress(Path("/d/a"), 1, 3),),
        ((item, failure),), False, False,
    )  # fmt: skip
    objects: list[object] = [
        result,
        info,
        item,
        batch,
        status,
        event(EventKind.RETRYING, 1, error=failure, wait=0.5),
        Work(item, "x/a.bin", "https://h/{a,b}.bin"),
        Task(0, item.url, "/d/x/a.bin", 3, None, None, True),
        ChunkResult([Outcome(0, result, info, (3, 123))], [event(EventKind.PROGRESS, 2)], "n:1"),
    ]
    for obj in objects:  # repr: exceptions inside compare by identity, not value
        assert repr(roundtrip(obj)) == repr(obj), type(obj).__name__
    copy = roundtrip(batch)
    assert isinstance(copy, resumable.BatchResult)
    assert copy.failed[0][1].__dict__ == failure.__dict__
    assert copy.summary == batch.summary
    with pytest.raises(resumable.BatchError, match="1 SourceNotFound"):
        copy.raise_for_errors()


def test_an_exception_that_does_not_pickle_is_named_instead_of_losing_the_chunk() -> None:
    class Holding(Exception):
        def __init__(self) -> None:
            super().__init__("holds a lock")
            self.lock = threading.Lock()

    wrapped = picklable(Holding())
    assert isinstance(roundtrip(wrapped), resumable.ResumableError)
    assert "Holding: holds a lock" in str(wrapped)
    kept = resumable.ConnectionFailed("reset", url="https://h/x")
    assert picklable(kept) is kept


def test_the_downloader_configuration_travels_and_rebuilds_the_same_downloader() -> None:
    resumable.register("tstscheme", "resumable.testing:MemorySource")
    try:
        d = resumable.ResumableDownloader(
            workers=3,
            connections=2,
            rate_limit=5e6,
            storage_options={"s3": {"anon": True}},
            retry=resumable.RetryPolicy(attempts=4, backoff=0.1),
            timeouts=resumable.Timeouts(connect=3, stall=7),
            headers={"Authorization": "Bearer t"},
            locking=False,
            block_size=1 << 20,
            segment_threshold=1 << 22,
            limit_bph=10**9,
            max_per_host=4,
            max_connections=9,
        )
        spec = roundtrip(spec_of(d.engine))
        assert isinstance(spec, DownloaderSpec)
        assert ("tstscheme", "resumable.testing:MemorySource") in spec.registry
        copy = spec.build()
    finally:
        from resumable.sources import _lock, _registry

        with _lock:
            _registry.pop("tstscheme", None)
    assert spec_of(copy) == spec_of(d.engine)
    assert copy.settings == d.settings
    assert copy.source_config == d.engine.source_config
    assert (copy.slots.per_host, copy.slots.total, copy.settings.limit_bph) == (4, 9, 10**9)
    # A worker process keeps one downloader per configuration, warm between chunks.
    try:
        with _downloader_for(spec) as built, _downloader_for(roundtrip(spec)) as again:  # type: ignore[arg-type]
            assert again is built
        assert _downloaders[spec.key] is built  # kept warm for the next chunk
    finally:
        _downloaders.pop(spec.key).close()


def test_the_key_of_a_configuration_ignores_the_random_generators_state() -> None:
    spec = spec_of(resumable.ResumableDownloader().engine)
    before = spec.key
    import random

    random.random()  # RetryPolicy.random is the module's generator: its state moved
    assert roundtrip(spec).key == before  # type: ignore[attr-defined]


def test_a_downloader_in_use_is_never_evicted() -> None:
    specs = [spec_of(resumable.ResumableDownloader(workers=n).engine) for n in range(1, 8)]
    try:
        with _downloader_for(specs[0]) as first:
            for spec in specs[1:]:
                with _downloader_for(spec):
                    pass
            assert _downloaders[specs[0].key] is first  # still cached while in use
        assert len(_downloaders) <= 4
    finally:
        for spec in specs:
            downloader = _downloaders.pop(spec.key, None)
            if downloader is not None:
                downloader.close()
