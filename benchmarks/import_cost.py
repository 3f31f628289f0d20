"""What ``import resumable`` costs: wall time above a bare interpreter, and what it loads.

Each round starts two fresh interpreters, alternating their order: ``python -c pass`` (the
floor) and ``python -c "import resumable"``. The cost is the difference of their medians (target:
at most 40 ms on the CI machine). Both run with ``-I``-like isolation from the caller's
environment except ``PYTHONPATH`` (so a source checkout measures itself) and with
``PYTHONDONTWRITEBYTECODE`` unset (bytecode caches warm after the first round, as for a user).

The heavy standard-library modules that must load only when used (tarfile, zipfile, lzma, bz2,
sqlite3, concurrent.futures, asyncio) and the third-party ones (requests, urllib3, fsspec,
tqdm) are listed if ``import resumable`` loads them; ``python -X importtime`` shows the rest.

    python benchmarks/import_cost.py --rounds 21
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from common import parse, record

TARGET_MS = 40.0
HEAVY = (
    "tarfile",
    "zipfile",
    "lzma",
    "bz2",
    "sqlite3",
    "concurrent.futures",
    "asyncio",
    "requests",
    "urllib3",
    "fsspec",
    "tqdm",
)


# As the docstring says: bytecode caches are written and used, as for an installed package,
# even when the caller's environment sets PYTHONDONTWRITEBYTECODE (then every round would
# compile the whole package from source, ~60 ms more on the CI machine).
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _time(code: str) -> float:
    began = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=ENV)
    return time.perf_counter() - began


def loaded_heavy() -> list[str]:
    """The heavy modules a fresh ``import resumable`` loads (should be none)."""
    code = (
        "import json, sys, resumable; "
        f"print(json.dumps([m for m in {list(HEAVY)!r} if m in sys.modules]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, env=ENV
    )
    return list(json.loads(out.stdout))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21, help="fresh interpreters per side")
    args = parse(parser)
    _time("import resumable")  # warm the bytecode caches once, untimed
    bare: list[float] = []
    ours: list[float] = []
    for round_ in range(args.rounds):
        pair = [("pass", bare), ("import resumable", ours)]
        for code, times in pair if round_ % 2 else reversed(pair):
            times.append(_time(code))
    floor, full = statistics.median(bare), statistics.median(ours)
    cost_ms = (full - floor) * 1000
    heavy = loaded_heavy()
    print(f"bare interpreter  median {floor * 1000:7.1f} ms")
    print(f"import resumable  median {full * 1000:7.1f} ms")
    print(f"import cost       {cost_ms:7.1f} ms (target <= {TARGET_MS:g} ms), {args.rounds} rounds")
    print(f"heavy modules loaded: {', '.join(heavy) or 'none'}")
    record(
        "import resumable, above a bare interpreter",
        cost_ms,
        target=TARGET_MS,
        target_text=f"<= {TARGET_MS:g} ms",
        on="value",
        unit="ms",
        ours_name="import resumable",
        floor_ms=floor * 1000,
        heavy=heavy,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
