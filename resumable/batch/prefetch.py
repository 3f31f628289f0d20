"""``prefetch``: a batch's results in input order, with a bounded look-ahead and disk budget.

A training loop wants shard 0 as soon as it is there, then shard 1, while the next few download,
and no more of them than its scratch disk holds. :class:`Prefetch` runs one ordinary
:class:`~resumable.Job` (the same feeder, runners, per-item steps and ledger as ``start``, so a
rerun skips complete files and resumes partials, and ``executor=``, ``process=`` and
``checksums=`` work as they do there) whose inputs pass through a :class:`Window`:

- The inputs are expanded here, lazily (templates, prefixes, links, ``Item`` objects), each
  into a :class:`~resumable.batch.items.Work` that is given a place in the window before the
  job's feeder may take it. The window admits an item only while fewer than ``ahead`` items
  wait to be consumed (downloading, or complete and not yet given out), and, with
  ``max_bytes``, only while the bytes of those, plus the item the consumer holds, plus this
  one fit. Memory is therefore O(``ahead``), whatever the number of items (the job keeps
  counts, not results: ``retain=False``).
- Each item's completion (:class:`~resumable.batch.completions.Completion`, from the tally)
  settles its place; the consumer takes places in order, so a fast item waits for the slow one
  before it (that is what "input order" costs; ``Job.as_completed`` has no such wait).
- The item the consumer holds counts until it asks for the next one; then, with
  ``keep=False``, its file is deleted (and a ``Decompress`` output, which is that item's alone;
  extracted folders may be shared, so they are kept).

Sizes, with ``max_bytes``: ``Item.size``, the size a listing gave, the size on disk of a file
already at its destination (complete: the ``.partial`` protocol never leaves anything else
there), or else a HEAD (the engine's ``stat``, retried as a download is). An item whose size
is larger than ``max_bytes``, or cannot be learned, fails with :class:`InvalidArgument` at its
place, without a GET. What the budget does not count: what a processor extracts, the small
sidecar files, and partials left by an earlier run for items not yet admitted.

Leaving the loop (``break``, an exception, ``close()``, Ctrl-C) stops the window, cancels the
job and waits for its threads; every partial stays resumable.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .._checks import check_bool, check_number
from .._guard import typed
from .._threads import POLL
from ..cancel import CancelToken, watching
from ..errors import InvalidArgument, LocalError, ResumableError
from .completions import Completion, Errors, check_errors
from .feeder import describe
from .items import Work, iter_work
from .job import Job

if TYPE_CHECKING:
    from ..engine import DownloadResult, Engine
    from ..extract import Processor
    from ..progress import ProgressCallback
    from .checksums import ChecksumTable
    from .runner import Runner

__all__ = ["Prefetch", "Slot", "Window", "WindowSpec", "check_window"]

log = logging.getLogger("resumable")


@dataclass(frozen=True)
class WindowSpec:
    """How far ``prefetch`` looks ahead, what it keeps, and what a failure does."""

    ahead: int
    keep: bool
    max_bytes: int | None
    errors: Errors


def check_window(*, ahead: object, keep: object, max_bytes: object, errors: object) -> WindowSpec:
    """The checked :class:`WindowSpec` (an :class:`InvalidArgument` names a wrong value)."""
    check_number(ahead, "ahead", integer=True)
    assert isinstance(ahead, int)
    if ahead < 0:
        raise InvalidArgument(f"ahead must be 0 or more, got {ahead}")
    check_bool(keep, "keep")
    if max_bytes is not None:
        check_number(max_bytes, "max_bytes", integer=True)
        assert isinstance(max_bytes, int)
        if max_bytes <= 0:
            raise InvalidArgument(f"max_bytes must be positive (or None), got {max_bytes}")
    return WindowSpec(ahead, bool(keep), max_bytes, check_errors(errors))


@dataclass
class Slot:
    """One item's place in the window: its work (``None`` if it failed before the batch took
    it), the bytes it reserves, and once settled its result or error."""

    work: Work | None
    size: int
    result: DownloadResult | None = None
    error: BaseException | None = None

    @property
    def settled(self) -> bool:
        return self.result is not None or self.error is not None


class Window:
    """The look-ahead as state, shared by the feeder (``put``), the job's threads (``settle``)
    and the consumer (``release``, ``next``). Thread-safe; every wait is short (Ctrl-C).

    Invariants (checked by the unit tests): at most ``ahead`` places wait to be consumed (one
    more only when ``ahead`` is 0 and the consumer is waiting); with ``max_bytes``, the bytes
    reserved by those and by the held item never exceed it.
    """

    def __init__(self, ahead: int, max_bytes: int | None = None) -> None:
        self.ahead = ahead
        self.max_bytes = max_bytes
        self._changed = threading.Condition()
        self._waiting: deque[Slot] = deque()  # in input order; the head is given out next
        self._by_key: dict[int, Slot] = {}  # places not settled yet, by id() of their work
        self._held: Slot | None = None
        self._reserved = 0  # bytes of the waiting places and the held one
        self._wanted = False  # the consumer waits (with ahead=0, one place opens then)
        self._closed = False  # no more places will come
        self._stopped = False

    @property
    def reserved(self) -> int:
        with self._changed:
            return self._reserved

    @property
    def held(self) -> Slot | None:
        """The item the consumer holds (its bytes reserved until :meth:`release`)."""
        with self._changed:
            return self._held

    @property
    def waiting(self) -> int:
        with self._changed:
            return len(self._waiting)

    def _admits(self, size: int) -> bool:
        count = len(self._waiting) < self.ahead or (not self._waiting and self._wanted)
        room = self.max_bytes is None or self._reserved + size <= self.max_bytes
        return count and room

    def put(self, slot: Slot) -> bool:
        """Give ``slot`` the next place once the window admits it; ``False`` once stopped."""
        with self._changed:
            while not self._stopped and not self._admits(slot.size):
                self._changed.wait(POLL)
            if self._stopped:
                return False
            self._waiting.append(slot)
            self._reserved += slot.size
            if slot.work is not None and not slot.settled:
                self._by_key[id(slot.work)] = slot
            self._changed.notify_all()
            return True

    def settle(self, completion: Completion) -> bool:
        """Settle the place of ``completion``'s work; ``False`` if it has none here."""
        with self._changed:
            slot = self._by_key.pop(id(completion.key), None)
            if slot is None:
                return False
            slot.result, slot.error = completion.result, completion.error
            self._changed.notify_all()
            return True

    def close(self) -> None:
        """No more places will come (the inputs are exhausted)."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def stop(self) -> None:
        """The consumer left: ``put`` admits nothing more."""
        with self._changed:
            self._stopped = True
            self._changed.notify_all()

    def release(self) -> Slot | None:
        """The consumer asks for the next item: the one it held is consumed (returned)."""
        with self._changed:
            held, self._held = self._held, None
            if held is not None:
                self._reserved -= held.size
                self._changed.notify_all()
            return held

    def next(self, lost: Callable[[], BaseException | None]) -> Slot | None:
        """The head place once settled (held by the consumer if it succeeded), or ``None``
        at the end. ``lost()``: the error that stopped the batch, once it has ended; places
        still unsettled then never will be, and fail with it."""
        with self._changed:
            self._wanted = True
            self._changed.notify_all()
            try:
                while True:
                    if self._waiting and self._waiting[0].settled:
                        return self._take()
                    if self._closed and not self._waiting:
                        return None
                    error = lost() if self._waiting else None
                    if error is not None:
                        for slot in self._waiting:
                            if not slot.settled:
                                slot.error = error
                        self._by_key.clear()
                        continue
                    self._changed.wait(POLL)
            finally:
                self._wanted = False

    def _take(self) -> Slot:
        slot = self._waiting.popleft()
        if slot.result is not None:
            self._held = slot  # its bytes stay reserved until release()
        else:
            self._reserved -= slot.size
        self._changed.notify_all()
        return slot


class Prefetch:
    """One ``prefetch`` call: its window, and the job started by the first ``next()``."""

    def __init__(
        self,
        engine: Engine,
        items: Iterable[object],
        dest_dir: Path,
        spec: WindowSpec,
        *,
        progress: ProgressCallback | None = None,
        process: Processor | None = None,
        checksums: ChecksumTable | None = None,
        runner: Runner | None = None,
        on_end: Callable[[], None] | None = None,
    ) -> None:
        self._engine = engine
        self._items = items
        self._dest_dir = dest_dir
        self._spec = spec
        self._progress = progress
        self._process = process
        self._checksums = checksums
        self._runner = runner
        self._on_end = on_end
        self.window = Window(spec.ahead, spec.max_bytes)
        self._cancel = CancelToken()  # the listings and HEADs made while admitting
        self._strays: list[BaseException] = []  # failures of no item (a thread, the ledger)

    def results(self) -> Iterator[DownloadResult]:
        """The consumer's side: a generator, so that leaving a ``for`` loop closes it."""
        job = Job(
            self._engine,
            self._admitted(),
            self._dest_dir,
            progress=self._progress,
            process=self._process,
            runner=self._runner,
            on_end=self._on_end,
            on_settled=self._settled,
            retain=False,
        )
        finished = False
        try:
            while True:
                held = self.window.held
                if held is not None and not self._spec.keep:
                    assert held.result is not None
                    discard(held.result)  # before its bytes are released to the next item
                self.window.release()
                slot = self.window.next(lambda: self._lost(job))
                if slot is None:
                    finished = True
                    return
                if slot.result is not None:
                    yield slot.result
                elif self._spec.errors == "raise":
                    assert slot.error is not None
                    raise slot.error
                else:
                    log.warning("prefetch: skipped a failed item: %s", slot.error)
        finally:
            self.window.stop()
            self._cancel.set()
            if not finished:
                job.cancel()
            job.wait()

    # -- the job's side ---------------------------------------------------------------------------

    def _settled(self, completion: Completion) -> None:
        if not self.window.settle(completion) and completion.error is not None:
            self._strays.append(completion.error)

    def _lost(self, job: Job) -> BaseException | None:
        """Once the job has ended: why the places still open will never settle."""
        if not job.done():
            return None
        if self._strays:
            return self._strays[0]
        return ResumableError("the batch stopped before this item was downloaded")

    def _admitted(self) -> Iterator[Work]:
        """The inputs, expanded lazily, each given its place before the job's feeder takes it
        (this generator runs on the feeder's thread)."""
        inputs = iter_work(self._items, lambda prefix: self._engine.list(prefix, self._cancel))
        root = self._dest_dir.resolve()
        try:
            while True:
                try:
                    work = next(inputs, None)
                except Exception as exc:  # the items iterable itself raised: the inputs end
                    error = InvalidArgument(f"the items given to prefetch raised {describe(exc)}")
                    error.__cause__ = exc
                    self.window.put(Slot(None, 0, error=error))
                    return
                if work is None:
                    return
                slot = self._slot(work, root)
                if not self.window.put(slot):
                    return  # the consumer left
                if not slot.settled:
                    assert slot.work is not None
                    yield slot.work
        finally:
            self.window.close()

    def _slot(self, work: Work | tuple[object, Exception], root: Path) -> Slot:
        """``work``'s place: its digest from ``checksums`` and its size, or its failure."""
        if isinstance(work, Work) and self._checksums is not None:
            work = self._checksums.attach(work)
        if not isinstance(work, Work):  # an input that could not be expanded: (raw, error)
            return Slot(None, 0, error=work[1])
        if self._spec.max_bytes is None:
            return Slot(work, 0)
        try:
            size = self._size(work, root)
        except Exception as exc:  # its HEAD failed (404...): the item fails at its place
            return Slot(work, 0, error=typed(exc, "prefetch"))
        if size > self._spec.max_bytes:
            error = InvalidArgument(
                f"{work.rel} is {size} bytes, more than max_bytes={self._spec.max_bytes}: it "
                "could never fit; raise max_bytes or leave the item out",
                url=work.item.url,
                kept="nothing was fetched",
            )
            return Slot(work, 0, error=error)
        return Slot(work, size)

    def _size(self, work: Work, root: Path) -> int:
        if work.item.size is not None:  # given, or from a listing
            return work.item.size
        dest = root / work.rel
        with contextlib.suppress(OSError):
            if dest.is_file():  # complete (the .partial protocol leaves nothing else there)
                return dest.stat().st_size
        request = self._engine.request(work.item.url, dest, mirrors=work.item.mirrors)
        with watching(self._cancel):
            size = self._engine.stat(request).size
        if size is None:
            raise InvalidArgument(
                f"the size of {work.rel} is unknown (its source does not tell it) and "
                "max_bytes needs every size before the download; give Item(url, size=...)",
                url=work.item.url,
                kept="nothing was fetched",
            )
        return size


def discard(result: DownloadResult) -> None:
    """Delete a consumed item's file (``keep=False``), and a ``Decompress`` output file (that
    item's alone; extracted folders may hold other items' files, so they stay)."""
    paths = [result.path]
    if result.extracted is not None:
        paths += [target for target in result.extracted.targets if target.is_file()]
    for path in paths:
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise LocalError(f"cannot delete {path}: {exc.strerror}", path=str(path)) from exc
