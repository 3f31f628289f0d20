"""Concurrency that adapts to the server (issue 19 item 3): a host that answers 503 or 429 gets
fewer connections (AIMD), retries are paced by the same window, and the batch still completes.

Against dedicated nginx instances: ``/limited/`` serves 4 requests at once and answers 503
beyond (``limit_conn``), ``/paced/`` serves 20 requests a second and answers 429 beyond
(``limit_req``). nginx's access log (status and end time of every request) proves the pushback
happened and shows what the client did after it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
from servers import NginxServer, make_data
from servers.nginx import LIMITED_CONNECTIONS

import resumable

KiB = 1024


def serve(server: NginxServer, count: int, size: int) -> dict[str, str]:
    """``count`` files of ``size`` bytes; ``{name: sha256}``."""
    sums = {}
    for i in range(count):
        data = make_data(size, seed=400 + i)
        server.add(f"f{i:03d}.bin", data)
        sums[f"f{i:03d}.bin"] = hashlib.sha256(data).hexdigest()
    return sums


def test_a_server_that_sheds_load_with_503_gets_fewer_connections(
    make_nginx: Callable[..., NginxServer], tmp_path: Path
) -> None:
    # nginx sends a second's worth at once, then 256 KB/s: ~0.5 s a request, so they overlap.
    server = make_nginx(limit_rate="256k")
    sums = serve(server, 16, 384 * KiB)
    items = [
        resumable.Item(f"{server.url}/limited/{name}", sha256=digest)
        for name, digest in sums.items()
    ]
    with resumable.ResumableDownloader(workers=16) as d:
        result = d.download_many(items, tmp_path)
        window = d.engine.slots.window("127.0.0.1")
    assert not result.failed, result.failed
    assert len(result.ok) == 16
    log = server.access_log_lines(min_lines=16)
    busy = sorted(e.time for e in log if e.status == 503)
    served = [e for e in log if e.status == 200]
    assert len(served) == 16  # every file once, whole
    assert busy, "nginx never answered 503: the test proves nothing"
    # After the first refusals the client stays near the server's 4: the refusals stop
    # instead of coming back with every retry (16 workers, 16 files).
    first = busy[0]
    late = [t for t in busy if t > first + 1.5]
    assert len(late) <= 4, (len(busy), len(late))
    assert window is None or window <= 16


def test_a_rate_limited_api_with_429_sees_requests_per_second_fall(
    make_nginx: Callable[..., NginxServer], tmp_path: Path
) -> None:
    server = make_nginx()
    sums = serve(server, 48, 8 * KiB)
    items = [
        resumable.Item(f"{server.url}/paced/{name}", sha256=digest) for name, digest in sums.items()
    ]
    with resumable.ResumableDownloader(workers=16) as d:
        result = d.download_many(items, tmp_path)
    assert not result.failed, result.failed
    log = server.access_log_lines(min_lines=48)
    refused = sorted(e.time for e in log if e.status == 429)
    assert refused, "nginx never answered 429: the test proves nothing"
    assert sum(e.status == 200 for e in log) == 48
    # No request storm: in each second after the first 429, at most a few more refusals.
    start = refused[0]
    per_second: dict[int, int] = {}
    for t in refused:
        per_second[int(t - start)] = per_second.get(int(t - start), 0) + 1
    later = [count for second, count in per_second.items() if second >= 1]
    assert all(count <= 8 for count in later), per_second
    assert LIMITED_CONNECTIONS == 4  # (the other test's premise)


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_holds_the_other_workers_too(status: int) -> None:
    """Unit-level, no server: a Retry-After from one answer holds new connections to its host
    for every worker of the downloader (the slots are shared), not only the one that got it."""
    with resumable.ResumableDownloader(workers=4) as d:
        slots = d.engine.slots
        release = slots.try_take("h:1")
        assert release is not None
        slots.observe("h:1", resumable.ServerBusy(status=status, retry_after=30))
        assert slots.try_take("h:1") is None
        assert slots.try_take("other:1") is not None
