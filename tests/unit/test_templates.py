"""Brace templates, links files and object lists (resumable/batch/templates.py, lists.py).

Brace expansion is checked against hand-written bash 5 answers, against real bash for a table of
cases and a few seeded random templates, and ``count()`` against ``len(expand())`` on random
templates. Links files and object lists are checked line by line, errors included.
"""

from __future__ import annotations

import collections
import doctest
import itertools
import json
import pickle
import random
import shutil
import subprocess
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from resumable import InvalidArgument
from resumable.batch import templates
from resumable.batch.templates import (
    count,
    expand,
    has_template,
    iter_expand,
    read_links,
    read_object_list,
)

BASH = shutil.which("bash")
needs_bash = pytest.mark.skipif(BASH is None, reason="bash is not installed")


def bash_expand(template: str) -> list[str]:
    """What bash makes of ``template`` (one word per line; bash drops empty words)."""
    assert BASH is not None
    out = subprocess.run(
        [BASH, "-c", "printf '%s\\n' " + template], capture_output=True, text=True, check=True
    )
    return out.stdout.splitlines()


def test_module_docstring_examples() -> None:
    assert doctest.testmod(templates).failed == 0


# --- brace expansion: exact answers (taken from bash 5.2) --------------------------------------

CASES = {
    # zero padding: width of the longer endpoint when either is written with a leading zero
    "{8..10}": "8 9 10",
    "{08..10}": "08 09 10",
    "{8..010}": "008 009 010",
    "{0..3}": "0 1 2 3",
    "{00..3}": "00 01 02 03",
    "{007..7}": "007",
    "{09..8}": "09 08",
    "{010..7}": "010 009 008 007",
    # negative numbers; the sign counts in the width, as with printf("%0*d")
    "{-5..5}": "-5 -4 -3 -2 -1 0 1 2 3 4 5",
    "{-05..2}": "-05 -04 -03 -02 -01 000 001 002",
    "{-2..02}": "-2 -1 00 01 02",
    "{-3..-01}": "-03 -02 -01",
    "{1..-010}": "0001 0000 -001 -002 -003 -004 -005 -006 -007 -008 -009 -010",
    "{-0..3}": "0 1 2 3",  # "-0" alone is not padded
    "{-00..2}": "000 001 002",
    "{+1..3}": "1 2 3",
    "{+05..7}": "5 6 7",  # "+05" is not padded either
    "{+1..03}": "01 02 03",
    # descending ranges and steps: bash ignores the sign of the step
    "{10..1}": "10 9 8 7 6 5 4 3 2 1",
    "{1..10..3}": "1 4 7 10",
    "{10..1..3}": "10 7 4 1",
    "{10..1..-3}": "10 7 4 1",
    "{1..10..-3}": "1 4 7 10",
    "{1..10..+2}": "1 3 5 7 9",
    "{0001..3..2}": "0001 0003",
    "{9..-9..3}": "9 6 3 0 -3 -6 -9",
    "{-10..-1..4}": "-10 -6 -2",
    "{5..5..-2}": "5",
    "{1..3..7}": "1",
    # letters
    "{a..e}": "a b c d e",
    "{e..a}": "e d c b a",
    "{a..z..5}": "a f k p u z",
    "{a..z..-6}": "a g m s y",
    "{X..Z}": "X Y Z",
    # lists, empty items, several braces (left-most slowest), nesting, literal groups
    "{x,y,z}": "x y z",
    "s{,-b}": "s s-b",
    "x{1,2}{a,b}": "x1a x1b x2a x2b",
    "p{a,b{1..2}}": "pa pb1 pb2",
    "p{a,b{1..2}c}q": "paq pb1cq pb2cq",
    "{train,val}-{00..02}.tar": "train-00.tar train-01.tar train-02.tar val-00.tar val-01.tar "
    "val-02.tar",
    "{1..3}{+0..1}": "10 11 20 21 30 31",
    "{{1,2}}": "{1} {2}",
    "{a}": "{a}",
    "x{a}{1..2}{b}": "x{a}1{b} x{a}2{b}",
    "p{a.b,c}": "pa.b pc",
    # no braces
    "shard.tar": "shard.tar",
}


