"""resumable.shard: a deterministic split of a batch between ranks, balanced by size."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

import resumable
from resumable import Item, shard


def urls_of(items: list[Item]) -> list[str]:
    return [item.url for item in items]


@pytest.mark.parametrize("world_size", [1, 2, 3, 7, 64])
@pytest.mark.parametrize("sized", [True, False])
def test_every_item_goes_to_exactly_one_rank(world_size: int, *, sized: bool) -> None:
    rng = random.Random(world_size)
    items = [
        Item(f"https://h/s-{i:04d}.tar", size=rng.randrange(1, 10**10) if sized else None)
        for i in range(50)
    ]
    shares = [shard(items, rank, world_size) for rank in range(world_size)]
    every = [url for share in shares for url in urls_of(share)]
    assert sorted(every) == sorted(urls_of(items))  # all of them, none twice
    for share in shares:  # each rank keeps input order
        assert urls_of(share) == sorted(urls_of(share))
    # Deterministic: another process computing the same split gets the same answer.
    assert [shard(list(items), r, world_size) for r in range(world_size)] == shares


def test_without_sizes_it_is_round_robin_in_input_order() -> None:
    template = "https://h/shard-{000000..000009}.tar"
    assert urls_of(shard(template, 1, 3)) == [
        "https://h/shard-000001.tar",
        "https://h/shard-000004.tar",
        "https://h/shard-000007.tar",
    ]
    assert [i.dest for i in shard(template, 0, 3)][:1] == ["shard-000000.tar"]


def test_known_sizes_balance_bytes_not_counts() -> None:
    sizes = [100, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 60, 40]
    items = [Item(f"https://h/{i}.bin", size=s) for i, s in enumerate(sizes)]
    loads = [sum(i.size or 0 for i in shard(items, r, 2)) for r in range(2)]
    assert sorted(loads) == [105, 105]
    # Across random sizes the greedy split stays within the largest item of perfect.
    rng = random.Random(7)
    items = [Item(f"https://h/{i}.bin", size=rng.randrange(10**8, 10**10)) for i in range(200)]
    loads = [sum(i.size or 0 for i in shard(items, r, 8)) for r in range(8)]
    assert max(loads) - min(loads) <= max(i.size or 0 for i in items)


def test_unknown_sizes_count_as_the_average_known_size() -> None:
    # Known: 900 and 100, so each unknown item weighs 500: 900 + 100 against 500 + 500.
    items = [Item("https://h/k900", size=900), Item("https://h/u0"), Item("https://h/u1")]
    items.append(Item("https://h/k100", size=100))
    assert urls_of(shard(items, 0, 2)) == ["https://h/k900", "https://h/k100"]
    assert urls_of(shard(items, 1, 2)) == ["https://h/u0", "https://h/u1"]


def test_items_sharing_a_destination_go_to_the_same_rank() -> None:
    items = [("https://a/x.bin", "x.bin"), ("https://b/y.bin", "y.bin"), ("https://c/x", "x.bin")]
    shares = [[i.dest for i in shard(items, r, 2)] for r in range(2)]
    assert sorted(shares) == [["x.bin", "x.bin"], ["y.bin"]]


def test_prefixes_are_listed_once_and_split(tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    for name in ("a/1.bin", "a/2.bin", "b/3.bin", "4.bin"):
        (remote / name).parent.mkdir(parents=True, exist_ok=True)
        (remote / name).write_bytes(b"x" * (len(name) * 100))
    prefix = remote.as_uri() + "/"
    shares = [shard(prefix, r, 2) for r in range(2)]
    dests = sorted(str(i.dest) for share in shares for i in share)
    assert dests == ["4.bin", "a/1.bin", "a/2.bin", "b/3.bin"]
    assert all(i.size is not None for share in shares for i in share)
    # Each rank downloads its share to where an unsharded batch would put it.
    with resumable.ResumableDownloader() as d:
        for share in shares:
            d.download_many(share, tmp_path / "local").raise_for_errors()
    got = sorted(
        p.relative_to(tmp_path / "local").as_posix() for p in (tmp_path / "local").rglob("*.bin")
    )
    assert got == dests


def test_a_bad_item_goes_to_one_rank_which_reports_it(tmp_path: Path) -> None:
    items = ["https://h/a.bin", ("https://h/b.bin", "../escape.bin"), "https://h/c.bin"]
    shares = [shard(items, r, 2) for r in range(2)]
    assert sum(len(s) for s in shares) == 3
    escaping = [i for s in shares for i in s if i.dest == "../escape.bin"]
    assert len(escaping) == 1
    with resumable.ResumableDownloader() as d:
        batch = d.download_many(escaping, tmp_path)
    assert isinstance(batch.failed[0][1], resumable.InvalidArgument)


@pytest.mark.parametrize(
    ("rank", "world_size"), [(-1, 2), (2, 2), (0, 0), (True, 2), (0, 1.5), ("0", 2)]
)
def test_bad_ranks_are_refused(rank: object, world_size: object) -> None:
    with pytest.raises(resumable.InvalidArgument):
        shard(["https://h/a"], rank, world_size)  # type: ignore[arg-type]


def test_an_input_that_cannot_be_expanded_or_listed_raises(tmp_path: Path) -> None:
    with pytest.raises(resumable.InvalidArgument):
        shard([42], 0, 2)
    with pytest.raises(resumable.InvalidArgument):
        shard(["https://h/s-{1..}.tar"], 0, 2)
    with pytest.raises(resumable.SourceNotFound):
        shard([(tmp_path / "nope").as_uri() + "/"], 0, 2)
