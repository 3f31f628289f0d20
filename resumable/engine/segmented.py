"""Segmented downloads: one large file over several connections, resumable per byte range.

Design (and why):

- **Pieces in file order, not N big segments.** SHA-256 can only consume the contiguous prefix
  of the file. With N equal segments that prefix grows at one connection's speed and most of
  the file would be hashed after the last byte arrived. Handing out pieces in order keeps every
  connection near the front, so the hash frontier trails right behind the downloads.
- **Guided piece sizes, then stealing.** Each piece is ``unassigned / (2 * connections)``
  (1-32 MiB), so pieces shrink towards the end and connections finish together. An idle
  connection then takes the second half of the largest piece in flight, but only a large one:
  HTTP cannot shorten a range in flight, so the victim closes its response early and discards
  what the server had already pushed (about a socket buffer, ~1-2 MiB on loopback).
- **Durable ranges.** Bytes go to a preallocated ``.partial`` with ``pwrite``; a range enters the
  sidecar only at a checkpoint, after ``fdatasync``. A checkpoint starts once ``size/128`` new
  bytes are written (and the previous one is done: on a fast link syncs take longer than the
  interval, so there are fewer); a kill loses what was written since the last one, an orderly
  stop records everything.
- **Every request pinned.** Each ranged request carries the object's identity (``expect``); an
  answer from byte 0 (a 200 to a Range) or for another version aborts the segmented attempt with
  :class:`Fallback`, and the caller restarts the file as one stream. Never a splice.
- **Bounded memory.** Each connection holds one read of at most ``block`` bytes; the frontier
  reads back 4 MiB at a time from the page cache.

Only the calling thread runs the user's progress callback; workers report through shared state.
The workers' connections are in a child of the download's cancel scope (:mod:`resumable.cancel`):
a stop for any reason (a failure, a callback's exception, Ctrl-C, a cancel) shuts them, so no
stop waits for a worker blocked on a silent server.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from ..bounds import bounded
from ..cancel import Scope, current
from ..errors import Cancelled, ProtocolMismatch, ResumableError, TransientError
from ..locator import PERMANENT, Locator
from ..partial import Partial
from ..ranges import RangeSet
from ..retry import RetryPolicy
from ..sources import Body, RemoteInfo, Source
from ..urls import redact
from ..verify import Digests
from .recover import Recovery
from .scheduler import Piece, Scheduler

__all__ = ["SEGMENT_READ", "Fallback", "SegmentedFetch"]

log = logging.getLogger("resumable")
MiB = 1 << 20
READ_BACK = 4 * MiB
# Bytes per read on each segment connection. Small reads keep 16 connections under 80 MiB of
# memory: 1 MiB reads peaked at ~85 MiB and 256 KiB at 55-60 MiB (up to ~100 MiB on a busy
# machine, where glibc opens more malloc arenas); 128 KiB, under glibc's mmap threshold, at
# ~50 MiB, at no measured cost in speed.
SEGMENT_READ = 128 * 1024


class Fallback(Exception):
    """The server cannot serve this file in ranges (or it changed): restart as one stream."""

    def __init__(self, reason: str, *, changed: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.changed = changed


class SegmentedFetch:
    """Fetch the missing ranges of one object into ``partial`` over several connections.

    Args:
        source, url, info: where the object is and which version (every request pins ``info``).
        locator: the URL to request now, shared by every connection (a refreshed signed URL or
            a mirror replaces it once for all; see :mod:`resumable.locator`). Default: ``url``.
        partial: the open ``.partial`` (preallocated here).
        written: ranges already on disk and recorded (from the sidecar, on resume).
        digests: updated in file order by the hash frontier.
        connections: parallel connections.
        block: most bytes per read.
        policy: the per-piece retry policy.
        stall: the stall timeout: how long a worker blocked in a read may take to notice a stop.
        record: writes the sidecar with the given ranges (the caller knows what else goes in).
        emit: ``emit(kind, done, error, wait)`` reports progress (called on this thread only).
        first_body: an answer already open at byte 0 (the request that discovered the size),
            used for the first piece instead of a new request.
    """

    def __init__(
        self,
        *,
        source: Source,
        url: str,
        info: RemoteInfo,
        partial: Partial,
        written: RangeSet,
        digests: Digests,
        connections: int,
        block: int,
        policy: RetryPolicy,
        stall: float,
        record: Callable[[RangeSet], None],
        emit: Callable[..., None],
        first_body: Body | None = None,
        meter: Callable[[int], None] = lambda amount: None,
        extra_slot: Callable[[], Callable[[], None] | None] = lambda: lambda: None,
        locator: Locator | None = None,
    ) -> None:
        if info.size is None:
            raise ValueError("a segmented download needs the object's size")
        self.source, self.url, self.info = source, url, info
        self.locator = locator or Locator([url], [source])
        self.size = info.size
        self.partial = partial
        # Ranges are bounded by the object's size (a damaged or hostile sidecar may record more).
        self.written = RangeSet((a, min(b, info.size)) for a, b in written if a < info.size)
        self.digests = digests
        self.connections = max(1, connections)
        self.block = block
        self.policy = policy
        self.stall = stall
        self.record = record
        self.emit = emit
        self.first_body = first_body
        self.meter = meter
        self.extra_slot = extra_slot
        self.fetched = 0  # bytes written by this fetch
        self.hashed = 0
        self._cond = threading.Condition()
        self._stop = threading.Event()  # workers: take no more pieces, write nothing more
        self._abort = threading.Event()  # the frontier too: the result is not wanted
        self._failure: BaseException | None = None
        self._retries: list[tuple[BaseException, float]] = []
        self._workers: list[threading.Thread] = []
        self._scheduler = Scheduler(written.missing(self.size), self.connections)
        self._scope = Scope(parent=current())  # the workers' connections
        self.checkpoint_bytes = max(MiB // 4, min(64 * MiB, self.size // 128))

    # -- the calling thread ---------------------------------------------------------------------

    def run(self) -> None:
        """Fetch until every byte is written and hashed; raise the first failure otherwise."""
        self.partial.preallocate(self.size)
        hasher = threading.Thread(target=self._hash_frontier, name="resumable-frontier")
        hasher.daemon = True
        hasher.start()
        # The answer already open starts at byte 0: it serves the first piece, whichever
        # worker would otherwise have taken it.
        first = None
        if self.first_body is not None:
            piece = self._scheduler.take()
            if piece is None or piece.pos != 0:
                self.first_body.close()
            else:
                first = (piece, self.first_body)
            self.first_body = None
        for index in range(self.connections):
            # The first connection uses the file's own host slot; the others only free ones.
            release = (lambda: None) if index == 0 else self.extra_slot()
            if release is None:
                break
            worker = threading.Thread(
                target=self._work, args=(first if index == 0 else None, release), daemon=True
            )
            worker.name = f"resumable-segment-{index}"
            self._workers.append(worker)
            worker.start()
        try:
            self._supervise()
        except BaseException:
            self._stop_all()
            self._checkpoint(final=True)
            raise
        finally:
            self._stop.set()
            with self._cond:
                self._cond.notify_all()
            hasher.join()
        if self.hashed != self.size:  # pragma: no cover - the frontier stops only when done
            raise RuntimeError("the hash frontier stopped early")

    def _supervise(self) -> None:
        recorded = self.written.total
        last_done = -1
        while True:
            with self._cond:
                if not self._finished():
                    self._cond.wait(0.2)
                # Liveness first: a worker records its failure before it exits.
                alive = any(worker.is_alive() for worker in self._workers)
                failure = self._failure
                retries, self._retries = self._retries, []
                done = self.written.total
                finished = self._finished()
            for error, wait in retries:
                self.emit("retrying", done, error=error, wait=wait)
            if failure is not None:
                raise failure
            if self._scope.aborted:  # the download was cancelled
                raise Cancelled("cancelled", url=self.url)
            if done != last_done:
                self.emit("progress", done)
                last_done = done
            if done - recorded >= self.checkpoint_bytes:
                self._checkpoint()
                recorded = done
            if finished:
                break
            if not alive and not self._complete():
                raise RuntimeError("segment workers stopped with ranges missing")
        for worker in self._workers:
            worker.join()

    def _finished(self) -> bool:
        return (self._complete() and self.hashed >= self.size) or self._failure is not None

    def _complete(self) -> bool:
        return self.written.covers(self.size)

    def _checkpoint(self, final: bool = False) -> None:
        """fdatasync, then record the ranges written before it (never a range not yet synced)."""
        with self._cond:
            snapshot = self.written.copy()
        try:
            self.partial.sync()
            self.record(snapshot)
        except ResumableError:
            if not final:
                raise
            log.warning("could not record the ranges of %s at stop", self.partial.data)

    def _stop_all(self) -> None:
        self._abort.set()
        self._stop.set()
        self._scope.abort()  # a worker blocked in a read returns at once
        with self._cond:
            self._cond.notify_all()
        for worker in self._workers:
            # One that does not return is left behind (it re-checks the stop flag before
            # every write, so it writes nothing).
            worker.join(timeout=self.stall + 1.0)

    # -- worker threads -------------------------------------------------------------------------

    def _work(self, first: tuple[Piece, Body] | None, release: Callable[[], None]) -> None:
        try:
            with self._scope.entered():
                self._work_pieces(first)
        except BaseException as exc:
            self._fail_with(exc)
        finally:
            release()

    def _work_pieces(self, first: tuple[Piece, Body] | None) -> None:
        while not self._stop.is_set():
            piece, body = first if first is not None else (self._scheduler.take(), None)
            first = None
            if piece is None:
                return
            try:
                self._fetch(piece, body)
            finally:
                self._scheduler.done(piece)

    def _fetch(self, piece: Piece, body: Body | None) -> None:
        """Fetch one piece, retrying transient failures from where it stopped (its own budget;
        a new URL from the shared locator serves every connection)."""
        recovery = Recovery(
            self.policy,
            self.locator,
            url=self.url,
            report=self._report_retry,
            wake=self._stop,  # a stop ends the backoff; the loop then sees it
            what=f"the segment at byte {piece.pos} of {redact(self.url)}",
        )
        if body is not None:  # opened by the calling thread: its connection becomes ours
            adopt = getattr(body, "track", None)
            if adopt is not None:
                adopt()
        while piece.pos < piece.end and not self._stop.is_set():
            before = piece.pos
            target = self.locator.current()
            try:
                if body is None:
                    body = target.source.open(target.url, piece.pos, piece.end, expect=self.info)
                try:
                    self._check(body, piece)
                    self.locator.succeeded(target)
                    self._stream(bounded(body, url=self.url, total=self.size, end=piece.end), piece)
                finally:
                    body.close()
                    body = None
            except TransientError as exc:
                with self._cond:  # the file has bytes: a refusal is then a server gone away
                    on_disk = self.written.total
                recovery.failed(
                    exc,
                    target,
                    moved=piece.pos - before,
                    remaining=piece.end - before,
                    on_disk=on_disk,
                )
            except PERMANENT as exc:
                recovery.refused(exc, target)

    def _report_retry(self, exc: BaseException, wait: float) -> None:
        with self._cond:
            self._retries.append((exc, wait))
            self._cond.notify_all()

    def _check(self, body: Body, piece: Piece) -> None:
        changed = self.info.differs_from(body.info)
        if body.start == 0 and piece.pos != 0:
            why = "the object changed" if changed else "the server ignored a Range request"
            raise Fallback(why, changed=changed)
        if body.start != piece.pos:
            raise ProtocolMismatch(
                f"asked for bytes from {piece.pos}, the answer starts at {body.start}",
                url=self.url,
            )
        if changed:
            raise Fallback("the object changed", changed=True)

    def _stream(self, body: Body, piece: Piece) -> None:
        while piece.pos < piece.end:
            chunk = body.read(min(self.block, piece.end - piece.pos))
            if not chunk:
                if piece.pos < piece.end:
                    raise ProtocolMismatch(
                        f"a range answer ended at byte {piece.pos} before {piece.end}",
                        url=self.url,
                    )
                return
            if self._stop.is_set():
                return
            # The end may have been lowered by a thief since the read: claim what is still ours.
            offset, take = self._scheduler.claim(piece, len(chunk))
            if take == 0:
                return
            self.partial.write(memoryview(chunk)[:take], offset)
            self.meter(take)
            with self._cond:
                self.written.add(offset, offset + take)
                self.fetched += take
                self._cond.notify_all()

    def _fail_with(self, exc: BaseException) -> None:
        """Record the first failure and stop everyone: the supervisor raises it."""
        with self._cond:
            if self._failure is None:
                self._failure = exc
            self._abort.set()
            self._stop.set()
            self._cond.notify_all()

    # -- the hash frontier ----------------------------------------------------------------------

    def _hash_frontier(self) -> None:
        """Hash the contiguous written prefix, in order, as it grows (from the page cache)."""
        position = 0
        buffer = bytearray(READ_BACK)
        view = memoryview(buffer)
        try:
            while position < self.size:
                with self._cond:
                    while self.written.prefix_end <= position and not self._stop.is_set():
                        self._cond.wait(0.5)
                    if self._abort.is_set() or self.written.prefix_end <= position:
                        return  # aborted, or stopped with nothing more to hash
                    end = self.written.prefix_end
                while position < end:
                    if self._abort.is_set():
                        return
                    count = self.partial.read_into(view[: min(READ_BACK, end - position)], position)
                    if not count:
                        raise ProtocolMismatch("the partial is shorter than its ranges")
                    self.digests.update(view[:count])
                    position += count
                with self._cond:
                    self.hashed = position
                    self._cond.notify_all()
        except BaseException as exc:
            self._fail_with(exc)
