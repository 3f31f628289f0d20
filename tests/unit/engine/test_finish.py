"""Phase finish (resumable.engine.finish): verify, drop a tail past the verified length,
promote, and report; a mismatch after a resume asks for one whole refetch."""

from __future__ import annotations

from pathlib import Path

import pytest
from enginekit import URL, KiB, Run, data, files, sha

from resumable import ChecksumMismatch, SizeMismatch
from resumable.engine import finish
from resumable.testing import MemorySource

DATA = data(100 * KiB)


def complete(run: Run, blob: bytes, *, resumed_from: int = 0) -> None:
    """A partial holding ``blob``, hashed, as the stream phase leaves it."""
    state = run.state
    state.partial.open()
    state.partial.write(blob, 0)
    state.record(MemorySource({URL: DATA}).stat(URL))
    state.hasher.submit(blob)
    state.offset = len(blob)
    state.resumed_from = resumed_from


def test_a_verified_partial_is_promoted(tmp_path: Path) -> None:
    run = Run(MemorySource({URL: DATA}), tmp_path / "f.bin", sha256=sha(DATA))
    complete(run, DATA)
    run.state.fetched = len(DATA)
    result = finish.finish(run.state)
    assert not isinstance(result, finish.Refetch)
    assert (result.status, result.size, result.bytes_transferred) == (
        "downloaded",
        len(DATA),
        len(DATA),
    )
    assert (tmp_path / "f.bin").read_bytes() == DATA
    assert files(tmp_path) == ["f.bin"]
    assert run.kinds() == ["verified", "done"]


def test_a_resumed_partial_reports_resumed(tmp_path: Path) -> None:
    run = Run(MemorySource({URL: DATA}), tmp_path / "f.bin")
    complete(run, DATA, resumed_from=10)
    result = finish.finish(run.state)
    assert not isinstance(result, finish.Refetch)
    assert result.status == "resumed"


def test_wrong_bytes_are_discarded_and_raised(tmp_path: Path) -> None:
    run = Run(MemorySource({URL: DATA}), tmp_path / "f.bin", sha256=sha(DATA))
    complete(run, DATA[:-1] + b"!")
    with pytest.raises(ChecksumMismatch):
        finish.finish(run.state)
    assert files(tmp_path) == []
    sized = Run(MemorySource({URL: DATA}), tmp_path / "g.bin", size=len(DATA) + 1)
    complete(sized, DATA)
    with pytest.raises(SizeMismatch):
        finish.finish(sized.state)
    assert not (tmp_path / "g.bin").exists()


def test_a_mismatch_after_a_resume_asks_for_a_whole_refetch(tmp_path: Path) -> None:
    run = Run(MemorySource({URL: DATA}), tmp_path / "f.bin", sha256=sha(DATA))
    complete(run, DATA[:-1] + b"!", resumed_from=50 * KiB)
    assert finish.finish(run.state) is finish.REFETCH
    assert (tmp_path / "f.bin.partial").stat().st_size == 0  # emptied, not published
    assert not (tmp_path / "f.bin").exists()
    assert (run.state.offset, run.state.resumed_from) == (0, 0)
    run.state.partial.close()


def test_a_tail_past_the_verified_length_is_never_published(tmp_path: Path) -> None:
    run = Run(MemorySource({URL: DATA}), tmp_path / "f.bin", sha256=sha(DATA))
    complete(run, DATA)
    run.state.partial.write(b"tail", len(DATA))  # preallocated by a racer, or damaged
    result = finish.finish(run.state)
    assert not isinstance(result, finish.Refetch)
    assert (tmp_path / "f.bin").read_bytes() == DATA
