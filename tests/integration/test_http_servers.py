"""Downloads from real servers we did not write: nginx (Range, ETag) and python -m http.server."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import NginxServer, SimpleHTTPServer, make_data

import resumable
from resumable import EventKind, ProgressEvent, ResumableDownloader, RetryPolicy

MiB = 1 << 20


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def d() -> Iterator[ResumableDownloader]:
    with ResumableDownloader(retry=RetryPolicy(attempts=3, backoff=0.01)) as downloader:
        yield downloader


def interrupt_at(limit: int):  # type: ignore[no-untyped-def]
    def callback(event: ProgressEvent) -> None:
        if event.done >= limit:
            raise KeyboardInterrupt

    return callback


def test_nginx_download_verifies_size_and_digests(
    nginx: NginxServer, d: ResumableDownloader, unique_prefix: str, tmp_path: Path
) -> None:
    data = make_data(9 * MiB + 17, seed=1)
    url = nginx.add(f"{unique_prefix}/f.bin", data)
    md5 = hashlib.md5(data).hexdigest()
    r = d.download(url, tmp_path / "f.bin", size=len(data), sha256=sha(data), checksum=f"md5:{md5}")
    assert (r.status, r.size, r.bytes_transferred) == ("downloaded", len(data), len(data))
    assert r.digests == {"sha256": sha(data), "md5": md5}
    assert r.path == tmp_path / "f.bin"
    assert (tmp_path / "f.bin").read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]


def test_nginx_resume_after_an_interruption_uses_range_and_if_range(
    nginx: NginxServer, d: ResumableDownloader, unique_prefix: str, tmp_path: Path
) -> None:
    data = make_data(24 * MiB, seed=2)
    url = nginx.add(f"{unique_prefix}/f.bin", data)
    with pytest.raises(KeyboardInterrupt):
        d.download(url, tmp_path / "f.bin", progress=interrupt_at(8 * MiB))
    kept = (tmp_path / "f.bin.partial").stat().st_size
    assert kept >= 8 * MiB
    assert not (tmp_path / "f.bin").exists()
    r = d.download(url, tmp_path / "f.bin", sha256=sha(data))
    assert (r.status, r.bytes_transferred) == ("resumed", len(data) - kept)
    last = nginx.access_log_for(f"{unique_prefix}/f.bin", min_lines=2)[-1]
    assert last.status == 206
    assert last.range == f"bytes={kept}-"
    assert last.if_range is not None
    assert last.if_range.startswith('"')  # nginx's strong ETag
    assert last.body_bytes_sent == len(data) - kept
    assert (tmp_path / "f.bin").read_bytes() == data


def test_a_complete_destination_is_skipped_without_fetching(
    nginx: NginxServer, d: ResumableDownloader, unique_prefix: str, tmp_path: Path
) -> None:
    data = make_data(3 * MiB, seed=3)
    name = f"{unique_prefix}/f.bin"
    url = nginx.add(name, data)
    d.download(url, tmp_path / "f.bin")
    before = len(nginx.access_log_for(name, min_lines=1))
    with_digest = d.download(url, tmp_path / "f.bin", sha256=sha(data))
    assert len(nginx.access_log_for(name)) == before  # verified locally: no request at all
    without = d.download(url, tmp_path / "f.bin")
    log = nginx.access_log_for(name, min_lines=before + 1)[before:]
    assert [e.method for e in log] == ["HEAD"]  # the remote size, nothing else
    for r in (with_digest, without):
        assert (r.status, r.bytes_transferred, r.sha256) == ("skipped", 0, sha(data))


def test_a_stale_destination_is_replaced_only_by_a_verified_copy(
    nginx: NginxServer, d: ResumableDownloader, unique_prefix: str, tmp_path: Path
) -> None:
    data = make_data(2 * MiB, seed=4)
    url = nginx.add(f"{unique_prefix}/f.bin", data)
    dest = tmp_path / "f.bin"
    dest.write_bytes(b"an older, shorter version")
    with pytest.raises(resumable.ChecksumMismatch):
        d.download(url, dest, sha256="0" * 64)
    assert dest.read_bytes() == b"an older, shorter version"
    r = d.download(url, dest, sha256=sha(data))
    assert r.status == "downloaded"
    assert dest.read_bytes() == data


def test_a_wrong_expected_size_fails_before_the_body_is_fetched(
    nginx: NginxServer, d: ResumableDownloader, unique_prefix: str, tmp_path: Path
) -> None:
    data = make_data(8 * MiB, seed=5)
    name = f"{unique_prefix}/f.bin"
    url = nginx.add(name, data)
    dest = tmp_path / "f.bin"
    dest.write_bytes(b"keep")
    with pytest.raises(resumable.SizeMismatch) as info:
        d.download(url, dest, size=1234)
    assert (info.value.expected, info.value.actual) == (1234, len(data))
    assert dest.read_bytes() == b"keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]


def test_a_missing_object_is_source_not_found_and_keeps_the_destination(
    nginx: NginxServer, d: ResumableDownloader, unique_prefix: str, tmp_path: Path
) -> None:
    dest = tmp_path / "f.bin"
    dest.write_bytes(b"keep")
    with pytest.raises(FileNotFoundError) as info:
        d.download(nginx.url_for(f"{unique_prefix}/missing.bin"), dest, size=99)
    assert isinstance(info.value, resumable.SourceNotFound)
    assert "404" in str(info.value)
    assert "was not modified" in str(info.value)
    assert dest.read_bytes() == b"keep"


def test_progress_events_tell_the_whole_story(
    nginx: NginxServer, d: ResumableDownloader, unique_prefix: str, tmp_path: Path
) -> None:
    data = make_data(9 * MiB, seed=6)
    url = nginx.add(f"{unique_prefix}/f.bin", data)
    events: list[ProgressEvent] = []
    d.download(url, tmp_path / "f.bin", progress=events.append)
    kinds = [e.kind for e in events]
    assert kinds[0] is EventKind.STARTED
    assert kinds[-2:] == [EventKind.VERIFIED, EventKind.DONE]
    assert set(kinds[1:-2]) == {EventKind.PROGRESS}
    dones = [e.done for e in events]
    assert dones == sorted(dones)
    assert dones[-1] == len(data)
    assert all(e.total == len(data) and e.path == tmp_path / "f.bin" for e in events[1:])


def test_tqdm_progress_renders_bars(
    nginx: NginxServer, d: ResumableDownloader, unique_prefix: str, tmp_path: Path
) -> None:
    data = make_data(5 * MiB, seed=7)
    url = nginx.add(f"{unique_prefix}/f.bin", data)
    out = io.StringIO()
    with resumable.TqdmProgress(file=out, mininterval=0, style="bars") as bars:
        d.download(url, tmp_path / "f.bin", progress=bars)
    text = out.getvalue()
    assert "f.bin" in text
    assert "100%" in text
    assert "verified" in text


def test_http_server_without_range_support_restarts_cleanly(
    simple_http: SimpleHTTPServer, d: ResumableDownloader, unique_prefix: str, tmp_path: Path
) -> None:
    data = make_data(16 * MiB, seed=8)
    url = simple_http.add(f"{unique_prefix}/f.bin", data)
    with pytest.raises(KeyboardInterrupt):
        d.download(url, tmp_path / "f.bin", progress=interrupt_at(4 * MiB))
    assert (tmp_path / "f.bin.partial").stat().st_size >= 4 * MiB
    r = d.download(url, tmp_path / "f.bin", sha256=sha(data))
    # The server answered 200 to the Range: the partial was truncated, never spliced.
    assert (r.status, r.bytes_transferred) == ("downloaded", len(data))
    assert (tmp_path / "f.bin").read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]
