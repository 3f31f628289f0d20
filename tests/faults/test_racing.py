"""Racing processes: 8 processes download the same URL to the same destination at once.

Whatever the file lock does, the outcome must be one correct file and eight successes (each
process reports ``downloaded``, ``resumed`` or ``skipped``). Three lock behaviours:

- ``locked``: the normal ``D.partial.lock`` (filelock); one process downloads, the others wait
  and then find the destination complete;
- ``unlocked``: ``ResumableDownloader(locking=False)``;
- ``broken``: a lock that always succeeds at once, as on NFS/Lustre/GPFS mounts where ``flock``
  silently grants everyone (the lock file is created, but nobody ever waits).

Without a working lock, correctness rests on the owner token in the sidecar and on the inode
check at promote (see ``resumable/partial/``); this test is what proves that it does.
The children start together: each imports everything, then waits for a shared start time.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from servers import FaultServer, NginxServer, make_data

import resumable

MiB = 1 << 20
PROCESSES = 8

CHILD = r"""
import json, sys, time
import resumable

url, dest, mode, connections, start = sys.argv[1:6]
if mode == "broken":
    import filelock

    def acquire(self, *args, **kwargs):  # granted at once, to everyone
        open(self.lock_file, "a").close()
        return self

    filelock.FileLock.acquire = acquire
    filelock.FileLock.release = lambda self, *args, **kwargs: None
d = resumable.ResumableDownloader(
    connections=int(connections), segment_threshold=1 << 20, locking=mode != "unlocked"
)
while time.time() < float(start):
    time.sleep(0.001)
try:
    r = d.download(url, dest)
except Exception as exc:
    print(json.dumps({"error": type(exc).__name__, "message": str(exc)}))
    sys.exit(1)
