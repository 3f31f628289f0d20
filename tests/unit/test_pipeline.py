"""The single stream's writer (resumable.partial.Pipeline): in order, around the page cache where
the filesystem allows, every byte also lent to the hasher, and never a hang or a silent loss.

Real files in ``tmp_path`` (ext4 on these machines, which takes ``O_DIRECT``); the property
test writes random block sequences from random (odd) offsets and compares the file byte for
byte.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resumable import LocalError
from resumable.partial import Partial, Pipeline
from resumable.partial.pipeline import ALIGN

KiB = 1 << 10


class Recorder:
    """A hasher stand-in that keeps what it was lent, in order, and gives each block back."""

    def __init__(self) -> None:
        self.seen = bytearray()
        self.lent = 0

    def submit(self, data: memoryview, done: Callable[[], None]) -> None:
        self.seen += data
        self.lent += 1
        done()

    def alive(self) -> bool:
        return True


def _opened(path: Path, prefix: bytes = b"") -> Partial:
    partial = Partial(path)
    partial.data.write_bytes(prefix)
    partial.open()
    return partial


def _feed(pipeline: Pipeline, data: bytes, cuts: list[int]) -> None:
    """Put ``data`` in pieces of the given lengths (each fitting one block), as the stream does."""
    position = 0
    for cut in [*cuts, len(data)]:
        while position < min(cut, len(data)):
            block = pipeline.take()
            length = min(cut - position, len(block.view))
            block.view[:length] = data[position : position + length]
            pipeline.put(block, length)
            position += length


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    prefix=st.integers(0, 3 * ALIGN),
    size=st.integers(1, 300 * KiB),
    cuts=st.lists(st.integers(0, 300 * KiB), max_size=12),
)
def test_any_sequence_of_blocks_from_any_offset_is_written_exactly(
    tmp_path: Path, prefix: int, size: int, cuts: list[int]
) -> None:
    data = os.urandom(prefix + size)
    path = tmp_path / f"f{prefix}-{size}.bin"
    partial = _opened(path, data[:prefix])
    recorder = Recorder()
    pipeline = Pipeline(partial, prefix, size=64 * KiB, share=recorder, count=2)
    try:
        _feed(pipeline, data[prefix:], sorted(c for c in cuts if c < size))
    finally:
        written = pipeline.close()
    pipeline.check()
    partial.close()
    assert written == prefix + size
    assert partial.data.read_bytes() == data
    assert bytes(recorder.seen) == data[prefix:]  # the hasher saw the same bytes, in order


def test_aligned_blocks_go_around_the_page_cache_and_odd_edges_do_not_break_it(
    tmp_path: Path,
) -> None:
    data = os.urandom(5 * 64 * KiB + 123)
    partial = _opened(tmp_path / "f.bin", data[:777])  # a resume from an odd offset
    pipeline = Pipeline(partial, 777, size=64 * KiB, share=Recorder())
    assert pipeline.direct, "ext4 takes O_DIRECT: the fast path must be the one tested"
    _feed(pipeline, data[777:], [])
    assert pipeline.close() == len(data)
    assert pipeline.direct_writes >= 4
    partial.close()
    assert partial.data.read_bytes() == data


def test_direct_writes_can_be_turned_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESUMABLE_DIRECT_IO", "0")
    data = os.urandom(200 * KiB)
    partial = _opened(tmp_path / "f.bin")
    pipeline = Pipeline(partial, 0, size=64 * KiB, share=Recorder())
    assert not pipeline.direct
    _feed(pipeline, data, [])
    pipeline.close()
    assert pipeline.direct_writes == 0
    partial.close()
    assert partial.data.read_bytes() == data


def test_a_failed_write_stops_the_stream_and_says_how_far_the_file_is_written(
    tmp_path: Path,
) -> None:
    """The ordinary descriptor closed under the writer (EBADF) as a stand-in for a disk
    error: the next take/put raises a LocalError, and close() reports the last good offset."""
    partial = _opened(tmp_path / "f.bin")
    pipeline = Pipeline(partial, 0, size=64 * KiB, share=Recorder(), direct=False)
    block = pipeline.take()
    block.view[: 10 * KiB] = b"a" * (10 * KiB)
    pipeline.put(block, 10 * KiB)
    while pipeline.written < 10 * KiB:  # the first block is on disk
        threading.Event().wait(0.01)
    os.close(partial.fd)
    with pytest.raises(LocalError):
        _keep_putting(pipeline)
    assert pipeline.close() == 10 * KiB
    with pytest.raises(LocalError):
        pipeline.check()
    partial._fd = None  # already closed above


def _keep_putting(pipeline: Pipeline) -> None:
    for _ in range(100):  # the failure surfaces at a take or a put, not never
        block = pipeline.take()
        block.view[:KiB] = b"b" * KiB
        pipeline.put(block, KiB)
        threading.Event().wait(0.01)


def test_a_hasher_that_stops_taking_blocks_fails_the_take_instead_of_hanging(
    tmp_path: Path,
) -> None:
    class Dead(Recorder):
        def submit(self, data: memoryview, done: Callable[[], None]) -> None:
            pass  # keeps the block forever, as a thread that died would

        def alive(self) -> bool:
            return False

    partial = _opened(tmp_path / "f.bin")
    pipeline = Pipeline(partial, 0, size=64 * KiB, share=Dead(), count=1)
    block = pipeline.take()
    pipeline.put(block, 1)
    with pytest.raises(LocalError, match="hashing"):
        pipeline.take()
    pipeline.close()
    partial.close()


def test_the_background_hasher_gives_every_lent_block_back(tmp_path: Path) -> None:
    """With the real hasher thread: the digest is the file's, and the blocks come back (with
    two blocks and 50 puts, a block that never came back would fail the take)."""
    from resumable.verify import BackgroundHasher, Digests

    data = os.urandom(50 * 16 * KiB)
    hasher = BackgroundHasher(Digests(["sha256"]))
    partial = _opened(tmp_path / "f.bin")
    pipeline = Pipeline(partial, 0, size=16 * KiB, share=hasher, count=2)
    _feed(pipeline, data, list(range(0, len(data), 16 * KiB)))
    assert pipeline.close() == len(data)
    assert hasher.finish()["sha256"] == hashlib.sha256(data).hexdigest()
    partial.close()
    assert partial.data.read_bytes() == data
