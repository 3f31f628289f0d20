"""Inputs for batch downloads: brace templates, links files and object lists.

Dataset shards are named by ranges (``imagenet_train-{000000..000140}.tgz``), so a batch is
usually written as a bash-style brace template, a links file (SA-1B ships ``file_name<TAB>
cdn_link`` lines) or, as with AIStore's ``--object-list``, a JSON array of names under a base URL.
This module turns each of those into names or ``(name, url)`` pairs, lazily, so a template of ten
million shards streams in constant memory, and rejects malformed input with a message that shows
what is wrong before any network traffic.

>>> expand("shard-{000..003}.tar")
['shard-000.tar', 'shard-001.tar', 'shard-002.tar', 'shard-003.tar']
>>> expand("{8..10}"), expand("{10..1..3}"), expand("{a..c}")
(['8', '9', '10'], ['10', '7', '4', '1'], ['a', 'b', 'c'])
>>> expand("{train,val}-{0..1}.tar")
['train-0.tar', 'train-1.tar', 'val-0.tar', 'val-1.tar']
>>> expand("x{,-b}"), expand("{a,b{1..2}}")
(['x', 'x-b'], ['a', 'b1', 'b2'])
>>> count("s-{0000000..9999999}.tar")
10000000
>>> has_template("https://h/shard-{0..9}.tar"), has_template("https://h/a{b}c")
(True, False)
>>> list(read_links(["file_name\\tcdn_link", "sa_1.tar\\thttps://cdn/x/sa_1.tar?sig=1"]))
[Link(name='sa_1.tar', url='https://cdn/x/sa_1.tar?sig=1')]
>>> [link.url for link in read_object_list(["a b.tar", "d/#1.tar"], "https://h/bucket/")]
['https://h/bucket/a%20b.tar', 'https://h/bucket/d/%231.tar']

Brace semantics follow bash 5 (checked against it in the tests), with three deliberate
differences: malformed braces, ``{}`` and malformed ranges raise :class:`InvalidArgument` where
bash would silently keep the text; a step of 0 raises where bash uses 1; and numbers are not
limited to 64 bits. A group with neither a top-level comma nor ``..`` (``a{b}c``) stays literal,
as in bash, so URLs with literal braces survive: see :func:`has_template`.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple, Union
from urllib.parse import quote, unquote, urlsplit

from ..errors import InvalidArgument, LocalError, redact, redact_text

__all__ = [
    "Link",
    "count",
    "expand",
    "has_template",
    "iter_expand",
    "read_links",
    "read_object_list",
]

_MAX_DEPTH = 64
_INT = re.compile(r"[+-]?[0-9]+", re.ASCII)
_LETTER = re.compile(r"[A-Za-z]", re.ASCII)
_PADDED = re.compile(r"-?0[0-9]", re.ASCII)  # bash's rule: "05", "-05", "00"; not "0", "-0", "+05"
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S+", re.ASCII)
_JSON_TYPES = {dict: "object", str: "string", int: "number", float: "number", bool: "boolean"}
_JSON_TYPES[type(None)] = "null"
_HEADER_FIELD = re.compile(r"[A-Za-z][A-Za-z0-9_ -]*", re.ASCII)  # "file_name", "cdn_link"


@dataclass(frozen=True)
class _Range:
    first: int
    last: int
    step: int  # signed: negative when descending
    width: int  # zero-padded width, 0 for none
    letters: bool

    def count(self) -> int:
        return abs(self.last - self.first) // abs(self.step) + 1

    def strings(self, prefix: str = "", suffix: str = "") -> Iterator[str]:
        """Each value between ``prefix`` and ``suffix``: one C-level format call per name."""
        values = range(self.first, self.last + (1 if self.step > 0 else -1), self.step)
        if self.letters:
            return (prefix + chr(v) + suffix for v in values)
        spec = f"{{:0{self.width}d}}" if self.width else "{}"
        return map((_escape(prefix) + spec + _escape(suffix)).format, values)


def _escape(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


@dataclass(frozen=True)
class _Choice:
    alternatives: tuple[_Seq, ...]


_Node = Union[str, _Range, _Choice]  # noqa: UP007 - a runtime alias, and the floor is Python 3.10
_Seq = tuple[_Node, ...]


def iter_expand(template: str) -> Iterator[str]:
    """Yield the names ``template`` expands to, one at a time, in bash order.

    The template is parsed (and every error raised) here, at call time; names are then made on
    demand, so ``itertools.islice(iter_expand("{0..999999999999}"), 3)`` is instant and a batch of
    ten million shards never holds the list. Several braces form a cartesian product whose
    left-most brace varies slowest. A template without braces yields itself.
    """
    return _walk(_parse(template), 0, "")


def expand(template: str, *, limit: int = 10_000_000) -> list[str]:
    """The names ``template`` expands to, as a list (``resumable.expand``).

    The count is computed arithmetically first, so a template that would exceed ``limit`` names
    raises :class:`InvalidArgument` before anything is built; use :func:`iter_expand` to stream.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise InvalidArgument(f"limit must be a non-negative integer, got {limit!r}")
    tree = _parse(template)
    n = _count(tree)
    if n > limit:
        raise InvalidArgument(
            f"template {redact(template)!r} expands to {n:,} names, more than limit={limit:,}; "
            "iterate with resumable.batch.templates.iter_expand() or pass a larger limit",
            url=template,
        )
    return list(_walk(tree, 0, ""))


