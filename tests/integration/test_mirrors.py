"""Mirrors: several URLs for one object; a permanent failure on one fails over to the next.

Two loopback FaultServers play the primary and the mirror. Each test proves from both request
logs where the bytes came from and from which offset the mirror was asked.
"""

from __future__ import annotations

import contextlib
import hashlib
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import Fault, FaultServer, MemoryStore, make_data

from resumable import Item, ProgressEvent, ResumableDownloader, RetryPolicy, Timeouts
from resumable.errors import InvalidArgument, SourceNotFound
from resumable.urls import identity

MiB = 1 << 20
SIZE = 300_000


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def mirror() -> Iterator[FaultServer]:
    with FaultServer() as server:
        yield server


@pytest.fixture
def d() -> Iterator[ResumableDownloader]:
    policy = RetryPolicy(attempts=2, backoff=0.0, jitter=0)
    with ResumableDownloader(
        retry=policy, timeouts=Timeouts(connect=5, stall=5), segment_threshold=MiB
    ) as downloader:
        yield downloader


def gets(server: FaultServer, name: str = "f.bin") -> list[tuple[int, str | None]]:
    return [(r.status, r.range) for r in server.requests_for(name) if r.method == "GET"]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_missing_object_fails_over_to_the_mirror(
    fault_server: FaultServer, mirror: FaultServer, d: ResumableDownloader, tmp_path: Path
) -> None:
    data = make_data(SIZE)
    primary = fault_server.url_for("f.bin")  # 404 there
    r = d.download(primary, tmp_path / "f.bin", mirrors=[mirror.add("f.bin", data)])
    assert (tmp_path / "f.bin").read_bytes() == data
    assert gets(fault_server) == [(404, None)]
    assert gets(mirror) == [(200, None)]
    assert r.url == primary  # the file is named by its first URL


def test_the_mirror_continues_from_the_same_offset(
    fault_server: FaultServer, mirror: FaultServer, d: ResumableDownloader, tmp_path: Path
) -> None:
    data = make_data(SIZE)
    primary = fault_server.add("f.bin", data)
    backup = mirror.add("f.bin", data)  # the same version: same ETag and Last-Modified
    assert mirror.etag("f.bin") == fault_server.etag("f.bin")
    fault_server.plan("f.bin", Fault.cut(after=120_000), Fault.status(410))  # then gone
    r = d.download(primary, tmp_path / "f.bin", mirrors=[backup], connections=1)
    assert (tmp_path / "f.bin").read_bytes() == data
    assert gets(fault_server) == [(200, None), (410, "bytes=120000-")]
    assert gets(mirror) == [(206, "bytes=120000-")]
    assert mirror.requests_for("f.bin")[0].if_range == fault_server.etag("f.bin")
    assert r.bytes_transferred == SIZE
    assert r.status == "downloaded"


def test_with_an_expected_digest_a_mirror_with_other_validators_continues_too(
    fault_server: FaultServer, mirror: FaultServer, d: ResumableDownloader, tmp_path: Path
) -> None:
    data = make_data(SIZE)
    primary = fault_server.add("f.bin", data)
    mirror.add("other.bin", b"x")  # bumps the mirror's version counter
    backup = mirror.add("f.bin", data)
    assert mirror.etag("f.bin") != fault_server.etag("f.bin")
    fault_server.plan("f.bin", Fault.cut(after=120_000), Fault.status(404))
    r = d.download(primary, tmp_path / "f.bin", mirrors=[backup], sha256=sha(data), connections=1)
    assert (tmp_path / "f.bin").read_bytes() == data
    assert gets(mirror) == [(206, "bytes=120000-")]
    assert mirror.requests_for("f.bin")[0].if_range is None  # the digest guards the splice
    assert r.bytes_transferred == SIZE


def test_without_a_digest_a_mirror_with_other_validators_restarts(
    fault_server: FaultServer, mirror: FaultServer, d: ResumableDownloader, tmp_path: Path
) -> None:
    data = make_data(SIZE)
    primary = fault_server.add("f.bin", data)
    mirror.add("other.bin", b"x")
    backup = mirror.add("f.bin", data)
    fault_server.plan("f.bin", Fault.cut(after=120_000), Fault.status(404))
    r = d.download(primary, tmp_path / "f.bin", mirrors=[backup], connections=1)
    assert (tmp_path / "f.bin").read_bytes() == data
    assert gets(mirror) == [(200, "bytes=120000-")]  # If-Range did not match: the whole file
    assert r.bytes_transferred == 120_000 + SIZE