@pytest.mark.parametrize(("template", "expected"), CASES.items())
def test_expand_matches_bash5(template: str, expected: str) -> None:
    assert expand(template) == expected.split(" ")
    assert list(iter_expand(template)) == expected.split(" ")
    assert count(template) == len(expected.split(" "))


@needs_bash
@pytest.mark.parametrize("template", list(CASES))
def test_table_agrees_with_real_bash(template: str) -> None:
    assert expand(template) == bash_expand(template)


def test_imagenet_shard_range_keeps_six_digits() -> None:
    names = expand("imagenet_train-{000000..000140}.tgz")
    assert len(names) == 141
    assert names[0] == "imagenet_train-000000.tgz"
    assert names[-1] == "imagenet_train-000140.tgz"
    assert all(len(n) == len("imagenet_train-000000.tgz") for n in names)
    assert len(set(names)) == 141


def test_letter_ranges_walk_code_points_like_bash() -> None:
    # Between 'Z' and 'a' lie [ \ ] ^ _ `; bash includes them, and so do we.
    assert expand("{Z..b}") == ["Z", "[", "\\", "]", "^", "_", "`", "a", "b"]


def test_empty_items_and_no_braces() -> None:
    assert expand("{,}") == ["", ""]
    assert expand("{a,}") == ["a", ""]
    assert expand("") == [""]
    assert expand("https://host/plain.tar") == ["https://host/plain.tar"]


def test_big_numbers_are_not_limited_to_64_bits() -> None:
    assert expand("{18446744073709551615..18446744073709551617}") == [
        "18446744073709551615",
        "18446744073709551616",
        "18446744073709551617",
    ]


def test_templates_inside_urls() -> None:
    url = "https://h/d/sa_{000000..000002}.tar?x=1&y={a,b}"
    assert expand(url)[:2] == [
        "https://h/d/sa_000000.tar?x=1&y=a",
        "https://h/d/sa_000000.tar?x=1&y=b",
    ]
    assert count(url) == 6


# --- laziness, counting and the limit ----------------------------------------------------------


def test_iter_expand_is_lazy() -> None:
    start = time.perf_counter()
    assert list(itertools.islice(iter_expand("{0..999999999999}"), 3)) == ["0", "1", "2"]
    first = next(iter_expand("s-{0..999999999999}-{0..999999999999}.tar"))
    assert first == "s-0-0.tar"
    assert time.perf_counter() - start < 1.0


def test_streaming_ten_million_names_holds_no_list() -> None:
    it = iter_expand("s-{0000000..9999999}.tar")
    tracemalloc.start()
    try:
        last = collections.deque(itertools.islice(it, 200_000), maxlen=1)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert last[0] == "s-0199999.tar"
    assert peak < 256 * 1024  # a list of 200k names would take ~15 MiB


def test_errors_are_raised_at_call_time_not_on_first_next() -> None:
    with pytest.raises(InvalidArgument):
        iter_expand("{1..x}")


def test_count_is_arithmetic() -> None:
    assert count("s-{0000000..9999999}.tar") == 10_000_000
    assert count("{0..999999999999}{0..999999999999}") == 10**24
    assert count("{a,b{1..10..3},{c,d}{1..2}}") == 1 + 4 + 4
    assert count("plain") == 1


def test_limit_is_checked_before_anything_is_built() -> None:
    start = time.perf_counter()
    with pytest.raises(InvalidArgument, match=r"1,000,000,000,000,000,000,000,000 names") as info:
        expand("s-{0..999999999999}{0..999999999999}.tar")
    assert time.perf_counter() - start < 1.0
    assert "limit=10,000,000" in str(info.value)
    assert "s-{0..999999999999}{0..999999999999}.tar" in str(info.value)
    assert expand("{1..5}", limit=5) == ["1", "2", "3", "4", "5"]
    with pytest.raises(InvalidArgument, match="expands to 5 names, more than limit=4"):
        expand("{1..5}", limit=4)


@pytest.mark.parametrize("limit", [-1, 1.5, "10", True, None])
def test_limit_must_be_a_non_negative_int(limit: object) -> None:
    with pytest.raises(InvalidArgument, match="limit"):
        expand("a", limit=limit)  # type: ignore[arg-type]


