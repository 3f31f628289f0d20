"""Adaptive host concurrency against servers that push back: adaptive vs fixed settings.

    python benchmarks/adaptive.py                  # 3 alternating rounds
    python benchmarks/adaptive.py --count 100 --fixed 2,4

Two scenarios on a loopback nginx (tests/servers/nginx.py):

- ``/limited/``: at most 4 requests at once (``limit_conn``, 503 beyond), each throttled to
  ``--limit-rate`` (128 KiB/s: nginx sends a 256 KiB file in two halves a second apart), as
  a loaded server. ``--count`` files of ``--size`` bytes.
- ``/paced/``: 20 requests a second (``limit_req``, burst 1, 429 beyond), as an API's rate
  limit. ``--paced-count`` files of ``--paced-size`` bytes.

Each scenario times ``download_many`` (every item with its SHA-256) with:

- adaptive: ``workers=16, max_per_host=16``, the library's default behaviour (the window and
  pace adapt to the 503/429 answers);
- fixed N (``--fixed``, 1, 2, 4, 8): ``workers=N, max_per_host=N``, a setting found by hand.
  The library has no switch to turn adapting off, so "fixed" is a cap: a setting above the
  server's limit still gets refusals, and its window adapts below N (at 4 or less /limited/
  never refuses, so those are fixed in fact; /paced/ refuses them all, as one connection
  alone asks faster than 20 a second, so there every setting is paced by the library).

Target: adaptive's median time within 1.15x the best fixed setting's. nginx's access log gives
each run's refusals, and requests and refusals a second in the second after the first refusal
against the seconds after it. The "no request storm" check is on the refusals: they must come
less often later than in that first second. (The request rate is shown, not checked: against a
rate limit a good client's rate rises to the limit after the first refusal; it falls only where
connections are the limit.)
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

from common import DATA, parse, record
from servers import NginxServer, nginx_available
from servers.nginx import AccessLogEntry

import resumable

ADAPTIVE = "adaptive (workers=16, max_per_host=16)"
KiB = 1024


def make_files(root: Path, prefix: str, count: int, size: int) -> dict[str, str]:
    """``count`` files of ``size`` bytes (kept between runs); ``{name: sha256}``."""
    root.mkdir(parents=True, exist_ok=True)
    sums = {}
    for i in range(count):
        path = root / f"{prefix}-{i:06d}.bin"
        if not path.exists() or path.stat().st_size != size:
            path.write_bytes(hashlib.sha256(f"{prefix}{i}".encode()).digest() * (size // 32))
        sums[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return sums


def storm(log: list[AccessLogEntry]) -> dict[str, float]:
    """One run's refusals, and requests (and refusals) a second in the second after the first
    refusal against the seconds after that one (nginx's times: when each request ended)."""
    refused = sorted(e.time for e in log if e.status in (429, 503))
    found: dict[str, float] = {"refused": len(refused)}
    if not refused:
        return found
    first, end = refused[0], max(e.time for e in log)
    later_span = end - first - 1.0
    found["first_rps"] = sum(first <= e.time < first + 1 for e in log)
    found["first_refused_ps"] = sum(first <= t < first + 1 for t in refused)
    if later_span >= 0.5:  # too short a tail says nothing of the rate
        found["later_rps"] = sum(e.time >= first + 1 for e in log) / later_span
        found["later_refused_ps"] = sum(t >= first + 1 for t in refused) / later_span
    return found


def scenario(
    nginx: NginxServer,
    location: str,
    sums: dict[str, str],
    fixed: list[int],
    rounds: int,
    runs: Path,
) -> tuple[dict[str, list[float]], dict[str, list[dict[str, float]]]]:
    """Time adaptive and each fixed setting ``rounds`` times, alternating the order each
    round; return the times and each run's access-log figures, by setting."""
    settings = {ADAPTIVE: (16, 16)} | {
        f"fixed {n} (workers={n}, max_per_host={n})": (n, n) for n in fixed
    }
    items = [resumable.Item(f"{nginx.url}/{location}/{n}", sha256=s) for n, s in sums.items()]
    times: dict[str, list[float]] = {name: [] for name in settings}
    logs: dict[str, list[dict[str, float]]] = {name: [] for name in settings}
    order = list(settings)
    for round_ in range(rounds):
        for number, name in enumerate(order if round_ % 2 == 0 else order[::-1]):
            out = runs / f"{location}-{round_}-{number}"  # a directory that never held files
            out.mkdir(parents=True)
            os.sync()  # untimed
            before = len(nginx.access_log_lines())
            workers, per_host = settings[name]
            began = time.perf_counter()
            with resumable.ResumableDownloader(workers=workers, max_per_host=per_host) as d:
                d.download_many(items, out).raise_for_errors()
            times[name].append(time.perf_counter() - began)
            log = nginx.access_log_lines(min_lines=before + len(items))[before:]
            served = sum(e.status == 200 for e in log)
            if served != len(items):
                raise SystemExit(f"{name}: nginx served {served} files, not {len(items)}")
            logs[name].append(storm(log))
            shutil.rmtree(out, ignore_errors=True)
            print(f"  {location} round {round_ + 1} {name}: {times[name][-1]:.2f} s", flush=True)
    return times, logs


def median_of(runs: list[dict[str, float]], key: str) -> float | None:
    values = [run[key] for run in runs if key in run]
    return statistics.median(values) if values else None


def fmt(value: float | None, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


def report(
    title: str,
    status: str,
    times: dict[str, list[float]],
    logs: dict[str, list[dict[str, float]]],
) -> None:
    """Print the table and record the throughput and request-storm rows."""
    medians = {name: statistics.median(runs) for name, runs in times.items()}
    best = min((name for name in medians if name != ADAPTIVE), key=medians.__getitem__)
    print(f"\n{title}")
    print(
        f"{'setting':<44} {'median s':>8} {'/best':>6} {'refused':>7} "
        f"{'rps 1st s':>9} {'rps later':>9} {'ref/s 1st':>9} {'ref/s later':>11}  runs"
    )
    for name, runs in times.items():
        figures = [median_of(logs[name], k) for k in ("first_rps", "later_rps")]
        figures += [median_of(logs[name], k) for k in ("first_refused_ps", "later_refused_ps")]
        print(
            f"{name:<44} {medians[name]:>8.2f} {medians[name] / medians[best]:>6.2f} "
            f"{fmt(median_of(logs[name], 'refused'), '.0f'):>7} "
            + " ".join(f"{fmt(v):>{w}}" for v, w in zip(figures, (9, 9, 9, 11), strict=True))
            + "  "
            + " ".join(f"{t:.2f}" for t in runs)
        )
    ratio = medians[ADAPTIVE] / medians[best]
    print(f"adaptive / best fixed ({best}): {ratio:.2f} (target <= 1.15)")
    ours = logs[ADAPTIVE]
    refused = median_of(ours, "refused")
    record(
        f"{title}: adaptive vs the best fixed setting",
        medians[ADAPTIVE],
        medians[best],
        target=1.15,
        ours_name="download_many(workers=16, max_per_host=16)",
        reference_name=best,
        runs=times[ADAPTIVE],
        refused=refused,
        fixed={name: medians[name] for name in medians if name != ADAPTIVE},
    )
    first, later = median_of(ours, "first_refused_ps"), median_of(ours, "later_refused_ps")
    rps = median_of(ours, "first_rps"), median_of(ours, "later_rps")
    if first is not None and later is not None:
        print(
            f"adaptive: refusals/s in the second after the first one {first:.1f}, later {later:.2f}"
        )
        record(
            f"{title}: refusals/s after the first {status}, later vs its second",
            later,
            float(first),
            target=1.0,
            target_text="later rate <= the first second's",
            unit="/s",
            ours_name="adaptive, later seconds",
            reference_name="adaptive, the second after the first refusal",
            refused=refused,
            requests_per_s_first=rps[0],
            requests_per_s_later=rps[1],
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--count", type=int, default=200, help="files in /limited/")
    parser.add_argument("--size", type=int, default=256 * KiB, help="their size, bytes")
    parser.add_argument("--limit-rate", default="128k", help="nginx limit_rate of /limited/")
    parser.add_argument("--paced-count", type=int, default=100, help="files in /paced/")
    parser.add_argument("--paced-size", type=int, default=8 * KiB, help="their size, bytes")
    parser.add_argument("--fixed", default="1,2,4,8", help="fixed settings to time")
    parser.add_argument("--only", choices=("limited", "paced"), help="one scenario only")
    args = parse(parser, count=8, paced_count=12, fixed="2,4")
    if not nginx_available():
        print("needs nginx (run .ci/install-system-deps)", file=sys.stderr)
        return 2
    fixed = [int(n) for n in args.fixed.split(",")]
    root = DATA / "adaptive"
    limited = make_files(root, "limited", args.count, args.size)
    paced = make_files(root, "paced", args.paced_count, args.paced_size)
    runs = DATA / "adaptive-out"
    shutil.rmtree(runs, ignore_errors=True)  # an interrupted earlier run's (untimed)
    try:
        with NginxServer(root, limit_rate=args.limit_rate) as nginx:
            if args.only != "paced":
                times, logs = scenario(nginx, "limited", limited, fixed, args.rounds, runs)
                title = f"/limited/ ({args.count} x {args.size // KiB} KiB, 4 at once, 503)"
                report(title, "503", times, logs)
            if args.only != "limited":
                times, logs = scenario(nginx, "paced", paced, fixed, args.rounds, runs)
                title = f"/paced/ ({args.paced_count} x {args.paced_size // KiB} KiB, 20 r/s, 429)"
                report(title, "429", times, logs)
    finally:
        shutil.rmtree(runs, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
