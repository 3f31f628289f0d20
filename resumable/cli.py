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

Extending: options are declared in the ``_add_*`` functions, one per help section, and consumed
in :func:`_downloader_options` (downloader settings) or :func:`run_download` (what to do with
them). ``--extract SPEC`` (:func:`resumable.extract.from_spec`) is passed to ``download_many``
as its ``process=``.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import re
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO

from ._cli_inputs import UsageError, batch_inputs, checksums_option
from ._guard import typed
from ._secrets import check_headers, remember
from ._version import __version__
from .api import ResumableDownloader
from .batch.job import BatchResult
from .errors import InvalidArgument, ResumableError, redact_text
from .progress_bars import TqdmProgress
from .progress_lines import format_bytes, format_duration
from .retry import RetryPolicy, Timeouts

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

EXAMPLES = """\
examples:
  # one file over 16 connections (aria2c -x 16 -s 16 URL)
  resumable -x 16 https://dl.fbaipublicfiles.com/segment_anything/sa_000000.tar

  # SA-1B from its links file, 4 files at a time (aria2c -i sa1b_links.txt -j 4 -x 16 -d ./raw)
  resumable -i sa1b_links.txt -j 4 -x 16 -d ./raw

  # ... and extract each tar once verified: images and annotations apart, the tar deleted
  resumable -i sa1b_links.txt -d ./sa1b \\
      --extract 'untar:route=*.jpg=images,*.json=annotations:delete'

  # an ImageNet-style shard range (ais start download "gs://.../imagenet_train-{...}.tgz")
  resumable "gs://lpr-vision/imagenet/imagenet_train-{000000..000140}.tgz" -d imagenet

  # mirror a bucket prefix: also delete files this tool fetched that are gone at the source
  # (ais start download --sync gs://lpr-vision ...)
  resumable --sync s3://bucket/dataset/ -d dataset

  # a JSON array of object names under a base URL (ais start download --object-list=objects.txt)
  resumable -i objects.json gs://lpr-vision -d lpr

  # one file, verified, at most 50 MiB/s (aria2c --max-overall-download-limit=50M)
  resumable --sha256 <64 hex digits> --rate-limit 50M https://example.org/ubuntu.iso

  # every shard verified against a published sha256sum file
  resumable "https://example.org/data/shard-{0000..0099}.tar" --sha256 SHA256SUMS -d data

  # the plan: files and bytes in total, already present and to fetch; nothing is downloaded
  resumable --dry-run -i sa1b_links.txt -d ./raw

  # the built-in demo on a loopback server (no internet needed)
  resumable demo

Quote templates so the shell does not expand the braces itself. Run the same command again
after an interruption: complete files are skipped and partial ones resume.

exit codes: 0 all files complete, 1 some items failed, 2 usage error, 130 interrupted
"""

_SIZE = re.compile(r"(?P<n>[0-9]+(?:\.[0-9]*)?)\s*(?P<unit>[kmgt]?)(?P<suffix>i?b)?(?:/s)?", re.I)
_POWERS = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4}


def parse_size(text: str) -> int:
    """``"50M"`` -> 52428800. A bare number is bytes; ``K``, ``M``, ``G``, ``T`` alone or with
    ``iB`` are powers of 1024 (as in aria2c and tqdm); with ``B`` alone (``MB``) powers of 1000.
    A trailing ``/s`` is allowed.

    >>> parse_size("50M"), parse_size("1.5GiB"), parse_size("500kB/s"), parse_size("4096")
    (52428800, 1610612736, 500000, 4096)
    """
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not a size: {text!r} (e.g. 50M, 1.5GiB, 500kB, 4096)")
    unit, suffix = match["unit"].lower(), (match["suffix"] or "").lower()
    base = 1000 if suffix == "b" and unit else 1024
    value = int(float(match["n"]) * base ** _POWERS[unit])
    if value < 1:
        raise ValueError(f"a size must be at least 1 byte, got {text!r}")
    return value


