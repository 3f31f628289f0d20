"""Shared pieces of the benchmarks: test files, alternating timed rounds, the result table.

Every benchmark compares tools in the same run, alternating their order each round, on files
served by a loopback nginx (tests/servers/nginx.py). These 2-core machines are noisy: medians
of several rounds, never single runs. Before each timed run the page cache is synced (untimed):
curl and aria2c leave their output dirty in memory, and without this the next tool's fsyncs
would pay for their writeback. Their timings still end before their data is on disk; ours
include the fsync that makes a promoted file durable.

Each script also appends one JSON line per scenario to the file named by
``RESUMABLE_BENCH_RESULTS`` (when set) through :func:`record`; ``benchmarks/summary.py`` turns
those lines into the one table ``nox -s bench`` ends with.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

MiB = 1 << 20
DATA = HERE / ".data"
RESULTS_ENV = "RESUMABLE_BENCH_RESULTS"
SMOKE = False  # set by parse(--smoke): records are marked as meaningless

Tool = Callable[[str, Path], None]


def parse(parser: argparse.ArgumentParser, **smoke: object) -> argparse.Namespace:
    """Parse the command line; ``--smoke`` sets one round and the tiny ``smoke`` values.

    A smoke run checks that a script (and the nox session) works end to end; its numbers mean
    nothing, and its records say so (``"smoke": true``, flagged by summary.py).
    """
    global SMOKE
    parser.add_argument(
        "--smoke", action="store_true", help="one round on tiny sizes: a check, not a measurement"
    )
    args = parser.parse_args()
    if args.smoke:
        SMOKE = True
        args.rounds = 1
        for name, value in smoke.items():
            setattr(args, name, value)
    return args


def make_file(path: Path, size: int) -> str:
    """Random bytes at ``path`` (kept between runs when the size matches); return the SHA-256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    if path.exists() and path.stat().st_size == size:
        with open(path, "rb") as f:
            while block := f.read(8 * MiB):
                digest.update(block)
        return digest.hexdigest()
    with open(path, "wb") as f:
        left = size
        while left:
            block = os.urandom(min(MiB, left))
            digest.update(block)
            f.write(block)
            left -= len(block)
    return digest.hexdigest()


def remove(path: Path) -> None:
    """Delete a destination and anything a tool leaves beside it."""
    for suffix in ("", ".partial", ".partial.json", ".partial.lock", ".aria2"):
        candidate = path.with_name(path.name + suffix)
        if candidate.exists():
            candidate.unlink()


def alternate(
    tools: dict[str, Tool], url: str, dest: Path, size: int, rounds: int
) -> dict[str, list[float]]:
    """Time each tool ``rounds`` times, alternating the order; check each wrote ``size`` bytes.

    ``dest`` is a file path, deleted before each run; or, when it is a directory or does not
    exist yet, the root of one new directory per run (``dest/<round>-<n>/file.bin``): a
    directory that never held files costs every tool the same. Each run's output is deleted
    as soon as it is checked: twenty 1 GiB outputs kept to the end fill the page cache of a
    24 GiB machine, and the later runs then pay for reclaiming it (curl measured 1.0 s alone,
    2.7-3.5 s in such a run).
    """
    times: dict[str, list[float]] = {name: [] for name in tools}
    order = list(tools)
    fresh = dest.is_dir() or not dest.exists()
    if fresh:
        shutil.rmtree(dest, ignore_errors=True)
    try:
        for round_ in range(rounds):
            for number, name in enumerate(order if round_ % 2 == 0 else list(reversed(order))):
                target = dest / f"{round_}-{number}" / "file.bin" if fresh else dest
                if fresh:
                    target.parent.mkdir(parents=True)
                else:
                    remove(target)
                os.sync()  # untimed: no tool pays for the writeback another one left behind
                began = time.perf_counter()
                tools[name](url, target)
                times[name].append(time.perf_counter() - began)
                written = target.stat().st_size
                if written != size:
                    raise SystemExit(f"{name} wrote {written} bytes, not {size}")
                if fresh:
                    shutil.rmtree(target.parent, ignore_errors=True)
                else:
                    remove(target)
    finally:
        if fresh:
            shutil.rmtree(dest, ignore_errors=True)
        else:
            remove(dest)
    return times


def table(title: str, times: dict[str, list[float]], size: int, reference: str) -> float:
    """Print medians, throughput and ratios to ``reference``; return the first tool's ratio."""
    base = statistics.median(times[reference])
    print(f"\n{title}")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"{'tool':<44} {'median s':>9} {'MB/s':>7} {'ratio':>6}  runs")
    for name, runs in times.items():
        med = statistics.median(runs)
        runs_text = " ".join(f"{t:.2f}" for t in runs)
        print(f"{name:<44} {med:>9.2f} {size / med / 1e6:>7.0f} {med / base:>6.2f}  {runs_text}")
    first = next(iter(times))
    return statistics.median(times[first]) / base


def record(
    scenario: str,
    ours: float,
    reference: float | None = None,
    *,
    target: float | None = None,
    target_text: str | None = None,
    unit: str = "s",
    ours_name: str = "resumable",
    reference_name: str | None = None,
    on: str = "ratio",
    **extra: object,
) -> None:
    """Append one scenario's result to ``$RESUMABLE_BENCH_RESULTS`` (nothing when unset).

    ``ours`` and ``reference`` are medians in ``unit``; ``ratio`` is ``ours / reference``. The
    target is met when ``ratio <= target`` (``on="ratio"``) or ``ours <= target``
    (``on="value"``, e.g. a peak RSS); ``target=None`` marks a row shown for scale only.
    """
    path = os.environ.get(RESULTS_ENV)
    if not path:
        return
    ratio = ours / reference if reference else None
    checked = ratio if on == "ratio" else ours
    met = None if target is None or checked is None else checked <= target
    if target_text is None and target is not None:
        target_text = f"{'ratio' if on == 'ratio' else unit} <= {target:g}"
    line = {
        "scenario": scenario,
        "ours": ours,
        "ours_name": ours_name,
        "reference": reference,
        "reference_name": reference_name,
        "unit": unit,
        "ratio": ratio,
        "target": target,
        "target_text": target_text,
        "met": met,
        "script": Path(sys.argv[0]).name,
        "smoke": SMOKE,
        **extra,
    }
    with open(path, "a") as f:
        f.write(json.dumps(line) + "\n")
