"""download_many(executor=...): a batch fanned out over a thread pool, a process pool and a real
Dask cluster (LocalCluster, worker processes), against the FaultServer on loopback.

Proved here: results and typed errors come back from other processes; the caller's ledger holds
every outcome, so a rerun skips without a request; worker progress reaches the caller while the
download still runs; cancel stops running chunks; a worker killed mid-download has its chunk run
again elsewhere and the file resumes from its partial (the server log shows the Range).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from servers import Fault, FaultServer, make_data

import resumable
from resumable.batch import chunks
from resumable.progress import EventKind, ProgressEvent

SIZE = 200_000
# Dask warns when a loaded machine is slow to make a worker's scratch folder: not our concern.
pytestmark = pytest.mark.filterwarnings("ignore:Creating scratch directories:UserWarning")


# Files up to one block take the direct path, which keeps no partial; these tests watch a
# partial grow, so their downloaders read in 256 KiB blocks (the files are larger).
SMALL_BLOCK = 256 * 1024


def ledger_rows(dest: Path) -> dict[str, tuple[str, int | None]]:
    db = sqlite3.connect(dest / ".resumable" / "ledger.sqlite")
    try:
        return {p: (s, n) for p, s, n in db.execute("SELECT path, state, size FROM items")}
    finally:
        db.close()


def gets(server: FaultServer, name: str) -> list[Any]:
    return [r for r in server.requests_for(name) if r.method == "GET"]


class Recorder:
    """A progress callback that notes, for each event, whether the file was complete yet."""

    def __init__(self) -> None:
        self.events: list[tuple[ProgressEvent, bool]] = []
        self.lock = threading.Lock()

    def __call__(self, event: ProgressEvent) -> None:
        with self.lock:
            self.events.append((event, event.path.exists()))

    def kinds(self, name: str) -> list[EventKind]:
        return [e.kind for e, _ in self.events if e.path.name == name]


def serve(server: FaultServer, count: int, prefix: str = "f") -> list[str]:
    return [server.add(f"{prefix}{i}.bin", make_data(SIZE + i, i)) for i in range(count)]


# -- thread pool and process pool ---------------------------------------------------------------


def test_thread_pool_batch_with_progress_ledger_and_rerun(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    urls = serve(fault_server, 5)
    recorder = Recorder()
    with resumable.ResumableDownloader(workers=2) as d, ThreadPoolExecutor(2) as pool:
        batch = d.download_many(urls, tmp_path, executor=pool, progress=recorder)
        assert not batch.failed
        assert sorted(r.path.name for r in batch.ok) == [f"f{i}.bin" for i in range(5)]
        for i in range(5):
            assert (tmp_path / f"f{i}.bin").read_bytes() == make_data(SIZE + i, i)
            kinds = recorder.kinds(f"f{i}.bin")
            assert kinds[0] is EventKind.STARTED
            assert kinds[-1] is EventKind.DONE
            assert kinds.count(EventKind.DONE) == 1
        assert ledger_rows(tmp_path) == {f"f{i}.bin": ("done", SIZE + i) for i in range(5)}
        before = len(fault_server.log)
        again = d.download_many(urls, tmp_path, executor=pool)
    assert {r.status for r in again.ok} == {"skipped"}
    assert len(fault_server.log) == before  # the caller's ledger skipped them: nothing was sent


def test_process_pool_returns_results_and_typed_errors(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    urls = serve(fault_server, 3)
    missing = fault_server.url_for("missing.bin")
    wrong = resumable.Item(urls[0], "wrong.bin", sha256="0" * 64)
    spawn = multiprocessing.get_context("spawn")  # fork after threads started is unsafe
    recorder = Recorder()
    cached_here = dict(chunks._downloaders)
    with resumable.ResumableDownloader(workers=2) as d, ProcessPoolExecutor(1, spawn) as pool:
        batch = d.download_many([*urls, missing, wrong], tmp_path, executor=pool, progress=recorder)
    assert sorted(r.path.name for r in batch.ok) == ["f0.bin", "f1.bin", "f2.bin"]
    assert all(r.status == "downloaded" and r.bytes_transferred == r.size for r in batch.ok)
    errors = {type(exc) for _, exc in batch.failed}
    assert errors == {resumable.SourceNotFound, resumable.ChecksumMismatch}
    rows = ledger_rows(tmp_path)
    assert rows["missing.bin"][0] == "failed"
    assert rows["f2.bin"] == ("done", SIZE + 2)
    # No live channel for a generic executor: each chunk brought its events back.
    assert recorder.kinds("f1.bin")[-1] is EventKind.DONE
    assert recorder.kinds("missing.bin")[-1] is EventKind.FAILED
    assert chunks._downloaders == cached_here  # the downloads ran in the pool's process


def test_sync_through_a_process_pool_deletes_what_is_gone_at_the_source(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    serve(fault_server, 3)
    template = fault_server.url + "/f{0..2}.bin"
    spawn = multiprocessing.get_context("spawn")
    with resumable.ResumableDownloader(workers=2) as d, ProcessPoolExecutor(1, spawn) as pool:
        d.download_many(template, tmp_path, executor=pool).raise_for_errors()
        fault_server.remove("f1.bin")
        again = d.download_many(template, tmp_path, executor=pool, sync=True)
    assert again.deleted == [tmp_path / "f1.bin"]
    assert [type(e) for _, e in again.failed] == [resumable.SourceNotFound]
    assert sorted(p.name for p in tmp_path.glob("*.bin")) == ["f0.bin", "f2.bin"]
    rows = ledger_rows(tmp_path)  # as a local batch leaves it: the deleted file as failed
    assert {path: state for path, (state, _) in rows.items()} == {
        "f0.bin": "done",
        "f1.bin": "failed",
        "f2.bin": "done",
    }


def test_thread_pool_cancel_stops_running_chunks(fault_server: FaultServer, tmp_path: Path) -> None:
    url = fault_server.add("slow.bin", make_data(2_000_000, 1))
    fault_server.plan("slow.bin", Fault.trickle(400_000))
    partial = tmp_path / "slow.bin.partial"
    with (
        resumable.ResumableDownloader(workers=1, block_size=SMALL_BLOCK) as d,
        ThreadPoolExecutor(1) as pool,
    ):
        job = d.start([url], tmp_path, executor=pool)
        deadline = time.monotonic() + 10
        while not (partial.exists() and partial.stat().st_size > 0):
            assert time.monotonic() < deadline, "the download never started"
            time.sleep(0.02)
        job.cancel()
        result = job.wait(timeout=10)
    assert result.cancelled
    assert [type(exc) for _, exc in result.failed] == [resumable.Cancelled]
    assert 0 < partial.stat().st_size < 2_000_000  # stopped early, kept for the next run
    assert not (tmp_path / "slow.bin").exists()


def test_process_pool_cancel_reaches_running_and_queued_chunks(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    """The generic channel: a flag file stops the running chunk; the queued one fetches nothing."""
    first = fault_server.add("first.bin", make_data(2_000_000, 1))
    second = fault_server.add("second.bin", make_data(1000, 2))
    fault_server.plan("first.bin", Fault.trickle(300_000))
    partial = tmp_path / "first.bin.partial"
    spawn = multiprocessing.get_context("spawn")
    with (
        resumable.ResumableDownloader(workers=1, block_size=SMALL_BLOCK) as d,
        ProcessPoolExecutor(1, spawn) as pool,
    ):
        job = d.start([first, second], tmp_path, executor=pool)  # two chunks, one process
        deadline = time.monotonic() + 20
        while not (partial.exists() and partial.stat().st_size > 0):
            assert time.monotonic() < deadline, "the download never started"
            time.sleep(0.02)
        job.cancel()
        result = job.wait(timeout=15)
    assert result.cancelled
    assert [(type(e), e.url) for _, e in result.failed] == [(resumable.Cancelled, first)]
    assert 0 < partial.stat().st_size < 2_000_000
    assert gets(fault_server, "second.bin") == []  # started after the cancel: nothing fetched
    assert not list((tmp_path / ".resumable").glob("cancel-*"))  # the flag is cleaned up


def test_a_process_pool_that_breaks_fails_its_items_with_executor_error_and_a_rerun_resumes(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    size = 2_000_000
    url = fault_server.add("big.bin", make_data(size, 4))
    fault_server.plan("big.bin", Fault.trickle(400_000))
    partial = tmp_path / "big.bin.partial"
    spawn = multiprocessing.get_context("spawn")
    with resumable.ResumableDownloader(workers=1, block_size=SMALL_BLOCK) as d:
        with ProcessPoolExecutor(1, spawn) as pool:
            job = d.start([url], tmp_path, executor=pool)
            deadline = time.monotonic() + 20
            while not (partial.exists() and partial.stat().st_size > 100_000):
                assert time.monotonic() < deadline, "the download never started"
                time.sleep(0.02)
            for pid in list(pool._processes):  # the pool's only process, mid-download
                os.kill(pid, signal.SIGKILL)
            broken = job.wait(timeout=15)
        [(_, error)] = broken.failed
        assert isinstance(error, resumable.ExecutorError)
        assert "BrokenProcessPool" in (error.cause or "")
        assert ledger_rows(tmp_path) == {"big.bin": ("partial", None)}
        with ProcessPoolExecutor(1, spawn) as pool:
            again = d.download_many([url], tmp_path, executor=pool)
    [result] = again.ok
    assert result.status == "resumed"
    assert 0 < result.bytes_transferred < size
    assert (tmp_path / "big.bin").read_bytes() == make_data(size, 4)


def test_an_unpicklable_source_instance_is_refused_for_other_processes(tmp_path: Path) -> None:
    from resumable.testing import MemorySource

    d = resumable.ResumableDownloader(sources={"mem": MemorySource({"mem://b/a": b"x"})})
    with ProcessPoolExecutor(1, multiprocessing.get_context("spawn")) as pool:
        with pytest.raises(resumable.InvalidArgument, match="register"):
            d.download_many(["mem://b/a"], tmp_path, executor=pool)
        with pytest.raises(resumable.InvalidArgument, match="Executor"):
            d.download_many(["mem://b/a"], tmp_path, executor=object())  # type: ignore[arg-type]
    # In-process executors need no pickling: the downloader itself is used.
    with ThreadPoolExecutor(1) as threads:
        batch = d.download_many(["mem://b/a"], tmp_path, executor=threads)
    assert [r.path.read_bytes() for r in batch.ok] == [b"x"]


# -- a real Dask cluster ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dask_client() -> Iterator[Any]:
    """Two worker processes (one thread each) under nannies, which restart a killed worker."""
    import distributed  # in the test dependency group: missing must fail, not skip

    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


def test_dask_batch_progress_ledger_and_errors(
    dask_client: Any, fault_server: FaultServer, tmp_path: Path
) -> None:
    urls = serve(fault_server, 6)
    slow = fault_server.add("slow.bin", make_data(1_500_000, 9))
    fault_server.plan("slow.bin", Fault.trickle(600_000))  # ~2.5 s: live progress must show
    missing = fault_server.url_for("missing.bin")
    recorder = Recorder()
    cached_here = dict(chunks._downloaders)
    with resumable.ResumableDownloader(workers=2) as d:
        batch = d.download_many(
            [*urls, slow, missing], tmp_path, executor=dask_client.get_executor(), progress=recorder
        )
    assert sorted(r.path.name for r in batch.ok) == sorted(
        [*(f"f{i}.bin" for i in range(6)), "slow.bin"]
    )
    assert [(type(e), e.url) for _, e in batch.failed] == [(resumable.SourceNotFound, missing)]
    assert (tmp_path / "slow.bin").read_bytes() == make_data(1_500_000, 9)
    # Workers did the downloading: each keeps a warm downloader; this process has none.
    cached = dask_client.run(
        lambda: len(__import__("resumable.batch.chunks").batch.chunks._downloaders)
    )
    assert sum(cached.values()) >= 1
    assert chunks._downloaders == cached_here
    # Live, throttled progress: byte counts of the slow file reached the callback while the
    # file was still incomplete on disk, and far fewer than one per read.
    live = [
        e
        for e, complete in recorder.events
        if e.path.name == "slow.bin" and e.kind is EventKind.PROGRESS and not complete
    ]
    assert live
    assert all(0 < e.done < 1_500_000 for e in live)
    assert len(recorder.kinds("slow.bin")) < 12
    for name in ("slow.bin", "f0.bin", "f5.bin"):
        kinds = recorder.kinds(name)
        assert kinds[0] is EventKind.STARTED
        assert kinds[-1] is EventKind.DONE
        assert kinds.count(EventKind.DONE) == 1
    assert recorder.kinds("missing.bin")[-1] is EventKind.FAILED
    # The caller's ledger holds every outcome.
    rows = ledger_rows(tmp_path)
    assert rows["slow.bin"] == ("done", 1_500_000)
    assert rows["missing.bin"][0] == "failed"
    assert len(rows) == 8


def test_dask_cancel_reaches_running_chunks(
    dask_client: Any, fault_server: FaultServer, tmp_path: Path
) -> None:
    url = fault_server.add("slow.bin", make_data(3_000_000, 2))
    fault_server.plan("slow.bin", Fault.trickle(300_000))  # 10 s if not cancelled
    partial = tmp_path / "slow.bin.partial"
    with resumable.ResumableDownloader(workers=1, block_size=SMALL_BLOCK) as d:
        job = d.start([url], tmp_path, executor=dask_client.get_executor())
        deadline = time.monotonic() + 20
        while not (partial.exists() and partial.stat().st_size > 0):
            assert time.monotonic() < deadline, "the download never started"
            time.sleep(0.05)
        started = time.monotonic()
        job.cancel()
        result = job.wait(timeout=15)
    assert time.monotonic() - started < 5
    assert result.cancelled
    assert [type(exc) for _, exc in result.failed] == [resumable.Cancelled]
    assert 0 < partial.stat().st_size < 3_000_000
    assert gets(fault_server, "slow.bin")[0].body_bytes_sent < 3_000_000


def test_dask_worker_killed_mid_download_resumes_elsewhere(
    dask_client: Any, fault_server: FaultServer, tmp_path: Path
) -> None:
    size = 3_000_000
    url = fault_server.add("big.bin", make_data(size, 3))
    fault_server.plan("big.bin", Fault.trickle(500_000))  # the first GET takes ~6 s
    partial = tmp_path / "big.bin.partial"
    outcome: list[Any] = []
    d = resumable.ResumableDownloader(workers=1, block_size=SMALL_BLOCK)
    runner = threading.Thread(
        target=lambda: outcome.append(
            d.download_many([url], tmp_path, executor=dask_client.get_executor())
        )
    )
    runner.start()
    try:
        deadline = time.monotonic() + 20
        while not (partial.exists() and partial.stat().st_size > 300_000):
            assert time.monotonic() < deadline, "the download never started"
            time.sleep(0.05)
        busy = [addr for addr, keys in dask_client.processing().items() if keys]
        assert len(busy) == 1
        pid = dask_client.run(os.getpid, workers=busy)[busy[0]]
        os.kill(pid, signal.SIGKILL)
        runner.join(timeout=60)
        assert not runner.is_alive()
    finally:
        runner.join(timeout=60)
        d.close()
        dask_client.wait_for_workers(2, timeout=60)  # the nanny restarts it for the next tests
    (batch,) = outcome
    assert not batch.failed
    (result,) = batch.ok
    assert result.status == "resumed"
    assert (tmp_path / "big.bin").read_bytes() == make_data(size, 3)
    first, second = gets(fault_server, "big.bin")
    assert first.fault == "trickle"
    assert 0 < first.body_bytes_sent < size
    assert second.range is not None
    assert second.range.startswith("bytes=")
    offset = int(second.range.split("=")[1].split("-")[0])
    assert offset > 0
    assert second.body_bytes_sent == size - offset == result.bytes_transferred < size
    assert ledger_rows(tmp_path) == {"big.bin": ("done", size)}
