"""Inputs for batch downloads: links files and object lists, as ``(name, url)`` pairs.

A links file (SA-1B ships ``file_name<TAB>cdn_link`` lines; aria2c and wget take bare URLs) or,
as with AIStore's ``--object-list``, a JSON array of names under a base URL. Read lazily, and
malformed input is rejected with a message that shows what is wrong before any network traffic.
Brace templates are in :mod:`resumable.batch.templates` (which re-exports these names).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from typing import NamedTuple
from urllib.parse import quote, unquote, urlsplit

from ..errors import InvalidArgument, LocalError
from ..urls import redact_text

__all__ = ["Link", "read_links", "read_object_list"]

_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S+", re.ASCII)
_JSON_TYPES = {dict: "object", str: "string", int: "number", float: "number", bool: "boolean"}
_JSON_TYPES[type(None)] = "null"
_HEADER_FIELD = re.compile(r"[A-Za-z][A-Za-z0-9_ -]*", re.ASCII)  # "file_name", "cdn_link"


class Link(NamedTuple):
    """One line of a links file or one name of an object list: ``(name, url)``.

    A tuple, so it unpacks as ``name, url``; ``download_many`` recognises it and downloads
    ``url`` to ``dest_dir/name`` (the name is checked like any destination).
    """

    name: str
    url: str


def read_links(
    path_or_lines: str | os.PathLike[str] | Iterable[str] | Iterable[bytes],
) -> Iterator[Link]:
    """Yield ``(name, url)`` from a links file, lazily.

    Accepted lines: ``name<TAB>url`` (SA-1B; the name may contain spaces), ``name url``, or just a
    URL (the name is its last path segment, percent-decoded, without the query string, as aria2c
    and wget name files). Blank lines, ``#`` comments and a trailing ``# comment`` are skipped, and
    so is a header such as SA-1B's ``file_name<TAB>cdn_link``: a first line of plain words with no
    URL. Templates in URLs are not expanded, and names are not checked against the destination
    (that is the batch's job, per item). Anything else raises :class:`InvalidArgument` naming the
    file and line; a missing file raises at call time. ``path_or_lines`` is a path (``str`` or
    ``os.PathLike``, read as UTF-8) or any iterable of lines (``str``, or ``bytes`` in UTF-8, such
    as an open file, whose ``name`` then appears in errors).
    """
    if isinstance(path_or_lines, (str, os.PathLike)):
        path = os.fspath(path_or_lines)
        if isinstance(path, str) and "\n" in path:
            raise InvalidArgument(
                "read_links() takes a path or lines; split text with splitlines()"
            )
        if not os.path.isfile(path):
            raise InvalidArgument(f"links file {path!r} does not exist or is not a file")
        return _parse_links(_file_lines(path), str(path))
    if isinstance(path_or_lines, bytes):
        raise InvalidArgument("read_links() takes a path or an iterable of lines, not bytes")
    if not isinstance(path_or_lines, Iterable):
        raise InvalidArgument(
            f"read_links() takes a path or an iterable of lines, got {path_or_lines!r}"
        )
    source = str(getattr(path_or_lines, "name", "<lines>"))
    return _parse_links(enumerate(path_or_lines, 1), source)


def _file_lines(path: str) -> Iterator[tuple[int, str | bytes]]:
    try:
        with open(path, "rb") as f:
            yield from enumerate(f, 1)
    except OSError as exc:  # unreadable (permissions, I/O error): ours, typed
        raise LocalError(f"cannot read the links file {path}: {exc.strerror}", path=path) from exc


def _parse_links(lines: Iterable[tuple[int, str | bytes]], source: str) -> Iterator[Link]:
    first = True
    for lineno, raw in lines:
        if isinstance(raw, bytes):
            try:
                raw = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise _bad_line(source, lineno, f"not UTF-8 ({exc.reason})", "") from None
        line = raw.lstrip("\ufeff") if lineno == 1 else raw
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        fields = [f.strip() for f in line.split("\t")] if "\t" in line else line.split()
        fields = [f for f in fields if f]
        for k in range(1, len(fields)):
            if fields[k].startswith("#"):
                del fields[k:]
                break
        is_header = first and all(_HEADER_FIELD.fullmatch(f) for f in fields)
        first = False
        if is_header:
            continue
        if len(fields) == 2 and _URL.fullmatch(fields[1]):
            yield Link(fields[0], fields[1])
        elif len(fields) == 1 and _URL.fullmatch(fields[0]):
            yield Link(_name_from_url(fields[0], source, lineno), fields[0])
        else:
            hint = "the name comes first" if len(fields) == 2 and _URL.fullmatch(fields[0]) else ""
            why = f"expected 'name<TAB>url', 'name url' or a URL ({len(fields)} fields)"
            raise _bad_line(source, lineno, f"{why}; {hint}" if hint else why, stripped)


def _name_from_url(url: str, source: str, lineno: int) -> str:
    name = unquote(urlsplit(url).path.rpartition("/")[2])
    if not name:
        raise _bad_line(
            source, lineno, "no file name at the end of this URL; write 'name url'", url
        )
    return name


def _bad_line(source: str, lineno: int, why: str, line: str) -> InvalidArgument:
    shown = redact_text(line)  # a line, not a URL: hide every URL's credentials in it
    shown = shown if len(shown) <= 200 else shown[:200] + "..."
    err = InvalidArgument(f"{source}, line {lineno}: {why}" + (f": {shown!r}" if line else ""))
    err.source, err.lineno = source, lineno  # type: ignore[attr-defined]
    return err


def read_object_list(
    names: str | os.PathLike[str] | Iterable[str], base_url: str
) -> Iterator[Link]:
    """Yield ``(name, url)`` for each object name under ``base_url`` (AIStore ``--object-list``).

    ``names`` is a path to a JSON file holding an array of object names, or the names themselves.
    A file or list is validated entirely here, before the first download starts; other iterables
    are checked as they are consumed. Names keep their ``/`` separators. For ``http(s)`` the name is
    percent-quoted (``quote(name, safe="/")``: spaces, ``#``, ``?``, ``%`` and the like are
    escaped); for every other scheme (``s3://``, ``gs://``, ``file://``...) it is appended as is,
    because fsspec takes paths literally and would look for a key named ``a%20b``.
    """
    import json

    if not isinstance(base_url, str) or not _URL.fullmatch(base_url):
        raise InvalidArgument(f"base_url must be a URL such as https://host/dir, got {base_url!r}")
    parts = urlsplit(base_url)
    if parts.query or parts.fragment or "?" in base_url or "#" in base_url:
        raise InvalidArgument("base_url must not have a query string or fragment", url=base_url)
    base = base_url.rstrip("/") + "/"
    percent = parts.scheme.lower() in ("http", "https")
    source = "object list"
    if isinstance(names, (str, os.PathLike)):
        source = repr(os.fspath(names))
        try:
            with open(names, encoding="utf-8-sig") as f:
                names = json.load(f)
        except OSError as exc:
            raise InvalidArgument(f"cannot read object list {source}: {exc.strerror}") from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidArgument(f"object list {source} is not valid JSON: {exc}") from None
        if not isinstance(names, list):
            raise InvalidArgument(
                f"object list {source} must hold a JSON array of strings, "
                f"got a JSON {_JSON_TYPES.get(type(names), type(names).__name__)}"
            )
    elif isinstance(names, (bytes, dict)) or not isinstance(names, Iterable):
        raise InvalidArgument(f"names must be a path or a list of str, got {type(names).__name__}")
    if isinstance(names, (list, tuple)):
        for index, name in enumerate(names):
            _check_name(name, index, source)
    return _object_urls(names, base, percent, source)


def _object_urls(names: Iterable[str], base: str, percent: bool, source: str) -> Iterator[Link]:
    for index, name in enumerate(names):
        _check_name(name, index, source)
        yield Link(name, base + (quote(name, safe="/") if percent else name))


def _check_name(name: object, index: int, source: str) -> None:
    if not isinstance(name, str) or not name:
        raise InvalidArgument(
            f"{source}: element {index} must be a non-empty string (an object name), got {name!r}"
        )
