"""Async callers (issue 18 item 9): ``await resumable.adownload``, ``d.adownload``,
``d.adownload_many`` against the fault server and nginx.

The loop must keep running while bytes move (a ticker task keeps ticking), a cancelled task must
stop the transfer and keep a partial that the next call resumes with a ``Range`` request (seen in
the server's log), and the results must equal the synchronous API's.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from servers import Fault, FaultServer, NginxServer, make_data

import resumable

BLOCK = 64 * 1024


def gets(server: FaultServer, name: str) -> list[Any]:
    return [r for r in server.requests_for(name) if r.method == "GET"]


async def ticking(work: Any) -> tuple[Any, list[float]]:
    """Await ``work`` while a ticker task sleeps 10 ms in a loop; return its result and the
    gaps between ticks (a blocked loop shows up as one long gap)."""
    ticks: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        while not stop.is_set():
            ticks.append(time.monotonic())
            await asyncio.sleep(0.01)

    task = asyncio.create_task(ticker())
    try:
        result = await work
    finally:
        stop.set()
        await task
    return result, [b - a for a, b in itertools.pairwise(ticks)]


def test_adownload_keeps_the_loop_running_and_equals_download(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    data = make_data(1_000_000, 5)
    url = fault_server.add("slow.bin", data)
    fault_server.plan("slow.bin", Fault.trickle(500_000))  # ~2 s
    result, gaps = asyncio.run(ticking(resumable.adownload(url, tmp_path / "a" / "slow.bin")))
    assert sum(gaps) > 1.0  # the download really took a while ...
    assert len(gaps) > 40  # ... and the loop ran the ticker all along
    assert max(gaps) < 0.5  # never blocked (generous: a loaded machine)
    assert gets(fault_server, "slow.bin")[0].fault == "trickle"
    sync = resumable.download(url, tmp_path / "b" / "slow.bin")
    assert (result.status, result.size, result.sha256) == (sync.status, sync.size, sync.sha256)
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert (tmp_path / "a" / "slow.bin").read_bytes() == data


def test_cancelled_adownload_keeps_a_partial_that_resumes_with_range(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    data = make_data(3_000_000, 6)
    url = fault_server.add("big.bin", data)
    fault_server.plan("big.bin", Fault.trickle(300_000))  # 10 s if not cancelled
    dest = tmp_path / "big.bin"

    async def main() -> float:
        with resumable.ResumableDownloader(block_size=BLOCK) as d:
            with pytest.raises(TimeoutError):  # wait_for cancels the task, then says so
                await asyncio.wait_for(d.adownload(url, dest), timeout=1.5)
            return time.monotonic()

    started = time.monotonic()
    ended = asyncio.run(main())
    assert ended - started < 5  # promptly, not after the 10 s transfer
    partial = tmp_path / "big.bin.partial"
    kept = partial.stat().st_size
    assert 0 < kept < len(data)
    assert not dest.exists()
    time.sleep(0.3)
    assert partial.stat().st_size == kept  # the transfer had stopped when the task returned
    first = gets(fault_server, "big.bin")
    assert first[0].body_bytes_sent < len(data)

    again = resumable.download(url, dest)
    assert again.status == "resumed"
    assert dest.read_bytes() == data
    ranged = gets(fault_server, "big.bin")[len(first) :]
    assert ranged
    assert ranged[0].range is not None
    assert ranged[0].range.startswith("bytes=")
    assert not ranged[0].range.startswith("bytes=0-")


def test_task_cancel_stops_a_batch_and_raises_cancelled_error(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    names = [f"f{i}.bin" for i in range(4)]
    blobs = {name: make_data(2_000_000, 10 + i) for i, name in enumerate(names)}
    urls = [fault_server.add(name, blob) for name, blob in blobs.items()]
    for name in names:
        fault_server.plan(name, Fault.trickle(250_000))  # 8 s each
    seen = threading.Event()

    def progress(event: resumable.ProgressEvent) -> None:
        if event.done > 200_000:
            seen.set()

    async def main() -> None:
        with resumable.ResumableDownloader(workers=2, block_size=BLOCK) as d:
            task = asyncio.create_task(d.adownload_many(urls, tmp_path, progress=progress))
            while not seen.is_set():
                assert not task.done()
                await asyncio.sleep(0.02)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert task.cancelled()

    started = time.monotonic()
    asyncio.run(main())
    assert time.monotonic() - started < 8  # one file alone takes 8 s
    partials = sorted(p.name for p in tmp_path.glob("*.partial"))
    assert len(partials) == 2  # the two in flight; the other two never started
    assert not any((tmp_path / name).exists() for name in names)
    counts = {name: len(gets(fault_server, name)) for name in names}
    assert sorted(counts.values()) == [0, 0, 1, 1]

    with resumable.ResumableDownloader(workers=4) as d:
        result = d.download_many(urls, tmp_path)
    assert sorted(r.status for r in result.ok) == ["downloaded", "downloaded", "resumed", "resumed"]
    for name in names:
        assert (tmp_path / name).read_bytes() == blobs[name]
        if counts[name]:
            assert gets(fault_server, name)[-1].range not in (None, "bytes=0-")


def test_adownload_many_equals_download_many(
    nginx: NginxServer, unique_prefix: str, tmp_path: Path
) -> None:
    blobs = {f"s{i}.bin": make_data(100_000 + i, 40 + i) for i in range(6)}
    urls = [nginx.add(f"{unique_prefix}/{name}", blob) for name, blob in blobs.items()]
    missing = nginx.url_for(f"{unique_prefix}/missing.bin")

    async def main() -> resumable.BatchResult:
        with resumable.ResumableDownloader(workers=3) as d:
            result, gaps = await ticking(d.adownload_many([*urls, missing], tmp_path / "a"))
            assert max(gaps, default=0) < 0.5
            return result  # type: ignore[no-any-return]

    result = asyncio.run(main())
    with resumable.ResumableDownloader(workers=3) as d:
        sync = d.download_many([*urls, missing], tmp_path / "b")

    def outline(r: resumable.BatchResult) -> Any:
        ok = sorted((x.path.name, x.status, x.size, x.sha256) for x in r.ok)
        failed = sorted((str(item).rsplit("/", 1)[-1], type(exc)) for item, exc in r.failed)
        return ok, failed, r.cancelled

    assert outline(result) == outline(sync)
    assert len(result.ok) == 6
    assert len(result.failed) == 1
    for name, blob in blobs.items():
        assert (tmp_path / "a" / name).read_bytes() == blob


def test_adownload_bad_arguments_raise_invalid_argument_before_traffic(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    url = fault_server.add("x.bin", b"x" * 1000)
    with pytest.raises(resumable.InvalidArgument):
        asyncio.run(resumable.adownload(url, tmp_path / "x.bin", sha256="nothex"))
    with pytest.raises(resumable.InvalidArgument, match="cancel"):
        resumable.download(url, tmp_path / "x.bin", cancel="soon")  # type: ignore[arg-type]
    assert fault_server.log == []


def test_a_cancel_event_stops_a_sync_download(fault_server: FaultServer, tmp_path: Path) -> None:
    """The public hook the async API is built on: ``download(..., cancel=event)``."""
    data = make_data(2_000_000, 8)
    url = fault_server.add("c.bin", data)
    fault_server.plan("c.bin", Fault.trickle(250_000))
    cancel = threading.Event()
    threading.Timer(1.0, cancel.set).start()
    started = time.monotonic()
    with pytest.raises(resumable.Cancelled):
        resumable.download(url, tmp_path / "c.bin", cancel=cancel)
    assert time.monotonic() - started < 5
    assert 0 < (tmp_path / "c.bin.partial").stat().st_size < len(data)


def test_import_resumable_does_not_import_asyncio() -> None:
    code = "import sys, resumable; print('asyncio' in sys.modules); resumable.adownload"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
