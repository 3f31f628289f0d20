"""Phase stream (resumable.engine.stream): one request at a time from the partial's offset,
each answer judged against the recorded version, every failure through the one retry loop."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from enginekit import URL, KiB, Run, data, sha

from resumable import ProgressEvent, RetriesExhausted, SourceNotFound
from resumable.engine import resume, stream
from resumable.sources import RemoteInfo
from resumable.testing import FaultySource, MemorySource

DATA = data(300 * KiB)
NEW = data(300 * KiB, seed=2)
SETTINGS = {"block_size": 64 * KiB}


def fetch(run: Run) -> bytes:
    """Open the partial, run the phase, return what the partial holds."""
    state = run.state
    resume.open_partial(state)
    try:
        stream.fetch(state)
        return state.partial.data.read_bytes()
    finally:
        state.partial.close()


def test_one_stream_writes_the_whole_object_and_its_hash(tmp_path: Path) -> None:
    source = FaultySource(MemorySource({URL: DATA}))
    run = Run(source, tmp_path / "f.bin", settings=SETTINGS)
    assert fetch(run) == DATA
    state = run.state
    assert (state.offset, state.fetched) == (len(DATA), len(DATA))
    assert state.hasher.finish()["sha256"] == sha(DATA)
    assert source.calls == ["open"]
    sidecar = state.partial.read_sidecar()
    assert sidecar is not None
    assert sidecar.validators["etag"] == source.stat(URL).etag
    assert run.kinds()[0] == "started"


def test_cuts_are_resumed_from_the_offset_and_cost_no_byte_twice(tmp_path: Path) -> None:
    source = FaultySource(MemorySource({URL: DATA})).cut_body(100 * KiB, 10)
    waits: list[float] = []
    run = Run(source, tmp_path / "f.bin", settings=SETTINGS, waits=waits, attempts=2)
    assert fetch(run) == DATA
    assert run.state.fetched == len(DATA)
    assert source.calls == ["open"] * 3
    # The first cut moved 100 KiB (meaningful: no budget used); the second, 10 bytes.
    assert waits == [1.0, 1.0]
    assert run.kinds().count("retrying") == 2


def test_a_new_version_after_a_cut_restarts_from_zero_never_spliced(tmp_path: Path) -> None:
    store = MemorySource({URL: DATA})
    source = FaultySource(store).cut_body(50 * KiB)
    changed: list[bool] = []

    def change_once(event: ProgressEvent) -> None:
        if str(event.kind) == "retrying" and not changed:
            changed.append(True)
            store.put(URL, NEW)  # published while this call waits to retry

    run = Run(source, tmp_path / "f.bin", settings=SETTINGS, on_event=change_once)
    assert fetch(run) == NEW
    assert run.state.hasher.finish()["sha256"] == sha(NEW)
    assert run.state.fetched == 50 * KiB + len(NEW)


def test_a_spent_budget_without_another_url_raises(tmp_path: Path) -> None:
    source = FaultySource(MemorySource({URL: DATA})).cut_body(0, 0, 0)
    run = Run(source, tmp_path / "f.bin", settings=SETTINGS, attempts=3)
    with pytest.raises(RetriesExhausted):
        fetch(run)
    assert source.calls == ["open"] * 3


class GoneAfterFirst(FaultySource):
    """Serves the first request, then answers 404: a URL withdrawn mid-download."""

    def open(
        self, url: str, start: int = 0, end: int | None = None, expect: RemoteInfo | None = None
    ) -> Any:
        if self.calls:
            self.calls.append("open")
            raise SourceNotFound("gone", url=url)
        return super().open(url, start, end, expect)


def test_a_refused_url_continues_on_the_mirror_from_the_same_offset(tmp_path: Path) -> None:
    other = "other://m/obj.bin"
    store = MemorySource({URL: DATA, other: DATA})
    gone = GoneAfterFirst(store).cut_body(100 * KiB)
    mirror = FaultySource(store)
    run = Run(
        gone,
        tmp_path / "f.bin",
        settings=SETTINGS,
        mirrors=[other],
        sources={"mem": gone, "other": mirror},
    )
    assert fetch(run) == DATA
    assert gone.calls == ["open", "open"]
    assert mirror.calls == ["open"]
    assert run.state.fetched == len(DATA)  # the mirror continued at 100 KiB
    assert run.transfer.ctx.locator.failovers == 1
    assert run.kinds().count("retrying") == 2  # the cut, then the move to the mirror
