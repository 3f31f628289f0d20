"""Would a native HTTP engine beat the Python floor on many small files? (issue 19 item 2)

    python benchmarks/native.py                 # 2,000 x 256 KiB, 5 alternating rounds
    python benchmarks/native.py --count 500 --rounds 3

The same shards as ``batch.py``, fetched by 16 threads that each read a whole answer, check its
SHA-256, write it to a new file, fsync and rename it (what resumable must do per file, without
its ledger, retries or progress), through three engines in the same run:

- ``http.client``: one keep-alive connection per thread (the Python floor of ``batch.py``);
- ``obstore`` (Rust ``object_store``, releases the GIL while it fetches), if installed;
- ``pycurl``, one easy handle per thread, reused across files (keep-alive), if installed.

and ``resumable`` itself, for scale. Neither library is a dependency: this decides whether one
is worth adopting as an optional extra (only if it wins in the same run; see
docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import io
import os
import shutil
import statistics
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

from batch import make_shards
from common import DATA, MiB, parse, record, table
from servers import NginxServer, nginx_available

import resumable

FLOOR = "http.client x16 + sha256 + fsync"
OBSTORE = "obstore x16 + sha256 + fsync"
PYCURL = "pycurl x16 + sha256 + fsync"
OURS = "resumable download_many(workers=16)"


def publish(out: Path, name: str, body: bytes | bytearray | memoryview, digest: str) -> None:
    """Check, write, fsync and rename: what every engine does with an answer."""
    if hashlib.sha256(body).hexdigest() != digest:
        raise SystemExit(f"{name}: wrong SHA-256")
    temporary = out / f".{name}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, body)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(temporary, out / name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--count", type=int, default=2000)
    args = parse(parser, count=20)
    if not nginx_available():
        print("needs nginx (run .ci/install-system-deps)", file=sys.stderr)
        return 2
    root = DATA / "shards"
    sums = make_shards(root, args.count, 256 * 1024)
    names = sorted(sums)
    runs = DATA / "native-out"
    out = runs

    with NginxServer(root) as nginx:
        base = nginx.url_for("")
        host, port = urlsplit(base).hostname or "", urlsplit(base).port

        def pool(fetch: Callable[[str], None]) -> None:
            with ThreadPoolExecutor(16) as threads:
                list(threads.map(fetch, names))

        def floor() -> None:
            local = threading.local()

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
                publish(out, name, body, sums[name])

            pool(fetch)

        def ours() -> None:
            items = [resumable.Item(base + n, sha256=sums[n]) for n in names]
            with resumable.ResumableDownloader(workers=16) as d:
                d.download_many(items, out).raise_for_errors()

        tools: dict[str, Callable[[], None]] = {FLOOR: floor, OURS: ours}
        try:
            import obstore
            from obstore.store import HTTPStore

            store = HTTPStore.from_url(base, client_options={"allow_http": True})

            def with_obstore() -> None:
                def fetch(name: str) -> None:
                    body = obstore.get(store, name).bytes()
                    publish(out, name, memoryview(body), sums[name])

                pool(fetch)

            tools[OBSTORE] = with_obstore
        except ImportError:
            print("obstore is not installed: skipped", file=sys.stderr)
        try:
            import pycurl

            def with_pycurl() -> None:
                local = threading.local()

                def fetch(name: str) -> None:
                    handle = getattr(local, "handle", None)
                    if handle is None:
                        handle = local.handle = pycurl.Curl()
                    buffer = io.BytesIO()
                    handle.setopt(pycurl.URL, base + name)
                    handle.setopt(pycurl.WRITEDATA, buffer)
                    handle.perform()
                    publish(out, name, buffer.getbuffer(), sums[name])

                pool(fetch)

            tools[PYCURL] = with_pycurl
        except ImportError:
            print("pycurl is not installed: skipped", file=sys.stderr)

        times: dict[str, list[float]] = {name: [] for name in tools}
        order = list(tools)
        shutil.rmtree(runs, ignore_errors=True)
        try:
            for round_ in range(args.rounds):
                for number, name in enumerate(order if round_ % 2 == 0 else order[::-1]):
                    out = runs / f"{round_}-{number}"  # never held files (see batch.py)
                    out.mkdir(parents=True)
                    os.sync()
                    began = time.perf_counter()
                    tools[name]()
                    times[name].append(time.perf_counter() - began)
                    got = len([p for p in out.iterdir() if p.name.startswith("shard-")])
                    if got != args.count:
                        raise SystemExit(f"{name} wrote {got} files, not {args.count}")
        finally:
            shutil.rmtree(runs, ignore_errors=True)

    total = args.count * 256 * 1024
    title = f"{args.count} x 256 KiB from nginx on loopback: native engines vs the Python floor"
    table(title, times, total, FLOOR)
    floor_median = statistics.median(times[FLOOR])
    for name in tools:
        if name != FLOOR:
            record(
                f"{args.count:,} x 256 KiB: {name.split(' ')[0]} vs the http.client floor",
                statistics.median(times[name]),
                floor_median,
                ours_name=name,
                reference_name=FLOOR,
                runs=times[name],
            )
    print(f"\n(MiB moved per run: {total / MiB:.0f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