def count(template: str) -> int:
    """How many names ``template`` expands to, computed without expanding it."""
    return _count(_parse(template))


def has_template(text: str) -> bool:
    """Whether ``text`` holds a brace expression: a ``{...}`` with a top-level ``,`` or ``..``.

    This is how a batch tells a template from a URL that merely contains braces: ``a{b}c`` and
    ``a{}c`` are not templates (bash leaves ``{b}`` alone too), ``{a,b}`` and ``{1..3}`` are. It
    never raises; a true answer does not promise the template is valid (``{1..x}`` is a template
    that :func:`expand` rejects, and so is ``{1..3`` with its ``}`` missing). A false answer
    does promise that :func:`expand` either returns ``[text]`` unchanged or raises (for ``{}``
    or unbalanced braces).
    """
    if not isinstance(text, str):
        return False
    open_groups: list[bool] = []  # per unclosed '{': has a top-level ',' or '..' been seen
    prev = ""
    for ch in text:
        if ch == "{":
            open_groups.append(False)
        elif ch == "}":
            if open_groups and open_groups.pop():
                return True
        elif open_groups and (ch == "," or (ch == "." and prev == ".")):
            open_groups[-1] = True
        prev = ch
    # An unclosed group that already holds a ',' or '..' ("shard-{0..3.tar") is a template with
    # a typo, not a literal URL: say so (expand() raises) rather than fetch a 404.
    return any(open_groups)


# --- parsing ------------------------------------------------------------------------------------


def _bad(template: str, why: str) -> InvalidArgument:
    return InvalidArgument(f"invalid template {redact(template)!r}: {why}", url=template)


def _parse(template: str) -> _Seq:
    if not isinstance(template, str):
        raise InvalidArgument(f"a template must be a str, got {type(template).__name__}")
    close: dict[int, int] = {}
    stack: list[int] = []
    for i, ch in enumerate(template):
        if ch == "{":
            stack.append(i)
            if len(stack) > _MAX_DEPTH:
                raise _bad(template, f"braces nested deeper than {_MAX_DEPTH}")
        elif ch == "}":
            if not stack:
                raise _bad(template, f"unbalanced braces: '}}' at position {i} closes nothing")
            close[stack.pop()] = i
    if stack:
        raise _bad(template, f"unbalanced braces: '{{' at position {stack[-1]} is never closed")
    return _parse_seq(template, 0, len(template), close)