print(json.dumps({"status": r.status, "sha256": r.sha256, "fetched": r.bytes_transferred}))
"""


def race(url: str, dest: Path, mode: str, connections: list[int]) -> list[dict[str, object]]:
    """One child per entry of ``connections`` (its ``connections=`` setting), started at once."""
    start = time.time() + 1.2  # every child has imported resumable and requests by then
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, url, str(dest), mode, str(each), str(start)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for each in connections
    ]
    reports = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert out.strip(), f"a child printed nothing (exit {proc.returncode}): {err[-2000:]}"
        reports.append(json.loads(out.strip().splitlines()[-1]))
    return reports


REPEATS = int(os.environ.get("RESUMABLE_REPEATS", "1"))  # nox -s torture: several races each


@pytest.mark.slow
@pytest.mark.parametrize("run", range(REPEATS))
@pytest.mark.parametrize(
    "connections",
    [[1] * PROCESSES, [4] * PROCESSES, [1, 4] * (PROCESSES // 2)],
    ids=["single", "segmented", "mixed"],  # mixed: single streams racing segmented downloads
)
@pytest.mark.parametrize("mode", ["locked", "unlocked", "broken"])
def test_eight_processes_one_destination(
    make_nginx,  # type: ignore[no-untyped-def]
    tmp_path: Path,
    mode: str,
    connections: list[int],
    run: int,
) -> None:
    nginx: NginxServer = make_nginx(limit_rate="8m")
    data = make_data(6 * MiB, seed=31)  # over one block (4 MiB): the .partial protocol and its lock
    nginx.add("f.bin", data)
    url = nginx.slow_url("f.bin")
    dest = tmp_path / "f.bin"

    reports = race(url, dest, mode, connections)

    failures = [r for r in reports if "error" in r]
    assert failures == [], failures
    assert {r["status"] for r in reports} <= {"downloaded", "resumed", "skipped"}
    assert dest.read_bytes() == data
    assert all(r["sha256"] == hashlib.sha256(data).hexdigest() for r in reports), reports
    leftovers = sorted(p.name for p in tmp_path.iterdir() if p != dest)
    assert leftovers in ([], ["f.bin.partial.lock"]), leftovers
    sent = sum(e.body_bytes_sent for e in nginx.access_log_for("f.bin", min_lines=1))
    fetched = sum(int(r["fetched"]) for r in reports)  # type: ignore[call-overload]
    shape = "/".join(str(c) for c in sorted(set(connections)))
    print(f"{mode}/{shape}: {[r['status'] for r in reports]}, server sent {sent / MiB:.1f}")
    if mode == "locked":
        # The lock saved the work: one process fetched the file, the others skipped it.
        assert sorted(r["status"] for r in reports).count("skipped") == PROCESSES - 1
        assert fetched == len(data)


def test_a_writer_that_took_over_and_died_is_taken_over_again(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    """The other writer claimed the partial (its token in the sidecar), then went quiet: after a
    stall timeout plus the longest backoff, this call takes the partial back and resumes it."""
    data = make_data(8 * MiB, seed=32)
    url = fault_server.add("f.bin", data)
    dest = tmp_path / "f.bin"
    meta = tmp_path / "f.bin.partial.json"
    claimed: list[int] = []

    def a_dead_writer_claims(event: resumable.ProgressEvent) -> None:
        if event.done >= MiB and not claimed:
            record = json.loads(meta.read_text())
            record["owner"] = "a-writer-that-died"
            meta.write_text(json.dumps(record))
            claimed.append(event.done)

    policy = resumable.RetryPolicy(backoff_max=0.2)
    with resumable.ResumableDownloader(
        connections=1,
        locking=False,
        block_size=64 * 1024,
        retry=policy,
        timeouts=resumable.Timeouts(stall=0.5),
    ) as d:
        began = time.monotonic()
        r = d.download(url, dest, progress=a_dead_writer_claims)
        elapsed = time.monotonic() - began
    assert claimed
    assert dest.read_bytes() == data
    assert r.status == "resumed"  # the bytes on disk were kept, not fetched again
    gets = [rec for rec in fault_server.requests_for("f.bin") if rec.method == "GET"]
    assert len(gets) == 2
    assert gets[1].range is not None
    assert elapsed >= 0.7  # it waited for the quiet period before taking over
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]


def test_a_single_stream_partial_with_a_hole_resumes_before_the_hole(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    """The race of single-stream and segmented processes without a lock, made deterministic:
    a single stream's partial (its sidecar records no ranges: the file's length is what it
    wrote) that a segmented writer's stale descriptor extended with a piece further on. The
    length is not what was written: resuming must start before the first hole, or the hole's
    zeros are published (no digest is given here to catch them)."""
    data = make_data(4 * MiB, seed=33)
    url = fault_server.add("f.bin", data)
    dest = tmp_path / "f.bin"
    partial = tmp_path / "f.bin.partial"

    def interrupt(event: resumable.ProgressEvent) -> None:
        if event.kind == "progress" and event.done >= 3 * MiB // 2:
            raise KeyboardInterrupt

    with resumable.ResumableDownloader(connections=1, block_size=256 * 1024) as d:
        with pytest.raises(KeyboardInterrupt):
            d.download(url, dest, progress=interrupt)
        prefix = partial.stat().st_size
        assert 3 * MiB // 2 <= prefix < 3 * MiB
        assert json.loads((tmp_path / "f.bin.partial.json").read_text()).get("ranges") is None
        # The racer's piece: the object's last 256 KiB, written through its own descriptor.
        piece = 256 * 1024
        fd = os.open(partial, os.O_RDWR)
        try:
            os.pwrite(fd, data[-piece:], len(data) - piece)
            hole = os.lseek(fd, 0, os.SEEK_HOLE)
        finally:
            os.close(fd)
        assert partial.stat().st_size == len(data)  # the length now claims the whole object
        if hole >= len(data):
            pytest.skip("this filesystem does not report holes (SEEK_HOLE)")
        result = d.download(url, dest)
    assert dest.read_bytes() == data
    assert result.status == "resumed"
    [ranged] = [r for r in fault_server.requests_for("f.bin") if r.range]
    start = int(ranged.range.removeprefix("bytes=").rstrip("-"))
    assert 0 < start <= prefix  # before the hole, never after it
    assert result.bytes_transferred == len(data) - start
