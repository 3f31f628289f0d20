"""2,000 shards of 256 KiB from a loopback nginx: resumable against curl and aria2c.

    python benchmarks/batch.py                    # 5 alternating rounds
    python benchmarks/batch.py --rounds 3 --count 500 --naive

- resumable: ``download_many`` with ``workers=16``, every item with its expected SHA-256.
- ``xargs -P16 -n 50 curl -s --remote-name-all``: keep-alive within each curl, no hashing.
- ``aria2c -j16 -i list``: no hashing.
- ``--naive`` adds what users write today, for scale: a ``ThreadPoolExecutor(16)`` over the
  shards, one shared ``requests.Session``, ``iter_content(1 MiB)`` written to the file and
  hashed, the digest checked.
Every tool writes into an empty directory each round. Targets: <= 1.5x curl, <= 0.35x aria2c.
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

from common import DATA, MiB, parse, record, table
from servers import NginxServer, nginx_available

import resumable

OURS = "resumable download_many(workers=16) + sha256"
CURL = "xargs -P16 -n 50 curl (no hash)"
ARIA2C = "aria2c -j16 -i list (no hash)"
NAIVE = "requests thread pool (16) + sha256"


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
    import resumable.chunks
    import resumable.sources.http  # noqa: F401


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--naive", action="store_true", help="also time a requests thread pool")
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
    out = DATA / "batch-out"

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
        times: dict[str, list[float]] = {name: [] for name in tools}
        order = list(tools)
        for round_ in range(args.rounds):
            for name in order if round_ % 2 == 0 else list(reversed(order)):
                shutil.rmtree(out, ignore_errors=True)
                out.mkdir(parents=True)
                began = time.perf_counter()
                tools[name]()
                times[name].append(time.perf_counter() - began)
                got = len([p for p in out.iterdir() if p.name.startswith("shard-")])
                if got != args.count:
                    raise SystemExit(f"{name} wrote {got} files, not {args.count}")
        shutil.rmtree(out, ignore_errors=True)
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