# -- the parser ------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The download command's parser (``demo`` has its own, see :func:`build_demo_parser`)."""
    parser = _Parser(
        prog="resumable",
        usage="resumable [options] URL... | -i FILE [URL]\n       resumable demo [options]",
        description="Download large files and datasets: verified, resumable, never half-written."
        " URLs may be http(s)://, s3://, gs://, az://, file:// or any fsspec protocol.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_input_options(parser)
    _add_transfer_options(parser)
    _add_batch_options(parser)
    _add_extract_options(parser)
    _add_aria2c_options(parser)
    _add_output_options(parser)
    return parser


class _Parser(argparse.ArgumentParser):
    """argparse quotes the arguments it could not use ("unrecognized arguments: ..."): a URL
    with a password among them is shown redacted (:func:`~resumable.errors.redact_text`)."""

    def error(self, message: str) -> NoReturn:
        super().error(redact_text(message))


def _add_input_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("what to download")
    group.add_argument(
        "urls",
        nargs="*",
        metavar="URL",
        help='URLs, brace templates ("shard-{000000..000140}.tar"), prefixes ending in "/"; '
        "with -i holding a JSON object list, the one base URL",
    )
    group.add_argument(
        "-i",
        "--input-file",
        metavar="FILE",
        help='a links file ("name<TAB>url", "name url" or a URL per line, as SA-1B ships) or '
        'a JSON array of object names under the base URL; "-" reads stdin',
    )
    group.add_argument(
        "-d", "--dir", type=Path, default=Path("."), help="destination directory (default: .)"
    )
    group.add_argument(
        "-o", "--out", metavar="NAME", help="file name for a single URL, relative to --dir"
    )
    group.add_argument(
        "--sha256",
        metavar="HEX|FILE",
        help="expected SHA-256: 64 hex digits for a single URL, or a sha256sum file whose "
        "lines are matched to the files by name",
    )
    group.add_argument(
        "--checksums",
        metavar="FILE",
        help="a checksum file of any algorithm (SHA256SUMS, MD5SUMS, SHA512SUMS, B2SUMS; GNU "
        "or BSD --tag format): each file listed there is verified, matched by its path "
        "relative to --dir or its name; files it does not list are not verified",
    )


def _add_transfer_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("transfer")
    group.add_argument(
        "-j",
        "--workers",
        type=_positive_int,
        metavar="N",
        help="files downloaded in parallel (default 8)",
    )
    group.add_argument(
        "-x",
        "--connections",
        type=_positive_int,
        metavar="N",
        help="most connections per file (default: 8 over HTTP, 1 for object stores)",
    )
    group.add_argument(
        "--rate-limit",
        type=_size,
        metavar="RATE",
        help="bytes per second across all files: 50M = 50 MiB/s, 500kB = 500,000 B/s",
    )
    group.add_argument(
        "--limit-bph", type=_size, metavar="SIZE", help="bytes per hour budget (e.g. 100G)"
    )
    group.add_argument("--max-per-host", type=_positive_int, metavar="N", help="connections/host")
    group.add_argument(
        "--retries",
        type=_positive_int,
        metavar="N",
        help="attempts without progress before giving up on a file (default 8)",
    )
    group.add_argument(
        "--stall-timeout", type=_positive_float, metavar="S", help="no byte for S seconds: retry"
    )
    group.add_argument("--connect-timeout", type=_positive_float, metavar="S")
    group.add_argument(
        "-H",
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="extra HTTP header (repeatable)",
    )


def _add_batch_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("batch")
    group.add_argument(
        "--sync",
        action="store_true",
        help="after the batch, delete files this tool downloaded from the same templates or "
        "prefixes that are gone at the source (never a file it did not create)",
    )
    group.add_argument(
        "--dry-run",
        action="store_true",
        help="print the plan (files and bytes: total, present, to fetch) and download nothing",
    )


def _add_extract_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("after the download")
    group.add_argument(
        "--extract",
        type=_processor,
        default=None,
        metavar="SPEC",
        help="extract each verified archive, e.g. 'untar', 'auto', 'unzip:into=out', "
        "'untar:route=*.jpg=images,*.json=annotations:delete' (see docs/extraction.md); "
        "reruns skip archives already extracted",
    )


def _add_aria2c_options(parser: argparse.ArgumentParser) -> None:
    """aria2c's spellings, where the meaning matches (see the table in docs/cli.md); ``-i``
    also reads aria2c's input-file format, and ``-d``, ``-o``, ``-j``, ``-x`` and
    ``--connect-timeout`` are spelled as in aria2c already."""
    group = parser.add_argument_group("aria2c spellings")
    group.add_argument(
        "-c",
        "--continue",
        "--continue=true",
        "--continue=false",
        dest="aria2c_continue",
        action="store_true",
        help="accepted and ignored: partial files always resume",
    )
    group.add_argument(
        "-s", "--split", type=_positive_int, metavar="N", help="connections per file (as -x)"
    )
    group.add_argument(
        "--max-connection-per-server",
        dest="connections",
        type=_positive_int,
        metavar="N",
        help="as -x",
    )
    group.add_argument(
        "--max-concurrent-downloads",
        dest="workers",
        type=_positive_int,
        metavar="N",
        help="as -j",
    )
    group.add_argument(
        "--max-tries",
        type=_tries,
        metavar="N",
        help="as --retries (attempts without progress; aria2c's 0, unlimited, is refused)",
    )
    group.add_argument(
        "--checksum",
        metavar="TYPE=HEX",
        help="expected digest of a single URL: sha-1, sha-224, sha-256, sha-384, sha-512, md5",
    )
    group.add_argument(
        "--max-overall-download-limit",
        dest="rate_limit",
        type=_rate_or_unlimited,
        metavar="RATE",
        help="as --rate-limit (K and M are KiB and MiB, as in aria2c); 0: no limit",
    )


def _tries(text: str) -> int:
    if text.strip() == "0":
        raise argparse.ArgumentTypeError(
            "0 (unlimited) is not supported: resumable gives up after N attempts without "
            "progress (an attempt that fetched bytes resets the count); give a number"
        )
    return _positive_int(text)


def _rate_or_unlimited(text: str) -> int | None:
    return None if text.strip() == "0" else _size(text)


def _processor(spec: str) -> Any:
    from .extract import from_spec

    try:
        return from_spec(spec)
    except InvalidArgument as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_output_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("output")
    group.add_argument(
        "--progress",
        choices=("auto", "bars", "lines", "none"),
        default="auto",
        help="bars on a terminal, log lines otherwise (default: auto)",
    )
    group.add_argument(
        "--progress-interval",
        type=_positive_float,
        default=10.0,
        metavar="S",
        help="seconds between progress lines (default 10)",
    )
    group.add_argument(
        "-q", "--quiet", action="store_true", help="no progress and no summary; errors only"
    )
    group.add_argument("-v", "--verbose", action="store_true", help="log resumes and retries")
    group.add_argument("--version", action="version", version=f"resumable {__version__}")


def build_demo_parser() -> argparse.ArgumentParser:
    """``resumable demo``'s parser."""
    demo = argparse.ArgumentParser(
        prog="resumable demo",
        description="Serve generated shards on 127.0.0.1 and download them with progress, "
        "interrupting one transfer and resuming it, then print the verified result.",
    )
    demo.add_argument("-d", "--dest", type=Path, help="keep the files here (default: temp dir)")
    demo.add_argument("-n", "--shards", type=int, default=8, help="number of shards (default 8)")
    demo.add_argument("--size", type=int, default=16, help="MiB per shard (default 16)")
    demo.add_argument("-j", "--workers", type=int, default=4, help="parallel files (default 4)")
    demo.add_argument("-v", "--verbose", action="store_true", help="log retries and resumes")
    return demo


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


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
    if retries is not None:
        options["retry"] = RetryPolicy(attempts=retries)
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
