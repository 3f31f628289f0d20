"""One large file from a loopback nginx: resumable (with SHA-256) against curl (no hash).

    python benchmarks/http_vs_curl.py                      # 1 GiB, 5 alternating rounds
    python benchmarks/http_vs_curl.py --size-mib 256 --rounds 3 --naive --floor

What a user runs: ``resumable.download(url, dest, sha256=...)`` with the defaults (segmented
over several connections where the server takes ranges), and the same with
``connections=1`` (the single-stream hot path). Each round runs every tool once, alternating
the order, each into a directory that never held a file, after an untimed ``os.sync()`` (no
tool pays for the writeback another left behind). Targets (issue 19): the default call <= 1.0
x curl, and one stream close to the bare loop.

``--naive`` adds what users write today, a requests ``iter_content`` loop; ``--floor`` the
bare loop (``http.client`` ``readinto`` 4 MiB into one buffer, SHA-256, ``os.write``), for
scale.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

from common import DATA, MiB, alternate, make_file, parse, record, table
from servers import NginxServer, nginx_available

import resumable

OURS = "resumable.download(sha256=...) defaults"
ONE = "resumable.download(sha256=..., connections=1)"
CURL = "curl -s -o (no hash)"
NAIVE = "requests iter_content(8192) + sha256"
FLOOR = "http.client readinto 4 MiB + sha256 + write"
TARGET = 1.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--naive", action="store_true", help="also time a requests loop")
    parser.add_argument("--floor", action="store_true", help="also time the bare loop")
    args = parse(parser, size_mib=8)
    if not nginx_available() or shutil.which("curl") is None:
        print("needs nginx and curl (run .ci/install-system-deps)", file=sys.stderr)
        return 2

    size = args.size_mib * MiB
    name = "big.bin" if args.size_mib == 1024 else f"m{args.size_mib}.bin"
    digest = make_file(DATA / "www" / name, size)

    def curl(url: str, dest: Path) -> None:
        subprocess.run(["curl", "-s", "-o", str(dest), url], check=True)

    def ours(url: str, dest: Path) -> None:
        r = resumable.download(url, dest, sha256=digest)
        assert r.status == "downloaded"

    def one(url: str, dest: Path) -> None:
        r = resumable.download(url, dest, sha256=digest, connections=1)
        assert r.status == "downloaded"

    def floor(url: str, dest: Path) -> None:
        """The least one Python thread can do: readinto one reused buffer, hash, write."""
        parts = urlsplit(url)
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=60)
        conn.request("GET", parts.path)
        response = conn.getresponse()
        h = hashlib.sha256()
        buffer = bytearray(4 * MiB)
        view = memoryview(buffer)
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            while got := response.readinto(view):
                h.update(view[:got])
                os.write(fd, view[:got])
        finally:
            os.close(fd)
            conn.close()
        assert h.hexdigest() == digest

    def naive(url: str, dest: Path) -> None:
        """What users write today: requests + iter_content(8192) + hashlib, one thread."""
        import requests

        h = hashlib.sha256()
        with requests.get(url, stream=True, timeout=60) as response, open(dest, "wb") as f:
            response.raise_for_status()
            for chunk in response.iter_content(8192):
                f.write(chunk)
                h.update(chunk)
        assert h.hexdigest() == digest

    tools = {OURS: ours, ONE: one, CURL: curl}
    if args.naive:
        tools[NAIVE] = naive
    if args.floor:
        tools[FLOOR] = floor
    out = DATA / "out"
    with NginxServer(DATA / "www") as nginx:
        times = alternate(tools, nginx.url_for(name), out, size, args.rounds)
    title = f"{args.size_mib} MiB from nginx on loopback, {args.rounds} alternating rounds"
    ratio = table(title, times, size, CURL)
    print(f"\nresumable / curl median ratio: {ratio:.2f} (target <= {TARGET})")
    curl_median = statistics.median(times[CURL])
    record(
        f"{args.size_mib} MiB, default download + sha256 vs curl",
        statistics.median(times[OURS]),
        curl_median,
        target=TARGET,
        ours_name="download(sha256=)",
        reference_name="curl -s -o",
        runs=times[OURS],
    )
    one_median = statistics.median(times[ONE])
    record(
        f"{args.size_mib} MiB, one stream + sha256 vs curl",
        one_median,
        curl_median,
        target=TARGET,
        ours_name="download(connections=1)",
        reference_name="curl -s -o",
        runs=times[ONE],
    )
    if args.floor:
        record(
            f"{args.size_mib} MiB, one stream + sha256 vs the bare loop",
            one_median,
            statistics.median(times[FLOOR]),
            ours_name="download(connections=1)",
            reference_name="http.client readinto + sha256 + write",
        )
    if args.naive:
        record(
            f"{args.size_mib} MiB, one stream: requests iter_content loop (for scale)",
            one_median,
            statistics.median(times[NAIVE]),
            ours_name="download(connections=1)",
            reference_name="requests iter_content + sha256",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
