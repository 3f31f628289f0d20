"""Phase direct (resumable.engine.direct): a file that fits in one answer is received privately
and published with one rename; what it cannot finish is handed on as an outcome (a larger
answer, a new URL) or raised (a transient failure, its bytes kept for the partial)."""

from __future__ import annotations

from pathlib import Path

import pytest
from enginekit import MIRROR, URL, KiB, Run, data, files, sha

from resumable import ChecksumMismatch, ConnectionFailed, SourceNotFound
from resumable.engine import direct
from resumable.engine.result import DownloadResult
from resumable.testing import FaultySource, MemorySource

DATA = data(100 * KiB)
SMALL = {"block_size": 256 * KiB}


def test_possible_only_without_a_partial_for_a_file_not_known_to_be_larger(
    tmp_path: Path,
) -> None:
    store = MemorySource({URL: DATA})
    dest = tmp_path / "f.bin"
    assert direct.possible(Run(store, dest, settings=SMALL).state)
    assert not direct.possible(Run(store, dest, settings=SMALL, streamed=True).state)
    assert not direct.possible(Run(store, dest, settings=SMALL, size=300 * KiB).state)
    (tmp_path / "f.bin.partial").write_bytes(b"x")
    assert not direct.possible(Run(store, dest, settings=SMALL).state)


def test_a_small_file_is_published_with_one_request_and_no_partial(tmp_path: Path) -> None:
    source = FaultySource(MemorySource({URL: DATA}))
    dest = tmp_path / "f.bin"
    run = Run(source, dest, settings=SMALL, sha256=sha(DATA))
    outcome = direct.fetch(run.state)
    assert isinstance(outcome, DownloadResult)
    assert (outcome.status, outcome.bytes_transferred, outcome.sha256) == (
        "downloaded",
        len(DATA),
        sha(DATA),
    )
    assert dest.read_bytes() == DATA
    assert files(tmp_path) == ["f.bin"]  # no partial, sidecar, lock or private file
    assert source.calls == ["open"]
    assert run.kinds()[0] == "started"
    assert run.kinds()[-2:] == ["verified", "done"]


def test_a_larger_object_hands_its_open_answer_on(tmp_path: Path) -> None:
    source = FaultySource(MemorySource({URL: DATA}))
    run = Run(source, tmp_path / "f.bin", settings={"block_size": 64 * KiB})
    outcome = direct.fetch(run.state)
    assert isinstance(outcome, direct.Larger)
    assert outcome.body.start == 0
    assert outcome.body.info.size == len(DATA)
    outcome.body.close()
    assert files(tmp_path) == []
    assert run.state.fetched == 0


def test_a_cut_body_is_raised_and_its_bytes_are_kept_for_the_partial(tmp_path: Path) -> None:
    source = FaultySource(MemorySource({URL: DATA})).cut_body(40 * KiB)
    run = Run(source, tmp_path / "f.bin", settings={"block_size": 256 * KiB})
    with pytest.raises(ConnectionFailed):
        direct.fetch(run.state)
    state = run.state
    assert state.kept is not None
    private, info = state.kept
    assert private.path.read_bytes() == DATA[: 40 * KiB]
    assert info.size == len(DATA)
    assert (state.direct_moved, state.offset, state.fetched) == (40 * KiB, 0, 40 * KiB)
    assert not (tmp_path / "f.bin").exists()
    private.discard()


def test_a_failed_open_keeps_nothing(tmp_path: Path) -> None:
    source = FaultySource(MemorySource({URL: DATA})).fail_open(ConnectionFailed("reset"))
    run = Run(source, tmp_path / "f.bin", settings=SMALL)
    with pytest.raises(ConnectionFailed):
        direct.fetch(run.state)
    assert run.state.kept is None
    assert run.state.direct_moved == 0
    assert files(tmp_path) == []


def test_a_refused_url_moves_to_the_mirror(tmp_path: Path) -> None:
    store = MemorySource({URL: DATA, MIRROR: DATA})
    first = FaultySource(store).fail_open(SourceNotFound("gone", url=URL))
    run = Run(first, tmp_path / "f.bin", settings=SMALL, mirrors=[MIRROR])
    assert direct.fetch(run.state) is direct.NEW_URL
    assert run.transfer.ctx.locator.mirror == 1
    assert run.kinds() == ["retrying"]
    assert files(tmp_path) == []
    again = direct.fetch(run.state)  # the next attempt asks the mirror
    assert isinstance(again, DownloadResult)
    assert (tmp_path / "f.bin").read_bytes() == DATA


def test_a_refused_url_without_a_mirror_is_raised(tmp_path: Path) -> None:
    source = FaultySource(MemorySource({URL: DATA})).fail_open(SourceNotFound("gone", url=URL))
    with pytest.raises(SourceNotFound):
        direct.fetch(Run(source, tmp_path / "f.bin", settings=SMALL).state)


def test_wrong_bytes_are_refused_and_nothing_is_kept(tmp_path: Path) -> None:
    run = Run(MemorySource({URL: DATA}), tmp_path / "f.bin", settings=SMALL, sha256="0" * 64)
    with pytest.raises(ChecksumMismatch):
        direct.fetch(run.state)
    assert files(tmp_path) == []
    assert run.state.kept is None


def test_through_the_transfer_a_cut_direct_attempt_resumes_as_its_own_bytes(
    tmp_path: Path,
) -> None:
    source = FaultySource(MemorySource({URL: DATA})).cut_body(40 * KiB)
    waits: list[float] = []
    run = Run(source, tmp_path / "f.bin", settings=SMALL, waits=waits)
    result = run.transfer.run()
    assert (tmp_path / "f.bin").read_bytes() == DATA
    assert result.status == "downloaded"  # the kept bytes are this call's: not "resumed"
    assert result.bytes_transferred == len(DATA)  # each byte fetched once
    assert source.calls == ["open", "open"]
    assert waits == [1.0]  # the direct failure was charged to the budget
    assert files(tmp_path) == ["f.bin"]
