"""Single-stream HTTP downloads against the fault-injecting server.

Every test proves its fault really happened (the server's request log: statuses, bytes sent
before a cut, the Range and If-Range the client sent) and that the outcome is either the exact
object or a typed error with nothing published.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path

import pytest
from servers import Fault, FaultServer, make_data

import resumable
from resumable import ProgressEvent, ResumableDownloader, RetryPolicy, Timeouts

MiB = 1 << 20
SIZE = 10 * MiB


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def sleeps() -> list[float]:
    """The waits the retry policy asked for (nothing really sleeps)."""
    return []


@pytest.fixture
def d(sleeps: list[float]) -> Iterator[ResumableDownloader]:
    """A downloader with 1 MiB reads, no real sleeping, and a short stall timeout."""
    policy = RetryPolicy(attempts=4, backoff=0.01, jitter=0, sleep=sleeps.append)
    with ResumableDownloader(
        retry=policy, timeouts=Timeouts(connect=5, stall=1.0), block_size=MiB
    ) as downloader:
        yield downloader


@pytest.fixture
def data() -> bytes:
    return make_data(SIZE, seed=7)


def statuses(server: FaultServer, name: str) -> list[int]:
    return [r.status for r in server.requests_for(name) if r.method == "GET"]


def gets(server: FaultServer, name: str) -> list[object]:
    return [r for r in server.requests_for(name) if r.method == "GET"]


def leftovers(dest: Path) -> list[str]:
    return sorted(p.name for p in dest.parent.iterdir() if p.name != dest.name)


@pytest.mark.parametrize("reset", [False, True], ids=["fin", "rst"])
def test_cut_mid_body_resumes_from_the_bytes_on_disk(
    fault_server: FaultServer, d: ResumableDownloader, data: bytes, tmp_path: Path, reset: bool
) -> None:
    url = fault_server.add("f.bin", data)
    fault_server.plan("f.bin", Fault.cut(after=6 * MiB, reset=reset))
    r = d.download(url, tmp_path / "f.bin", sha256=sha(data))
    first, second = gets(fault_server, "f.bin")
    assert (first.fault, first.body_bytes_sent) == ("cut", 6 * MiB)
    # The resume starts exactly where the disk ends and is pinned to the version.
    offset = int(second.range.removeprefix("bytes=").rstrip("-"))
    if reset:
        # A TCP reset makes the kernel drop data not yet read: less may reach the disk.
        assert 0 < offset <= 6 * MiB
    else:
        # Every byte that arrived before a clean close was kept (read1 hands them over first).
        assert offset == 6 * MiB
    assert second.if_range == fault_server.etag("f.bin")
    assert second.status == 206
    assert (tmp_path / "f.bin").read_bytes() == data
    assert r.status == "downloaded"
    assert r.bytes_transferred == SIZE  # nothing fetched twice: the retry started at the offset
    assert leftovers(tmp_path / "f.bin") == []


@pytest.mark.parametrize(
    ("code", "retry_after", "expected_wait"),
    [
        (503, 2, 2.0),
        (429, 1, 1.0),
        (500, None, 0.01),
        (502, None, 0.01),
    ],
)
def test_server_errors_are_retried_honouring_retry_after(
    fault_server: FaultServer,
    d: ResumableDownloader,
    sleeps: list[float],
    data: bytes,
    tmp_path: Path,
    code: int,
    retry_after: int | None,
    expected_wait: float,
) -> None:
    url = fault_server.add("f.bin", data)
    fault_server.plan("f.bin", Fault.status(code, retry_after=retry_after))
    d.download(url, tmp_path / "f.bin", sha256=sha(data))
    assert statuses(fault_server, "f.bin") == [code, 200]
    assert sleeps == [expected_wait]


def test_retry_after_as_an_http_date(
    fault_server: FaultServer, d: ResumableDownloader, sleeps: list[float], tmp_path: Path
) -> None:
    url = fault_server.add("f.bin", b"x" * 1000)
    when = formatdate(time.time() + 30, usegmt=True)
    fault_server.plan("f.bin", Fault.status(503, retry_after=when))
    d.download(url, tmp_path / "f.bin")
    assert statuses(fault_server, "f.bin") == [503, 200]
    assert len(sleeps) == 1
    assert 25 < sleeps[0] <= 31


def test_a_200_answer_to_a_range_restarts_the_file_cleanly(
    fault_server: FaultServer, d: ResumableDownloader, data: bytes, tmp_path: Path
) -> None:
    url = fault_server.add("f.bin", data)
    fault_server.plan("f.bin", Fault.cut(after=4 * MiB), Fault.ignore_range())
    events: list[ProgressEvent] = []
    r = d.download(url, tmp_path / "f.bin", sha256=sha(data), progress=events.append)
    _first, second = gets(fault_server, "f.bin")
    assert second.range is not None
    assert second.status == 200
    assert (tmp_path / "f.bin").read_bytes() == data
    assert r.bytes_transferred == 4 * MiB + SIZE
    # Progress is absolute: the restart shows as a rewind to 0, never negative increments.
    dones = [e.done for e in events if e.kind is resumable.EventKind.PROGRESS]
    assert 0 in dones[1:]
    assert dones[-1] == SIZE


def test_an_etag_change_between_requests_restarts_with_the_new_version(
    fault_server: FaultServer, d: ResumableDownloader, data: bytes, tmp_path: Path
) -> None:
    new = make_data(SIZE + 123, seed=8)
    url = fault_server.add("f.bin", data)
    old_etag = fault_server.etag("f.bin")
    fault_server.plan("f.bin", Fault.cut(after=5 * MiB), Fault.replace(new))
    r = d.download(url, tmp_path / "f.bin")
    _first, second = gets(fault_server, "f.bin")
    assert second.if_range == old_etag != second.etag
    assert second.status == 200  # If-Range did its job: the whole new version
    assert (tmp_path / "f.bin").read_bytes() == new  # never a splice of old and new
    assert r.size == len(new)
    assert r.sha256 == sha(new)


def test_a_change_with_the_old_sha256_fails_typed_and_publishes_nothing(
    fault_server: FaultServer, d: ResumableDownloader, data: bytes, tmp_path: Path
) -> None:
    dest = tmp_path / "f.bin"
    dest.write_bytes(b"previous good file")
    url = fault_server.add("f.bin", data)
    fault_server.plan("f.bin", Fault.cut(after=5 * MiB), Fault.replace(make_data(SIZE, 9)))
    with pytest.raises(resumable.ChecksumMismatch) as info:
        d.download(url, dest, sha256=sha(data))
    assert info.value.expected == sha(data)
    assert dest.read_bytes() == b"previous good file"
    assert "was not modified" in str(info.value)
    assert leftovers(dest) == []  # a known-bad partial is not kept to be resumed


@pytest.mark.parametrize("fault", [Fault.short_body(3 * MiB), Fault.cut(after=0)])
def test_a_body_shorter_than_announced_is_retried(
    fault_server: FaultServer, d: ResumableDownloader, data: bytes, tmp_path: Path, fault: Fault
) -> None:
    url = fault_server.add("f.bin", data)
    fault_server.plan("f.bin", fault)
    d.download(url, tmp_path / "f.bin", sha256=sha(data))
    first = gets(fault_server, "f.bin")[0]
    assert first.fault == fault.kind
    assert first.body_bytes_sent < SIZE
    assert (tmp_path / "f.bin").read_bytes() == data


def test_a_wrong_content_range_is_never_written(
    fault_server: FaultServer, d: ResumableDownloader, data: bytes, tmp_path: Path
) -> None:
    url = fault_server.add("f.bin", data)
    fault_server.plan("f.bin", Fault.cut(after=6 * MiB), Fault.wrong_content_range(start=MiB))
    d.download(url, tmp_path / "f.bin", sha256=sha(data))
    log = gets(fault_server, "f.bin")
    assert log[1].fault == "wrong_content_range"
    assert log[1].content_range.startswith(f"bytes {MiB}-")
    assert log[1].range != f"bytes={MiB}-"
    assert log[2].range == log[1].range
    assert log[2].status == 206
    assert (tmp_path / "f.bin").read_bytes() == data


def test_a_stall_is_abandoned_after_the_stall_timeout_and_resumed(
    fault_server: FaultServer, d: ResumableDownloader, data: bytes, tmp_path: Path
) -> None:
    url = fault_server.add("f.bin", data)
    fault_server.plan("f.bin", Fault.stall(after=3 * MiB, seconds=30))
    began = time.monotonic()
    d.download(url, tmp_path / "f.bin", sha256=sha(data))
    elapsed = time.monotonic() - began
    first, second = gets(fault_server, "f.bin")
    assert first.fault == "stall"
    assert first.body_bytes_sent == 3 * MiB
    assert second.range == f"bytes={3 * MiB}-"
    assert elapsed < 10  # the 1 s stall timeout fired; the server would have waited 30 s
    assert (tmp_path / "f.bin").read_bytes() == data


def test_no_response_at_all_is_a_stall_too(
    fault_server: FaultServer, d: ResumableDownloader, tmp_path: Path
) -> None:
    url = fault_server.add("f.bin", b"y" * 5000)
    fault_server.plan("f.bin", Fault.hang(seconds=30), Fault.hang(seconds=0))
    d.download(url, tmp_path / "f.bin")
    assert [r.fault for r in gets(fault_server, "f.bin")] == ["hang", "hang", None]


def test_a_slow_trickle_is_never_killed(
    fault_server: FaultServer, d: ResumableDownloader, tmp_path: Path
) -> None:
    payload = make_data(48 * 1024, seed=3)
    url = fault_server.add("f.bin", payload)
    fault_server.plan("f.bin", Fault.trickle(bytes_per_second=32 * 1024))
    r = d.download(url, tmp_path / "f.bin")
    assert gets(fault_server, "f.bin")[0].fault == "trickle"
    assert len(gets(fault_server, "f.bin")) == 1  # slower than the stall timeout, not stalled
    assert r.sha256 == sha(payload)


def test_a_gzip_body_sent_despite_identity_is_stored_decoded(
    fault_server: FaultServer, d: ResumableDownloader, tmp_path: Path
) -> None:
    payload = b"compressible line\n" * 50_000
    url = fault_server.add("f.txt", payload)
    fault_server.plan("f.txt", Fault.gzip())
    r = d.download(url, tmp_path / "f.txt", sha256=sha(payload))
    first = gets(fault_server, "f.txt")[0]
    assert first.header("Accept-Encoding") == "identity"
    assert first.fault == "gzip"
    assert first.body_bytes_sent < len(payload)
    assert (tmp_path / "f.txt").read_bytes() == payload
    assert r.size == len(payload)


def test_redirects_are_followed(
    fault_server: FaultServer, d: ResumableDownloader, data: bytes, tmp_path: Path
) -> None:
    fault_server.add("real.bin", data)
    url = fault_server.add_redirect("alias.bin", "/real.bin")
    r = d.download(url, tmp_path / "f.bin", sha256=sha(data))
    assert r.size == SIZE
    # The plain path (urllib3, no redirects) meets the 302 and hands the URL to requests,
    # which follows it under SafeSession's rules; the host then goes to requests directly.
    assert statuses(fault_server, "alias.bin") == [302, 302]
    again = d.download(url, tmp_path / "g.bin", sha256=sha(data))
    assert again.size == SIZE
    assert statuses(fault_server, "alias.bin") == [302, 302, 302]


def test_a_redirect_loop_is_a_typed_permanent_error(
    fault_server: FaultServer, d: ResumableDownloader, sleeps: list[float], tmp_path: Path
) -> None:
    url = fault_server.add_redirect("loop.bin", "/loop.bin")
    with pytest.raises(resumable.RemoteError, match="redirect"):
        d.download(url, tmp_path / "f.bin")
    assert len(statuses(fault_server, "loop.bin")) > 5
    assert sleeps == []  # not retried
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("code", "error", "builtin"),
    [
        (404, resumable.SourceNotFound, FileNotFoundError),
        (410, resumable.SourceNotFound, FileNotFoundError),
        (403, resumable.AccessDenied, PermissionError),
        (401, resumable.AccessDenied, PermissionError),
        (400, resumable.RemoteError, resumable.ResumableError),
    ],
)
def test_permanent_statuses_raise_typed_errors_at_once(
    fault_server: FaultServer,
    d: ResumableDownloader,
    sleeps: list[float],
    tmp_path: Path,
    code: int,
    error: type[Exception],
    builtin: type[Exception],
) -> None:
    url = fault_server.add("f.bin", b"z" * 100) + "?X-Amz-Signature=TOPSECRET"
    fault_server.plan("f.bin", Fault.status(code))
    with pytest.raises(error) as info:
        d.download(url, tmp_path / "f.bin")
    assert isinstance(info.value, builtin)
    assert statuses(fault_server, "f.bin") == [code]
    assert sleeps == []
    assert "TOPSECRET" not in str(info.value)
    assert "REDACTED" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_retries_without_progress_run_out_and_keep_the_partial(
    fault_server: FaultServer, d: ResumableDownloader, data: bytes, tmp_path: Path
) -> None:
    url = fault_server.add("f.bin", data)
    fault_server.plan("f.bin", Fault.cut(after=2 * MiB), *[Fault.status(503)] * 4)
    with pytest.raises(resumable.RetriesExhausted) as info:
        d.download(url, tmp_path / "f.bin")
    assert isinstance(info.value.__cause__, resumable.ServerBusy)
    assert statuses(fault_server, "f.bin") == [200, 503, 503, 503, 503]
    partial = tmp_path / "f.bin.partial"
    assert partial.stat().st_size == 2 * MiB
    assert f"partial kept at {partial}" in str(info.value)
    # The kept partial really is resumable: the next call fetches only the rest.
    r = d.download(url, tmp_path / "f.bin", sha256=sha(data))
    assert (r.status, r.bytes_transferred) == ("resumed", SIZE - 2 * MiB)


def test_a_416_for_a_complete_partial_promotes_it_without_refetching(
    fault_server: FaultServer, d: ResumableDownloader, data: bytes, tmp_path: Path
) -> None:
    """A crash after the last byte but before the rename leaves a complete partial."""
    url = fault_server.add("f.bin", data)

    def crash_before_promote(event: ProgressEvent) -> None:
        if event.kind is resumable.EventKind.VERIFIED:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        d.download(url, tmp_path / "f.bin", progress=crash_before_promote)
    assert (tmp_path / "f.bin.partial").stat().st_size == SIZE
    r = d.download(url, tmp_path / "f.bin", sha256=sha(data))
    assert gets(fault_server, "f.bin")[-1].status == 416
    assert (r.status, r.bytes_transferred) == ("resumed", 0)
    assert (tmp_path / "f.bin").read_bytes() == data


def test_an_unexpected_416_is_retried(
    fault_server: FaultServer, d: ResumableDownloader, data: bytes, tmp_path: Path
) -> None:
    url = fault_server.add("f.bin", data)
    fault_server.plan("f.bin", Fault.cut(after=4 * MiB), Fault.status(416))
    d.download(url, tmp_path / "f.bin", sha256=sha(data))
    assert statuses(fault_server, "f.bin") == [200, 416, 206]
    assert (tmp_path / "f.bin").read_bytes() == data


def test_a_weak_etag_is_never_used_in_if_range(
    fault_server: FaultServer, d: ResumableDownloader, data: bytes, tmp_path: Path
) -> None:
    url = fault_server.add("f.bin", data, etag="weak")
    fault_server.plan("f.bin", Fault.cut(after=4 * MiB))
    d.download(url, tmp_path / "f.bin", sha256=sha(data))
    first, second = gets(fault_server, "f.bin")
    assert first.etag.startswith("W/")
    assert second.if_range is not None
    assert not second.if_range.startswith("W/")
    assert second.if_range.endswith("GMT")  # the Last-Modified date instead
    assert (tmp_path / "f.bin").read_bytes() == data


def test_without_any_validator_a_later_call_restarts_from_zero(
    fault_server: FaultServer, d: ResumableDownloader, data: bytes, tmp_path: Path
) -> None:
    url = fault_server.add("f.bin", data, etag=None, last_modified=False)

    def interrupt(event: ProgressEvent) -> None:
        if event.done >= 2 * MiB:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        d.download(url, tmp_path / "f.bin", progress=interrupt)
    assert (tmp_path / "f.bin.partial").stat().st_size >= 2 * MiB
    r = d.download(url, tmp_path / "f.bin")
    assert [g.range for g in gets(fault_server, "f.bin")] == [None, None]
    assert (r.status, r.bytes_transferred) == ("downloaded", SIZE)
    assert (tmp_path / "f.bin").read_bytes() == data


def test_without_any_validator_a_retry_restarts_from_zero(
    fault_server: FaultServer, d: ResumableDownloader, data: bytes, tmp_path: Path
) -> None:
    url = fault_server.add("f.bin", data, etag=None, last_modified=False)
    fault_server.plan("f.bin", Fault.cut(after=4 * MiB))
    r = d.download(url, tmp_path / "f.bin")
    first, second = gets(fault_server, "f.bin")
    assert first.fault == "cut"
    assert second.range is None
    assert r.bytes_transferred > SIZE
    assert (tmp_path / "f.bin").read_bytes() == data


def test_without_a_validator_an_expected_digest_allows_resuming(
    fault_server: FaultServer, d: ResumableDownloader, data: bytes, tmp_path: Path
) -> None:
    url = fault_server.add("f.bin", data, etag=None, last_modified=False)
    fault_server.plan("f.bin", Fault.cut(after=4 * MiB))
    r = d.download(url, tmp_path / "f.bin", sha256=sha(data))
    second = gets(fault_server, "f.bin")[1]
    assert second.range is not None
    assert second.if_range is None
    assert r.bytes_transferred == SIZE


def test_connections_are_reused_across_files(
    fault_server: FaultServer, d: ResumableDownloader, tmp_path: Path
) -> None:
    for i in range(4):
        url = fault_server.add(f"s{i}.bin", make_data(100_000, seed=i))
        d.download(url, tmp_path / f"s{i}.bin")
    assert len({r.conn_id for r in fault_server.log}) == 1


def test_an_empty_object_downloads_and_then_skips(
    fault_server: FaultServer, d: ResumableDownloader, tmp_path: Path
) -> None:
    url = fault_server.add("empty.bin", b"")
    first = d.download(url, tmp_path / "empty.bin", size=0, sha256=sha(b""))
    again = d.download(url, tmp_path / "empty.bin")
    assert (first.status, first.size, first.sha256) == ("downloaded", 0, sha(b""))
    assert (again.status, again.bytes_transferred) == ("skipped", 0)
    assert (tmp_path / "empty.bin").read_bytes() == b""
    assert leftovers(tmp_path / "empty.bin") == []


def test_threads_racing_for_one_destination_download_it_once(
    fault_server: FaultServer, d: ResumableDownloader, data: bytes, tmp_path: Path
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    url = fault_server.add("f.bin", data)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: d.download(url, tmp_path / "f.bin"), range(4)))
    assert sorted(r.status for r in results) == ["downloaded", "skipped", "skipped", "skipped"]
    # The lock saved three downloads: a thread that finds the lock taken closes its answer
    # unread (the direct path asks before it knows the file is large) and waits, then skips.
    assert sum(r.bytes_transferred for r in results) == len(data)
    assert 1 <= len(statuses(fault_server, "f.bin")) <= 4
    assert all(r.sha256 == sha(data) for r in results)
    assert leftovers(tmp_path / "f.bin") == []


def test_a_url_signed_again_resumes_the_same_partial(
    fault_server: FaultServer, d: ResumableDownloader, data: bytes, tmp_path: Path
) -> None:
    url = fault_server.add("f.bin", data)

    def interrupt(event: ProgressEvent) -> None:
        if event.done >= 3 * MiB:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        d.download(
            f"{url}?X-Amz-Date=1&X-Amz-Signature=OLD", tmp_path / "f.bin", progress=interrupt
        )
    r = d.download(f"{url}?X-Amz-Date=2&X-Amz-Signature=NEW", tmp_path / "f.bin")
    assert r.status == "resumed"
    assert "OLD" not in r.url
    assert "NEW" not in r.url
    assert (tmp_path / "f.bin").read_bytes() == data


def test_an_exception_before_any_byte_leaves_nothing_behind(
    fault_server: FaultServer, d: ResumableDownloader, tmp_path: Path
) -> None:
    url = fault_server.add("f.bin", b"x" * 1000)

    def refuse(event: ProgressEvent) -> None:
        raise RuntimeError("the callback refused")

    with pytest.raises(RuntimeError, match="refused"):
        d.download(url, tmp_path / "f.bin", progress=refuse)
    assert list(tmp_path.iterdir()) == []