def random_template(rng: random.Random, depth: int = 0) -> str:
    """A random valid template: literals, numeric/letter ranges, lists (nested), literal groups."""

    def number() -> str:
        n = rng.randint(-40, 40)
        text = str(n)
        if rng.random() < 0.3:
            text = ("-" if n < 0 else "") + "0" * rng.randint(1, 3) + str(abs(n))
        elif rng.random() < 0.1 and n >= 0:
            text = "+" + text
        return text

    def part() -> str:
        r = rng.random()
        if r < 0.3:
            return "".join(rng.choice("abxyz019_-.") for _ in range(rng.randint(1, 3)))
        if r < 0.6:
            if rng.random() < 0.2:
                lo, hi = rng.choice("abcdefxyz"), rng.choice("abcdefxyz")
            else:
                lo, hi = number(), number()
            step = "" if rng.random() < 0.5 else f"..{rng.choice([1, 2, 3, 7, -2, -3, 5])}"
            return f"{{{lo}..{hi}{step}}}"
        if r < 0.65:
            return "{q}"
        if depth > 2:
            return "q"
        return (
            "{" + ",".join(random_template(rng, depth + 1) for _ in range(rng.randint(2, 3))) + "}"
        )

    return "".join(part() for _ in range(rng.randint(1, 3)))


@pytest.mark.parametrize("seed", range(10))
def test_count_equals_len_expand_on_random_templates(seed: int) -> None:
    rng = random.Random(seed)
    checked = 0
    while checked < 40:
        template = random_template(rng)
        n = count(template)
        if n > 20_000:
            continue
        names = expand(template)
        assert len(names) == n, template
        assert list(iter_expand(template)) == names
        checked += 1


@needs_bash
def test_random_templates_agree_with_real_bash() -> None:
    rng = random.Random(20240605)
    checked = 0
    while checked < 40:
        # A leading literal keeps every word non-empty (bash drops empty words).
        template = "p" + random_template(rng)
        if count(template) > 2_000:
            continue
        assert expand(template) == bash_expand(template), template
        checked += 1


# --- errors ------------------------------------------------------------------------------------

ERRORS = {
    "shard-{000..140.tar": "'{' at position 6 is never closed",
    "shard-000..140}.tar": "'}' at position 14 closes nothing",
    "a}{1,2}": "'}' at position 1 closes nothing",
    "x{1,2}{": "never closed",
    "shard-{}.tar": "empty '{}' at position 6",
    "x{1,{}}": "empty '{}'",
    "{a..5}": "endpoints must both be integers or both single letters, got 'a' and '5'",
    "{1..b}": "got '1' and 'b'",
    "{ab..c}": "got 'ab' and 'c'",
    "{1.5..3}": "got '1.5' and '3'",
    "{é..z}": "got 'é' and 'z'",
    "{!..#}": "got '!' and '#'",
    "{1..}": "got '1' and ''",
    "{1...3}": "got '1' and '.3'",
    "{...}": "got '' and '.'",
    "{1..2..}": "the step '' is not an integer",
    "{1..2..x}": "the step 'x' is not an integer",
    "{1..2..1.5}": "the step '1.5' is not an integer",
    "{1..2..3..4}": "malformed range {1..2..3..4}",
    "{1..10..0}": "the step must not be 0",
    "{1..3..-0}": "the step must not be 0",
    "{1..{2,3}}": "endpoints must both be",
    "{ 1..3}": "got ' 1' and '3'",
}


@pytest.mark.parametrize(("template", "why"), ERRORS.items())
def test_every_error_names_the_template_and_the_problem(template: str, why: str) -> None:
    for call in (expand, count, iter_expand):
        with pytest.raises(InvalidArgument) as info:
            call(template)
        message = str(info.value)
        assert f"invalid template {template!r}" in message
        assert why in message
        assert isinstance(info.value, ValueError)


def test_template_errors_pickle_and_carry_the_template() -> None:
    with pytest.raises(InvalidArgument) as info:
        expand("s-{1..x}")
    again = pickle.loads(pickle.dumps(info.value))
    assert str(again) == str(info.value)
    assert again.url == "s-{1..x}"


