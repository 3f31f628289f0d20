"""The command line: ``python -m resumable URL...`` and ``resumable URL...``; ``resumable demo``.

A thin layer over the public API: arguments become a :class:`~resumable.ResumableDownloader`
and batch inputs; ``download_many`` (or ``plan`` for ``--dry-run``) does the work with a
:class:`~resumable.TqdmProgress`; this module prints the summary and picks the exit code. It is
the only module of the package that writes to stdout/stderr directly (the demo's text comes
through here too, as a stream handed to :func:`resumable.demo.run_demo`).

Exit codes: 0 every file is complete, 1 some items failed, 2 usage error (bad option, bad URL,
malformed template or links file: nothing was fetched), 130 interrupted by Ctrl-C or SIGTERM
(partials are kept; run the same command again to resume).

``demo`` as the *first* argument runs the demo; anywhere else it would be a download input, and
it is not a URL, so ``resumable -d out demo`` is a usage error that says so.

Extending: options are declared in :mod:`resumable._cli_parser` (one ``_add_*`` function per
help section) and consumed here, in :func:`_downloader_options` (downloader settings) or
:func:`run_download` (what to do with them). ``--extract SPEC``
(:func:`resumable.extract.from_spec`) is passed to ``download_many`` as its ``process=``.

This module and :mod:`resumable._cli_parser` stand on the public API (the names of
``resumable`` and its public modules), as any program using the library would, plus two
bottom-layer helpers every entry point shares: :func:`resumable._guard.typed` (a bug is reported
as a typed error) and :mod:`resumable._secrets` (the ``-H`` values are checked and hidden
before any message could quote one).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from . import BatchResult, ResumableDownloader, RetryPolicy, Timeouts, TqdmProgress
from ._cli_inputs import UsageError, batch_inputs, checksums_option
from ._cli_parser import build_demo_parser, build_parser, parse_size
from ._guard import typed
from ._secrets import check_headers, remember
from .errors import InvalidArgument, ResumableError
from .progress.lines import format_bytes, format_duration
from .urls import redact_text

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "build_parser",
    "main",
    "parse_size",
]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
MAX_LISTED_FAILURES = 20


# -- running ---------------------------------------------------------------------------------


def main(
    argv: Sequence[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> int:
    """Run the command line; return the exit code (``sys.exit(main())`` in ``__main__``)."""
    args = list(sys.argv[1:] if argv is None else argv)
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    try:
        if args[:1] == ["demo"]:
            return run_demo_command(build_demo_parser().parse_args(args[1:]), out, err)
        return run_download(build_parser().parse_args(args), out, err)
    except SystemExit as exc:  # argparse: --help (0), --version (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    except (UsageError, InvalidArgument) as exc:  # e.g. a --dir that is a file
        print(f"resumable: error: {exc}", file=err)
        return EXIT_USAGE
    except ResumableError as exc:  # e.g. a --dir that cannot be created
        print(f"resumable: {exc}", file=err)
        return EXIT_FAILED
    except Exception as exc:  # a bug: typed, logged and reported like any failure
        print(f"resumable: {typed(exc, 'resumable')}", file=err)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("resumable: interrupted; partial files are kept: run again to resume", file=err)
        return EXIT_INTERRUPTED


def run_demo_command(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``resumable demo``: unchanged from the first release (the README's first command)."""
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(name)s: %(message)s"
    )
    if args.shards < 1 or args.size < 1 or args.workers < 1:
        raise UsageError("--shards, --size and --workers must be positive")
    from .demo import run_demo

    try:
        run_demo(args.dest, shards=args.shards, shard_mib=args.size, workers=args.workers, out=out)
    except ResumableError as exc:
        print(f"resumable: {exc}", file=err)
        return EXIT_FAILED
    return EXIT_OK


