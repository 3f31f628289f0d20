"""Segmented downloads: several connections per file, faults in some segments, resume by range.

Files here are small (8-16 MiB) with a 1 MiB segment threshold, so pieces are 1 MiB and every
behaviour shows up in well under a second per test.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from servers import Fault, FaultServer, NginxServer, make_data

import resumable
from resumable import ProgressEvent, ResumableDownloader, RetryPolicy, Timeouts
from resumable.engine.scheduler import Piece, Scheduler

MiB = 1 << 20
SIZE = 12 * MiB


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def d() -> Iterator[ResumableDownloader]:
    policy = RetryPolicy(attempts=4, backoff=0.01, jitter=0, sleep=lambda s: None)
    with ResumableDownloader(
        connections=4,
        segment_threshold=MiB,
        retry=policy,
        timeouts=Timeouts(stall=2.0),
    ) as downloader:
        yield downloader


@pytest.fixture
def data() -> bytes:
    return make_data(SIZE, seed=21)


def ranged_gets(server: FaultServer, name: str) -> list[object]:
    return [r for r in server.requests_for(name) if r.method == "GET" and r.range]


def leftovers(dest: Path) -> list[str]:
    return sorted(p.name for p in dest.parent.iterdir() if p.name != dest.name)


class Stop(Exception):
    pass


def interrupt_at(limit: int):  # type: ignore[no-untyped-def]
    def callback(event: ProgressEvent) -> None:
        if event.done >= limit:
            raise Stop

    return callback


# -- the scheduler, alone ---------------------------------------------------------------------


def test_pieces_come_in_file_order_then_the_largest_is_split() -> None:
    s = Scheduler([(0, 10), (20, 26)], 1, smallest=4, largest=4, steal_at_least=2)
    pieces = [s.take() for _ in range(4)]
    assert [(p.pos, p.end) for p in pieces if p] == [(0, 4), (4, 8), (8, 10), (20, 24)]
    last = s.take()
    assert last is not None
    assert (last.pos, last.end) == (24, 26)
    for p in pieces[:3]:
        assert p is not None
        s.done(p)
    # Nothing pending: the next taker splits the largest piece in flight (20-24, 4 bytes left).
    stolen = s.take()
    assert stolen is not None
    assert (stolen.pos, stolen.end) == (22, 24)
    assert pieces[3] == Piece(20, 22)


def test_claims_never_overlap_a_stolen_tail() -> None:
    s = Scheduler([(0, 100)], 1, smallest=100, largest=100, steal_at_least=2)
    victim = s.take()
    assert victim is not None
    assert s.claim(victim, 30) == (0, 30)
    thief = s.take()
    assert thief is not None
    assert (thief.pos, thief.end) == (65, 100)
    assert s.claim(victim, 50) == (30, 35)  # only up to the new end
    assert s.claim(victim, 50) == (65, 0)


def test_piece_sizes_shrink_towards_the_end_and_cover_everything() -> None:
    s = Scheduler([(0, 256 * MiB)], 16)
    pieces = []
    while (piece := s.take()) is not None and piece.pos < 256 * MiB and len(pieces) < 1000:
        pieces.append(piece)
        if sum(p.end - p.pos for p in pieces) == 256 * MiB:
            break
    sizes = [p.end - p.pos for p in pieces]
    assert sizes[0] == 8 * MiB  # 256 MiB / (2 * 16)
    assert sizes == sorted(sizes, reverse=True)
    assert min(sizes[:-1]) == MiB  # the smallest piece, except the remainder at the very end
    assert sizes[-1] <= MiB
    assert [p.pos for p in pieces] == sorted(p.pos for p in pieces)
    assert sum(sizes) == 256 * MiB
    big = Scheduler([(0, 100 << 30)], 16).take()
    assert big is not None
    assert big.end == 32 * MiB  # capped


# -- against nginx ------------------------------------------------------------------------------


def test_nginx_segmented_download_uses_several_connections(
    nginx: NginxServer, d: ResumableDownloader, data: bytes, unique_prefix: str, tmp_path: Path
) -> None:
    name = f"{unique_prefix}/f.bin"
    url = nginx.add(name, data)
    r = d.download(url, tmp_path / "f.bin", sha256=sha(data))
    assert (r.status, r.bytes_transferred) == ("downloaded", SIZE)
    log = nginx.access_log_for(name, min_lines=3)
    ranged = [e for e in log if e.status == 206]
    assert len(ranged) >= 8  # 1 MiB pieces
    assert len({e.connection for e in log}) > 1
    assert all(e.if_range and e.if_range.startswith('"') for e in ranged)
    assert (tmp_path / "f.bin").read_bytes() == data
    assert leftovers(tmp_path / "f.bin") == []


def test_a_segmented_partial_resumes_only_its_missing_ranges(
    nginx: NginxServer, d: ResumableDownloader, data: bytes, unique_prefix: str, tmp_path: Path
) -> None:
    url = nginx.add(f"{unique_prefix}/f.bin", data)
    with pytest.raises(Stop):
        d.download(url, tmp_path / "f.bin", progress=interrupt_at(5 * MiB))
    sidecar = json.loads((tmp_path / "f.bin.partial.json").read_text())
    kept = sum(e - s for s, e in sidecar["ranges"])
    assert kept >= 5 * MiB
    assert os.path.getsize(tmp_path / "f.bin.partial") == SIZE  # preallocated
    r = d.download(url, tmp_path / "f.bin", sha256=sha(data))
    assert (r.status, r.bytes_transferred) == ("resumed", SIZE - kept)
    assert (tmp_path / "f.bin").read_bytes() == data


def test_one_connection_resumes_a_segmented_partial_too(
    nginx: NginxServer, d: ResumableDownloader, data: bytes, unique_prefix: str, tmp_path: Path
) -> None:
    url = nginx.add(f"{unique_prefix}/f.bin", data)
    with pytest.raises(Stop):
        d.download(url, tmp_path / "f.bin", progress=interrupt_at(4 * MiB))
    r = d.download(url, tmp_path / "f.bin", sha256=sha(data), connections=1)
    assert r.status == "resumed"
    assert r.bytes_transferred < SIZE
    assert (tmp_path / "f.bin").read_bytes() == data


# -- faults in some segments --------------------------------------------------------------------


def test_cuts_and_503s_in_some_segments_are_retried_per_segment(
    fault_server: FaultServer, d: ResumableDownloader, data: bytes, tmp_path: Path
) -> None:
    url = fault_server.add("f.bin", data)
    fault_server.plan(
        "f.bin",
        Fault.cut(after=MiB // 2),  # the first request, which discovers the size
        Fault.status(503, retry_after=0),
        Fault.cut(after=300_000, reset=True),
        Fault.status(500),
    )
    r = d.download(url, tmp_path / "f.bin", sha256=sha(data))
    faults = [rec.fault for rec in fault_server.requests_for("f.bin") if rec.fault]
    assert faults == ["cut", "status", "cut", "status"]
    assert r.bytes_transferred <= SIZE + MiB  # a RST may lose unread bytes, nothing more
    assert (tmp_path / "f.bin").read_bytes() == data


def test_a_200_to_a_segment_falls_back_to_one_stream(
    fault_server: FaultServer, d: ResumableDownloader, data: bytes, tmp_path: Path
) -> None:
    url = fault_server.add("f.bin", data)
    fault_server.plan("f.bin", None, Fault.ignore_range())  # type: ignore[arg-type]
    d.download(url, tmp_path / "f.bin", sha256=sha(data))
    log = [rec for rec in fault_server.requests_for("f.bin") if rec.method == "GET"]
    assert any(rec.fault == "ignore_range" and rec.status == 200 for rec in log)
    assert log[-1].range is None  # the fallback: one plain stream from byte 0
    assert (tmp_path / "f.bin").read_bytes() == data
    assert leftovers(tmp_path / "f.bin") == []


def test_an_etag_change_mid_download_restarts_the_file_whole(
    fault_server: FaultServer, d: ResumableDownloader, data: bytes, tmp_path: Path
) -> None:
    new = make_data(SIZE, seed=22)
    url = fault_server.add("f.bin", data)
    fault_server.plan("f.bin", None, None, Fault.replace(new))  # type: ignore[arg-type]
    r = d.download(url, tmp_path / "f.bin")
    changed = next(rec for rec in fault_server.requests_for("f.bin") if rec.fault == "replace")
    assert changed.status == 200  # If-Range saw the new ETag
    assert (tmp_path / "f.bin").read_bytes() == new  # never a splice of the two versions
    assert r.sha256 == sha(new)


def test_a_change_with_the_old_sha256_publishes_nothing(
    fault_server: FaultServer, d: ResumableDownloader, data: bytes, tmp_path: Path
) -> None:
    url = fault_server.add("f.bin", data)
    fault_server.plan("f.bin", None, Fault.replace(make_data(SIZE, 23)))  # type: ignore[arg-type]
    with pytest.raises(resumable.ChecksumMismatch):
        d.download(url, tmp_path / "f.bin", sha256=sha(data))
    assert list(tmp_path.iterdir()) == []


def test_a_segment_failing_for_good_fails_the_file_with_its_reason(
    fault_server: FaultServer, d: ResumableDownloader, data: bytes, tmp_path: Path
) -> None:
    url = fault_server.add("f.bin", data)
    fault_server.plan("f.bin", None, Fault.status(403))  # type: ignore[arg-type]
    with pytest.raises(resumable.AccessDenied) as info:
        d.download(url, tmp_path / "f.bin")
    assert "403" in str(info.value)
    assert "resumable by running the same download again" in str(info.value)
    sidecar = json.loads((tmp_path / "f.bin.partial.json").read_text())
    assert sidecar["ranges"]  # what was written before the failure is recorded


def test_a_disk_too_small_fails_up_front(
    fault_server: FaultServer, d: ResumableDownloader, data: bytes, tmp_path: Path
) -> None:
    mount = tmp_path / "small"
    mount.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail(f"cannot mount a small tmpfs: {proc.stderr!r}")
        pytest.skip("needs root to mount a small tmpfs")
    try:
        url = fault_server.add("f.bin", data)
        with pytest.raises(resumable.LocalError, match="not enough disk space") as info:
            d.download(url, mount / "f.bin")
        assert "free in" in str(info.value)
        sent = sum(rec.body_bytes_sent for rec in fault_server.requests_for("f.bin"))
        assert sent < 4 * MiB  # stopped before fetching the file
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_small_files_and_servers_without_ranges_use_one_stream(
    fault_server: FaultServer, d: ResumableDownloader, data: bytes, tmp_path: Path
) -> None:
    fault_server.add("small.bin", data[: MiB // 2])
    fault_server.add("noranges.bin", data, ranges=False)
    d.download(fault_server.url_for("small.bin"), tmp_path / "small.bin")
    d.download(fault_server.url_for("noranges.bin"), tmp_path / "noranges.bin")
    for name in ("small.bin", "noranges.bin"):
        assert len(fault_server.requests_for(name)) == 1
    assert (tmp_path / "noranges.bin").read_bytes() == data


def test_a_mismatch_after_a_segmented_resume_refetches_the_whole_file(
    nginx: NginxServer, d: ResumableDownloader, data: bytes, unique_prefix: str, tmp_path: Path
) -> None:
    url = nginx.add(f"{unique_prefix}/f.bin", data)
    with pytest.raises(Stop):
        d.download(url, tmp_path / "f.bin", progress=interrupt_at(5 * MiB))
    partial = tmp_path / "f.bin.partial"
    recorded = json.loads((tmp_path / "f.bin.partial.json").read_text())["ranges"]
    damaged = bytearray(partial.read_bytes())
    damaged[recorded[0][0]] ^= 0xFF  # inside a recorded range: the resume keeps it
    partial.write_bytes(bytes(damaged))
    r = d.download(url, tmp_path / "f.bin", sha256=sha(data))
    assert r.status == "downloaded"
    assert r.bytes_transferred > SIZE  # the resume, then the whole file once more
    assert (tmp_path / "f.bin").read_bytes() == data


def test_a_server_without_validators_is_never_segmented(
    fault_server: FaultServer, d: ResumableDownloader, data: bytes, tmp_path: Path
) -> None:
    url = fault_server.add("f.bin", data, etag=None, last_modified=False)
    d.download(url, tmp_path / "f.bin")
    assert [r.range for r in fault_server.requests_for("f.bin")] == [None]
    assert (tmp_path / "f.bin").read_bytes() == data


def test_the_source_chooses_the_automatic_connections(tmp_path: Path) -> None:
    with ResumableDownloader() as d:
        engine = d.engine

        def wanted(url: str, dest: Path, **options: Any) -> int:
            return engine.prepare(engine.request(url, dest, **options)).connections

        assert wanted("https://h/x.bin", tmp_path / "a") == 8  # CDNs throttle
        assert wanted("memory://bucket/x.bin", tmp_path / "b") == 1  # stores
        assert wanted("memory://bucket/x.bin", tmp_path / "c", connections=4) == 4
    with ResumableDownloader(connections=3) as d:
        request = d.engine.request("memory://bucket/x.bin", tmp_path / "d")
        assert d.engine.prepare(request).connections == 3