def test_template_errors_redact_credentials() -> None:
    with pytest.raises(InvalidArgument) as info:
        expand("https://u:pw@h/s-{1..x}.tar?X-Amz-Signature=topsecret")
    assert "topsecret" not in str(info.value)
    assert "pw@" not in str(info.value)


def test_non_str_template_and_deep_nesting() -> None:
    with pytest.raises(InvalidArgument, match="must be a str"):
        expand(b"{1..2}")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="nested deeper than"):
        expand("{" * 100 + "a,b" + "}" * 100)
    assert expand("{" * 30 + "a,b" + "}" * 30) == [
        "{" * 29 + "a" + "}" * 29,
        "{" * 29 + "b" + "}" * 29,
    ]


# --- has_template ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://h/shard-{000..140}.tar", True),
        ("https://h/{train,val}.tar", True),
        ("https://h/{a..e}.tar", True),
        ("s{,-b}", True),
        ("{,}", True),
        ("https://h/a{b{1,2}", True),  # the inner group is a template; expand() then rejects it
        ("https://h/{1..x}", True),  # an attempted range: expand() says what is wrong
        ("https://h/a{b}c", False),  # literal braces around one item stay literal
        ("https://h/a{}c", False),
        ("https://h/a{b", False),
        ("https://h/a}b{", False),
        ("https://h/a,b..c", False),  # commas and dots outside braces mean nothing
        ("https://h/{a.b}/x", False),
        ('https://h/q?f={"k":1}', False),
        ("", False),
        ("plain.tar", False),
    ],
)
def test_has_template(text: str, expected: bool) -> None:
    assert has_template(text) is expected


def test_has_template_never_raises_on_non_str() -> None:
    assert has_template(None) is False  # type: ignore[arg-type]
    assert has_template(b"{1,2}") is False  # type: ignore[arg-type]


def test_a_url_that_is_not_a_template_expands_to_itself_or_is_rejected() -> None:
    # The promise a batch relies on: has_template(t) False => expand(t) is [t] or raises.
    rng = random.Random(5)
    for _ in range(3000):
        text = "".join(rng.choice("{},.ab1") for _ in range(rng.randint(0, 10)))
        if has_template(text):
            continue
        try:
            names = expand(text)
        except InvalidArgument:
            continue
        assert names == [text], text


# --- links files -------------------------------------------------------------------------------

SA1B = (
    "file_name\tcdn_link\n"
    "sa_000000.tar\thttps://scontent.example.net/m1/v/t6/An8/sa_000000.tar?ccb=10-5&oh=00_AfB&oe=6\n"
    "sa_000001.tar\thttps://scontent.example.net/m1/v/t6/An9/sa_000001.tar?ccb=10-5&oh=00_AfC&oe=6\n"
)


def test_sa1b_links_file_with_header_and_tabs(tmp_path: Path) -> None:
    path = tmp_path / "sa1b_links.txt"
    path.write_text(SA1B)
    pairs = list(read_links(path))
    assert pairs == [
        (
            "sa_000000.tar",
            "https://scontent.example.net/m1/v/t6/An8/sa_000000.tar?ccb=10-5&oh=00_AfB&oe=6",
        ),
        (
            "sa_000001.tar",
            "https://scontent.example.net/m1/v/t6/An9/sa_000001.tar?ccb=10-5&oh=00_AfC&oe=6",
        ),
    ]
    assert list(read_links(str(path))) == pairs


def test_crlf_bom_and_tab_names_with_spaces(tmp_path: Path) -> None:
    path = tmp_path / "links.txt"
    path.write_bytes(
        b"\xef\xbb\xbffile_name\tcdn_link\r\n"
        b"my shard 1.tar\thttps://h/1.tar\r\n"
        b"\r\n"
        b"  two.tar \t https://h/2.tar  \r\n"
    )
    assert list(read_links(path)) == [
        ("my shard 1.tar", "https://h/1.tar"),
        ("two.tar", "https://h/2.tar"),
    ]


