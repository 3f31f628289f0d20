"""The command line's inputs: positional URLs, ``-i FILE``, ``-o`` and ``--sha256``, checked
before any traffic and turned into what ``download_many`` takes.

Everything wrong here is a :class:`UsageError` (exit code 2) naming the problem: an argument
that is not a URL, a malformed template, a links file or object list with a bad line, a
``--sha256`` that is neither 64 hex digits nor a readable checksum file, or a file missing from
that checksum file. Nothing has been fetched when one is raised.

``--sha256 FILE`` takes ``sha256sum`` output (``<hex>  <name>`` or ``<hex> *<name>``) or the
BSD form (``SHA256 (<name>) = <hex>``). Each file is matched by its destination name (the
links file's name, ``-o``, or the URL's object name), then by its base name. Templates are then
expanded here, so that every shard gets its digest; a prefix cannot be matched before it is
listed, and ``--sync`` needs the template itself, so both are refused with a checksum file.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

from .batch import templates
from .batch.aria2c_input import aria2c_checksum, is_aria2c_input, read_aria2c_input
from .batch.items import Item
from .errors import InvalidArgument
from .sources import source_class
from .urls import redact, redact_text

__all__ = ["UsageError", "batch_inputs", "checksums_option", "read_checksums"]

_HEX64 = re.compile(r"[0-9a-fA-F]{64}")


class UsageError(Exception):
    """Bad command-line input, found before any download: exit code 2.

    Its message goes through :func:`~resumable.urls.redact_text` like every error of ours:
    it quotes a links-file line or an argument, which may hold a URL's password or a token."""

    def __init__(self, message: str) -> None:
        super().__init__(redact_text(message))


def batch_inputs(args: argparse.Namespace) -> tuple[list[object], int | None]:
    """The batch inputs and the number of files if known (``None`` with a prefix).

    An absolute ``-o`` with no ``--dir`` is read as curl reads it: ``--dir`` becomes its
    directory (``args`` is updated, so the summary names where the file went).
    """
    if args.out is not None and os.path.isabs(args.out) and args.dir == Path("."):
        args.dir, args.out = Path(args.out).parent, Path(args.out).name
    urls: list[str] = list(args.urls)
    inputs: list[object] = []
    total: int | None = 0
    if args.input_file is not None:
        links, base_used = _read_input_file(args.input_file, urls)
        inputs.extend(links)
        total = len(links)
        if base_used:
            urls = []
    for position, url in enumerate(urls, 1):
        if "://" not in url:
            raise UsageError(_not_a_url(position, url))
        try:
            source_class(urlsplit(url).scheme)  # an unknown scheme fails here, not per file
            count = templates.count(url) if templates.has_template(url) else 1
        except (InvalidArgument, ValueError) as exc:
            raise UsageError(str(exc)) from None
        inputs.append(url)
        total = None if total is None or url.endswith("/") else total + count
    if not inputs:
        raise UsageError("nothing to download: give URLs or -i FILE (see --help)")
    digest: str | None = args.sha256
    sums = None
    if digest is not None and not _HEX64.fullmatch(digest):
        sums = read_checksums(digest)
    spec = _checksum_option(getattr(args, "checksum", None))
    if args.out is not None or (digest is not None and sums is None) or spec is not None:
        inputs = [_single_item(inputs, args.out, digest, sums)]
        if spec is not None:
            inputs = [_with_spec(inputs[0], spec)]
    elif sums is not None:
        inputs = _with_checksums(inputs, sums, sync=args.sync)
    return inputs, total


def _checksum_option(value: str | None) -> str | None:
    """aria2c's ``--checksum=sha-256=HEX`` as ``sha256:hex`` (``None`` when not given)."""
    if value is None:
        return None
    try:
        return aria2c_checksum(value)
    except InvalidArgument as exc:
        raise UsageError(str(exc)) from None


def _with_spec(item: object, spec: str) -> Item:
    from .batch.checksums import with_digest

    assert isinstance(item, Item)
    try:
        return with_digest(item, spec)
    except InvalidArgument as exc:
        raise UsageError(str(exc)) from None


def _not_a_url(position: int, text: str) -> str:
    """The message for an input that is not a URL, which it does not quote: it may be a
    header's value or a token that slipped out of an unquoted ``-H 'Name: value'``."""
    if text == "demo":
        return "not a URL: 'demo'; the demo runs with 'demo' as the first argument"
    return (
        f"not a URL: input {position} (counting the URLs given; not shown, as it may be a "
        "secret); a URL needs a scheme such as https://, and a header goes after -H"
    )


