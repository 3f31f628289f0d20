"""The batch layer over a real HTTP server on loopback (the fault server): both runners, the
per-item steps' requests, and ``sync`` asking HEAD and GET before a delete."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from servers import FaultServer, make_data

from resumable.batch.fanout import FanoutRunner
from resumable.batch.job import Job
from resumable.engine import Engine, Settings
from resumable.retry import RetryPolicy

KiB = 1 << 10


def engine() -> Engine:
    policy = RetryPolicy(attempts=2, backoff=0.01, jitter=0, sleep=lambda s: None)
    return Engine(Settings(workers=2, retry=policy))


def serve(server: FaultServer, count: int) -> dict[str, bytes]:
    data = {f"f{i}.bin": make_data(20 * KiB + i, seed=i) for i in range(count)}
    for name, payload in data.items():
        server.add(name, payload)
    return data


def test_both_runners_download_over_http_and_a_rerun_sends_nothing(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    data = serve(fault_server, 4)
    urls = [fault_server.url_for(name) for name in data]
    eng = engine()
    try:
        local = Job(eng, urls, tmp_path / "local").wait(timeout=60)
        with ThreadPoolExecutor(2) as pool:
            runner = FanoutRunner(eng, pool, tmp_path / "fan")
            fanned = Job(eng, urls, tmp_path / "fan", runner=runner).wait(timeout=60)
        for result in (local, fanned):
            assert sorted(r.status for r in result.ok) == ["downloaded"] * 4
        for name, payload in data.items():
            assert (tmp_path / "local" / name).read_bytes() == payload
            assert (tmp_path / "fan" / name).read_bytes() == payload
        before = {name: len(fault_server.requests_for(name)) for name in data}
        again = Job(eng, urls, tmp_path / "local").wait(timeout=60)
        assert [r.status for r in again.ok] == ["skipped"] * 4
        assert {name: len(fault_server.requests_for(name)) for name in data} == before
    finally:
        eng.close()


def test_sync_deletes_an_object_gone_at_the_source_after_head_and_get(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    data = serve(fault_server, 3)
    template = f"{fault_server.url}/f{{0..2}}.bin"
    eng = engine()
    try:
        Job(eng, [template], tmp_path, sync=True).wait(timeout=60)
        fault_server.remove("f2.bin")
        smaller = f"{fault_server.url}/f{{0..1}}.bin"
        # Another template: its origin differs, so nothing of the first one is pruned...
        assert Job(eng, [smaller], tmp_path, sync=True).wait(timeout=60).deleted == []
        # ...while the same template, now failing with a 404, deletes the file it wrote.
        result = Job(eng, [template], tmp_path, sync=True).wait(timeout=60)
        assert result.deleted == [tmp_path / "f2.bin"]
        methods = [r.method for r in fault_server.requests_for("f2.bin")]
        assert "HEAD" in methods
        assert "GET" in methods
        assert sorted(p.name for p in tmp_path.glob("*.bin")) == ["f0.bin", "f1.bin"]
    finally:
        eng.close()
    assert sorted(data) == ["f0.bin", "f1.bin", "f2.bin"]
