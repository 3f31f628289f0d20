"""Phase: bring ``D.partial`` to the object's end, one request (or one segmented run) at a time.

Each attempt requests the bytes from ``state.offset``, pinned to the recorded version
(``If-Range``), and the answer decides (:func:`_accept`): continue; restart from byte 0 (a
200, a changed validator); or retry (a wrong ``Content-Range``). Two versions are never spliced.
A large object whose source serves ranges goes to the segmented phase (:mod:`.parallel`)
instead of one stream. Failures go through the one retry loop (:mod:`.recover`).

The loop's transitions are explicit: an attempt returns :data:`DONE` (the bytes are on disk),
:data:`RESTART` (another version: start over at once, no budget used) or a
:class:`~.parallel.Segments` request; :class:`~.segmented.Fallback` (ranges impossible) turns
the file into one stream from byte 0. The segmented run's own permanent failure is final: its
connections refreshed or failed over already (and its ranges are not a prefix a single stream
could continue).
"""

from __future__ import annotations

import enum
import logging
import time
from dataclasses import replace

from ..bounds import bounded
from ..errors import ProtocolMismatch, SizeMismatch, TransientError
from ..locator import PERMANENT
from ..partial import Flusher, Pipeline
from ..progress import EventKind
from ..ranges import RangeSet
from ..sources import Body, read_into
from ..verify import check_size
from . import parallel
from .parallel import Segments
from .recover import Recovery
from .segmented import Fallback
from .state import State

__all__ = ["FLUSH_EVERY", "Step", "fetch"]

log = logging.getLogger("resumable")

FLUSH_EVERY = 64 << 20  # single stream: start writeback every 64 MiB (see partial.Flusher)
# Bytes between two checks that the partial is still ours: a check reads the sidecar (~1-2 ms
# here when the disk is busy with this file's writeback), too much for every 4 MiB block.
CHECK_EVERY = 32 << 20
# Connections chosen automatically (``connections=None``): a file starts as one stream and
# splits after PROBE seconds only if it runs under SPLIT_BELOW bytes/s (see _Probe).
PROBE = 1.0
SPLIT_BELOW = 192 << 20
HOLD = 0.1  # seconds a block may hold received bytes before they are written (a slow link)


class Step(enum.Enum):
    """What one attempt's answer means for the loop."""

    DONE = "done"  # the partial holds the whole object
    READ = "read"  # the answer continues the partial: read it
    RESTART = "restart"  # the answer belongs to another version: start over (not a failure)


def fetch(
    state: State, first_body: Body | None = None, first_error: TransientError | None = None
) -> None:
    """Fetch everything ``D.partial`` (opened by :func:`~.resume.open_partial`) is missing.

    ``first_body``: an answer for byte 0 the direct path received (used unless a partial
    appeared meanwhile). ``first_error``: the direct path's failure, charged to the budget.

    Raises:
        TransientError: only from a resumed segmented partial's run (as before any stream).
        ResumableError: the retry budget and every URL are spent, or a permanent failure.
    """
    recovery = state.recovery(state.ctx.url)
    if first_body is not None and (state.offset or state.segments is not None):
        first_body.close()  # a partial appeared meanwhile (a racer that died): resume it
        first_body = None
    state.start()
    if first_error is not None:  # the direct attempt failed: it counts against the budget
        _retry(state, recovery, first_error, moved=state.direct_moved)
    if state.segments is not None:
        try:
            parallel.run(state, None)
            return
        except Fallback as fallback:
            parallel.fall_back(state, fallback)
    while True:
        before = state.high_water
        try:
            step = _attempt(state, first_body)
        except Fallback as fallback:
            parallel.fall_back(state, fallback)
            continue
        except TransientError as exc:
            _retry(state, recovery, exc, moved=state.high_water - before)
            continue
        except PERMANENT as exc:  # refused for good: a refreshed URL or a mirror may do
            recovery.refused(exc, state.target)
            continue
        finally:
            first_body = None
        if step is Step.DONE:
            return
        if isinstance(step, Segments):
            try:
                parallel.run(state, step.body)  # a permanent failure here is final
                return
            except Fallback as fallback:
                parallel.fall_back(state, fallback)
            except TransientError as exc:
                _retry(state, recovery, exc, moved=state.high_water - before)
        # Step.RESTART, or after a fallback or a retry: the next attempt


