"""Phase existing (resumable.engine.existing): a destination that proves complete is skipped
without fetching a byte; anything else is downloaded."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from enginekit import URL, Run, data, sha

from resumable import InvalidArgument, LocalError
from resumable.engine import existing
from resumable.sources import RemoteInfo
from resumable.testing import FaultySource, MemorySource

DATA = data(3000)


def never(why: str) -> RemoteInfo | None:
    raise AssertionError(f"no metadata request expected ({why})")


def test_dest_size_of_a_file_an_absent_one_and_refusals(tmp_path: Path) -> None:
    assert existing.dest_size(tmp_path / "absent") is None
    assert existing.dest_size(tmp_path / "no" / "folder") is None
    (tmp_path / "f").write_bytes(b"abc")
    assert existing.dest_size(tmp_path / "f") == 3
    with pytest.raises(InvalidArgument, match="is a directory"):
        existing.dest_size(tmp_path)
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(InvalidArgument, match="not a regular file"):
        existing.dest_size(tmp_path / "fifo")


def test_make_parent_refuses_a_file_in_the_way(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"x")
    with pytest.raises(LocalError) as caught:
        existing.make_parent(tmp_path / "file" / "sub" / "dest.bin")
    assert "Not a directory" in str(caught.value)
    assert caught.value.kept == "nothing was fetched and nothing on disk was changed"
    existing.make_parent(tmp_path / "a" / "b" / "dest.bin")
    assert (tmp_path / "a" / "b").is_dir()


def test_an_expected_digest_that_matches_skips_with_no_request(tmp_path: Path) -> None:
    dest = tmp_path / "f.bin"
    dest.write_bytes(DATA)
    source = FaultySource(MemorySource({URL: DATA}))
    run = Run(source, dest, sha256=sha(DATA))
    result = existing.check(run.state, len(DATA), never)
    assert result is not None
    assert (result.status, result.size, result.bytes_transferred) == ("skipped", 3000, 0)
    assert result.sha256 == sha(DATA)
    assert source.calls == []
    assert run.kinds() == ["skipped"]


def test_a_wrong_digest_or_size_is_downloaded_again(tmp_path: Path) -> None:
    dest = tmp_path / "f.bin"
    dest.write_bytes(DATA[:-1] + b"!")
    run = Run(MemorySource({URL: DATA}), dest, sha256=sha(DATA))
    assert existing.check(run.state, len(DATA), never) is None
    sized = Run(MemorySource({URL: DATA}), dest, size=len(DATA) + 1)
    assert existing.check(sized.state, len(DATA), never) is None  # no hashing, no request
    assert run.events == []
    assert sized.events == []
    assert dest.read_bytes() == DATA[:-1] + b"!"  # the check never writes


def test_without_expectations_the_remote_size_and_checksum_decide(tmp_path: Path) -> None:
    dest = tmp_path / "f.bin"
    dest.write_bytes(DATA)
    store = MemorySource({URL: DATA})
    run = Run(store, dest)
    asked: list[str] = []

    def probe(why: str) -> RemoteInfo | None:
        asked.append(why)
        return store.stat(URL)

    result = existing.check(run.state, len(DATA), probe)
    assert result is not None
    assert result.status == "skipped"
    assert "md5" in result.digests  # the provider's checksum was verified too
    assert len(asked) == 1
    dest.write_bytes(DATA[:-1] + b"!")  # same size, other bytes: the md5 catches it
    assert existing.check(Run(store, dest).state, len(DATA), probe) is None


def test_a_failed_metadata_request_means_download(tmp_path: Path) -> None:
    dest = tmp_path / "f.bin"
    dest.write_bytes(DATA)
    run = Run(MemorySource({URL: DATA}), dest)
    assert existing.check(run.state, len(DATA), lambda why: None) is None
    assert existing.check(run.state, None, never) is None  # absent: nothing to check


def test_through_the_transfer_a_complete_file_costs_one_stat(tmp_path: Path) -> None:
    dest = tmp_path / "f.bin"
    dest.write_bytes(DATA)
    source = FaultySource(MemorySource({URL: DATA}))
    result = Run(source, dest).transfer.run()
    assert result.status == "skipped"
    assert source.calls == ["stat"]
    refreshed = Run(source, dest, refresh=True).transfer.run()  # refresh: fetched regardless
    assert refreshed.status == "downloaded"
    assert refreshed.bytes_transferred == len(DATA)
    assert source.calls == ["stat", "open"]
