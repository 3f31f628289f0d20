"""Checksum files (``SHA256SUMS``, ``MD5SUMS``, ``B2SUMS``...) read and matched to batch items.

:func:`read_checksums` reads the two formats ``sha256sum``/``md5sum``/``b2sum`` write and
``--check`` reads:

- GNU: ``<hex>  <name>`` (text mode) or ``<hex> *<name>`` (binary mode); ``<hex> <name>`` with a
  single space (BSD ``md5 -r``) too. A name holding a backslash, a newline or a carriage return
  is escaped (``\\\\``, ``\\n``, ``\\r``) and its line starts with a backslash, as GNU writes it.
  The algorithm comes from the digest's length (32 hex digits md5, 40 sha1, 56 sha224, 64
  sha256, 96 sha384, 128 sha512), unless the file's name says otherwise (``B2SUMS``:
  blake2b) or ``algorithm=`` is given.
- BSD tags (``sha256sum --tag``, ``md5`` on macOS, ``openssl dgst``): ``SHA256 (<name>) = <hex>``
  with ``MD5``, ``SHA1``, ``SHA224``, ``SHA256``, ``SHA384``, ``SHA512``, ``BLAKE2b`` (and
  ``SHA2-256``, ``SHA3-256``... as newer ``cksum`` and OpenSSL write them).

Blank lines and ``#`` comments are skipped; a name listed as ``./a/b`` is ``a/b``. A line that is
none of these is an :class:`InvalidArgument` naming the line number.

:class:`ChecksumTable` matches a batch item to its entry by the item's destination relative to
``dest_dir`` and then by its base name (see :meth:`ChecksumTable.lookup`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from collections.abc import Mapping
from pathlib import PurePosixPath

from ..errors import InvalidArgument
from ..verify import parse_expected
from .items import Item, Work

__all__ = ["ChecksumTable", "checksum_table", "read_checksums", "with_digest"]

log = logging.getLogger("resumable")

ChecksumsArg = str | os.PathLike[str] | Mapping[str, str]

# The algorithm of an untagged (GNU) line, by the number of hex digits.
_BY_LENGTH = {32: "md5", 40: "sha1", 56: "sha224", 64: "sha256", 96: "sha384", 128: "sha512"}
_GNU = re.compile(r"(?P<hex>[0-9a-fA-F]+) (?P<mode>[ *]?)(?P<name>.+)", re.S)
_TAG = re.compile(
    r"(?P<tag>[A-Za-z][A-Za-z0-9/-]*) ?\((?P<name>.+)\) ?= ?(?P<hex>[0-9a-fA-F]+)", re.S
)
_UNESCAPE = {"\\\\": "\\", "\\n": "\n", "\\r": "\r"}
_ESCAPES = re.compile(r"\\.")
# Algorithm names in a checksum file's own name (SHA512SUMS, data.md5, B2SUMS...).
_FILE_HINTS = (
    ("sha512", "sha512"),
    ("sha384", "sha384"),
    ("sha256", "sha256"),
    ("sha224", "sha224"),
    ("sha1", "sha1"),
    ("md5", "md5"),
    ("blake2", "blake2b"),
    ("b2", "blake2b"),
)


def read_checksums(
    path_or_text: str | os.PathLike[str], *, algorithm: str | None = None
) -> dict[str, str]:
    """``{name: "algorithm:hex"}`` from a checksum file (GNU or BSD format, see the module).

    Args:
        path_or_text: the file's path, or its text. A ``str`` is text when it holds a newline
            or is itself one checksum line (``"<hex>  <name>"``, ``"SHA256 (<name>) = <hex>"``);
            any other ``str`` and every ``os.PathLike`` is a path, which must exist.
        algorithm: the algorithm of untagged lines, for files whose digest length does not
            say it (``b2sum``'s 128 hex digits look like SHA-512). Default: from the file's name
            when it names one (``B2SUMS``, ``SHA512SUMS``, ``x.md5``), else from the length.

    Raises:
        InvalidArgument: no such file, a malformed line (its number is given), one name listed
            twice with different digests of one algorithm, or nothing listed at all. A name
            listed with several algorithms keeps its first.

    >>> read_checksums("d41d8cd98f00b204e9800998ecf8427e *./empty.txt\\n")
    {'empty.txt': 'md5:d41d8cd98f00b204e9800998ecf8427e'}
    """
    text, source = _text_of(path_or_text)
    hint = algorithm.lower().replace("-", "") if algorithm else _hint(source)
    sums: dict[str, tuple[str, int]] = {}
    for lineno, line in enumerate(text.split("\n"), 1):
        entry = _parse_line(line.removesuffix("\r"), hint)
        if entry is None:
            continue
        if isinstance(entry, str):
            raise InvalidArgument(f"{source}, line {lineno}: {entry}: {_excerpt(line)}")
        name, value = entry
        earlier = sums.get(name)
        if earlier is None:
            sums[name] = (value, lineno)
        elif earlier[0] != value and _algorithm(earlier[0]) == _algorithm(value):
            raise InvalidArgument(
                f"{source}: {name!r} is listed twice with different digests "
                f"(lines {earlier[1]} and {lineno})"
            )
    if not sums:
        raise InvalidArgument(f"{source} lists no files")
    return {name: value for name, (value, _) in sums.items()}


def _algorithm(spec: str) -> str:
    return spec.partition(":")[0]


def _text_of(path_or_text: object) -> tuple[str, str]:
    """The text and how to name it in errors (the path, or ``<text>``)."""
    if isinstance(path_or_text, str) and ("\n" in path_or_text or _looks_like_a_line(path_or_text)):
        return path_or_text.removeprefix("\ufeff"), "<checksum text>"
    if not isinstance(path_or_text, (str, os.PathLike)) or not os.fspath(path_or_text):
        raise InvalidArgument(
            f"checksums must be a checksum file's path or text, got {path_or_text!r}"
        )
    path = os.fspath(path_or_text)
    if not isinstance(path, str) or not os.path.isfile(path):
        raise InvalidArgument(f"checksum file {path!r} does not exist or is not a file")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise InvalidArgument(f"cannot read the checksum file {path!r}: {exc.strerror}") from None
    try:
        return data.decode("utf-8-sig"), path
    except UnicodeDecodeError as exc:
        raise InvalidArgument(f"checksum file {path!r} is not UTF-8 text ({exc.reason})") from None


def _looks_like_a_line(text: str) -> bool:
    entry = _parse_line(text, None)
    return isinstance(entry, tuple)


def _hint(source: str) -> str | None:
    name = os.path.basename(source).lower()
    for marker, algorithm in _FILE_HINTS:
        if marker in name:
            return algorithm
    return None


def _parse_line(line: str, hint: str | None) -> tuple[str, str] | str | None:
    """``(name, "algo:hex")``; ``None`` for a blank line or a comment; else why it is bad."""
    body = line.lstrip(" \t")
    if not body.strip() or body.startswith("#"):
        return None
    escaped = body.startswith("\\")
    if escaped:
        body = body[1:]
    plain = _GNU.fullmatch(body)
    if plain is not None:
        algorithm = _length_algorithm(len(plain["hex"]), hint)
        if algorithm is not None:
            return _entry(plain["name"], algorithm, plain["hex"], escaped)
    tagged = _TAG.fullmatch(body)
    if tagged is not None:
        algorithm = _tag_algorithm(tagged["tag"], len(tagged["hex"]))
        if algorithm is None:
            return f"unknown algorithm {tagged['tag']!r} of {len(tagged['hex'])} hex digits"
        return _entry(tagged["name"], algorithm, tagged["hex"], escaped)
    if plain is not None:
        return f"a digest of {len(plain['hex'])} hex digits matches no known algorithm"
    return "expected '<hex>  <name>', '<hex> *<name>' or 'SHA256 (<name>) = <hex>'"


def _entry(name: str, algorithm: str, digest: str, escaped: bool) -> tuple[str, str] | str:
    if escaped:
        name = _ESCAPES.sub(lambda m: _UNESCAPE.get(m[0], m[0]), name)
    key = _key(name)
    if not key:
        return "no file name"
    return key, f"{algorithm}:{digest.lower()}"


def _tag_algorithm(tag: str, length: int) -> str | None:
    """``SHA256``, ``SHA2-256``, ``SHA3-256``, ``BLAKE2b``, ``BLAKE2b-256``, ``MD5``... as a
    hashlib name, checked against the digest's length."""
    import hashlib

    name = tag.lower().replace("sha2-", "sha").replace("-", "_")
    if name.startswith("blake2b"):  # BLAKE2b-256: a shorter blake2b, which hashlib cannot name
        name = "blake2b" if name in ("blake2b", "blake2b_512") else ""
    elif name.startswith("sha3") and not name.startswith("sha3_"):
        name = "sha3_" + name[3:]
    if name not in hashlib.algorithms_available or name.startswith("shake"):
        return None
    return name if hashlib.new(name).digest_size * 2 == length else None


def _length_algorithm(length: int, hint: str | None) -> str | None:
    import hashlib

    if (
        hint is not None
        and hint in hashlib.algorithms_available
        and hashlib.new(hint).digest_size * 2 == length
    ):
        return hint
    return _BY_LENGTH.get(length)


def _key(name: str) -> str:
    """A listed name as a relative POSIX path: ``./a//b`` is ``a/b``."""
    return "/".join(part for part in PurePosixPath(name).parts if part not in ("", "."))


def _excerpt(line: str) -> str:
    return repr(line[:80] + ("..." if len(line) > 80 else ""))


# -- matching a batch's items ------------------------------------------------------------------


class ChecksumTable:
    """Expected digests by name, for a batch: ``lookup(rel)`` gives an item's ``algo:hex``."""

    def __init__(self, sums: Mapping[str, str]) -> None:
        self._sums: dict[str, str] = {}
        self._by_base: dict[str, list[str]] = {}  # base name -> listed keys
        for name, value in sums.items():
            if not isinstance(name, str) or not _key(name):
                raise InvalidArgument(f"checksums: a name must be a non-empty str, got {name!r}")
            key, spec = _key(name), _spec(name, value)
            if self._sums.get(key, spec) != spec:
                raise InvalidArgument(f"checksums: {key!r} is given twice with different digests")
            if key not in self._sums:
                self._by_base.setdefault(key.rpartition("/")[2], []).append(key)
            self._sums[key] = spec
        self._warned = False

    def __len__(self) -> int:
        return len(self._sums)

    def attach(self, work: Work) -> Work | tuple[object, Exception]:
        """``work`` with its entry's digest to check; ``(item, error)`` for a conflict."""
        try:
            spec = self.lookup(work.rel)
            if spec is None:
                return work
            return dataclasses.replace(work, item=with_digest(work.item, spec))
        except InvalidArgument as exc:
            return (work.item, exc)

    def lookup(self, rel: str) -> str | None:
        """The expected digest of the item written to ``dest_dir/rel``, or ``None``.

        The entry named ``rel`` itself; else the entries whose path and ``rel`` end alike, one
        being the tail of the other (``x.tar`` listed for ``train/x.tar``, or
        ``train/x.tar`` listed for ``x.tar``), the longest shared tail winning. ``val/x.tar``
        is never taken for ``train/x.tar``. Entries that tie with different digests raise
        :class:`InvalidArgument` (that item fails) rather than guess.
        """
        key = _key(rel)
        found = self._sums.get(key)
        if found is not None:
            return found
        parts = key.split("/")
        best: list[str] = []
        longest = 0
        for other in self._by_base.get(parts[-1], ()):
            listed = other.split("/")
            shared = _shared_tail(parts, listed)
            if shared < min(len(parts), len(listed)):
                continue  # different folders: another file of the same name
            if shared > longest:
                best, longest = [other], shared
            elif shared == longest:
                best.append(other)
        specs = {self._sums[other] for other in best}
        if len(specs) > 1:
            raise InvalidArgument(
                f"{rel!r} matches {', '.join(sorted(best))} in the checksum file, with "
                "different digests; give the item the destination listed there"
            )
        if specs:
            return specs.pop()
        self._not_listed(rel)
        return None

    def _not_listed(self, rel: str) -> None:
        if not self._warned:
            self._warned = True
            log.warning(
                "%s is not in the checksum file: downloaded without a digest to check "
                "(other such files are logged at DEBUG)",
                rel,
            )
        else:
            log.debug("%s is not in the checksum file: no digest to check", rel)


def _shared_tail(a: list[str], b: list[str]) -> int:
    """How many trailing path components ``a`` and ``b`` share."""
    n = 0
    while n < min(len(a), len(b)) and a[-1 - n] == b[-1 - n]:
        n += 1
    return n


def _spec(name: str, value: object) -> str:
    """``algo:hex`` validated (a bare hex digest gets its algorithm from its length)."""
    if isinstance(value, str) and ":" not in value:
        algorithm = _BY_LENGTH.get(len(value.strip()))
        if algorithm is None:
            raise InvalidArgument(
                f"checksums[{name!r}]: give 'algorithm:hex'; {value!r} has no known length"
            )
        value = f"{algorithm}:{value.strip()}"
    if not isinstance(value, str):
        raise InvalidArgument(f"checksums[{name!r}] must be 'algorithm:hex', got {value!r}")
    try:
        ((algorithm, digest),) = parse_expected(checksum=value).items()
    except InvalidArgument as exc:
        raise InvalidArgument(f"checksums[{name!r}]: {exc}") from None
    return f"{algorithm}:{digest}"


def checksum_table(checksums: object) -> ChecksumTable | None:
    """``checksums=`` of a batch call, checked before any traffic: ``None``, a mapping
    ``{name: "algo:hex"}``, or a checksum file's path or text (:func:`read_checksums`)."""
    if checksums is None:
        return None
    if isinstance(checksums, Mapping):
        table = ChecksumTable(checksums)
        if not len(table):
            raise InvalidArgument("checksums is an empty mapping")
        return table
    if isinstance(checksums, (str, os.PathLike)):
        return ChecksumTable(read_checksums(checksums))
    raise InvalidArgument(
        f"checksums must be a checksum file's path or text, or a mapping, got {checksums!r}"
    )


def with_digest(item: Item, spec: str) -> Item:
    """``item`` also checked against ``spec`` (``algo:hex``); a different digest of the same
    algorithm given with the item itself is an :class:`InvalidArgument`."""
    algorithm, _, digest = spec.partition(":")
    own = parse_expected(item.sha256, item.checksum)
    if algorithm in own:
        if own[algorithm] != digest:
            raise InvalidArgument(
                f"the checksum file's {algorithm} ({digest}) contradicts the item's own "
                f"({own[algorithm]})",
                url=item.url,
            )
        return item
    if algorithm == "sha256":
        return dataclasses.replace(item, sha256=digest)
    given = [item.checksum] if isinstance(item.checksum, str) else list(item.checksum or ())
    return dataclasses.replace(item, checksum=[*given, spec])