def _retry(state: State, recovery: Recovery, exc: TransientError, *, moved: int) -> None:
    """Count a failed attempt that moved ``moved`` new bytes and wait out its backoff (only
    meaningful progress refills the budget: see ``RetryBudget.moved``)."""
    total = state.total()
    remaining = None if total is None else total - (state.high_water - max(moved, 0))
    on_disk = max(state.offset, state.high_water)  # a resumed partial or this call's bytes
    recovery.failed(exc, state.target, moved=moved, remaining=remaining, on_disk=on_disk)


def _attempt(state: State, body: Body | None = None) -> Step | Segments:
    """One request: stream from ``state.offset`` to the end of the object, or raise.

    ``body``: an answer already received for byte 0 (handed over by the direct path, whose
    request ``state.target`` still names). Returns :class:`Segments` (with the open answer)
    when the object goes segmented.
    """
    ctx = state.ctx
    target = state.target
    if body is None:
        if state.offset and not state.resumable(state.info):
            log.info("%s has no validator to resume against; restarting", ctx.safe_url)
            state.reset()
        expect = state.info if state.offset else None
        state.target = target = ctx.locator.current()
        body = target.source.open(target.url, start=state.offset, expect=expect)
    handed = False
    try:
        if _accept(state, body) is Step.RESTART:
            return Step.RESTART  # closed below: nothing of it is wanted
        ctx.locator.succeeded(target)
        segmentable = state.segmentable(body.info)
        if state.offset == 0 and segmentable and not ctx.split:
            handed = True
            return Segments(body)  # the open answer serves the first piece
        if _stream(state, body, probe=segmentable and ctx.split and _unmetered(state)):
            state.partial.sync()  # the ranges recorded next must be durable
            state.segments = RangeSet([(0, state.offset)] if state.offset else [])
            return Segments(None)  # slow: the rest goes over several connections
        return Step.DONE
    finally:
        if not handed:
            body.close()


def _accept(state: State, body: Body) -> Step:
    """Decide how the answer relates to the partial: ``READ`` it (from byte 0 after a reset
    when it is a whole new answer), or ``RESTART`` (another version, nothing to read)."""
    ctx = state.ctx
    info = body.info
    if body.start == state.offset and state.offset == 0:
        state.adopt(info)
        return Step.READ
    if body.start == 0:
        # A 200 to a ranged request: the object changed (If-Range) or ranges are ignored.
        changed = state.changed(info)
        why = "the object changed" if changed else "the server ignored Range"
        log.info("%s: %s; restarting from byte 0", ctx.safe_url, why)
        state.reset()
        if changed:
            state.high_water = 0  # a new version: its bytes are progress again
        state.adopt(info)
        return Step.READ
    if body.start != state.offset:
        raise ProtocolMismatch(
            f"asked for bytes from {state.offset}, the answer starts at {body.start}",
            url=ctx.url,
        )
    if ctx.size is not None and info.size is not None and info.size != ctx.size:
        state.partial.discard()  # the object is not the one the caller described
        check_size(ctx.size, info.size, url=ctx.url, what="remote size")
    if info.size is not None and info.size < state.offset:
        log.info("%s: the partial is longer than the object; restarting", ctx.safe_url)
        state.reset()
        return Step.RESTART
    if state.changed(info):
        # A server that ignores If-Range (S3-like) answered 206 for a new version.
        log.info("%s: the object changed; restarting from byte 0", ctx.safe_url)
        state.reset()
        state.high_water = 0
        return Step.RESTART
    if state.unpinned and info.has_validator:  # a mirror's first answer: pin to its version
        state.unpinned = False
        state.info = replace(info, size=info.size if info.size is not None else state.total())
        state.record(state.info)
    return Step.READ


def _unmetered(state: State) -> bool:
    """No rate limit or hourly budget: a stream slowed by our own meter is not slow."""
    settings = state.ctx.settings
    return settings.rate_limit is None and settings.limit_bph is None


