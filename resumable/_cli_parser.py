"""The command line's arguments: the parsers of ``resumable URL...`` and ``resumable demo``.

Options are declared in the ``_add_*`` functions, one per help section (aria2c's spellings in
their own section, where the meaning matches), each with the type that checks it, so a bad value
is a usage error before anything else runs. What the options mean is decided in
:mod:`resumable.cli`, which consumes the parsed namespace.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any, NoReturn

from . import __version__
from .errors import InvalidArgument
from .urls import redact_text

__all__ = ["EXAMPLES", "build_demo_parser", "build_parser", "parse_size"]

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
    with a password among them is shown redacted (:func:`~resumable.urls.redact_text`)."""

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
        "-o",
        "--out",
        metavar="NAME",
        help="file name for a single URL, relative to --dir (an absolute path, as curl's -o, "
        "when --dir is not given)",
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
        "--connect-retries",
        type=_positive_int,
        metavar="N",
        help="attempts while a host cannot be reached at all: unknown, refused (default 3)",
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
    from .extract import from_spec  # the processors load only when --extract is given

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
