"""The direct path: files the first answer delivers whole skip the ``.partial`` bookkeeping.

They are written to a private hidden file and renamed onto the destination once verified
(resumable/private.py). These tests prove what replaces the lock and sidecar still holds: no
leftovers, no clobbering, failures handed to the ``.partial`` protocol with nothing wasted or
retried beyond the policy, and racing writers publishing one correct file.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest
from servers import Fault, FaultServer

import resumable
from resumable import RetryPolicy

KiB = 1 << 10
MiB = 1 << 20


def _data(size: int, seed: int = 1) -> bytes:
    block = hashlib.sha256(str(seed).encode()).digest()
    return (block * (size // len(block) + 1))[:size]


def _names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def _fast() -> RetryPolicy:
    return RetryPolicy(attempts=3, backoff=0.01, jitter=0)


def test_small_file_leaves_nothing_but_the_destination(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    data = _data(300 * KiB)
    url = fault_server.add("small.bin", data)
    result = resumable.download(
        url, tmp_path / "small.bin", sha256=hashlib.sha256(data).hexdigest()
    )
    assert result.status == "downloaded"
    assert result.bytes_transferred == len(data)
    assert (tmp_path / "small.bin").read_bytes() == data
    assert _names(tmp_path) == ["small.bin"]  # no lock file, sidecar or hidden temporary
    [request] = fault_server.requests_for("small.bin")
    assert request.range is None
    assert request.body_bytes_sent == len(data)


def test_an_interrupted_small_file_keeps_a_partial_and_the_old_destination(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    """Ctrl-C (here from the progress callback) mid-file: the existing destination is not
    touched and the bytes received become ``D.partial``, which the next call resumes."""
    data = _data(2 * MiB)
    url = fault_server.add("small.bin", data)
    dest = tmp_path / "small.bin"
    dest.write_bytes(b"an older file the caller still has")

    def interrupt(event: resumable.ProgressEvent) -> None:
        if event.done > 0:
            raise KeyboardInterrupt

    d = resumable.ResumableDownloader()
    with pytest.raises(KeyboardInterrupt):
        d.download(url, dest, progress=interrupt)
    assert dest.read_bytes() == b"an older file the caller still has"
    assert _names(tmp_path) == ["small.bin", "small.bin.partial", "small.bin.partial.json"]
    kept = (tmp_path / "small.bin.partial").stat().st_size
    assert 0 < kept < len(data)
    again = d.download(url, dest)
    assert again.status == "resumed"
    assert again.bytes_transferred == len(data) - kept
    assert dest.read_bytes() == data
    assert _names(tmp_path) == ["small.bin"]


def test_a_cut_hands_over_to_the_partial_protocol_which_resumes(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    """A link that breaks every 700 KiB still delivers a 2 MiB file, nothing fetched twice:
    the bytes of the cut direct attempt become the start of ``D.partial``, resumed from each
    cut."""
    data = _data(2 * MiB)
    url = fault_server.add("flaky.bin", data)
    fault_server.plan("flaky.bin", *[Fault.cut(after=700 * KiB)] * 3)
    result = resumable.ResumableDownloader(retry=_fast()).download(url, tmp_path / "flaky.bin")
    assert (tmp_path / "flaky.bin").read_bytes() == data
    log = fault_server.requests_for("flaky.bin")
    assert [r.fault for r in log][:2] == ["cut"] * 2
    assert [r.range for r in log] == [None, f"bytes={700 * KiB}-", f"bytes={1400 * KiB}-"]
    assert result.status == "downloaded"  # this call's own bytes: not "resumed"
    assert result.bytes_transferred == len(data)
    assert _names(tmp_path) == ["flaky.bin"]


def test_a_cut_without_a_validator_starts_over(fault_server: FaultServer, tmp_path: Path) -> None:
    """Bytes that nothing pins to a version (no ETag, no Last-Modified, no digest) are not
    continued: the whole file is fetched again."""
    data = _data(1 * MiB)
    url = fault_server.add("plain.bin", data, etag=None, last_modified=False)
    fault_server.plan("plain.bin", Fault.cut(after=300 * KiB))
    resumable.ResumableDownloader(retry=_fast()).download(url, tmp_path / "plain.bin")
    assert (tmp_path / "plain.bin").read_bytes() == data
    assert [r.range for r in fault_server.requests_for("plain.bin")] == [None, None]


def test_a_large_answer_is_continued_not_requested_again(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    data = _data(3 * MiB)
    url = fault_server.add("large.bin", data)
    d = resumable.ResumableDownloader(block_size=256 * KiB, connections=1)
    result = d.download(url, tmp_path / "large.bin")
    assert result.status == "downloaded"
    assert (tmp_path / "large.bin").read_bytes() == data
    [request] = fault_server.requests_for("large.bin")  # one GET: the first answer was used
    assert request.body_bytes_sent == len(data)


def test_failed_first_attempts_count_against_the_retry_budget(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    url = fault_server.add("busy.bin", _data(100 * KiB))
    fault_server.plan("busy.bin", *[Fault.status(503)] * 5)
    d = resumable.ResumableDownloader(retry=_fast())
    with pytest.raises(resumable.RetriesExhausted):
        d.download(url, tmp_path / "busy.bin")
    assert [r.status for r in fault_server.requests_for("busy.bin")] == [503, 503, 503]
    assert _names(tmp_path) == []


def test_wrong_checksum_publishes_nothing(fault_server: FaultServer, tmp_path: Path) -> None:
    url = fault_server.add("bad.bin", _data(100 * KiB))
    with pytest.raises(resumable.ChecksumMismatch):
        resumable.download(url, tmp_path / "bad.bin", sha256="0" * 64)
    assert _names(tmp_path) == []


def test_racing_writers_publish_one_correct_file(fault_server: FaultServer, tmp_path: Path) -> None:
    data = _data(1 * MiB)
    url = fault_server.add("race.bin", data)
    digest = hashlib.sha256(data).hexdigest()
    results: list[resumable.DownloadResult] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def one() -> None:
        d = resumable.ResumableDownloader()  # separate downloaders, like separate processes
        barrier.wait()
        try:
            results.append(d.download(url, tmp_path / "race.bin", sha256=digest))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(results) == 8
    assert all(r.sha256 == digest for r in results)
    assert (tmp_path / "race.bin").read_bytes() == data
    assert _names(tmp_path) == ["race.bin"]


def test_plain_requests_reuse_one_connection_and_send_the_session_headers(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    """Small files from a plain host go straight through urllib3's pool (no requests layer):
    keep-alive, the User-Agent and Accept-Encoding of every request, custom headers."""
    for i in range(5):
        fault_server.add(f"s{i}.bin", _data(10 * KiB, seed=i))
    d = resumable.ResumableDownloader(headers={"X-Team": "vision"})
    for i in range(5):
        d.download(fault_server.url_for(f"s{i}.bin"), tmp_path / f"s{i}.bin")
    log = [r for r in fault_server.log if r.method == "GET"]
    assert len(log) == 5
    assert len({r.conn_id for r in log}) == 1  # one warm connection for the five files
    for record in log:
        assert record.header("Accept-Encoding") == "identity"
        assert (record.header("User-Agent") or "").startswith("resumable/")
        assert record.header("X-Team") == "vision"


def test_credentials_in_the_url_go_through_requests(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    """``user:password@host`` becomes Basic auth (requests' job): the plain path steps aside."""
    url = fault_server.add("auth.bin", _data(10 * KiB))
    with_user = url.replace("http://", "http://alice:s3cret@")
    resumable.ResumableDownloader().download(with_user, tmp_path / "auth.bin")
    [get] = [r for r in fault_server.requests_for("auth.bin") if r.method == "GET"]
    assert (get.header("Authorization") or "").startswith("Basic ")