def run_download(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Download (or plan) what the arguments name; return the exit code."""
    _remember_headers(args)  # first: no message about the inputs may quote a -H value
    inputs, total_files = batch_inputs(args)
    checksums = checksums_option(args.checksums) or None
    _configure_logging(args, err)
    try:
        downloader = ResumableDownloader(**_downloader_options(args))
    except InvalidArgument as exc:
        raise UsageError(str(exc)) from None
    with downloader:
        if args.dry_run:
            plan = downloader.plan(inputs, args.dir)  # the downloads only: nothing is extracted
            print(f"plan: {plan}", file=out)
            _print_failures(plan.failed, err)
            return EXIT_FAILED if plan.failed else EXIT_OK
        started = time.monotonic()
        with _sigterm_interrupts(), _progress(args, total_files, err) as progress:
            result = downloader.download_many(
                inputs,
                args.dir,
                sync=args.sync,
                progress=progress,
                process=args.extract,
                checksums=checksums,
            )
        if not args.quiet:
            _print_summary(result, args.dir, time.monotonic() - started, out)
        _print_failures(result.failed, err)
        return EXIT_FAILED if result.failed else EXIT_OK


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM (a scheduler pre-empting the job, ``kill``) stops the batch like Ctrl-C: running
    transfers stop at their next read and record their ranges, and the exit code is 130."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _configure_logging(args: argparse.Namespace, err: TextIO) -> None:
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=err,
    )
    # Progress lines (no TTY) are INFO records of their own logger: shown unless --quiet.
    progress_level = logging.WARNING if args.quiet else logging.INFO
    logging.getLogger("resumable.progress").setLevel(progress_level)


def _downloader_options(args: argparse.Namespace) -> dict[str, Any]:
    split = getattr(args, "split", None)
    given = [n for n in (args.connections, split) if n is not None]
    options: dict[str, Any] = {
        "connections": min(given) if given else None,  # aria2c: -s pieces, -x per server
        "rate_limit": args.rate_limit,
        "limit_bph": args.limit_bph,
        "max_per_host": args.max_per_host,
        "headers": dict(_header(h) for h in args.header),
    }
    if args.workers is not None:
        options["workers"] = args.workers
    retries = args.retries if args.retries is not None else getattr(args, "max_tries", None)
    if retries is not None or args.connect_retries is not None:
        policy = RetryPolicy()
        options["retry"] = RetryPolicy(
            attempts=policy.attempts if retries is None else retries,
            connect_attempts=(
                policy.connect_attempts if args.connect_retries is None else args.connect_retries
            ),
        )
    timeouts = {
        name: value
        for name, value in (("connect", args.connect_timeout), ("stall", args.stall_timeout))
        if value is not None
    }
    if timeouts:
        options["timeouts"] = Timeouts(**timeouts)
    return options


def _remember_headers(args: argparse.Namespace) -> None:
    """Check the ``-H`` headers and register their values as secrets (see
    :mod:`resumable._secrets`), before anything else can print one."""
    remember(check_headers(dict(_header(h) for h in args.header)))


def _header(text: str) -> tuple[str, str]:
    """``'Name: value'`` split; never quoted in an error (a value is often a token)."""
    name, colon, value = text.partition(":")
    if not colon or not name.strip():
        raise UsageError(
            "a header is 'Name: value', with a colon after the name; this -H of "
            f"{len(text)} characters has none (not shown: it may hold a secret)"
        )
    return name.strip(), value.strip()


@contextlib.contextmanager
def _progress(args: argparse.Namespace, total_files: int | None, err: TextIO) -> Iterator[Any]:
    if args.quiet or args.progress == "none":
        yield None
        return
    bars = TqdmProgress(
        total_files=total_files,
        style=args.progress,
        interval=args.progress_interval,
        file=err,
        show_failures=False,  # listed once, after the summary (_print_failures)
    )
    with contextlib.ExitStack() as stack:
        stack.enter_context(bars)
        if bars.style == "bars":
            from tqdm.contrib.logging import logging_redirect_tqdm

            stack.enter_context(logging_redirect_tqdm())  # log records above the bars, not in
        yield bars


def _print_summary(result: BatchResult, dest: Path, elapsed: float, out: TextIO) -> None:
    fetched = sum(r.bytes_transferred for r in result.ok)
    rate = fetched / elapsed if elapsed > 0 else 0.0
    print(result.summary, file=out)
    print(
        f"{format_bytes(fetched)} fetched in {format_duration(elapsed)} "
        f"({format_bytes(rate)}/s) into {dest.resolve()}",
        file=out,
    )


def _print_failures(failed: Sequence[tuple[object, BaseException]], err: TextIO) -> None:
    for item, exc in failed[:MAX_LISTED_FAILURES]:
        url = getattr(item, "url", item)
        # redact_text, not redact: the item may be a (url, dest) pair or a Link, not a URL.
        print(f"failed: {redact_text(str(url))}: {exc}", file=err)
    if len(failed) > MAX_LISTED_FAILURES:
        print(f"... and {len(failed) - MAX_LISTED_FAILURES} more failures", file=err)
