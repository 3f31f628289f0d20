"""Racing processes: 8 processes download the same URL to the same destination at once.

Whatever the file lock does, the outcome must be one correct file and eight successes (each
process reports ``downloaded``, ``resumed`` or ``skipped``). Three lock behaviours:

- ``locked``: the normal ``D.partial.lock`` (filelock); one process downloads, the others wait
  and then find the destination complete;
- ``unlocked``: ``ResumableDownloader(locking=False)``;
- ``broken``: a lock that always succeeds at once, as on NFS/Lustre/GPFS mounts where ``flock``
  silently grants everyone (the lock file is created, but nobody ever waits).

Without a working lock, correctness rests on the owner token in the sidecar and on the inode
check at promote (see ``resumable/partial.py``); this test is what proves that it does.
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
from servers import NginxServer, make_data

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


def race(url: str, dest: Path, mode: str, connections: int) -> list[dict[str, object]]:
    start = time.time() + 1.2  # every child has imported resumable and requests by then
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, url, str(dest), mode, str(connections), str(start)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
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
@pytest.mark.parametrize("connections", [1, 4], ids=["single", "segmented"])
@pytest.mark.parametrize("mode", ["locked", "unlocked", "broken"])
def test_eight_processes_one_destination(
    make_nginx,  # type: ignore[no-untyped-def]
    tmp_path: Path,
    mode: str,
    connections: int,
    run: int,
) -> None:
    nginx: NginxServer = make_nginx(limit_rate="8m")
    data = make_data(4 * MiB, seed=31)
    nginx.add("f.bin", data)
    url = nginx.slow_url("f.bin")
    dest = tmp_path / "f.bin"

    reports = race(url, dest, mode, connections)

    failures = [r for r in reports if "error" in r]
    assert failures == [], failures
    assert {r["status"] for r in reports} <= {"downloaded", "resumed", "skipped"}
    assert all(r["sha256"] == hashlib.sha256(data).hexdigest() for r in reports)
    assert dest.read_bytes() == data
    leftovers = sorted(p.name for p in tmp_path.iterdir() if p != dest)
    assert leftovers in ([], ["f.bin.partial.lock"]), leftovers
    sent = sum(e.body_bytes_sent for e in nginx.access_log_for("f.bin", min_lines=1))
    fetched = sum(int(r["fetched"]) for r in reports)  # type: ignore[call-overload]
    print(f"{mode}/{connections}: {[r['status'] for r in reports]}, server sent {sent / MiB:.1f}")
    if mode == "locked":
        # The lock saved the work: one process fetched the file, the others skipped it.
        assert sorted(r["status"] for r in reports).count("skipped") == PROCESSES - 1
        assert fetched == len(data)