class _Probe:
    """Whether one stream is too slow to be the whole download: decided once, :data:`PROBE`
    seconds after its first byte. Slow means under :data:`SPLIT_BELOW` with at least the
    segment threshold still to come: a server or a path that limits each connection (CDNs,
    long fat links), where more connections pay. Fast means the machine (CPU, disk) is the
    limit, where more connections only add work: on loopback one stream takes 0.7-0.8 s for
    1 GiB and eight take 1.3 s."""

    def __init__(self, total: int, threshold: int) -> None:
        self.total = total
        self.threshold = threshold
        self.began: float | None = None
        self.start = 0

    def verdict(self, position: int) -> bool | None:
        """``None`` while undecided, then whether to split at ``position``."""
        now = time.monotonic()
        if self.began is None:
            self.began, self.start = now, position
            return None
        elapsed = now - self.began
        if elapsed < PROBE:
            return None
        rate = (position - self.start) / elapsed
        return rate < SPLIT_BELOW and self.total - position >= self.threshold


def _stream(state: State, body: Body, *, probe: bool = False) -> bool:
    """Stream the body to disk and the hash (:class:`~resumable.partial.Pipeline`).

    ``probe``: stop early, returning ``True``, when the stream proves slow (:class:`_Probe`):
    the bytes so far are on disk and hashed, and the rest goes over several connections.

    Never past a known length (:func:`~resumable.bounds.bounded`): a body that proves the
    object larger than the caller's ``size`` discards the partial (those bytes are not the
    object asked for) and raises :class:`SizeMismatch`.
    """
    ctx = state.ctx
    total = state.total()
    known = state.info.size if state.info is not None else None
    body = bounded(body, url=ctx.url, total=known, size=ctx.size)
    pipeline = Pipeline(
        state.partial, state.offset, size=ctx.settings.block_size, share=state.hasher
    )
    # Written around the page cache, the file needs no writeback overlapped with the download.
    large = total is None or total >= FLUSH_EVERY
    flusher = Flusher(state.partial.fd) if large and not pipeline.direct else None
    judge = _Probe(total, ctx.settings.segment_threshold) if probe and total else None
    try:
        return _write(state, body, total, pipeline, flusher, judge)
    except SizeMismatch:
        state.partial.discard()
        raise
    finally:
        if flusher is not None:
            flusher.close()


def _write(
    state: State,
    body: Body,
    total: int | None,
    pipeline: Pipeline,
    flusher: Flusher | None,
    probe: _Probe | None,
) -> bool:
    """Receive into the pipeline's blocks; queue each once it is full, or once it has held
    bytes for :data:`HOLD` seconds (a slow link still reaches the disk often).

    Every received byte is metered and reported at once (progress counts received bytes, as
    on the direct path; a cancel is seen at the next read). Whatever stops the body, the bytes
    received so far are written and hashed first, so they stay resumable: ``state.offset`` is
    set from what the pipeline wrote. Returns whether ``probe`` found the stream slow (it
    stopped early).
    """
    received = checked = flushed = state.offset
    split = False
    try:
        state.partial.check_owner()  # before the first write: the partial may be gone already
        ended = False
        while not (ended or split):
            block = pipeline.take()
            length = 0
            began = time.monotonic()
            try:
                while length < len(block.view):
                    got = read_into(body, block.view[length:])
                    if not got:
                        ended = True
                        break
                    length += got
                    _received(state, got, received + length, total)
                    if (
                        probe is not None
                        and (verdict := probe.verdict(received + length)) is not None
                    ):
                        probe, split = None, verdict
                        if split:
                            break
                    if time.monotonic() - began >= HOLD:
                        break
            finally:
                pipeline.put(block, length)
                received += length
            if received - checked >= CHECK_EVERY:
                state.partial.check_owner()
                checked = received
            if flusher is not None and pipeline.written - flushed >= FLUSH_EVERY:
                flusher.kick()
                flushed = pipeline.written
    finally:
        state.offset = pipeline.close()
        state.high_water = max(state.high_water, state.offset)
        # A failed write wins over whatever stopped the reading: the hash has seen bytes the
        # file lacks, so this call must not continue the stream (a new call re-hashes the file).
        pipeline.check()
    if total is not None and state.offset < total:
        if split:
            return True
        url = state.ctx.url
        raise ProtocolMismatch(f"the body ended at byte {state.offset} of {total}", url=url)
    return False


def _received(state: State, got: int, done: int, total: int | None) -> None:
    """Account for ``got`` new bytes: the rate limit, then a progress event (a cancel raises)."""
    ctx = state.ctx
    state.fetched += got
    ctx.engine.meter(got, ctx.cancel)
    state.emit(EventKind.PROGRESS, done=done, total=total)
