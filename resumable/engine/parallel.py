"""Phase: a large object over several connections (:class:`~.segmented.SegmentedFetch`).

The stream phase decides when (``State.segmentable``: large enough, ranges served, a validator
to pin every piece to); this phase runs the fetch over the state (the recorded ranges, the
sidecar written at each checkpoint, progress reported on the calling thread) and leaves the
state as a complete partial with the frontier's digests. When ranges prove impossible, or the
object changed, :func:`fall_back` turns the file into one stream from byte 0.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ..progress import EventKind
from ..ranges import RangeSet
from ..sources import Body
from ..verify import Digests, InlineHasher
from .segmented import SEGMENT_READ, Fallback, SegmentedFetch
from .state import State

__all__ = ["Segments", "fall_back", "run"]

log = logging.getLogger("resumable")


@dataclass(frozen=True)
class Segments:
    """The stream phase's answer to go segmented: the open answer for byte 0 (first piece),
    or ``None`` when a stream that proved slow stopped (``state.segments`` holds its bytes)."""

    body: Body | None


def run(state: State, first_body: Body | None) -> None:
    """Fetch the missing ranges over several connections; the frontier hashes in order.

    Raises:
        Fallback: ranges are impossible, or the object changed (see :func:`fall_back`).
        ResumableError: the first failure of a connection (after its own retries, refreshes
            and fail-overs: final for this transfer).
    """
    ctx = state.ctx
    info = state.info
    try:
        assert info is not None
        assert info.size is not None
        state.hasher.close()  # the fetch's frontier hashes instead
        digests = Digests([*ctx.expected, *state.provider])
        written = state.segments if state.segments is not None else RangeSet()
        _record(state, written)
        settings = ctx.settings
        fetch = SegmentedFetch(
            source=ctx.source,
            url=ctx.url,
            locator=ctx.locator,
            info=info,
            partial=state.partial,
            written=written,
            digests=digests,
            connections=ctx.connections,
            block=min(settings.block_size, SEGMENT_READ),
            policy=settings.retry,
            stall=settings.timeouts.stall,
            record=lambda ranges: _record(state, ranges),
            emit=lambda kind, done, error=None, wait=None: _event(state, kind, done, error, wait),
            first_body=first_body,
            meter=lambda amount: ctx.engine.meter(amount, ctx.cancel),
            extra_slot=lambda: ctx.engine.slots.try_take(ctx.host),
        )
        try:
            fetch.run()
        finally:
            state.fetched += fetch.fetched
    finally:
        if first_body is not None:
            first_body.close()  # a no-op once the fetch closed it (always closed, as a failed
            # preallocation leaves it unused)
    state.hasher = InlineHasher(digests)  # finish() returns what the frontier computed
    state.offset = info.size


def _record(state: State, ranges: RangeSet) -> None:
    state.partial.check_owner()
    state.record(state.info, ranges)


def _event(
    state: State, kind: str, done: int, error: BaseException | None, wait: float | None
) -> None:
    state.offset = done
    if error is not None and kind == EventKind.RETRYING:  # a 429/503 narrows the host
        state.ctx.engine.slots.observe(state.ctx.host, error)
    state.emit(EventKind(kind), done=done, error=error, wait=wait)


def fall_back(state: State, fallback: Fallback) -> None:
    """Segments are impossible (no ranges) or the object changed: one stream from byte 0."""
    log.info("%s: %s; downloading as one stream from byte 0", state.ctx.safe_url, fallback.reason)
    state.single_stream = True
    state.segments = None
    state.reset()
    if fallback.changed:
        state.high_water = 0
