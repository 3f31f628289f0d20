"""One large file from a loopback nginx: resumable (with SHA-256) against curl (no hash).

    nox -s bench                      # 1 GiB, 5 alternating rounds
    python benchmarks/http_vs_curl.py --size-mib 256 --rounds 3 --naive

Each round runs every tool once, in alternating order, each writing a fresh file on the same
disk (the destination is deleted before each run, as curl -o truncates). The table shows the
median wall time of each tool, its throughput, and its ratio to curl's median. These 2-core
machines are noisy: trust medians over several rounds, not single runs.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from servers import NginxServer, nginx_available  # noqa: E402

import resumable  # noqa: E402

MiB = 1 << 20


def make_file(path: Path, size: int) -> str:
    """Write ``size`` random bytes (reused across runs when already there); return its SHA-256."""
    digest = hashlib.sha256()
    if path.exists() and path.stat().st_size == size:
        with open(path, "rb") as f:
            while block := f.read(8 * MiB):
                digest.update(block)
        return digest.hexdigest()
    with open(path, "wb") as f:
        for _ in range(size // MiB):
            block = os.urandom(MiB)
            digest.update(block)
            f.write(block)
        rest = os.urandom(size % MiB)
        digest.update(rest)
        f.write(rest)
    return digest.hexdigest()


def remove(path: Path) -> None:
    for p in (path, path.with_name(path.name + ".partial")):
        if p.exists():
            p.unlink()


def run_curl(url: str, dest: Path, digest: str) -> None:
    subprocess.run(["curl", "-s", "-o", str(dest), url], check=True)


def run_resumable(url: str, dest: Path, digest: str) -> None:
    r = resumable.download(url, dest, sha256=digest)
    assert r.status == "downloaded"


def run_naive(url: str, dest: Path, digest: str) -> None:
    """What users write today: requests + iter_content(8192) + hashlib, in one thread."""
    import requests

    h = hashlib.sha256()
    with requests.get(url, stream=True, timeout=60) as response, open(dest, "wb") as f:
        response.raise_for_status()
        for chunk in response.iter_content(8192):
            f.write(chunk)
            h.update(chunk)
    assert h.hexdigest() == digest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--naive", action="store_true", help="also time a requests loop")
    parser.add_argument("--data-dir", type=Path, default=HERE / ".data")
    args = parser.parse_args()
    if not nginx_available() or shutil.which("curl") is None:
        print("needs nginx and curl (run .ci/install-system-deps)", file=sys.stderr)
        return 2

    args.data_dir.mkdir(parents=True, exist_ok=True)
    root = args.data_dir / "www"
    root.mkdir(exist_ok=True)
    size = args.size_mib * MiB
    digest = make_file(root / "big.bin", size)
    tools: dict[str, Callable[[str, Path, str], None]] = {
        "curl -s -o (no hash)": run_curl,
        "resumable.download(sha256=...)": run_resumable,
    }
    if args.naive:
        tools["requests iter_content(8192) + sha256"] = run_naive
    times: dict[str, list[float]] = {name: [] for name in tools}

    with NginxServer(root) as nginx, tempfile.TemporaryDirectory(dir=args.data_dir) as out:
        url = nginx.url_for("big.bin")
        dest = Path(out) / "big.bin"
        order = list(tools)
        for round_ in range(args.rounds):
            for name in order if round_ % 2 == 0 else reversed(order):
                remove(dest)
                began = time.perf_counter()
                tools[name](url, dest, digest)
                times[name].append(time.perf_counter() - began)
                if dest.stat().st_size != size:
                    raise SystemExit(f"{name} wrote {dest.stat().st_size} bytes, not {size}")
            remove(dest)

    reference = statistics.median(times["curl -s -o (no hash)"])
    print(f"\n{args.size_mib} MiB from nginx on loopback, {args.rounds} alternating rounds")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"{'tool':<40} {'median s':>9} {'MB/s':>7} {'ratio':>6}  runs")
    for name, runs in times.items():
        med = statistics.median(runs)
        print(
            f"{name:<40} {med:>9.2f} {size / med / 1e6:>7.0f} {med / reference:>6.2f}  "
            + " ".join(f"{t:.2f}" for t in runs)
        )
    ratio = statistics.median(times["resumable.download(sha256=...)"]) / reference
    print(f"\nresumable / curl median ratio: {ratio:.2f} (target <= 1.0)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
