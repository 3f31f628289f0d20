"""A batch of 100,000 lazily generated items finishes in bounded memory (peak RSS measured).

The child process downloads tiny objects synthesised from their URLs (a ``MemorySource``
subclass: neither the source nor the generator holds 100k objects), into /dev/shm when it
exists (fsync is cheap there: the batch machinery is what is measured, not the disk). The peak
is the child's ``VmHWM``, not ``ru_maxrss``, which includes the parent's peak (see CHILD). What
grows with the batch is the result itself (one ``DownloadResult`` per file in
``BatchResult.ok``) and the ledger's set of known paths. ``benchmarks/lazy.py`` is the same
measurement with more rounds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ITEMS = int(os.environ.get("RESUMABLE_LAZY_ITEMS", "100000"))
LIMIT_MIB = 200

CHILD = r"""
import hashlib, json, resource, sys, time
import resumable
from resumable.sources import RemoteInfo
from resumable.testing import MemoryBody, MemorySource

count, dest = int(sys.argv[1]), sys.argv[2]
pulled = 0

def peak_kib():
    # VmHWM: this process's own peak. ru_maxrss is not: on Linux it keeps the peak of the
    # memory image replaced by exec, which after a vfork is the parent's (here: pytest's).
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

def data_of(url):
    return hashlib.sha256(url.encode()).digest() * 16  # 512 bytes, made from the URL

class Synthetic(MemorySource):
    def stat(self, url):
        return RemoteInfo(url=url, size=512, etag='"v1"', accept_ranges=True)
    def open(self, url, start=0, end=None, expect=None):
        return MemoryBody(data_of(url), start, self.stat(url))

def items():
    global pulled
    for i in range(count):
        pulled += 1
        url = f"mem://lazy/shard-{i:07d}.bin"
        yield resumable.Item(url, sha256=hashlib.sha256(data_of(url)).hexdigest())

began = time.perf_counter()
with resumable.ResumableDownloader(workers=16, sources={"mem": Synthetic()}) as d:
    result = d.download_many(items(), dest)
print(json.dumps({
    "ok": len(result.ok),
    "failed": len(result.failed),
    "pulled": pulled,
    "rss_mib": peak_kib() / 1024,
    "seconds": time.perf_counter() - began,
}))
"""


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_100k_item_generator_runs_in_bounded_memory(tmp_path: Path) -> None:
    shm = Path("/dev/shm")
    base = shm if shm.is_dir() and os.access(shm, os.W_OK) else tmp_path
    dest = base / f"resumable-lazy-test-{os.getpid()}"
    try:
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, str(ITEMS), str(dest)],
            capture_output=True,
            text=True,
            timeout=580,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        report = json.loads(proc.stdout.strip().splitlines()[-1])
        files = sum(1 for p in dest.iterdir() if p.name.startswith("shard-"))
    finally:
        subprocess.run(["rm", "-rf", str(dest)], check=False)
    print(f"{ITEMS} items: {report}")
    assert report["ok"] == ITEMS
    assert report["failed"] == 0
    assert report["pulled"] == ITEMS
    assert files == ITEMS
    assert report["rss_mib"] <= LIMIT_MIB, report