def test_name_url_lines_comments_and_url_only_lines() -> None:
    lines = [
        "# a comment first, then the data",
        "",
        "a.tar https://h/x/a.tar",
        "   # an indented comment",
        "b.tar    s3://bucket/dir/b.tar   # trailing comment",
        "https://h/dir/c.tar?X-Amz-Signature=abc&x=1",
        "https://h/dir/with%20space.tar",
        "gs://bucket/d/e.bin",
        "d/e.tar\thttps://h/e.tar#frag",
    ]
    assert list(read_links(lines)) == [
        ("a.tar", "https://h/x/a.tar"),
        ("b.tar", "s3://bucket/dir/b.tar"),
        ("c.tar", "https://h/dir/c.tar?X-Amz-Signature=abc&x=1"),
        ("with space.tar", "https://h/dir/with%20space.tar"),
        ("e.bin", "gs://bucket/d/e.bin"),
        ("d/e.tar", "https://h/e.tar#frag"),
    ]


def test_a_first_line_with_a_url_is_data_not_a_header() -> None:
    assert list(read_links(["https://h/a.tar", "https://h/b.tar"])) == [
        ("a.tar", "https://h/a.tar"),
        ("b.tar", "https://h/b.tar"),
    ]
    assert list(read_links(["url"])) == []  # a one-word header on its own
    assert list(read_links([])) == []


def test_names_are_not_judged_here() -> None:
    # Whether a name escapes dest_dir is decided per item by the batch, not by the parser.
    assert list(read_links(["../evil.tar https://h/e.tar"])) == [("../evil.tar", "https://h/e.tar")]


BAD_LINES = {
    "a.tar https://h/a.tar extra": "(3 fields)",
    "a.tar": "(1 fields)",
    "a.tar htps//h/a.tar": "(2 fields)",
    "https://h/a.tar a.tar": "the name comes first",
    "https://h/dir/": "no file name at the end of this URL",
    "https://h/dir/?x=1": "no file name",
    "file_name\tcdn_link": "(2 fields)",  # a header is recognised on the first line only
}


@pytest.mark.parametrize(("bad", "why"), BAD_LINES.items())
def test_bad_lines_name_the_file_and_line(tmp_path: Path, bad: str, why: str) -> None:
    path = tmp_path / "links.txt"
    path.write_text(f"file_name\tcdn_link\nok.tar\thttps://h/ok.tar\n\n# note\n{bad}\n")
    pairs = read_links(path)
    assert next(pairs) == ("ok.tar", "https://h/ok.tar")
    with pytest.raises(InvalidArgument) as info:
        next(pairs)
    assert f"{path}, line 5: " in str(info.value)
    assert why in str(info.value)
    assert info.value.lineno == 5  # type: ignore[attr-defined]
    assert info.value.source == str(path)  # type: ignore[attr-defined]
    assert pickle.loads(pickle.dumps(info.value)).lineno == 5


def test_bad_lines_from_an_iterable_and_an_open_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match=r"<lines>, line 2: "):
        list(read_links(["a.tar https://h/a", "oops"]))
    path = tmp_path / "open.txt"
    path.write_text("a.tar https://h/a\nb.tar https://h/b c\n")
    with open(path) as f, pytest.raises(InvalidArgument, match=r"open\.txt, line 2: "):
        list(read_links(f))
    with open(path, "rb") as f:
        assert next(read_links(f)) == ("a.tar", "https://h/a")


def test_bad_line_messages_redact_signed_urls() -> None:
    with pytest.raises(InvalidArgument) as info:
        list(read_links(["a.tar https://h/a?X-Amz-Signature=topsecret extra"]))
    assert "topsecret" not in str(info.value)


def test_non_utf8_line_is_reported_with_its_number(tmp_path: Path) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes(b"a.tar https://h/a\n\xe9t\xe9.tar https://h/b\n")
    with pytest.raises(InvalidArgument, match=r"line 2: not UTF-8"):
        list(read_links(path))


def test_links_are_read_lazily() -> None:
    consumed: list[int] = []

    def lines() -> Iterator[str]:
        for i in range(100_000):
            consumed.append(i)
            yield f"s{i}.tar https://h/s{i}.tar"

    pairs = read_links(lines())
    assert list(itertools.islice(pairs, 2)) == [
        ("s0.tar", "https://h/s0.tar"),
        ("s1.tar", "https://h/s1.tar"),
    ]
    assert len(consumed) == 2


