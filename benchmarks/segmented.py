"""Segmented downloads: against aria2c on a throttled server, against one stream, peak memory.

    python benchmarks/segmented.py                 # all three, 5 rounds
    python benchmarks/segmented.py --rounds 3 --skip-rss
    python benchmarks/segmented.py --rounds 1 --small 16 --big 32      # a smoke test

1. 256 MiB (``--small``) from an nginx location limited to 20 MB/s per connection: resumable
   with 16 connections (and SHA-256) against ``aria2c -x16 -s16 -k1M`` (no hash). Target ratio
   <= 1.05.
   The default call (automatic connections: one stream, split over 8 after a slow first
   second) in the same run, for scale: it must split here.
2. 1 GiB (``--big``) unthrottled over loopback: 16 connections, the default call (which stays
   one stream here: the first second runs far above the split threshold) and one stream.
3. Peak RSS of a 16-connection 1 GiB download, in a child process. Target <= 80 MiB.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from common import DATA, MiB, alternate, make_file, parse, record, table
from servers import NginxServer, nginx_available

import resumable

SIXTEEN = "resumable 16 connections + sha256"
AUTO = "resumable default (automatic) + sha256"
ONE = "resumable 1 connection + sha256"
ARIA2C = "aria2c -x16 -s16 -k1M (no hash)"

CHILD = """
import resource, sys, resumable
resumable.download(sys.argv[1], sys.argv[2], sha256=sys.argv[3], connections=16)
# VmHWM: this process's own peak (ru_maxrss would include the peak of the benchmark process
# that started it: Linux keeps the peak of the image replaced by exec, the parent's after vfork).
peak = [line for line in open("/proc/self/status") if line.startswith("VmHWM:")]
print(int(peak[0].split()[1]) if peak else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--skip-rss", action="store_true")
    parser.add_argument("--rss-only", action="store_true", help="only the peak-memory runs")
    parser.add_argument("--small", type=int, default=256, help="MiB, the throttled file")
    parser.add_argument("--big", type=int, default=1024, help="MiB, unthrottled and RSS file")
    args = parse(parser, small=8, big=16)
    if not nginx_available() or shutil.which("aria2c") is None:
        print("needs nginx and aria2c (run .ci/install-system-deps)", file=sys.stderr)
        return 2

    root = DATA / "www"
    small, big = args.small * MiB, args.big * MiB
    small_name = f"m{args.small}.bin"
    big_name = "big.bin" if args.big == 1024 else f"m{args.big}.bin"
    sums = {
        small_name: make_file(root / small_name, small),
        big_name: make_file(root / big_name, big),
    }
    out = DATA / "out"
    out.mkdir(parents=True, exist_ok=True)
    dest = out / "file.bin"

    def ours(connections: int | None, name: str):  # type: ignore[no-untyped-def]
        def run(url: str, path: Path) -> None:
            r = resumable.download(url, path, sha256=sums[name], connections=connections)
            assert r.status == "downloaded"

        return run

    def aria2c(url: str, path: Path) -> None:
        subprocess.run(
            [
                "aria2c",
                "-q",
                "-x16",
                "-s16",
                "-k1M",
                "--allow-overwrite=true",
                "--auto-file-renaming=false",
                "-d",
                str(path.parent),
                "-o",
                path.name,
                url,
            ],
            check=True,
        )

    throttled = unthrottled = None
    with NginxServer(root, limit_rate="20m") as nginx:
        if not args.rss_only:
            times = alternate(
                {
                    SIXTEEN: ours(16, small_name),
                    AUTO: ours(None, small_name),
                    ARIA2C: aria2c,
                },
                nginx.slow_url(small_name),
                dest,
                small,
                args.rounds,
            )
            throttled = table(
                f"{args.small} MiB, nginx limit_rate 20m per connection", times, small, ARIA2C
            )
            record(
                f"{args.small} MiB throttled 20 MB/s per connection, 16 connections",
                statistics.median(times[SIXTEEN]),
                statistics.median(times[ARIA2C]),
                target=1.05,
                ours_name="16 connections + sha256",
                reference_name="aria2c -x16 -s16",
                runs=times[SIXTEEN],
            )
            record(
                f"{args.small} MiB throttled 20 MB/s per connection, the default call (splits)",
                statistics.median(times[AUTO]),
                statistics.median(times[ARIA2C]),
                ours_name="default: one stream, then 8 connections",
                reference_name="aria2c -x16 -s16",
                runs=times[AUTO],
            )
            times = alternate(
                {
                    SIXTEEN: ours(16, big_name),
                    AUTO: ours(None, big_name),
                    ONE: ours(1, big_name),
                },
                nginx.url_for(big_name),
                dest,
                big,
                args.rounds,
            )
            unthrottled = table(f"{args.big} MiB unthrottled over loopback", times, big, ONE)
            record(
                f"{args.big} MiB unthrottled: the default call vs one stream",
                statistics.median(times[AUTO]),
                statistics.median(times[ONE]),
                target=1.0,
                ours_name="default (automatic) + sha256",
                reference_name="1 connection + sha256",
                runs=times[AUTO],
            )
        rss: list[float] = []
        for _ in range(0 if args.skip_rss else 3):
            os.sync()  # as for the timed runs: no writeback left over from earlier runs
            proc = subprocess.run(
                [sys.executable, "-c", CHILD, nginx.url_for(big_name), str(dest), sums[big_name]],
                check=True,
                capture_output=True,
                text=True,
            )
            rss.append(int(proc.stdout.split()[-1]) / 1024)  # VmHWM is in KiB
            dest.unlink()
    if throttled is not None and unthrottled is not None:
        print(f"\nsegmented 16 / aria2c median ratio: {throttled:.2f} (target <= 1.05)")
        print(f"segmented 16 / one stream, unthrottled: {unthrottled:.2f} (target <= 1.0)")
    if rss:
        runs = " ".join(f"{r:.0f}" for r in rss)
        print(
            f"peak RSS, 16 connections, {args.big} MiB: median {statistics.median(rss):.0f} MiB, "
            f"max {max(rss):.0f} MiB (runs {runs}; target <= 80)"
        )
        record(
            f"peak RSS, {args.big} MiB with 16 connections",
            statistics.median(rss),
            target=80,
            target_text="<= 80 MiB",
            on="value",
            unit="MiB",
            ours_name="download(connections=16)",
            runs=rss,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
