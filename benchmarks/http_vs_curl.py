"""One large file from a loopback nginx: resumable (with SHA-256) against curl (no hash).

    python benchmarks/http_vs_curl.py                      # 1 GiB, 5 alternating rounds
    python benchmarks/http_vs_curl.py --size-mib 256 --rounds 3 --naive

Each round runs every tool once, alternating the order, each writing a fresh file on the same
disk (the destination is deleted first, as curl -o truncates). resumable runs with one
connection here: this measures the single-stream hot path. Target (issue 9): ratio <= 0.85.
``--naive`` adds what users write today, a requests ``iter_content`` loop, for scale.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from common import DATA, MiB, alternate, make_file, parse, record, table
from servers import NginxServer, nginx_available

import resumable

OURS = "resumable.download(sha256=...)"
CURL = "curl -s -o (no hash)"
NAIVE = "requests iter_content(8192) + sha256"
TARGET = 0.85


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--naive", action="store_true", help="also time a requests loop")
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
        r = resumable.download(url, dest, sha256=digest, connections=1)
        assert r.status == "downloaded"

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

    tools = {OURS: ours, CURL: curl}
    if args.naive:
        tools[NAIVE] = naive
    out = DATA / "out"
    out.mkdir(parents=True, exist_ok=True)
    with NginxServer(DATA / "www") as nginx:
        times = alternate(tools, nginx.url_for(name), out / "file.bin", size, args.rounds)
    title = f"{args.size_mib} MiB from nginx on loopback, {args.rounds} alternating rounds"
    ratio = table(title, times, size, CURL)
    print(f"\nresumable / curl median ratio: {ratio:.2f} (target <= {TARGET})")
    scenario = f"{args.size_mib} MiB, one stream + sha256"
    ours_median = statistics.median(times[OURS])
    record(
        f"{scenario} vs curl",
        ours_median,
        statistics.median(times[CURL]),
        target=TARGET,
        ours_name="download(connections=1)",
        reference_name="curl -s -o",
        runs=times[OURS],
    )
    if args.naive:
        record(
            f"{scenario}: requests iter_content loop (for scale)",
            ours_median,
            statistics.median(times[NAIVE]),
            ours_name="download(connections=1)",
            reference_name="requests iter_content + sha256",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
