"""``Untar(stream=True)``: members are extracted while the bytes arrive, and the result is
promoted only if the bytes the parser saw are exactly the verified file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from archives import tar_bytes, tar_member
from servers import NginxServer

from resumable import (
    ConnectionFailed,
    EventKind,
    ProgressEvent,
    ResumableDownloader,
    RetriesExhausted,
    RetryPolicy,
    UnsafeArchive,
    Untar,
)
from resumable.testing import FaultySource, MemorySource

URL = "mem://b/shard.tar"


def members(count: int, size: int, seed: int = 0) -> dict[str, bytes]:
    """Incompressible members, so the archive is as large as its content."""
    rng = __import__("random").Random(seed)
    return {f"d{i % 3}/f{i}.bin": rng.randbytes(size) for i in range(count)}


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def downloader(source: object) -> ResumableDownloader:
    policy = RetryPolicy(backoff=0.01, jitter=0, sleep=lambda s: None)
    return ResumableDownloader(sources={"mem": source}, retry=policy)  # type: ignore[dict-item]


@pytest.mark.slow
def test_members_are_extracted_while_the_download_runs(make_nginx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    nginx: NginxServer = make_nginx(limit_rate="2m")
    content = members(24, 128 * 1024)
    nginx.add("stream.tar", tar_bytes(content))
    events: list[ProgressEvent] = []
    with ResumableDownloader() as d:
        r = d.download(
            nginx.slow_url("stream.tar"),
            tmp_path / "stream.tar",
            process=Untar(stream=True),
            progress=events.append,
        )
    kinds = [e.kind for e in events]
    first_member = kinds.index(EventKind.EXTRACTING)
    assert first_member < kinds.index(EventKind.VERIFIED), kinds
    # The first member was written while bytes were still arriving.
    downloaded = [e.done for e in events[:first_member] if e.kind is EventKind.PROGRESS]
    assert downloaded[-1] < r.size, (downloaded, r.size)
    assert r.extracted is not None
    assert r.extracted.streamed
    assert files(tmp_path / "stream") == content


def test_a_resumed_download_keeps_streaming(tmp_path: Path) -> None:
    content = members(16, 64 * 1024)
    source = FaultySource(MemorySource({URL: tar_bytes(content)})).cut_body(300_000)
    with downloader(source) as d:
        r = d.download(URL, tmp_path / "shard.tar", process=Untar(stream=True))
    assert source.calls.count("open") == 2  # the cut happened, and the retry resumed
    assert r.extracted is not None
    assert r.extracted.streamed
    assert files(tmp_path / "shard") == content


def test_a_restarted_download_falls_back_to_the_verified_file(tmp_path: Path) -> None:
    content = members(16, 64 * 1024)
    memory = MemorySource({URL: tar_bytes(content)}, ranges=False)  # a retry starts at byte 0
    source = FaultySource(memory).cut_body(300_000)
    with downloader(source) as d:
        r = d.download(URL, tmp_path / "shard.tar", process=Untar(stream=True))
    assert source.calls.count("open") == 2
    assert r.extracted is not None
    assert not r.extracted.streamed  # what streamed was thrown away
    assert files(tmp_path / "shard") == content
    assert not (tmp_path / "shard.tar.extracting").exists()


def test_a_failed_download_leaves_nothing_extracted_and_resumes(tmp_path: Path) -> None:
    content = members(16, 64 * 1024)
    source = FaultySource(MemorySource({URL: tar_bytes(content)})).cut_body(300_000)
    down = ConnectionFailed("down")
    source.fail_open(None, down, down)  # type: ignore[arg-type]  # the retries after the cut fail
    policy = RetryPolicy(attempts=2, backoff=0.01, jitter=0, sleep=lambda s: None)
    with ResumableDownloader(sources={"mem": source}, retry=policy) as d:  # type: ignore[dict-item]
        with pytest.raises(RetriesExhausted):
            d.download(URL, tmp_path / "shard.tar", process=Untar(stream=True))
        assert not (tmp_path / "shard").exists()
        assert not (tmp_path / "shard.tar.extracting").exists()
        assert (tmp_path / "shard.tar.partial").stat().st_size >= 300_000
    with downloader(source) as d:
        r = d.download(URL, tmp_path / "shard.tar", process=Untar(stream=True))
    assert r.status == "resumed"
    assert r.extracted is not None
    assert r.extracted.streamed
    assert files(tmp_path / "shard") == content


def test_a_hostile_archive_is_refused_when_streamed_too(tmp_path: Path) -> None:
    evil = tar_bytes([(tar_member("ok.txt"), os.urandom(200_000)), (tar_member("../x"), b"x")])
    (tmp_path / "outside").mkdir()
    with downloader(MemorySource({URL: evil})) as d, pytest.raises(UnsafeArchive):
        d.download(URL, tmp_path / "work" / "shard.tar", process=Untar(stream=True))
    assert sorted(p.name for p in (tmp_path / "work").iterdir()) == [
        "shard.tar",
        "shard.tar.extracted.json",
    ]
    assert not any((tmp_path / "outside").iterdir())
