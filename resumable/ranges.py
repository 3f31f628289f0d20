"""Sets of byte ranges: what a segmented partial holds and what it still lacks.

A :class:`RangeSet` is a sorted list of disjoint, non-adjacent half-open ranges ``[start, end)``.
Segmented downloads add a range after its bytes are written, store the set in the sidecar at
checkpoints, and on resume fetch ``missing(size)``. Pure and small, so it is tested on its own.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator

__all__ = ["RangeSet"]


class RangeSet:
    """Disjoint half-open byte ranges, merged on insertion.

    >>> r = RangeSet([(0, 10), (20, 30)])
    >>> r.add(10, 20)
    >>> list(r), r.total, r.prefix_end
    ([(0, 30)], 30, 30)
    """

    def __init__(self, ranges: Iterable[tuple[int, int]] = ()) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []
        for start, end in ranges:
            self.add(start, end)

    def add(self, start: int, end: int) -> None:
        """Add ``[start, end)``, merging with overlapping or adjacent ranges."""
        if end <= start:
            return
        # First range whose end reaches start, last range whose start is within end.
        lo = bisect.bisect_left(self._ends, start)
        hi = bisect.bisect_right(self._starts, end)
        if lo < hi:
            start = min(start, self._starts[lo])
            end = max(end, self._ends[hi - 1])
        self._starts[lo:hi] = [start]
        self._ends[lo:hi] = [end]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter(zip(self._starts, self._ends, strict=True))

    def __len__(self) -> int:
        return len(self._starts)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RangeSet) and list(self) == list(other)

    def __repr__(self) -> str:
        return f"RangeSet({list(self)!r})"

    def copy(self) -> RangeSet:
        clone = RangeSet()
        clone._starts = list(self._starts)
        clone._ends = list(self._ends)
        return clone

    @property
    def total(self) -> int:
        """Bytes covered."""
        return sum(e - s for s, e in self)

    @property
    def prefix_end(self) -> int:
        """End of the range that starts at byte 0 (0 if byte 0 is missing): the bytes that
        can be hashed in order."""
        return self._ends[0] if self._starts and self._starts[0] == 0 else 0

    def missing(self, size: int) -> list[tuple[int, int]]:
        """The ranges of ``[0, size)`` not covered, in order."""
        gaps: list[tuple[int, int]] = []
        position = 0
        for start, end in self:
            if start >= size:
                break
            if start > position:
                gaps.append((position, start))
            position = max(position, end)
        if position < size:
            gaps.append((position, size))
        return gaps

    def covers(self, size: int) -> bool:
        """Whether every byte of ``[0, size)`` is present."""
        return self.prefix_end >= size

    def to_json(self) -> list[list[int]]:
        return [[s, e] for s, e in self]

    @classmethod
    def from_json(cls, value: object, size: int | None = None) -> RangeSet:
        """Parse ``[[start, end], ...]`` as :meth:`to_json` writes it: integers (not bools),
        ``start < end``, sorted, disjoint and not adjacent, and within ``[0, size)`` when
        ``size`` is given. Raises ``ValueError`` on anything else: a set that no writer made
        (overlapping, unsorted, past the object's end) says nothing trustworthy."""
        if not isinstance(value, list):
            raise ValueError("ranges must be a list")
        ranges = RangeSet()
        lowest = 0  # where the next range may start: past the previous one, not touching it
        for item in value:
            if (
                not isinstance(item, list)
                or len(item) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in item)
                or not lowest <= item[0] < item[1]
            ):
                raise ValueError(f"bad range {item!r}")
            if size is not None and item[1] > size:
                raise ValueError(f"range {item!r} ends past the object's {size} bytes")
            lowest = item[1] + 1
            ranges._starts.append(item[0])
            ranges._ends.append(item[1])
        return ranges