def _parse_seq(t: str, start: int, end: int, close: dict[int, int]) -> _Seq:
    parts: list[_Node] = []
    i = start
    while i < end:
        j = t.find("{", i, end)
        if j < 0:
            parts.append(t[i:end])
            break
        if j > i:
            parts.append(t[i:j])
        parts.extend(_parse_group(t, j, close[j], close))
        i = close[j] + 1
    merged: list[_Node] = []
    for part in parts:  # adjacent literals become one, so a sequence alternates literal/brace
        if isinstance(part, str) and merged and isinstance(merged[-1], str):
            merged[-1] += part
        elif part != "":
            merged.append(part)
    return tuple(merged)


def _parse_group(t: str, o: int, c: int, close: dict[int, int]) -> _Seq:
    """The parts for the group ``t[o:c+1]``: a choice, a range, or literal braces around text."""
    if c == o + 1:
        raise _bad(t, f"empty '{{}}' at position {o}")
    cuts, dots, i = [o], False, o + 1
    while i < c:
        ch = t[i]
        if ch == "{":
            i = close[i]
        elif ch == ",":
            cuts.append(i)
        elif ch == "." and t[i + 1] == ".":
            dots = True
        i += 1
    cuts.append(c)
    if len(cuts) > 2:
        alternatives = tuple(_parse_seq(t, a + 1, b, close) for a, b in itertools.pairwise(cuts))
        return (_Choice(alternatives),)
    if dots:
        return (_parse_range(t, t[o + 1 : c]),)
    return ("{", *_parse_seq(t, o + 1, c, close), "}")


def _parse_range(t: str, body: str) -> _Range:
    fields = body.split("..")
    if len(fields) not in (2, 3):
        raise _bad(
            t, f"malformed range {{{body}}}: expected {{first..last}} or {{first..last..step}}"
        )
    lo, hi = fields[0], fields[1]
    if len(fields) == 3 and not _INT.fullmatch(fields[2]):
        raise _bad(t, f"range {{{body}}}: the step {fields[2]!r} is not an integer")
    step = abs(int(fields[2])) if len(fields) == 3 else 1  # bash ignores the step's sign
    if step == 0:
        raise _bad(t, f"range {{{body}}}: the step must not be 0")
    if _INT.fullmatch(lo) and _INT.fullmatch(hi):
        first, last, letters = int(lo), int(hi), False
        padded = _PADDED.match(lo) or _PADDED.match(hi)
        width = max(len(lo), len(hi)) if padded else 0
    elif _LETTER.fullmatch(lo) and _LETTER.fullmatch(hi):
        first, last, letters, width = ord(lo), ord(hi), True, 0
    else:
        raise _bad(
            t,
            f"range {{{body}}}: the endpoints must both be integers or both single letters, "
            f"got {lo!r} and {hi!r}",
        )
    return _Range(first, last, step if last >= first else -step, width, letters)


# --- counting and walking -----------------------------------------------------------------------


def _count(seq: _Seq) -> int:
    return math.prod(_count_node(node) for node in seq)


def _count_node(node: _Node) -> int:
    if isinstance(node, str):
        return 1
    if isinstance(node, _Range):
        return node.count()
    return sum(_count(alt) for alt in node.alternatives)


def _strings(node: _Range | _Choice) -> Iterator[str]:
    if isinstance(node, _Range):
        return node.strings()
    return (s for alt in node.alternatives for s in _walk(alt, 0, ""))


def _walk(seq: _Seq, i: int, prefix: str) -> Iterator[str]:
    """Yield ``prefix`` + each expansion of ``seq[i:]``; one generator level per brace."""
    n = len(seq)
    node = seq[i] if i < n else ""
    if isinstance(node, str):
        prefix += node
        i += 1
        if i >= n:
            yield prefix
            return
        node = seq[i]
    assert not isinstance(node, str)  # literals are merged, so a brace follows a literal
    rest = i + 1
    suffix = seq[rest] if rest < n else ""
    if isinstance(suffix, str) and rest >= n - 1:  # at most a literal follows: no deeper level
        if isinstance(node, _Range):
            yield from node.strings(prefix, suffix)
            return
        for s in _strings(node):
            yield prefix + s + suffix
    else:
        for s in _strings(node):
            yield from _walk(seq, rest, prefix + s)


# --- links files and object lists ---------------------------------------------------------------


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
