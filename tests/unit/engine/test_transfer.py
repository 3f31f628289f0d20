"""The driver (resumable.engine.transfer.Transfer): phases in order, failures reported once with
what is kept, the handle's info/probe/stat, and the Engine's call/list over the one retry
loop. MemorySource/FaultySource only."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from enginekit import MIRROR, URL, KiB, Run, data, files, sha

from resumable import (
    AccessDenied,
    Cancelled,
    ConnectionFailed,
    RetriesExhausted,
    ServerBusy,
    SourceNotFound,
)
from resumable.testing import FaultySource, MemorySource

DATA = data(300 * KiB)
STREAM = {"block_size": 64 * KiB}  # larger than one block: the .partial protocol


def test_a_cut_stream_is_resumed_within_the_call_and_events_come_in_order(
    tmp_path: Path,
) -> None:
    source = FaultySource(MemorySource({URL: DATA})).cut_body(100 * KiB)
    run = Run(source, tmp_path / "f.bin", settings=STREAM, sha256=sha(DATA))
    result = run.transfer.run()
    assert (result.status, result.bytes_transferred) == ("downloaded", len(DATA))
    assert (tmp_path / "f.bin").read_bytes() == DATA
    assert files(tmp_path) == ["f.bin"]
    kinds = run.kinds()
    assert kinds[0] == "started"
    assert kinds.count("started") == 1
    assert "retrying" in kinds
    assert kinds[-2:] == ["verified", "done"]
    # The direct path's answer (larger than a block) was continued, not asked for again.
    assert source.calls == ["open", "open"]
    assert run.transfer.info is not None
    assert run.transfer.info.etag == source.stat(URL).etag


def test_a_failure_says_what_is_kept_and_the_next_call_resumes_it(tmp_path: Path) -> None:
    dest = tmp_path / "f.bin"
    source = FaultySource(MemorySource({URL: DATA})).cut_body(100 * KiB, 0, 0)
    run = Run(source, dest, settings=STREAM, attempts=2)
    with pytest.raises(RetriesExhausted) as caught:
        run.transfer.run()
    assert caught.value.kept is not None
    assert "resumable by running the same download again" in caught.value.kept
    assert f"({100 * KiB} of {len(DATA)} bytes)" in caught.value.kept
    assert run.kinds()[-1] == "failed"
    assert files(tmp_path) == ["f.bin.partial", "f.bin.partial.json", "f.bin.partial.lock"]
    again = Run(source, dest, settings=STREAM).transfer.run()
    assert (again.status, again.bytes_transferred) == ("resumed", len(DATA) - 100 * KiB)
    assert dest.read_bytes() == DATA


def test_a_failure_with_nothing_fetched_leaves_no_partial(tmp_path: Path) -> None:
    source = FaultySource(MemorySource({URL: DATA})).fail_open(*[ServerBusy(status=503)] * 3)
    run = Run(source, tmp_path / "f.bin", settings=STREAM, attempts=2)
    with pytest.raises(RetriesExhausted) as caught:
        run.transfer.run()
    assert caught.value.kept is not None
    assert "nothing was kept" in caught.value.kept
    assert [n for n in files(tmp_path) if not n.endswith(".lock")] == []
    assert run.kinds().count("failed") == 1


def test_a_resumed_file_that_fails_verification_is_fetched_whole_once(tmp_path: Path) -> None:
    dest = tmp_path / "f.bin"
    store = MemorySource({URL: DATA})
    first = Run(store, dest, settings=STREAM, sha256=sha(DATA))
    state = first.state
    state.partial.open()
    state.partial.write(b"X" * (50 * KiB), 0)  # damaged bytes under a valid sidecar
    state.record(store.stat(URL))
    state.partial.close()
    source = FaultySource(store)
    result = Run(source, dest, settings=STREAM, sha256=sha(DATA)).transfer.run()
    assert dest.read_bytes() == DATA
    assert result.status == "downloaded"
    assert result.bytes_transferred == len(DATA) - 50 * KiB + len(DATA)
    assert source.calls == ["open", "open"]


def test_a_refused_url_fails_over_to_the_mirror(tmp_path: Path) -> None:
    store = MemorySource({URL: DATA, MIRROR: DATA})
    source = FaultySource(store).fail_open(AccessDenied("403", url=URL))
    run = Run(source, tmp_path / "f.bin", settings=STREAM, mirrors=[MIRROR])
    result = run.transfer.run()
    assert (tmp_path / "f.bin").read_bytes() == DATA
    assert result.url == URL  # results keep naming the object's first URL
    assert run.transfer.ctx.locator.failovers == 1


def test_stat_retries_and_probe_turns_failures_into_none(tmp_path: Path) -> None:
    source = FaultySource(MemorySource({URL: DATA})).fail_stat(ConnectionFailed("x"))
    run = Run(source, tmp_path / "f.bin")
    assert run.transfer.stat().size == len(DATA)
    assert source.calls == ["stat", "stat"]
    assert run.kinds() == ["retrying"]
    gone = FaultySource(MemorySource({URL: DATA})).fail_stat(SourceNotFound("404", url=URL))
    assert Run(gone, tmp_path / "f.bin").transfer.probe("cannot tell") is None


def test_engine_call_and_list_retry_through_the_same_loop(tmp_path: Path) -> None:
    store = MemorySource({f"mem://b/{n}": b"x" for n in range(4)})
    source = FaultySource(store).cut_list(2, ConnectionFailed("cut"))
    engine = Run(source, tmp_path / "f.bin", url="mem://b/0").engine
    listed = [url for url, _ in engine.list("mem://b/")]
    assert listed == [f"mem://b/{n}" for n in range(4)]
    assert source.calls == ["list", "list"]
    flaky = FaultySource(store).fail_stat(ServerBusy(status=503))
    assert engine.call(lambda: flaky.stat("mem://b/1"), url="mem://b/1").size == 1
    assert flaky.calls == ["stat", "stat"]


def test_a_cancel_stops_the_transfer_and_keeps_the_partial(tmp_path: Path) -> None:
    cancel = threading.Event()
    source = FaultySource(MemorySource({URL: DATA}))

    def stop_midway(event: object) -> None:
        if getattr(event, "done", 0) >= 128 * KiB:
            cancel.set()

    run = Run(source, tmp_path / "f.bin", settings=STREAM, on_event=stop_midway, cancel=cancel)
    with pytest.raises(Cancelled) as caught:
        run.transfer.run()
    assert caught.value.kept is not None
    assert "resumable" in caught.value.kept
    assert not (tmp_path / "f.bin").exists()
    assert (tmp_path / "f.bin.partial").stat().st_size >= 128 * KiB
    assert run.kinds()[-1] == "failed"
