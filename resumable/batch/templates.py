"""Inputs for batch downloads: brace templates, links files and object lists.

Dataset shards are named by ranges (``imagenet_train-{000000..000140}.tgz``), so a batch is
usually written as a bash-style brace template, a links file (SA-1B ships ``file_name<TAB>
cdn_link`` lines) or, as with AIStore's ``--object-list``, a JSON array of names under a base URL.
This module expands templates; :mod:`resumable.batch.lists` reads the other two (its names are
re-exported here). Each becomes names or ``(name, url)`` pairs, lazily, so a template of ten
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
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Union

from ..errors import InvalidArgument
from ..urls import redact
from .lists import Link, read_links, read_object_list

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
