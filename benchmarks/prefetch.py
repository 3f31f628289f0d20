"""``prefetch`` in a training loop: does downloading hide behind compute, and what does it cost?

    python benchmarks/prefetch.py                       # overlap (5 rounds) and RSS (3 rounds)
    python benchmarks/prefetch.py --skip-rss --rounds 3
    python benchmarks/prefetch.py --rss-only --items 20000

**Overlap.** nginx serves ``--shards`` files of ``--shard-mib`` MiB from its ``/slow/``
location (``--rate`` bytes per second per connection). A loop consumes them with
``d.prefetch(urls, dest, ahead=4, keep=False, max_bytes=6 shards)`` and "computes" on each for
0.1-0.3 s (a ``time.sleep``, drawn from a seeded RNG, the same draws for every tool in a
round). Measured each round, in alternating order, with ``ResumableDownloader(workers=4)``:

- download alone: ``download_many(urls, dest)`` (the same 4 files at a time, nothing else);
- compute alone: the sum of the round's compute times (what the loop would take with the data
  already on disk);
- one shard: ``d.download(url of shard 0, dest)`` (a single file, alone);
- prefetch: the loop's total, and its time to the first shard.

Targets: prefetch total <= 1.1 x max(download alone, compute alone) + one shard's download
(the first shard cannot overlap anything), and time to the first shard <= 1.2 x one shard.

**Peak RSS.** A child process consumes ``prefetch`` over a generator of ``--items`` (100,000)
lazy ``Item(url, sha256=..., size=...)`` of ``mem://`` objects of 1 KiB made from their URL
(``lazy.py``'s ``SyntheticSource``: nothing holds the 100k objects), with ``ahead=16``,
``keep=False`` and ``max_bytes``; it prints its own ``VmHWM``. Target: <= 200 MiB.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from common import DATA, MiB, make_file, parse, record
from lazy import SyntheticSource, scratch, synthesise
from lazy import _peak_kib as peak_kib

import resumable

AHEAD = 4
WORKERS = 4
OVERLAP_TARGET = 1.1
FIRST_TARGET = 1.2
RSS_TARGET_MIB = 200


def overlap(args: argparse.Namespace) -> None:
    from servers import NginxServer

    root = DATA / "prefetch"
    names = [f"shard-{i:03d}.bin" for i in range(args.shards)]
    size = int(args.shard_mib * MiB)
    for name in names:
        make_file(root / name, size)
    runs: dict[str, list[float]] = {k: [] for k in ("download", "compute", "one", "total", "first")}
    with NginxServer(root, limit_rate=str(args.rate)) as server:
        urls = [server.slow_url(name) for name in names]
        with resumable.ResumableDownloader(workers=WORKERS) as d:
            for round_ in range(args.rounds):
                rng = random.Random(round_)
                compute = [rng.uniform(0.1, 0.3) for _ in names]
                runs["compute"].append(sum(compute))
                steps = [
                    ("download", lambda dest: d.download_many(urls, dest).raise_for_errors()),
                    ("one", lambda dest: d.download(urls[0], dest / names[0])),
                    ("prefetch", lambda dest, c=compute: consume(d, urls, dest, c, size, runs)),
                ]
                for name, step in steps if round_ % 2 == 0 else steps[::-1]:
                    dest = DATA / f"prefetch-out-{name}"
                    shutil.rmtree(dest, ignore_errors=True)
                    os.sync()  # untimed
                    began = time.perf_counter()
                    step(dest)
                    if name != "prefetch":
                        runs[name].append(time.perf_counter() - began)
                    shutil.rmtree(dest, ignore_errors=True)
    median = {k: statistics.median(v) for k, v in runs.items()}
    bound = max(median["download"], median["compute"]) + median["one"]
    print(
        f"\n{args.shards} shards of {args.shard_mib:g} MiB through {args.rate} B/s per "
        f"connection, workers={WORKERS}, ahead={AHEAD}, compute 0.1-0.3 s per shard"
    )
    print(f"{'':<28} {'median s':>9}  runs")
    for key, label in (
        ("download", "download alone"),
        ("compute", "compute alone"),
        ("one", "one shard alone"),
        ("total", "prefetch: total"),
        ("first", "prefetch: first shard"),
    ):
        text = " ".join(f"{t:.2f}" for t in runs[key])
        print(f"{label:<28} {median[key]:>9.2f}  {text}")
    ratio = median["total"] / bound
    first = median["first"] / median["one"]
    print(f"\ntotal / (max(download, compute) + one shard) = {ratio:.3f} (target <= 1.1)")
    print(f"first shard / one shard alone = {first:.3f} (target <= 1.2)")
    record(
        f"prefetch {args.shards} throttled shards + 0.1-0.3 s compute each, vs "
        "max(download, compute) + one shard",
        median["total"],
        bound,
        target=OVERLAP_TARGET,
        ours_name="prefetch(ahead=4, keep=False, max_bytes)",
        reference_name="max(download_many, compute) + one shard",
        runs=runs["total"],
        reference_runs=[
            max(a, b) + c
            for a, b, c in zip(runs["download"], runs["compute"], runs["one"], strict=True)
        ],
    )
    record(
        "prefetch: time to the first shard vs one single-file download",
        median["first"],
        median["one"],
        target=FIRST_TARGET,
        ours_name="prefetch, first result",
        reference_name="download(one shard)",
        runs=runs["first"],
        reference_runs=runs["one"],
    )


def consume(
    d: resumable.ResumableDownloader,
    urls: list[str],
    dest: Path,
    compute: list[float],
    size: int,
    runs: dict[str, list[float]],
) -> None:
    """The training loop: time to the first shard, and in all."""
    began = time.perf_counter()
    got = 0
    loop = d.prefetch(urls, dest, ahead=AHEAD, keep=False, max_bytes=6 * (size + 1))
    for i, result in enumerate(loop):
        if i == 0:
            runs["first"].append(time.perf_counter() - began)
        if result.size != size:
            raise SystemExit(f"{result.path} has {result.size} bytes, not {size}")
        time.sleep(compute[i])
        got += 1
    runs["total"].append(time.perf_counter() - began)
    if got != len(urls):
        raise SystemExit(f"prefetch gave {got} shards, not {len(urls)}")


def items(count: int, object_size: int) -> Iterator[resumable.Item]:
    for i in range(count):
        url = f"mem://bench/obj-{i:06d}.bin"
        digest = hashlib.sha256(synthesise(url, object_size)).hexdigest()
        yield resumable.Item(url, sha256=digest, size=object_size)


def child(count: int, object_size: int, dest: Path) -> None:
    """Consume ``count`` lazy items with prefetch; print peak RSS, seconds, items/s."""
    source = SyntheticSource(object_size)
    began = time.perf_counter()
    got = 0
    with resumable.ResumableDownloader(workers=16, sources={"mem": source}) as d:
        loop = d.prefetch(
            items(count, object_size), dest, ahead=16, keep=False, max_bytes=64 * object_size
        )
        for result in loop:
            if result.size != object_size:
                raise SystemExit(f"{result.path}: {result.size} bytes")
            got += 1
    seconds = time.perf_counter() - began
    if got != count:
        raise SystemExit(f"{got} items, not {count}")
    rss = peak_kib() / 1024
    print(json.dumps({"rss_mib": rss, "seconds": seconds, "items_per_s": count / seconds}))


def rss(args: argparse.Namespace) -> None:
    runs = []
    for _ in range(args.rss_rounds):
        dest = scratch()
        shutil.rmtree(dest, ignore_errors=True)
        try:
            command = [sys.executable, __file__, "--items", str(args.items), "--child", str(dest)]
            proc = subprocess.run(command, check=True, capture_output=True, text=True)
            left = [p.name for p in dest.iterdir() if p.name != ".resumable"]
            if left:  # keep=False: every consumed file was deleted
                raise SystemExit(f"prefetch left {len(left)} files, e.g. {left[0]}")
        finally:
            shutil.rmtree(dest, ignore_errors=True)
        runs.append(json.loads(proc.stdout.splitlines()[-1]))
    peaks = [r["rss_mib"] for r in runs]
    secs = [r["seconds"] for r in runs]
    rates = [r["items_per_s"] for r in runs]
    print(f"\nprefetch over {args.items} lazy items of 1 KiB, ahead=16, workers=16, keep=False")
    print(f"{'':<14} {'median':>9}  runs")
    for label, values, spec in (
        ("peak RSS MiB", peaks, ".0f"),
        ("seconds", secs, ".2f"),
        ("items/s", rates, ".0f"),
    ):
        text = " ".join(format(v, spec) for v in values)
        print(f"{label:<14} {format(statistics.median(values), spec):>9}  {text}")
    record(
        f"peak RSS, prefetch over {args.items:,} lazy items",
        statistics.median(peaks),
        target=RSS_TARGET_MIB,
        target_text=f"<= {RSS_TARGET_MIB} MiB",
        on="value",
        unit="MiB",
        ours_name="prefetch(generator, ahead=16, keep=False)",
        seconds=statistics.median(secs),
        items_per_s=statistics.median(rates),
        runs=peaks,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="overlap rounds")
    parser.add_argument("--rss-rounds", type=int, default=3)
    parser.add_argument("--shards", type=int, default=32)
    parser.add_argument("--shard-mib", type=float, default=8.0)
    parser.add_argument("--rate", type=int, default=16_000_000, help="bytes/s per connection")
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--rss-only", action="store_true")
    parser.add_argument("--skip-rss", action="store_true")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parse(parser, shards=6, shard_mib=1.0, items=500, rss_rounds=1)
    if args.child is not None:
        child(args.items, 1024, args.child)
        return 0
    from servers import nginx_available

    if not args.rss_only:
        if not nginx_available():
            print("nginx is not installed", file=sys.stderr)
            return 2
        overlap(args)
    if not args.skip_rss:
        rss(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
