"""The plain ``http://`` engine (``resumable/sources/_http_plain.py``) against the fault server.

Plain hosts skip requests and urllib3: these tests prove the keep-alive pool does what those
libraries did for correctness, with the server's log as the witness (connection ids, requests
that reached it, faults served).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from servers import Fault, FaultServer

import resumable
from resumable import RetryPolicy
from resumable.sources._http_plain import PlainPool

KiB = 1024
MiB = 1024 * KiB


def _data(size: int, seed: int = 1) -> bytes:
    block = hashlib.sha256(str(seed).encode()).digest()
    return (block * (size // len(block) + 1))[:size]


def _gets(server: FaultServer, name: str) -> list[int]:
    """The connection id of each GET for ``name`` that reached the server."""
    return [r.conn_id for r in server.requests_for(name) if r.method == "GET"]


def test_a_connection_the_server_closed_while_idle_is_replaced_unseen(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    """A server's keep-alive timeout closes the pooled connection between two files: the next
    GET goes out again on a new connection, inside the pool, not as a failed attempt (one
    attempt allowed, and it succeeds)."""
    first = fault_server.add("first.bin", _data(10 * KiB, seed=1))
    second = fault_server.add("second.bin", _data(10 * KiB, seed=2))
    with resumable.ResumableDownloader(retry=RetryPolicy(attempts=1)) as d:
        d.download(first, tmp_path / "first.bin")
        assert fault_server.close_idle() == 1  # the fault: the pooled connection is gone
        result = d.download(second, tmp_path / "second.bin")
    assert result.status == "downloaded"
    assert (tmp_path / "second.bin").read_bytes() == _data(10 * KiB, seed=2)
    [before], [after] = _gets(fault_server, "first.bin"), _gets(fault_server, "second.bin")
    assert after != before  # one GET reached the server, on a new connection


def test_an_answer_not_read_to_its_end_is_not_reused(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    """Ctrl-C mid-body leaves unread bytes on the connection: it is closed, never pooled (the
    next GET on it would read the old body as its answer)."""
    url = fault_server.add("big.bin", _data(2 * MiB))
    other = fault_server.add("other.bin", _data(10 * KiB, seed=3))

    def interrupt(event: resumable.ProgressEvent) -> None:
        if event.kind == "progress" and event.done < event.total:
            raise KeyboardInterrupt

    with resumable.ResumableDownloader(retry=RetryPolicy(attempts=1)) as d:
        with pytest.raises(KeyboardInterrupt):
            d.download(url, tmp_path / "big.bin", progress=interrupt)
        d.download(other, tmp_path / "other.bin")  # one attempt: a reused connection fails it
    [cut] = fault_server.requests_for("big.bin")
    assert 0 < cut.body_bytes_sent <= 2 * MiB
    assert (tmp_path / "other.bin").read_bytes() == _data(10 * KiB, seed=3)
    assert _gets(fault_server, "other.bin") != _gets(fault_server, "big.bin")


def test_a_body_compressed_anyway_goes_through_requests_and_is_decoded(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    """A server that gzips despite ``Accept-Encoding: identity``: the plain engine cannot
    decode, so the host goes to requests, which does; the file is the object's bytes."""
    data = _data(100 * KiB)
    url = fault_server.add("zipped.bin", data)
    fault_server.plan("zipped.bin", Fault.gzip(), Fault.gzip())
    with resumable.ResumableDownloader() as d:
        d.download(url, tmp_path / "zipped.bin", sha256=hashlib.sha256(data).hexdigest())
    assert (tmp_path / "zipped.bin").read_bytes() == data
    assert [r.fault for r in fault_server.requests_for("zipped.bin")] == ["gzip", "gzip"]


def test_the_pool_keeps_at_most_its_size_idle(fault_server: FaultServer) -> None:
    """Two answers open at once, a pool of one: the second connection is closed when released,
    and later GETs all use the one that was kept."""
    fault_server.add("x.bin", _data(KiB))
    pool = PlainPool("127.0.0.1", fault_server.port, connect=5, stall=5, size=1)
    try:
        answers = [pool.get("/x.bin", {}), pool.get("/x.bin", {})]
        for answer in answers:
            assert answer.raw.read() == _data(KiB)
            answer.close()
        for _ in range(3):
            answer = pool.get("/x.bin", {})
            answer.raw.read()
            answer.close()
    finally:
        pool.close()
    ids = _gets(fault_server, "x.bin")
    assert len(set(ids[:2])) == 2  # two connections while both answers were open
    assert len(set(ids[2:])) == 1  # then only the one kept
    assert ids[2] in ids[:2]