def test_a_dead_host_fails_over_after_its_retries(
    mirror: FaultServer, d: ResumableDownloader, tmp_path: Path
) -> None:
    data = make_data(SIZE)
    dead = f"http://127.0.0.1:{closed_port()}/f.bin"
    events: list[ProgressEvent] = []
    d.download(
        dead, tmp_path / "f.bin", mirrors=[mirror.add("f.bin", data)], progress=events.append
    )
    assert (tmp_path / "f.bin").read_bytes() == data
    retried = [type(e.error).__name__ for e in events if e.kind == "retrying"]
    assert retried == ["CannotConnect", "ConnectionRetriesExhausted"]  # the budget, then fail-over


def test_when_every_url_fails_the_last_error_is_raised_and_the_partial_kept(
    fault_server: FaultServer, mirror: FaultServer, d: ResumableDownloader, tmp_path: Path
) -> None:
    primary = fault_server.add("f.bin", make_data(SIZE))
    fault_server.plan("f.bin", Fault.cut(after=120_000), Fault.status(404))
    with pytest.raises(SourceNotFound) as caught:
        d.download(primary, tmp_path / "f.bin", mirrors=[mirror.url_for("f.bin")])
    assert caught.value.url == mirror.url_for("f.bin")
    assert "partial kept" in str(caught.value)
    assert (tmp_path / "f.bin.partial").stat().st_size == 120_000
    assert gets(mirror) == [(404, "bytes=120000-")]


def test_segments_fail_over_together(
    fault_server: FaultServer, mirror: FaultServer, d: ResumableDownloader, tmp_path: Path
) -> None:
    data = make_data(16 * MiB, 4)
    fault_server.add("f.bin", data)
    primary = fault_server.sign("f.bin", serves=2 * MiB)  # then refused (403), no hook
    backup = mirror.add("f.bin", data)
    r = d.download(primary, tmp_path / "f.bin", mirrors=[backup], sha256=sha(data), connections=8)
    assert (tmp_path / "f.bin").read_bytes() == data
    assert any(status == 403 for status, _ in gets(fault_server))
    served = gets(mirror)
    assert len(served) >= 2
    assert all(status == 206 for status, _ in served)
    assert all(rng is not None and not rng.startswith("bytes=0-") for _, rng in served)
    assert r.bytes_transferred == len(data)


def test_batch_items_take_mirrors(
    fault_server: FaultServer, mirror: FaultServer, tmp_path: Path
) -> None:
    data = make_data(SIZE)
    primary = fault_server.url_for("f.bin")
    item = Item(primary, mirrors=[mirror.add("f.bin", data)], sha256=sha(data))
    with ResumableDownloader(retry=RetryPolicy(attempts=2, backoff=0, jitter=0)) as d:
        result = d.download_many([item], tmp_path)
    result.raise_for_errors()
    assert (tmp_path / "f.bin").read_bytes() == data
    assert gets(mirror) == [(200, None)]
    with contextlib.closing(sqlite3.connect(tmp_path / ".resumable" / "ledger.sqlite")) as db:
        rows = db.execute("SELECT identity FROM items").fetchall()
    assert rows == [(identity(primary),)]


@pytest.mark.parametrize("mirrors", ["http://h/x", ["not a url"], ["nosuchscheme://h/x"], [3]])
def test_bad_mirrors_are_refused_before_any_traffic(
    fault_server: FaultServer, d: ResumableDownloader, tmp_path: Path, mirrors: object
) -> None:
    url = fault_server.add("f.bin", b"x")
    with pytest.raises(InvalidArgument):
        d.download(url, tmp_path / "f.bin", mirrors=mirrors)  # type: ignore[arg-type]
    assert fault_server.log == []


def test_item_mirrors_must_be_a_list() -> None:
    with pytest.raises(InvalidArgument):
        Item("http://h/x", mirrors="http://m/x")
    assert Item("http://h/x", mirrors=["http://m/x"]).mirrors == ("http://m/x",)


def test_a_mirror_may_use_another_scheme(
    fault_server: FaultServer, memory_store: MemoryStore, d: ResumableDownloader, tmp_path: Path
) -> None:
    data = make_data(SIZE)
    primary = fault_server.add("f.bin", data)
    fault_server.plan("f.bin", Fault.cut(after=120_000), Fault.status(404))
    backup = memory_store.put("f.bin", data)  # served by the fsspec source
    r = d.download(primary, tmp_path / "f.bin", mirrors=[backup], sha256=sha(data), connections=1)
    assert (tmp_path / "f.bin").read_bytes() == data
    assert r.bytes_transferred == SIZE  # continued at 120 kB, guarded by the digest


def test_plan_asks_the_mirror_for_the_size(
    fault_server: FaultServer, mirror: FaultServer, d: ResumableDownloader, tmp_path: Path
) -> None:
    item = Item(fault_server.url_for("f.bin"), mirrors=[mirror.add("f.bin", make_data(SIZE))])
    plan = d.plan([item], tmp_path)
    assert (plan.to_fetch, plan.fetch_bytes, plan.failed) == (1, SIZE, [])
    assert [r.method for r in mirror.requests_for("f.bin")] == ["HEAD"]
