"""Phase resume (resumable.engine.resume): a partial is continued only when its sidecar names
the same object, agrees with the expectations and pins a version; otherwise it is emptied."""

from __future__ import annotations

from pathlib import Path

from enginekit import URL, KiB, Run, data, sha

from resumable.engine import resume
from resumable.partial import Partial
from resumable.private import PrivateFile
from resumable.ranges import RangeSet
from resumable.testing import MemorySource

DATA = data(200 * KiB)


def leave_partial(
    store: MemorySource, dest: Path, count: int, *, url: str = URL, **options: object
) -> None:
    """What an interrupted call leaves: ``count`` bytes and the sidecar naming the version."""
    run = Run(store, dest, url=url, **options)
    state = run.state
    state.partial.open()
    state.partial.write(DATA[:count], 0)
    state.record(store.stat(url))
    state.partial.close()


def test_no_partial_starts_at_zero(tmp_path: Path) -> None:
    run = Run(MemorySource({URL: DATA}), tmp_path / "f.bin")
    resume.open_partial(run.state)
    state = run.state
    assert (state.offset, state.resumed_from, state.info) == (0, 0, None)
    state.partial.close()


def test_a_partial_of_the_same_version_is_resumed_and_its_prefix_hashed(tmp_path: Path) -> None:
    store = MemorySource({URL: DATA})
    dest = tmp_path / "f.bin"
    leave_partial(store, dest, 50 * KiB)
    run = Run(store, dest)
    state = run.state
    resume.open_partial(state)
    assert (state.offset, state.resumed_from, state.high_water) == (50 * KiB,) * 3
    assert state.info is not None
    assert state.info.etag == store.stat(URL).etag
    state.hasher.submit(DATA[50 * KiB :])
    assert state.hasher.finish()["sha256"] == sha(DATA)  # the kept prefix was hashed
    state.partial.close()


def test_another_objects_partial_or_disagreeing_digest_starts_over(tmp_path: Path) -> None:
    store = MemorySource({URL: DATA, "mem://bucket/other": DATA})
    dest = tmp_path / "f.bin"
    leave_partial(store, dest, 50 * KiB, url="mem://bucket/other")
    run = Run(store, dest)
    resume.open_partial(run.state)
    assert run.state.offset == 0
    assert (tmp_path / "f.bin.partial").stat().st_size == 0  # emptied, under our sidecar
    sidecar = run.state.partial.read_sidecar()
    assert sidecar is not None
    assert sidecar.validators == {}
    run.state.partial.close()

    leave_partial(store, dest, 50 * KiB, sha256="a" * 64)
    other = Run(store, dest, sha256="b" * 64)
    resume.open_partial(other.state)
    assert other.state.offset == 0
    other.state.partial.close()


def test_a_segmented_partial_resumes_its_recorded_ranges_only(tmp_path: Path) -> None:
    store = MemorySource({URL: DATA})
    dest = tmp_path / "f.bin"
    run = Run(store, dest)
    state = run.state
    state.partial.open()
    state.partial.preallocate(len(DATA))
    state.partial.write(DATA[: 10 * KiB], 0)
    state.partial.write(DATA[100 * KiB : 120 * KiB], 100 * KiB)
    state.record(store.stat(URL), RangeSet([(0, 10 * KiB), (100 * KiB, 120 * KiB)]))
    state.partial.close()
    again = Run(store, dest)
    resume.open_partial(again.state)
    assert again.state.segments is not None
    assert list(again.state.segments) == [(0, 10 * KiB), (100 * KiB, 120 * KiB)]
    assert again.state.offset == 30 * KiB  # what the ranges hold, not the file's length
    again.state.partial.close()


def test_adopt_kept_links_the_direct_attempts_bytes_as_the_partial(tmp_path: Path) -> None:
    store = MemorySource({URL: DATA})
    dest = tmp_path / "f.bin"
    run = Run(store, dest)
    state = run.state
    private = PrivateFile(dest, lambda: None)
    private.write([DATA[: 30 * KiB]], 0)
    state.kept = (private, store.stat(URL))
    assert resume.adopt_kept(state) is True
    assert state.kept is None
    assert (tmp_path / "f.bin.partial").read_bytes() == DATA[: 30 * KiB]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin.partial", "f.bin.partial.json"]
    resume.open_partial(state)
    assert state.offset == 30 * KiB
    state.partial.close()


def test_adopt_kept_refuses_bytes_nothing_pins_and_an_existing_partial(tmp_path: Path) -> None:
    store = MemorySource({URL: DATA})
    dest = tmp_path / "f.bin"
    run = Run(store, dest)
    unpinned = PrivateFile(dest, lambda: None)
    unpinned.write([b"abc"], 0)
    info = store.stat(URL)
    bare = type(info)(url=URL, size=info.size)  # no validator, no expected digest
    run.state.kept = (unpinned, bare)
    assert resume.adopt_kept(run.state) is False
    assert not (tmp_path / "f.bin.partial").exists()

    Partial(dest).data.write_bytes(b"someone else's")
    private = PrivateFile(dest, lambda: None)
    private.write([b"abc"], 0)
    run.state.kept = (private, info)
    assert resume.adopt_kept(run.state) is False  # link never replaces another writer's file
    assert (tmp_path / "f.bin.partial").read_bytes() == b"someone else's"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin.partial"]  # private gone