def test_links_file_arguments(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="does not exist"):
        read_links(tmp_path / "missing.txt")  # raised at call time, before iterating
    with pytest.raises(InvalidArgument, match="does not exist"):
        read_links(tmp_path)
    with pytest.raises(InvalidArgument, match="splitlines"):
        read_links("a.tar https://h/a\nb.tar https://h/b\n")
    with pytest.raises(InvalidArgument, match="not bytes"):
        read_links(b"a.tar https://h/a")  # type: ignore[arg-type]


# --- object lists ------------------------------------------------------------------------------


def test_object_list_from_a_json_file(tmp_path: Path) -> None:
    path = tmp_path / "objects.json"
    path.write_text(json.dumps(["imagenet/train-000.tgz", "imagenet/train-001.tgz"]))
    assert list(read_object_list(path, "https://h/bucket")) == [
        ("imagenet/train-000.tgz", "https://h/bucket/imagenet/train-000.tgz"),
        ("imagenet/train-001.tgz", "https://h/bucket/imagenet/train-001.tgz"),
    ]
    assert list(read_object_list(str(path), "https://h/bucket///")) == list(
        read_object_list(path, "https://h/bucket")
    )


def test_object_names_are_percent_quoted_for_http() -> None:
    names = ["a b.tar", "d/#1.tar", "q?.tar", "100%.tar", "é.tar", "x+y~z.tar"]
    assert [url for _, url in read_object_list(names, "http://h/b/")] == [
        "http://h/b/a%20b.tar",
        "http://h/b/d/%231.tar",
        "http://h/b/q%3F.tar",
        "http://h/b/100%25.tar",
        "http://h/b/%C3%A9.tar",
        "http://h/b/x%2By~z.tar",
    ]
    assert [name for name, _ in read_object_list(names, "http://h/b/")] == names


def test_object_names_are_appended_as_is_for_fsspec_schemes() -> None:
    # fsspec takes paths literally: s3://b/a%20b.tar would name a key containing "%20".
    assert list(read_object_list(("a b.tar", "d/c.tar"), "s3://bucket/pre/")) == [
        ("a b.tar", "s3://bucket/pre/a b.tar"),
        ("d/c.tar", "s3://bucket/pre/d/c.tar"),
    ]


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ('{"names": ["a"]}', "must hold a JSON array of strings, got a JSON object"),
        ('"a.tar"', "got a JSON string"),
        ("null", "got a JSON null"),
        ("12", "got a JSON number"),
        ('["a", 3]', "element 1 must be a non-empty string (an object name), got 3"),
        ('["a", ["b"]]', "element 1"),
        ('["a", ""]', "element 1"),
        ('["a", ', "is not valid JSON"),
    ],
)
def test_object_list_json_is_validated_up_front(tmp_path: Path, content: str, why: str) -> None:
    path = tmp_path / "objects.json"
    path.write_text(content)
    with pytest.raises(InvalidArgument) as info:
        read_object_list(path, "https://h/b")  # before iterating: nothing has been downloaded
    assert why in str(info.value)
    assert str(path) in str(info.value)


def test_object_list_arguments(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="cannot read object list"):
        read_object_list(tmp_path / "missing.json", "https://h/b")
    with pytest.raises(InvalidArgument, match="element 2"):
        read_object_list(["a", "b", None], "https://h/b")  # type: ignore[list-item]
    with pytest.raises(InvalidArgument, match="names must be a path or a list"):
        read_object_list(3, "https://h/b")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="names must be a path or a list"):
        read_object_list({"a": 1}, "https://h/b")
    for base in ("", "h/b", "/local/dir", None):
        with pytest.raises(InvalidArgument, match="base_url must be a URL"):
            read_object_list(["a"], base)  # type: ignore[arg-type]
    for base in ("https://h/b?x=1", "https://h/b#f"):
        with pytest.raises(InvalidArgument, match="query string or fragment"):
            read_object_list(["a"], base)


def test_object_names_from_a_generator_are_checked_as_consumed() -> None:
    def names() -> Iterator[object]:
        yield "a"
        yield 5

    pairs = read_object_list(names(), "https://h/b")  # type: ignore[arg-type]
    assert next(pairs) == ("a", "https://h/b/a")
    with pytest.raises(InvalidArgument, match="element 1"):
        next(pairs)
