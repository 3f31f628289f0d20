"""RangeSet: merging, gaps and the in-order prefix, checked against a brute-force model."""

from __future__ import annotations

import itertools
import random

import pytest

from resumable.ranges import RangeSet


def model(ranges: list[tuple[int, int]], size: int) -> list[bool]:
    covered = [False] * size
    for start, end in ranges:
        for i in range(start, min(end, size)):
            covered[i] = True
    return covered


@pytest.mark.parametrize("seed", range(30))
def test_random_insertions_match_a_bitmap(seed: int) -> None:
    rng = random.Random(seed)
    size = 200
    added: list[tuple[int, int]] = []
    r = RangeSet()
    for _ in range(rng.randrange(1, 25)):
        start = rng.randrange(size)
        end = start + rng.randrange(0, 40)
        added.append((start, end))
        r.add(start, end)
    bits = model(added, size + 40)
    # Disjoint, sorted, not adjacent.
    pairs = list(r)
    assert all(a[1] < b[0] for a, b in itertools.pairwise(pairs))
    assert r.total == sum(bits)
    assert r.prefix_end == (bits.index(False) if not all(bits) else len(bits))
    gaps = r.missing(size)
    assert sum(e - s for s, e in gaps) == size - sum(bits[:size])
    for s, e in gaps:
        assert not any(bits[s:e])
    assert RangeSet.from_json(r.to_json()) == r


def test_adjacent_ranges_merge() -> None:
    r = RangeSet([(10, 20), (0, 10), (20, 25)])
    assert list(r) == [(0, 25)]
    assert r.covers(25)
    assert not r.covers(26)


def test_missing_of_an_empty_set_is_everything() -> None:
    assert RangeSet().missing(100) == [(0, 100)]
    assert RangeSet([(0, 100)]).missing(100) == []
    assert RangeSet([(5, 10)]).missing(8) == [(0, 5)]


@pytest.mark.parametrize(
    "bad", [{}, [[1]], [[2, 1]], [[-1, 3]], [["a", 2]], [[True, 2]], "0-10", [[0, 1.5]]]
)
def test_from_json_rejects_malformed_input(bad: object) -> None:
    with pytest.raises(ValueError, match="range"):
        RangeSet.from_json(bad)
