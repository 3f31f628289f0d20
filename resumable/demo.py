"""``python -m resumable demo``: the library's promise, shown on a loopback server in seconds.

It generates shards, serves them from 127.0.0.1 (no internet), and downloads them the way a
training script would: in parallel, with progress bars, verified against a SHA-256 list. Along
the way one transfer is interrupted (as Ctrl-C or a killed job would) and then resumed, and the
server cuts one connection midway, which the downloader retries from where it stopped.
"""

from __future__ import annotations

import hashlib
import random
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TextIO

from . import DownloadResult, ProgressEvent, ResumableDownloader, RetryPolicy, TqdmProgress
from ._demo_server import DemoServer

__all__ = ["run_demo"]

MiB = 1 << 20


class _Interrupted(Exception):
    """Raised from the progress callback to interrupt one download, as Ctrl-C would."""


def run_demo(
    dest: Path | None = None,
    *,
    shards: int = 8,
    shard_mib: int = 16,
    workers: int = 4,
    out: TextIO = sys.stdout,
) -> list[DownloadResult]:
    """Run the demo; return the final results (one per shard, all verified)."""
    rng = random.Random(2026)
    names = [f"shard-{i:06d}.tar" for i in range(shards)]
    files = {name: rng.randbytes(shard_mib * MiB) for name in names}
    sums = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    victim, flaky = names[min(3, shards - 1)], names[min(5, shards - 1)]

    with tempfile.TemporaryDirectory(prefix="resumable-demo-") as tmp:
        target = Path(dest) if dest else Path(tmp)
        with (
            DemoServer(files, cut=flaky) as server,
            ResumableDownloader(workers=workers, retry=RetryPolicy(backoff=0.2)) as d,
        ):

            def say(text: str) -> None:
                out.write(text + "\n")
                out.flush()

            say(f"Serving {shards} generated shards of {shard_mib} MiB at {server.url} (loopback)")
            say(f"Downloading into {target}\n")

            say(f"1. Start {victim} and interrupt it at 40% (like Ctrl-C or a killed job):")

            def interrupt(event: ProgressEvent) -> None:
                if event.done >= 0.4 * shard_mib * MiB:
                    raise _Interrupted

            try:
                d.download(f"{server.url}/{victim}", target / victim, progress=interrupt)
            except _Interrupted:
                kept = (target / f"{victim}.partial").stat().st_size
                say(f"   interrupted; {kept / MiB:.1f} MiB kept in {victim}.partial\n")

            say(f"2. Download all {shards} shards, {workers} at a time, verifying SHA-256.")
            say(f"   {victim} resumes; the server cuts {flaky} midway and it is retried:")
            with TqdmProgress(file=out, total_files=shards) as bars:

                def fetch(name: str) -> DownloadResult:
                    return d.download(
                        f"{server.url}/{name}", target / name, sha256=sums[name], progress=bars
                    )

                with ThreadPoolExecutor(workers) as pool:
                    results = list(pool.map(fetch, names))
            _table(results, say)

            say("\n3. Run it again: every file is already complete and verified, so nothing is")
            say("   fetched:")
            again = [
                d.download(f"{server.url}/{name}", target / name, sha256=sums[name])
                for name in names
            ]
            skipped = sum(r.status == "skipped" for r in again)
            fetched = sum(r.bytes_transferred for r in again)
            say(f"   {skipped} of {shards} skipped, {fetched} bytes fetched")
            say(f"\nServer cut {server.cuts} connection(s) midway; every file matches its SHA-256.")
    return results


def _table(results: list[DownloadResult], say: Callable[[str], None]) -> None:
    say("")
    say(f"   {'file':<18} {'status':<11} {'size':>9} {'fetched':>9}  sha256")
    for r in results:
        say(
            f"   {r.path.name:<18} {r.status:<11} {r.size / MiB:>5.1f} MiB "
            f"{r.bytes_transferred / MiB:>5.1f} MiB  {r.sha256[:16]}... ok"
        )
