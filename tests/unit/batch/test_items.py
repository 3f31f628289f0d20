"""Batch inputs into units of work (resumable/batch/items.py): normalising, naming, checking."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from resumable import InvalidArgument, Item
from resumable.batch.items import Work, as_inputs, iter_work, relative_name, safe_destination
from resumable.batch.lists import Link
from resumable.sources import RemoteInfo


def no_listing(prefix: str) -> Iterator[tuple[str, RemoteInfo]]:
    raise AssertionError(f"listed {prefix}")


def works(inputs: list[object]) -> list[Work | tuple[object, Exception]]:
    return list(iter_work(inputs, no_listing))


def test_every_kind_of_input_becomes_work() -> None:
    got = works(
        [
            "https://h/a/x.bin?sig=1",
            ("https://h/y.bin", "sub/y2.bin"),
            ("https://h/z.bin", "folder/"),
            Item("https://h/i.bin", size=3),
            Link("named.bin", "https://h/whatever"),
        ]
    )
    assert [(w.item.url, w.rel, w.origin) for w in got if isinstance(w, Work)] == [
        ("https://h/a/x.bin?sig=1", "x.bin", None),
        ("https://h/y.bin", "sub/y2.bin", None),
        ("https://h/z.bin", "folder/z.bin", None),
        ("https://h/i.bin", "i.bin", None),
        ("https://h/whatever", "named.bin", None),
    ]


def test_a_template_expands_lazily_with_its_origin() -> None:
    got = iter_work(["https://h/s-{0..999999}.tar"], no_listing)
    first = next(got)
    second = next(got)
    assert isinstance(first, Work)
    assert isinstance(second, Work)
    assert (first.rel, second.rel) == ("s-0.tar", "s-1.tar")
    assert first.origin == second.origin == "https://h/s-{0..999999}.tar"


def test_a_prefix_is_listed_and_kept_at_relative_paths() -> None:
    def lister(prefix: str) -> Iterator[tuple[str, RemoteInfo]]:
        yield prefix + "a/1.bin", RemoteInfo(prefix + "a/1.bin", size=5)
        yield prefix + "2.bin", RemoteInfo(prefix + "2.bin", size=7)

    got = list(iter_work(["mem://b/p/"], lister))
    assert [(w.rel, w.item.size, w.listed) for w in got if isinstance(w, Work)] == [
        ("a/1.bin", 5, True),
        ("2.bin", 7, True),
    ]


def test_a_bad_input_fails_alone() -> None:
    got = works([42, Item("https://h/"), "https://h/ok.bin", ("https://h/x", "../up")])
    assert [type(w).__name__ for w in got] == ["tuple", "tuple", "Work", "tuple"]
    assert all(isinstance(w[1], InvalidArgument) for w in got if isinstance(w, tuple))


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("/abs", "absolute"),
        ("C:x", "absolute"),
        ("a/../../b", "escape"),
        ("", "invalid"),
        ("./.", "invalid"),
    ],
)
def test_relative_name_refuses_escapes(name: str, why: str) -> None:
    with pytest.raises(InvalidArgument, match=why):
        relative_name(name)


def test_relative_name_cleans_a_path() -> None:
    assert relative_name("a\\b/./c.bin") == "a/b/c.bin"


def test_safe_destination_refuses_a_symlinked_folder_outside(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    os.symlink(outside, root / "link")
    with pytest.raises(InvalidArgument, match="outside"):
        safe_destination(root.resolve(), "link/x.bin")
    with pytest.raises(InvalidArgument, match="ledger folder"):
        safe_destination(root.resolve(), ".resumable/x")
    assert safe_destination(root.resolve(), "sub/x.bin") == root.resolve() / "sub" / "x.bin"


def test_a_folder_is_resolved_once_per_batch(tmp_path: Path) -> None:
    checked: set[str] = set()
    safe_destination(tmp_path, "sub/a.bin", checked)
    assert checked == {"sub"}


def test_as_inputs_wraps_a_single_input() -> None:
    item = Item("https://h/a")
    assert as_inputs("https://h/a") == ["https://h/a"]
    assert as_inputs(("https://h/a", "b")) == [("https://h/a", "b")]
    assert as_inputs(item) == [item]
    listed = ["https://h/a"]
    assert as_inputs(listed) is listed


def test_item_mirrors_must_be_a_list_and_are_redacted_in_its_repr() -> None:
    with pytest.raises(InvalidArgument, match="mirrors"):
        Item("https://h/a", mirrors="https://m/a")  # type: ignore[arg-type]
    item = Item("https://h/a?sig=SECRET99", mirrors=["https://m/a?sig=SECRET98"])
    assert "SECRET9" not in repr(item)
    assert item.mirrors == ("https://m/a?sig=SECRET98",)
