"""Peak memory of a lazy batch: ``download_many`` over a generator of 100,000 items.

    python benchmarks/lazy.py                        # 100,000 items, 3 rounds
    python benchmarks/lazy.py --items 2000 --rounds 1

A child process runs ``ResumableDownloader(workers=16).download_many(generator, dest_dir)``
where the generator yields ``Item(url, sha256=...)`` for ``mem://bench/obj-NNNNNN.bin``. The
objects are tiny (``--object-size``, 1 KiB) and synthesised from their URL by a
``MemorySource`` subclass, so neither the source nor the generator holds 100k objects: the
memory measured is the batch machinery's (job queue, ledger, results). The destination is on
/dev/shm when it exists (fsync there is cheap, so the disk does not dominate). The child prints
its peak RSS (``VmHWM``), the batch's wall time and items/s. Target: peak RSS <= 200 MiB.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from common import DATA, parse, record

import resumable
from resumable.sources import RemoteInfo
from resumable.testing import MemoryBody, MemorySource

TARGET_MIB = 200


def synthesise(url: str, size: int) -> bytes:
    """The bytes of ``url``: its SHA-256 repeated to ``size`` (deterministic, nothing stored)."""
    seed = hashlib.sha256(url.encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


class SyntheticSource(MemorySource):
    """A MemorySource whose every ``mem://`` URL exists, its bytes made from the URL on demand."""

    def __init__(self, object_size: int) -> None:
        super().__init__()
        self.object_size = object_size

    def stat(self, url: str) -> RemoteInfo:
        data = synthesise(url, self.object_size)
        digest = hashlib.md5(data).hexdigest()
        return RemoteInfo(
            url=url,
            size=len(data),
            etag=f'"{digest}-1"',
            version="1",
            checksums={"md5": digest},
            accept_ranges=True,
        )

    def open(
        self, url: str, start: int = 0, end: int | None = None, expect: RemoteInfo | None = None
    ) -> MemoryBody:
        data = synthesise(url, self.object_size)
        if end is not None:
            data = data[:end]
        return MemoryBody(data, min(start, len(data)), self.stat(url))


def items(count: int, object_size: int) -> Iterator[resumable.Item]:
    for i in range(count):
        url = f"mem://bench/obj-{i:06d}.bin"
        digest = hashlib.sha256(synthesise(url, object_size)).hexdigest()
        yield resumable.Item(url, sha256=digest)


def child(count: int, object_size: int, dest: Path, workers: int) -> None:
    """Run the batch and print one JSON line: peak RSS, seconds, items/s."""
    source = SyntheticSource(object_size)
    began = time.perf_counter()
    with resumable.ResumableDownloader(workers=workers, sources={"mem": source}) as d:
        result = d.download_many(items(count, object_size), dest)
    seconds = time.perf_counter() - began
    result.raise_for_errors()
    if len(result.ok) != count:
        raise SystemExit(f"{len(result.ok)} items done, not {count}")
    rss_mib = _peak_kib() / 1024
    print(json.dumps({"rss_mib": rss_mib, "seconds": seconds, "items_per_s": count / seconds}))


def _peak_kib() -> int:
    """This process's own peak RSS (VmHWM). Not ``ru_maxrss``: on Linux it also keeps the peak
    of the memory image that exec replaced, which after a vfork is the parent's."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def scratch() -> Path:
    shm = Path("/dev/shm")
    base = shm if shm.is_dir() and os.access(shm, os.W_OK) else DATA
    return base / f"resumable-lazy-{os.getpid()}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--object-size", type=int, default=1024, help="bytes per object")
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)  # dest dir, in the child
    args = parse(parser, items=500)
    if args.child is not None:
        child(args.items, args.object_size, args.child, args.workers)
        return 0

    runs = []
    for _ in range(args.rounds):
        dest = scratch()
        shutil.rmtree(dest, ignore_errors=True)
        try:
            proc = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--items",
                    str(args.items),
                    "--object-size",
                    str(args.object_size),
                    "--workers",
                    str(args.workers),
                    "--child",
                    str(dest),
                ],
                check=True,
                capture_output=True,
                text=True,
            )
            files = sum(1 for p in dest.iterdir() if p.name.startswith("obj-"))
            if files != args.items:
                raise SystemExit(f"the batch left {files} files, not {args.items}")
        finally:
            shutil.rmtree(dest, ignore_errors=True)  # untimed
        runs.append(json.loads(proc.stdout.splitlines()[-1]))

    rss = [r["rss_mib"] for r in runs]
    secs = [r["seconds"] for r in runs]
    rates = [r["items_per_s"] for r in runs]
    print(
        f"\n{args.items} lazy items of {args.object_size} B, workers={args.workers}, "
        f"dest on {scratch().parent}"
    )
    print(f"{'':<14} {'median':>9}  runs")
    for label, values, spec in (
        ("peak RSS MiB", rss, ".0f"),
        ("seconds", secs, ".2f"),
        ("items/s", rates, ".0f"),
    ):
        text = " ".join(format(v, spec) for v in values)
        print(f"{label:<14} {format(statistics.median(values), spec):>9}  {text}")
    print(f"\npeak RSS median {statistics.median(rss):.0f} MiB (target <= {TARGET_MIB})")
    record(
        f"peak RSS, lazy batch of {args.items:,} items",
        statistics.median(rss),
        target=TARGET_MIB,
        target_text=f"<= {TARGET_MIB} MiB",
        on="value",
        unit="MiB",
        ours_name="download_many(generator)",
        seconds=statistics.median(secs),
        items_per_s=statistics.median(rates),
        runs=rss,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
