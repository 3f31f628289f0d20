"""Processes that split a batch without talking: 4 processes against 1, and what claims cost.

    python benchmarks/cooperation.py                  # 3 rounds of each
    python benchmarks/cooperation.py --rounds 5 --count 64

- **Cooperation.** ``--count`` files of 1 MiB on an nginx throttled to 512 kB/s per connection
  (nginx sends the first second's worth at once: about 1 s per file). One process
  (``download_many``, ``workers=4``) against four processes started together on the same items
  and ``dest_dir``, each with ``workers=4``: the four split the files through their claims
  (``dest_dir/.resumable/claims``). The time of the four is that of the last to return (each
  returns only once every item is complete). nginx's access log must show exactly one GET per
  file in every four-process round. Target: at least 3x faster.
- **Overhead.** One process, ``--small`` files of 256 KiB from an unthrottled nginx,
  ``workers=16``, each with its SHA-256: claims on (the default) against claims off
  (``locking=False``), in fresh directories, alternating. A claim is one exclusive create, a
  write of its ``done`` record in place, and a close per item. Shown for scale.

Every timed run starts in a directory that never held files (see batch.py on why).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from common import DATA, parse, record
from servers import NginxServer, nginx_available

import resumable

MiB = 1 << 20
KiB = 1 << 10

CHILD = r"""
import json, os, sys, time
import resumable
urls, dest, go = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
while not os.path.exists(go):
    time.sleep(0.002)
began = time.monotonic()
with resumable.ResumableDownloader(workers=4) as d:
    result = d.download_many(urls, dest)
print(json.dumps({"seconds": time.monotonic() - began, "ok": len(result.ok),
                  "failed": len(result.failed)}))
"""


def together(urls: list[str], dest: Path, count: int) -> float:
    """``count`` processes on the same batch, released at once; the last one's time."""
    go = dest.with_name(dest.name + ".go")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, json.dumps(urls), str(dest), str(go)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]
    try:
        time.sleep(1.5)  # every interpreter has imported resumable
        go.touch()
        times = []
        for proc in procs:
            out, _ = proc.communicate(timeout=600)
            result = json.loads(out.splitlines()[-1])
            if proc.returncode or result["failed"] or result["ok"] != len(urls):
                raise SystemExit(f"a process did not complete the batch: {result}")
            times.append(result["seconds"])
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return max(times)


def cooperation(args: argparse.Namespace, root: Path) -> None:
    www = DATA / "cooperation"
    names = [f"coop-{i:04d}.bin" for i in range(args.count)]
    for i, name in enumerate(names):
        path = www / name
        if not path.exists() or path.stat().st_size != MiB:
            www.mkdir(parents=True, exist_ok=True)
            path.write_bytes(hashlib.sha256(str(i).encode()).digest() * (MiB // 32))
    times: dict[str, list[float]] = {"1 process": [], "4 processes": []}
    with NginxServer(www, limit_rate="512k") as nginx:
        urls = [nginx.slow_url(name) for name in names]
        for round_ in range(args.rounds):
            order = [1, 4] if round_ % 2 == 0 else [4, 1]
            for count in order:
                before = len(nginx.access_log_lines())
                dest = root / f"coop-{round_}-{count}"
                seconds = together(urls, dest, count)
                key = "1 process" if count == 1 else "4 processes"
                times[key].append(seconds)
                entries = nginx.access_log_lines(min_lines=before + len(names))[before:]
                gets = Counter(e.path for e in entries if e.method == "GET")
                if sorted(gets.values()) != [1] * len(names):
                    raise SystemExit(f"{count} processes: GETs per file {gets}")
    one, four = (statistics.median(times[k]) for k in ("1 process", "4 processes"))
    print(f"\n{args.count} files of 1 MiB, nginx at 512 kB/s per connection, workers=4 each")
    for name, runs in times.items():
        print(f"{name:<14} median {statistics.median(runs):6.2f} s  runs {_runs(runs)}")
    print(f"speed-up {one / four:.2f}x (target >= 3x); GETs per file: 1 in every round")
    record(
        f"cooperation: 4 processes vs 1, {args.count} x 1 MiB throttled",
        four,
        one,
        target=1 / 3,
        target_text="ratio <= 0.33 (>= 3x faster), 1 GET per file",
        ours_name="4 processes",
        reference_name="1 process",
        runs=times,
        gets_per_file=1,
    )


def overhead(args: argparse.Namespace, root: Path) -> None:
    www = DATA / "cooperation-small"
    sums = {}
    www.mkdir(parents=True, exist_ok=True)
    for i in range(args.small):
        path = www / f"s-{i:05d}.bin"
        if not path.exists() or path.stat().st_size != 256 * KiB:
            path.write_bytes(hashlib.sha256(b"s%d" % i).digest() * (256 * KiB // 32))
        sums[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
    times: dict[str, list[float]] = {"claims on": [], "claims off": []}
    with NginxServer(www) as nginx:
        items = [resumable.Item(nginx.url_for(n), sha256=s) for n, s in sums.items()]
        for round_ in range(args.rounds):
            order = list(times) if round_ % 2 == 0 else list(reversed(times))
            for name in order:
                dest = root / f"small-{round_}-{name.replace(' ', '-')}"
                os.sync()
                began = time.perf_counter()
                with resumable.ResumableDownloader(workers=16, locking=name == "claims on") as d:
                    result = d.download_many(items, dest)
                times[name].append(time.perf_counter() - began)
                if result.failed or len(result.ok) != len(items):
                    raise SystemExit(f"{name}: {len(result.failed)} failed")
    on, off = (statistics.median(times[k]) for k in ("claims on", "claims off"))
    print(f"\n{args.small} files of 256 KiB, one process, workers=16, sha256 each")
    for name, runs in times.items():
        print(f"{name:<14} median {statistics.median(runs):6.2f} s  runs {_runs(runs)}")
    print(f"claims cost {100 * (on / off - 1):+.1f}%")
    record(
        f"claims overhead: one process, {args.small} x 256 KiB",
        on,
        off,
        ours_name="claims on",
        reference_name="claims off (locking=False)",
        runs=times,
    )


def _runs(runs: list[float]) -> str:
    return " ".join(f"{t:.2f}" for t in runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--count", type=int, default=64, help="throttled files of 1 MiB")
    parser.add_argument("--small", type=int, default=2000, help="files of 256 KiB (overhead)")
    parser.add_argument("--skip-overhead", action="store_true")
    args = parse(parser, count=8, small=50)
    if not nginx_available():
        print("nginx is not installed", file=sys.stderr)
        return 2
    root = Path(os.environ.get("TMPDIR", "/tmp")) / f"resumable-coop-{os.getpid()}"
    root.mkdir(parents=True)
    try:
        cooperation(args, root)
        if not args.skip_overhead:
            overhead(args, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
