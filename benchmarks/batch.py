"""2,000 shards of 256 KiB from a loopback nginx: resumable against curl and aria2c.

    python benchmarks/batch.py                    # 5 alternating rounds
    python benchmarks/batch.py --rounds 3 --count 500 --naive

- resumable: ``download_many`` with ``workers=16``, every item with its expected SHA-256.
- ``xargs -P16 -n 50 curl -s --remote-name-all``: keep-alive within each curl, no hashing.
- ``aria2c -j16 -i list``: no hashing.
- ``--naive`` adds what users write today, for scale: a ``ThreadPoolExecutor(16)`` over the
  shards, one shared ``requests.Session``, ``iter_content(1 MiB)`` written to the file and
  hashed, the digest checked.
- ``--floor`` adds the least a Python thread pool can do, for scale (the issue's "hand-written
  ``http.client`` pool"): 16 threads, one keep-alive ``http.client`` connection each, the body
  read into one buffer, hashed, written to a temporary file, fsynced and renamed. No ledger,
  no retries, no progress, no checks.

Every timed run writes into a directory of its own that has never held files, and all of them
are deleted at the end, not between runs. On a filesystem without a journal (these VMs' ext4),
the inode allocator skips inodes freed in the last minutes (``recently_deleted``), scanning
them one by one: deleting the previous run's 2,000 files made each next run's file creations
slower, more with every round (curl: 1.0 s, then 1.1, 1.35, 1.7, 2.4 s), and it slowed the
tools that create files fastest the most. Targets: <= 1.5x curl, <= 0.35x aria2c.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

from common import DATA, MiB, parse, record, table
from servers import NginxServer, nginx_available

import resumable

OURS = "resumable download_many(workers=16) + sha256"
CURL = "xargs -P16 -n 50 curl (no hash)"
ARIA2C = "aria2c -j16 -i list (no hash)"
NAIVE = "requests thread pool (16) + sha256"
FLOOR = "http.client thread pool (16) + sha256"


def make_shards(root: Path, count: int, size: int) -> dict[str, str]:
    """``count`` random shards (kept between runs); return ``{name: sha256}``."""
    root.mkdir(parents=True, exist_ok=True)
    sums = {}
    for i in range(count):
        path = root / f"shard-{i:06d}.tar"
        if not path.exists() or path.stat().st_size != size:
            path.write_bytes(hashlib.sha256(str(i).encode()).digest() * (size // 32))
        sums[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return sums


def _warm(_: int) -> None:
    """Import the library in a pool's process (before the timed runs)."""
    import resumable.batch.chunks
    import resumable.sources.http  # noqa: F401


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--naive", action="store_true", help="also time a requests thread pool")
    parser.add_argument(
        "--floor", action="store_true", help="also time a bare http.client thread pool"
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=0,
        help="also time download_many(executor=ProcessPoolExecutor(N)) (for scale)",
    )
    args = parse(parser, count=20)
    if not nginx_available() or not shutil.which("curl") or not shutil.which("aria2c"):
        print("needs nginx, curl and aria2c (run .ci/install-system-deps)", file=sys.stderr)
        return 2
    size = 256 * 1024
    root = DATA / "shards"
    sums = make_shards(root, args.count, size)
    names = sorted(sums)
    runs = DATA / "batch-out"
    out = runs  # each timed run's own directory, set before the run

    with NginxServer(root) as nginx:
        urls = [nginx.url_for(name) for name in names]
        listing = DATA / "batch-urls.txt"
        listing.write_text("\n".join(urls) + "\n")

        def ours() -> None:
            items = [resumable.Item(u, sha256=sums[n]) for u, n in zip(urls, names, strict=True)]
            with resumable.ResumableDownloader(workers=16) as d:
                d.download_many(items, out).raise_for_errors()

        def curl() -> None:
            subprocess.run(
                f"xargs -P16 -n 50 curl -s --remote-name-all < {listing}",
                shell=True,
                check=True,
                cwd=out,
            )

        def aria2c() -> None:
            subprocess.run(
                [
                    "aria2c",
                    "-q",
                    "-j16",
                    "-i",
                    str(listing),
                    "-d",
                    str(out),
                    "--allow-overwrite=true",
                    "--auto-file-renaming=false",
                ],
                check=True,
            )

        def naive() -> None:
            """What users write today: 16 threads, one shared Session, iter_content + sha256."""
            import requests

            def fetch(session: requests.Session, url: str, name: str) -> None:
                h = hashlib.sha256()
                with session.get(url, stream=True, timeout=60) as response:
                    response.raise_for_status()
                    with open(out / name, "wb") as f:
                        for chunk in response.iter_content(MiB):
                            f.write(chunk)
                            h.update(chunk)
                if h.hexdigest() != sums[name]:
                    raise SystemExit(f"requests pool: {name} has the wrong SHA-256")

            with requests.Session() as session:
                # requests' default pool keeps 10 connections per host: size it for 16 threads
                adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=16)
                session.mount("http://", adapter)
                with ThreadPoolExecutor(16) as pool:
                    pairs = zip(urls, names, strict=True)
                    for done in [pool.submit(fetch, session, u, n) for u, n in pairs]:
                        done.result()

        def floor() -> None:
            """16 threads, one http.client connection each, read + sha256 + write + fsync."""
            local = threading.local()
            host, port = urlsplit(urls[0]).hostname, urlsplit(urls[0]).port

            def fetch(name: str) -> None:
                conn = getattr(local, "conn", None)
                if conn is None:
                    conn = local.conn = http.client.HTTPConnection(host, port, timeout=60)
                conn.request("GET", "/" + name)
                response = conn.getresponse()
                body = bytearray(int(response.getheader("Content-Length", "0")))
                view, got = memoryview(body), 0
                while got < len(body):
                    got += response.readinto(view[got:])
                if hashlib.sha256(body).hexdigest() != sums[name]:
                    raise SystemExit(f"http.client pool: {name} has the wrong SHA-256")
                temporary = out / f".{name}.tmp"
                fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                try:
                    os.write(fd, body)
                    os.fsync(fd)
                finally:
                    os.close(fd)
                os.rename(temporary, out / name)

            with ThreadPoolExecutor(16) as pool:
                list(pool.map(fetch, names))

        def fanned() -> None:
            items = [resumable.Item(u, sha256=sums[n]) for u, n in zip(urls, names, strict=True)]
            with resumable.ResumableDownloader(workers=8) as d:
                d.download_many(items, out, executor=processes).raise_for_errors()

        tools = {OURS: ours, CURL: curl, ARIA2C: aria2c}
        processes = None
        if args.processes:
            # One process per core, started (and resumable imported in each) before timing.
            context = multiprocessing.get_context("forkserver")
            processes = ProcessPoolExecutor(args.processes, mp_context=context)
            list(processes.map(_warm, range(args.processes * 2)))
            tools[f"resumable workers=8 x {args.processes} processes + sha256"] = fanned
        if args.naive:
            tools[NAIVE] = naive
        if args.floor:
            tools[FLOOR] = floor
        times: dict[str, list[float]] = {name: [] for name in tools}
        order = list(tools)
        shutil.rmtree(runs, ignore_errors=True)  # an interrupted earlier run's (untimed)
        try:
            for round_ in range(args.rounds):
                for number, name in enumerate(order if round_ % 2 == 0 else order[::-1]):
                    out = runs / f"{round_}-{number}"  # never held files (see the docstring)
                    out.mkdir(parents=True)
                    os.sync()  # untimed: no tool pays for the writeback another left behind
                    began = time.perf_counter()
                    tools[name]()
                    times[name].append(time.perf_counter() - began)
                    got = len([p for p in out.iterdir() if p.name.startswith("shard-")])
                    if got != args.count:
                        raise SystemExit(f"{name} wrote {got} files, not {args.count}")
        finally:
            shutil.rmtree(runs, ignore_errors=True)
            if processes is not None:
                processes.shutdown()

    total = args.count * size
    title = f"{args.count} x 256 KiB shards ({total / MiB:.0f} MiB) from nginx on loopback"
    vs_curl = table(title, times, total, CURL)
    ours_median = statistics.median(times[OURS])
    curl_median = statistics.median(times[CURL])
    aria_median = statistics.median(times[ARIA2C])
    vs_aria = ours_median / aria_median
    print(f"\nresumable / curl: {vs_curl:.2f} (target <= 1.5); / aria2c: {vs_aria:.2f} (<= 0.35)")
    scenario = f"{args.count:,} x 256 KiB shards + sha256"
    shared = {"ours_name": "download_many(workers=16)", "runs": times[OURS]}
    record(
        f"{scenario} vs curl",
        ours_median,
        curl_median,
        target=1.5,
        reference_name="xargs -P16 curl",
        **shared,
    )
    record(
        f"{scenario} vs aria2c",
        ours_median,
        aria_median,
        target=0.35,
        reference_name="aria2c -j16",
        **shared,
    )
    if args.naive:
        record(
            f"{scenario}: requests thread pool (for scale)",
            ours_median,
            statistics.median(times[NAIVE]),
            reference_name="requests pool(16) + sha256",
            **shared,
        )
    if args.floor:
        record(
            f"{scenario}: a bare http.client thread pool (for scale)",
            ours_median,
            statistics.median(times[FLOOR]),
            reference_name="http.client pool(16) + sha256",
            **shared,
        )
        floor_ratio = statistics.median(times[FLOOR]) / curl_median
        print(f"http.client pool / curl: {floor_ratio:.2f}")
    if args.processes:
        fanned_name = f"resumable workers=8 x {args.processes} processes + sha256"
        fanned_median = statistics.median(times[fanned_name])
        print(f"{args.processes} processes / curl: {fanned_median / curl_median:.2f}")
        record(
            f"{scenario}: {args.processes} processes (executor=) vs curl",
            fanned_median,
            curl_median,
            target=1.5,
            reference_name="xargs -P16 curl",
            ours_name=f"download_many(workers=8, executor=ProcessPoolExecutor({args.processes}))",
            runs=times[fanned_name],
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
