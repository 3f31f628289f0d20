"""The one table ``nox -s bench`` ends with: every scenario, its medians, ratio and target.

    RESUMABLE_BENCH_RESULTS=/tmp/bench.jsonl python benchmarks/resume.py --rounds 1
    python benchmarks/summary.py /tmp/bench.jsonl        # or with $RESUMABLE_BENCH_RESULTS set

Each benchmark script appends one JSON line per scenario to the file named by
``RESUMABLE_BENCH_RESULTS`` (see ``common.record``). This prints them as a Markdown table
(ready for docs/benchmarks.md): scenario, our median, the reference's median, the ratio, the
target, and whether it was met. Rows without a target are shown for scale. Exits 0 even when a
target is missed: the table is the report, not a gate.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from common import RESULTS_ENV


def fmt(value: object, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        text = f"{value:.3f}" if unit == "x" else f"{value:.2f}"
    else:
        text = str(value)
    return f"{text} {unit}".strip() if unit and unit != "x" else text


def rows(lines: list[dict[str, object]]) -> list[list[str]]:
    table = []
    for r in lines:
        unit = str(r.get("unit") or "")
        ours = f"{fmt(r['ours'], unit)} ({r.get('ours_name') or 'resumable'})"
        ref = "-"
        if r.get("reference") is not None:
            ref = f"{fmt(r['reference'], unit)} ({r.get('reference_name') or '?'})"
        met = {True: "yes", False: "**no**", None: "-"}[r.get("met")]  # type: ignore[index]
        ratio = r.get("ratio")
        table.append(
            [
                str(r["scenario"]),
                ours,
                ref,
                f"{ratio:.2f}" if isinstance(ratio, float) else "-",
                str(r.get("target_text") or "-"),
                met,
            ]
        )
    return table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", default=os.environ.get(RESULTS_ENV))
    args = parser.parse_args()
    if not args.path or not Path(args.path).exists():
        print(f"no results: pass a path or set {RESULTS_ENV}", file=sys.stderr)
        return 2
    lines = [json.loads(text) for text in Path(args.path).read_text().splitlines() if text]
    header = ["scenario", "ours (median)", "reference (median)", "ratio", "target", "met"]
    print("\n## Summary\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows(lines):
        print("| " + " | ".join(row) + " |")
    if any(r.get("smoke") for r in lines):
        print("\nSMOKE RUN (--smoke): tiny sizes and one round; these numbers mean nothing.")
    missed = [r["scenario"] for r in lines if r.get("met") is False]
    checked = sum(1 for r in lines if r.get("met") is not None)
    print(f"\n{checked - len(missed)} of {checked} targets met", end="")
    print(f"; missed: {', '.join(map(str, missed))}" if missed else "")
    return 0


if __name__ == "__main__":
    sys.exit(main())
