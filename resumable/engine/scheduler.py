"""Which bytes each connection of a segmented download fetches next (see :mod:`.segmented`).

**Pieces in file order, not N big segments**: SHA-256 consumes only the contiguous prefix, so
handing out pieces in order keeps every connection near the hash frontier. **Guided sizes**:
each piece is ``unassigned / (2 * connections)`` (1-32 MiB), so pieces shrink towards the end
and connections finish together. **Stealing**: an idle connection then takes the second half of
the largest piece in flight, but only a large one (HTTP cannot shorten a range in flight: the
victim discards what the server had already pushed).
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

__all__ = ["LARGEST_PIECE", "SMALLEST_PIECE", "STEAL_AT_LEAST", "Piece", "Scheduler"]

MiB = 1 << 20
SMALLEST_PIECE = MiB
LARGEST_PIECE = 32 * MiB
STEAL_AT_LEAST = 4 * MiB  # a split costs a discarded socket buffer: only worth it for big tails


@dataclass
class Piece:
    pos: int  # next byte to write
    end: int  # exclusive; lowered when another connection steals the tail


class Scheduler:
    """Hands out missing ranges as pieces in file order (guided sizes), then steals."""

    def __init__(
        self,
        missing: list[tuple[int, int]],
        connections: int,
        *,
        smallest: int = SMALLEST_PIECE,
        largest: int = LARGEST_PIECE,
        steal_at_least: int = STEAL_AT_LEAST,
    ) -> None:
        self._pending: deque[tuple[int, int]] = deque(missing)
        self._unassigned = sum(end - start for start, end in missing)
        self._connections = connections
        self._smallest, self._largest = smallest, largest
        self._steal_at_least = steal_at_least
        self._active: list[Piece] = []
        self._lock = threading.Lock()

    def take(self) -> Piece | None:
        with self._lock:
            if self._pending:
                start, end = self._pending.popleft()
                guided = self._unassigned // (2 * self._connections)
                size = max(self._smallest, min(self._largest, guided))
                if end - start > size:
                    self._pending.appendleft((start + size, end))
                    end = start + size
                self._unassigned -= end - start
                piece = Piece(start, end)
            else:
                victim = max(self._active, key=lambda p: p.end - p.pos, default=None)
                if victim is None or victim.end - victim.pos < self._steal_at_least:
                    return None
                middle = victim.pos + (victim.end - victim.pos) // 2
                piece = Piece(middle, victim.end)
                victim.end = middle
            self._active.append(piece)
            return piece

    def claim(self, piece: Piece, available: int) -> tuple[int, int]:
        """Claim up to ``available`` bytes at the piece's position: ``(offset, count)``.

        Under the lock a thief splits at, so a claimed byte is never handed to another
        connection (no byte is written twice, and ``fetched`` counts each byte once).
        """
        with self._lock:
            offset = piece.pos
            count = max(0, min(available, piece.end - offset))
            piece.pos += count
            return offset, count

    def done(self, piece: Piece) -> None:
        with self._lock:
            self._active.remove(piece)
