"""Command line: ``python -m resumable demo`` (and ``resumable demo``).

A thin layer over the public API. Exit codes: 0 success, 1 a download failed, 2 usage error,
130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from .errors import ResumableError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="resumable",
        description="Download large files and datasets: verified, resumable, never half-written.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser(
        "demo",
        help="download generated shards from a loopback server (no internet needed)",
        description="Serve generated shards on 127.0.0.1 and download them with progress, "
        "interrupting one transfer and resuming it, then print the verified result.",
    )
    demo.add_argument("-d", "--dest", type=Path, help="keep the files here (default: temp dir)")
    demo.add_argument("-n", "--shards", type=int, default=8, help="number of shards (default 8)")
    demo.add_argument("--size", type=int, default=16, help="MiB per shard (default 16)")
    demo.add_argument("-j", "--workers", type=int, default=4, help="parallel files (default 4)")
    demo.add_argument("-v", "--verbose", action="store_true", help="log retries and resumes")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # SIGPIPE stays ignored (Python's default): the demo's own server writes to sockets that the
    # demo closes on purpose, and must get BrokenPipeError there, not die.
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(name)s: %(message)s"
    )
    if args.shards < 1 or args.size < 1 or args.workers < 1:
        print("resumable: --shards, --size and --workers must be positive", file=sys.stderr)
        return EXIT_USAGE
    from .demo import run_demo

    try:
        run_demo(args.dest, shards=args.shards, shard_mib=args.size, workers=args.workers)
    except ResumableError as exc:
        print(f"resumable: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("resumable: interrupted; run again to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
