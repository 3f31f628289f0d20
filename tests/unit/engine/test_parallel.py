"""Phase parallel (resumable.engine.parallel): a large object over several connections into
one preallocated partial, its ranges recorded in the sidecar; a fallback to one stream."""

from __future__ import annotations

from pathlib import Path

from enginekit import URL, MiB, Run, data, sha

from resumable.engine import parallel, resume, stream
from resumable.engine.segmented import Fallback
from resumable.ranges import RangeSet
from resumable.testing import FaultySource, MemorySource

DATA = data(3 * MiB)
SEGMENTED = {"segment_threshold": MiB, "block_size": MiB}


def test_a_large_object_goes_segmented_and_is_hashed_in_order(tmp_path: Path) -> None:
    source = FaultySource(MemorySource({URL: DATA}))
    run = Run(source, tmp_path / "f.bin", settings=SEGMENTED, connections=3)
    state = run.state
    resume.open_partial(state)
    stream.fetch(state)
    assert state.partial.data.read_bytes() == DATA
    assert (state.offset, state.fetched) == (len(DATA), len(DATA))
    assert state.hasher.finish()["sha256"] == sha(DATA)  # what the frontier computed
    assert source.calls.count("open") == 3  # one piece per MiB, the first on the first answer
    sidecar = state.partial.read_sidecar()
    assert sidecar is not None
    assert sidecar.ranges is not None
    assert 0 < sidecar.ranges.total <= len(DATA)  # checkpoints: recorded after a sync
    state.partial.close()


def test_resuming_recorded_ranges_fetches_only_the_missing_ones(tmp_path: Path) -> None:
    store = MemorySource({URL: DATA})
    source = FaultySource(store)
    run = Run(source, tmp_path / "f.bin", settings=SEGMENTED, connections=3)
    state = run.state
    state.partial.open()
    state.partial.preallocate(len(DATA))
    state.partial.write(DATA[:MiB], 0)
    state.record(store.stat(URL), RangeSet([(0, MiB)]))
    state.partial.close()
    resume.open_partial(state)
    assert state.segments is not None
    assert state.offset == MiB
    stream.fetch(state)
    assert state.partial.data.read_bytes() == DATA
    assert state.fetched == 2 * MiB  # the recorded MiB was not fetched again
    assert state.hasher.finish()["sha256"] == sha(DATA)
    assert source.calls.count("open") == 2
    state.partial.close()


def test_one_connection_or_no_ranges_stays_one_stream(tmp_path: Path) -> None:
    one = Run(MemorySource({URL: DATA}), tmp_path / "a.bin", settings=SEGMENTED, connections=1)
    info = MemorySource({URL: DATA}).stat(URL)
    assert not one.state.segmentable(info)
    many = Run(MemorySource({URL: DATA}), tmp_path / "b.bin", settings=SEGMENTED, connections=4)
    assert many.state.segmentable(info)
    no_ranges = MemorySource({URL: DATA}, ranges=False).stat(URL)
    assert not many.state.segmentable(no_ranges)


def test_fall_back_empties_the_partial_and_rules_segments_out(tmp_path: Path) -> None:
    store = MemorySource({URL: DATA})
    run = Run(store, tmp_path / "f.bin", settings=SEGMENTED, connections=4)
    state = run.state
    state.partial.open()
    state.partial.write(DATA[:100], 0)
    state.record(store.stat(URL), RangeSet([(0, 100)]))
    state.segments = RangeSet([(0, 100)])
    state.offset = state.high_water = 100
    parallel.fall_back(state, Fallback("the object changed", changed=True))
    assert state.single_stream
    assert state.segments is None
    assert (state.offset, state.high_water) == (0, 0)
    assert state.partial.data.stat().st_size == 0
    assert not state.segmentable(store.stat(URL))
    assert run.kinds() == ["progress"]
    state.partial.close()