def _single_item(
    inputs: list[object], out: str | None, digest: str | None, sums: dict[str, str] | None
) -> Item:
    url = inputs[0]
    if (
        len(inputs) != 1
        or not isinstance(url, str)
        or url.endswith("/")
        or templates.has_template(url)
    ):
        raise UsageError(
            "-o, --sha256 HEX and --checksum apply to a single URL (no template, prefix or -i); "
            "for many files give --sha256 a checksum file"
        )
    if sums is not None:
        digest = _lookup(sums, out or _object_name(url))
    return Item(url, dest=out, sha256=digest)


def _with_checksums(inputs: list[object], sums: dict[str, str], *, sync: bool) -> list[object]:
    items: list[object] = []
    for raw in inputs:
        if isinstance(raw, Item):  # from an aria2c input file
            name = str(raw.dest) if raw.dest is not None else _object_name(raw.url)
            items.append(_add_sha256(raw, _lookup(sums, name)))
            continue
        if isinstance(raw, templates.Link):
            items.append(Item(raw.url, dest=raw.name, sha256=_lookup(sums, raw.name)))
            continue
        assert isinstance(raw, str)
        if raw.endswith("/"):
            raise UsageError(
                f"{redact(raw)}: a prefix's objects are only known once listed, so a checksum file "
                "cannot be matched to them"
            )
        if templates.has_template(raw):
            if sync:
                raise UsageError(
                    "--sync needs the template itself and a checksum file needs it expanded: "
                    "use one or the other"
                )
            urls = list(templates.iter_expand(raw))
        else:
            urls = [raw]
        items.extend(Item(url, sha256=_lookup(sums, _object_name(url))) for url in urls)
    return items


def _add_sha256(item: Item, digest: str) -> Item:
    from .batch.checksums import with_digest

    try:
        return with_digest(item, f"sha256:{digest}")
    except InvalidArgument as exc:
        raise UsageError(str(exc)) from None


def _lookup(sums: dict[str, str], name: str) -> str:
    digest = sums.get(name) or sums.get(PurePosixPath(name).name)
    if digest is None:
        raise UsageError(f"{name!r} is not in the checksum file given to --sha256")
    return digest


def _object_name(url: str) -> str:
    name = unquote(PurePosixPath(urlsplit(url).path).name)
    if not name:
        raise UsageError(f"{redact(url)}: no file name at the end of this URL; use -o NAME")
    return name


def read_checksums(path: str) -> dict[str, str]:
    """``{name: sha256}`` from a ``sha256sum`` (GNU or BSD style) file, for ``--sha256 FILE``
    (``--checksums FILE`` takes any algorithm: see :func:`checksums_option`)."""
    if not Path(path).is_file():
        raise UsageError(
            f"--sha256 must be 64 hex digits or a sha256sum file, got {path!r} (no such file)"
        )
    sums = checksums_option(path, "--sha256")
    other = sorted({spec.partition(":")[0] for spec in sums.values()} - {"sha256"})
    if other:
        raise UsageError(f"{path} lists {', '.join(other)} digests: give it to --checksums")
    return {name: spec.partition(":")[2] for name, spec in sums.items()}


def checksums_option(path: str | None, option: str = "--checksums") -> dict[str, str]:
    """``{name: "algo:hex"}`` from the checksum file given to ``option`` (any algorithm);
    an empty mapping when the option is not given."""
    if path is None:
        return {}
    from .batch.checksums import read_checksums as read

    if path != "-" and not Path(path).is_file():
        raise UsageError(f"{option}: no such checksum file: {path!r}")
    try:
        return read(sys.stdin.read() if path == "-" else Path(path))
    except InvalidArgument as exc:
        raise UsageError(str(exc)) from None


def _read_input_file(name: str, urls: list[str]) -> tuple[list[object], bool]:
    """A links file or a JSON object list (text starting with ``[``); returns the items and
    whether the positional URL was used as the object list's base."""
    try:
        text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise UsageError(f"cannot read {name}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"{name} is not UTF-8 text ({exc.reason})") from None
    source = "<stdin>" if name == "-" else name
    try:
        if text.lstrip().startswith("["):
            if len(urls) != 1:
                raise UsageError(
                    f"{source} is a JSON object list: give exactly one base URL for its names, "
                    "e.g. resumable -i objects.json gs://bucket/dir"
                )
            try:
                names = json.loads(text)
            except ValueError as exc:
                raise UsageError(f"{source} is not valid JSON: {exc}") from None
            if not isinstance(names, list):
                raise UsageError(f"{source} must hold a JSON array of object names")
            return list(templates.read_object_list(names, urls[0])), True
        if is_aria2c_input(text.splitlines()):
            return list(read_aria2c_input(text.splitlines(), source)), False
        lines = _NamedLines(text.splitlines(), source)
        return list(templates.read_links(lines)), False
    except InvalidArgument as exc:
        raise UsageError(str(exc)) from None


class _NamedLines(list[str]):
    """Lines that carry a ``name``, so ``read_links`` errors point at the file."""

    def __init__(self, lines: list[str], name: str) -> None:
        super().__init__(lines)
        self.name = name
