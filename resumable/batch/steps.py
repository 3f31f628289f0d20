"""The per-item work of a batch, shared by both runners: check, ledger skip, download, record.

- :meth:`Steps.admit` (in the caller's process): a safe, unique destination, its ledger entry,
  and a skip by ``stat`` alone for a file recorded as done and untouched since; otherwise the
  :class:`~resumable.batch.task.Task` to download.
- :func:`~resumable.batch.task.download` runs the task (on a local thread, or on an executor's
  worker).
- :meth:`Steps.settle` (in the caller's process again): the item's final event, then its
  ledger row and count. Only the caller writes the ledger.

:meth:`Steps.run` is the whole of it for a local thread, including a processor
(:mod:`resumable.extract`), which is given a recorder (the ledger's ``extracted`` rows) and an
emit callback, never the job. An item's failure, even a ``BaseException`` from a progress
callback, is that item's outcome; a ledger that cannot be written (a full disk) fails each item
still to run with its :class:`LocalError`.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from .._guard import typed
from ..errors import (
    Cancelled,
    ExtractionError,
    InvalidArgument,
    LocalError,
    SourceNotFound,
)
from ..partial import Partial
from ..progress import EventKind, ProgressEvent
from ..urls import identity
from .claims import Claim, Claims, Record, failure_fields, for_others, recorded_error
from .feeder import describe
from .items import Work, safe_destination
from .ledger import Ledger
from .rows import Entry, parse_row
from .task import Outcome, Task, download

if TYPE_CHECKING:
    from ..engine import DownloadResult, Engine
    from ..extract import Processor
    from ..sources import RemoteInfo
    from .revisits import Revisits
    from .sync import Sync
    from .tally import Tally

__all__ = ["Steps", "stopped_by"]

Emit = Callable[[ProgressEvent], None]


class Steps:
    """The per-item steps of one batch into ``dest_dir`` (thread-safe).

    ``emit`` passes an event to the user's callback (one thread at a time); ``on_event`` also
    counts it as progress of a file in flight (``status()``). With ``claims``, an item is
    downloaded only once this process holds its claim; an item another live process holds is
    handed to ``revisits`` (see :mod:`resumable.batch.claims`).
    """

    def __init__(
        self,
        engine: Engine,
        ledger: Ledger,
        dest_dir: Path,
        tally: Tally,
        cancel: threading.Event,
        emit: Emit,
        *,
        sync: Sync | None = None,
        process: Processor | None = None,
        claims: Claims | None = None,
        revisits: Revisits | None = None,
    ) -> None:
        self._engine = engine
        self._ledger = ledger
        self._dest_dir = dest_dir
        self._tally = tally
        self._cancel = cancel
        self._emit = emit
        self._sync = sync
        self._process = process
        self._lock = threading.Lock()
        self.root = dest_dir.resolve()
        """The destination directory, resolved once (every item's path is under it)."""
        self.seen: set[str] = set()
        """Destinations (relative) of the items checked so far: each may be used once."""
        self._checked_folders: set[str] = set()  # see safe_destination
        self._claims = claims
        self._revisits = revisits if claims is not None else None
        self._held: dict[str, Claim] = {}  # by destination (relative): claims this batch holds
        self._deferred: dict[str, tuple[Work, tuple[Path, Entry | None, bool]]] = {}

    @property
    def ledger(self) -> Ledger:
        """The batch's ledger (its ``extracted`` rows record what a processor did)."""
        return self._ledger

    @property
    def cancel(self) -> threading.Event:
        return self._cancel

    def emit(self, event: ProgressEvent) -> None:
        """Pass ``event`` to the user's callback (a file skipped, an extraction's events)."""
        self._emit(event)

    def on_event(self, event: ProgressEvent) -> None:
        self._tally.event(event)
        self._emit(event)

    # -- the local runner's item ------------------------------------------------------------------

    def run(self, work: Work, sync_dir: Callable[[Path], None]) -> None:
        """One item on this thread, start to finish; never raises for the item."""
        from .extracting import extract

        fetched = [False]  # a failure after this is the processor's: the file stays done
        try:
            process = work.item.process or self._process
            if process is not None:
                self._tally.ok(extract(self, self._engine, work, process, sync_dir, fetched), work)
                return
            task = self.admit(0, work)
            if task is None:
                return
            outcome = download(self._engine, task, self.on_event, self._cancel, sync_dir)
            if isinstance(outcome.error, Exception):
                outcome = dataclasses.replace(outcome, error=typed(outcome.error, "download_many"))
            self.settle(work, outcome)
        except Exception as exc:  # typed errors, and a user's progress callback failing
            self.fail(work, typed(exc, "download_many"), after_download=fetched[0])
        except BaseException as exc:  # e.g. SystemExit from a callback: this item, then stop
            self.fail(work, stopped_by(exc), after_download=fetched[0])
            self._cancel.set()
        finally:
            self._end_claim(work)  # still held (not started: cancelled): given up
            self._tally.settled(self.root / work.rel)  # event.path is under root

    # -- before the download ----------------------------------------------------------------------

    def admit(self, key: int, work: Work) -> Task | None:
        """:meth:`check`, then skip by the ledger: the task to download, or ``None`` when the
        ledger skipped the item (recorded and counted already)."""
        dest, entry, changed = self.check(work)
        skipped = None if changed else self.skip_by_ledger(work, dest, entry)
        if skipped is not None:
            self.finish(work, skipped, None)
            return None
        if not self.claim(work, dest, entry, changed):
            return None
        return self.task(key, work, dest, changed)

    def claim(self, work: Work, dest: Path, entry: Entry | None, changed: bool) -> bool:
        """Take ``work``'s claim: ``True`` to download it; ``False`` when it is settled here
        (another process finished it, or failed it for good) or deferred (another live process
        holds it: :class:`~resumable.batch.revisits.Revisits` hands it out again)."""
        if self._claims is None:
            return True
        name = Claims.name_of(work.rel)
        got = self._claims.acquire(name)
        if isinstance(got, Record) and got.state == "done":
            skipped = None if changed else self.skip_by_ledger(work, dest, _entry_of(work, got))
            if skipped is not None:
                self.finish(work, skipped, None)
                return False
            got = self._claims.acquire(name, ours=True)  # its file changed since: ours to do
        if got is None:  # the claims cannot be written: download it anyway (logged)
            return True
        if isinstance(got, Claim):
            with self._lock:
                self._held[work.rel] = got
            return True
        if got.state == "failed":
            self.fail(work, recorded_error(got))
            return False
        assert self._revisits is not None
        with self._lock:
            self._deferred[work.rel] = (work, (dest, entry, changed))
        self._revisits.defer(work, work.rel)
        return False

    def _end_claim(
        self,
        work: Work,
        result: DownloadResult | None = None,
        error: BaseException | None = None,
        stat: tuple[int, int] | None = None,
    ) -> None:
        """Replace ``work``'s claim with its outcome (``done``, or ``failed`` for good, see
        ``for_others``), or give it up so that another process takes the item."""
        with self._lock:
            claim = self._held.pop(work.rel, None)
        if claim is None or self._claims is None:
            return
        try:
            if result is not None and stat is None:
                st = result.path.stat()
                stat = (st.st_size, st.st_mtime_ns)
        except OSError:
            result = None
        if result is not None and stat is not None:
            fields = {"identity": identity(work.item.url), "sha256": result.sha256}
            self._claims.finish(claim, "done", size=stat[0], mtime_ns=stat[1], **fields)
        elif error is not None and for_others(error):
            self._claims.finish(claim, "failed", **failure_fields(error))
        else:
            self._claims.release(claim)

    @staticmethod
    def task(key: int, work: Work, dest: Path, refresh: bool, streamed: bool = False) -> Task:
        """The :class:`Task` that downloads ``work`` to ``dest``."""
        item = work.item
        return Task(
            key,
            item.url,
            str(dest),
            item.size,
            item.sha256,
            item.checksum,
            refresh,
            tuple(item.mirrors),
            streamed,
        )

    def check(self, work: Work) -> tuple[Path, Entry | None, bool]:
        """The checks before fetching, in the caller's process: a safe, unique destination and
        its ledger entry. Returns ``(dest, entry, refresh)``."""
        with self._lock:
            deferred = self._deferred.pop(work.rel, None)
        if deferred is not None and deferred[0] is work:  # looked at again: checked already
            return deferred[1]
        item = work.item
        broken = self._ledger.broken
        if broken is not None:  # a batch of 100k items then ends at once (a full disk)
            raise LocalError(f"not started: {broken}", path=str(self._dest_dir / Ledger.DIRNAME))
        dest = safe_destination(self.root, work.rel, self._checked_folders)
        with self._lock:
            if work.rel in self.seen:
                raise InvalidArgument(
                    f"destination {work.rel!r} is already used by another item of this batch"
                )
            self.seen.add(work.rel)
        if self._sync is not None:
            self._sync.saw(work)
        entry = self._ledger.get(work.rel)
        if entry is not None and entry.identity != identity(item.url):
            # Another object was recorded at this path. If the file is still the one recorded,
            # its bytes are that object's: only a digest could vouch for them (a size check
            # cannot tell ``?sp=train`` from ``?sp=test``), so without one it is fetched again.
            other = entry.unchanged_on_disk(dest) and not (item.sha256 or item.checksum)
            return dest, None, other
        # A file this library made that changed on disk since is fetched again, not trusted.
        changed = entry is not None and dest.exists() and not entry.unchanged_on_disk(dest)
        changed = changed or (
            self._sync is not None and entry is not None and self._sync.remote_changed(work, entry)
        )
        return dest, entry, changed

    def skip_by_ledger(self, work: Work, dest: Path, entry: Entry | None) -> DownloadResult | None:
        """A file recorded as done and untouched since is skipped without reading it."""
        from ..engine import DownloadResult
        from ..verify import parse_expected

        if entry is None or not entry.unchanged_on_disk(dest) or entry.sha256 is None:
            return None
        expected = parse_expected(work.item.sha256)
        if expected.get("sha256", entry.sha256) != entry.sha256:
            return None
        if work.item.checksum is not None:
            return None  # other digests are not in the ledger: let the engine verify the file
        if work.item.size is not None and work.item.size != entry.size:
            return None
        size = entry.size or 0
        self._emit(ProgressEvent(EventKind.SKIPPED, entry.identity, dest, size, size))
        return DownloadResult(
            url=entry.identity,
            path=dest,
            size=size,
            sha256=entry.sha256,
            status="skipped",
            bytes_transferred=0,
            digests={"sha256": entry.sha256},
        )

    # -- after the download -----------------------------------------------------------------------

    def settle(
        self,
        work: Work,
        outcome: Outcome,
        callback_error: BaseException | None = None,
        *,
        partial_known: bool = True,
    ) -> None:
        """Record one item's outcome (ledger, counts) after its final progress event.

        ``callback_error``: the user's callback failed on an event of this file (the item fails
        with it). ``partial_known=False``: the worker could not say whether it left a partial
        (the chunk was lost); the ledger then looks at the destination from here."""
        if not outcome.started:
            return
        try:
            if outcome.final is not None and callback_error is None:
                self._emit(outcome.final)
        except Exception as exc:  # the user's callback failed on the final event
            callback_error = exc
        except BaseException as exc:  # SystemExit and the like: this item, then stop
            callback_error = stopped_by(exc)
            self._cancel.set()
        kept = outcome.partial if partial_known else None
        if callback_error is not None:
            self.fail(work, callback_error, partial=kept)
        elif outcome.result is not None:
            try:
                self.finish(work, outcome.result, outcome.info, outcome.stat)
            except LocalError as exc:  # the ledger cannot record it (a full disk)
                self.fail(work, exc, partial=False)
        else:
            assert outcome.error is not None
            self.fail(work, outcome.error, partial=kept)

    def finish(
        self,
        work: Work,
        result: DownloadResult,
        info: RemoteInfo | None,
        stat: tuple[int, int] | None = None,
    ) -> None:
        """Record a finished item and count it; ``stat`` is ``(size, mtime_ns)`` when another
        machine wrote the file (the ledger must not stat a path that may be on its disk)."""
        self.record(work, result, info, stat)
        self._tally.ok(result, work)
        self._end_claim(work, result, stat=stat)

    def record(
        self,
        work: Work,
        result: DownloadResult,
        info: RemoteInfo | None,
        stat: tuple[int, int] | None = None,
    ) -> None:
        """Record a complete file. Only a download that wrote it (not a skip, which only checked
        what was there) records the write that lets ``sync`` delete it later."""
        written = result.status != "skipped"
        name = identity(work.item.url)
        if not written and info is None:
            entry = self._ledger.get(work.rel)
            if entry is not None and entry.identity == name:
                return  # skipped by the ledger: its row already says all of this
        self._ledger.done(
            work.rel,
            result.path,
            identity=name,
            origin=work.origin,
            sha256=result.sha256,
            etag=info.etag if info else None,
            version=info.version if info else None,
            last_modified=info.last_modified if info else None,
            stat=stat,
            written=written,
        )

    def fail(
        self,
        work: Work,
        exc: BaseException,
        partial: bool | None = None,
        *,
        after_download: bool = False,
    ) -> None:
        """``work`` failed with ``exc``. After the download (while extracting), the ledger keeps
        the file as done."""
        try:
            if isinstance(exc, SourceNotFound) and self._sync is not None:
                self._sync.not_found(work)  # before the ledger records the failure
            self.record_failure(work.item, exc, None if after_download else work, partial, key=work)
        finally:
            self._end_claim(work, error=exc)

    def input_failed(self, raw: object, exc: BaseException) -> None:
        """An input whose expansion or listing failed (``sync`` then prunes nothing of it)."""
        if self._sync is not None:
            self._sync.incomplete(raw)
        self.record_failure(raw, exc)

    def record_failure(
        self,
        item: object,
        exc: BaseException,
        work: Work | None = None,
        partial: bool | None = None,
        *,
        key: Work | None = None,
    ) -> None:
        """Count a failure; with ``work``, also its ledger row (``partial`` or ``failed``).
        ``key``: the work item that failed, when ``work`` is left out (no ledger row)."""
        # An extraction failure leaves the download done (the ledger keeps saying so).
        if work is not None and not isinstance(exc, (Cancelled, ExtractionError)):
            if partial is None:
                partial = Partial(self._dest_dir / work.rel).data.exists()
            try:
                self._ledger.failed(
                    work.rel,
                    identity=identity(work.item.url),
                    origin=work.origin,
                    error=str(exc),
                    partial=partial,
                )
            except LocalError as ledger_error:  # the item fails either way; say both
                _log_unrecorded(work.rel, ledger_error)
        self._tally.failed(item, exc, key if key is not None else work)


def _entry_of(work: Work, record: Record) -> Entry | None:
    """A ``done`` claim record as a ledger entry (through the ledger's one parse boundary:
    the file is on a shared filesystem, anyone may have written it)."""
    data = record.data
    if data.get("identity") != identity(work.item.url):
        return None  # another object was put there: not this item's word
    size, mtime_ns, sha256 = data.get("size"), data.get("mtime_ns"), data.get("sha256")
    nothing = (None, None, None, 0.0, None, None, None)  # etag... written_mtime_ns
    return parse_row((work.rel, data["identity"], None, "done", size, mtime_ns, sha256, *nothing))


def stopped_by(exc: BaseException) -> Cancelled:
    """The typed error for a ``BaseException`` that is not an ``Exception`` (``SystemExit``,
    ``KeyboardInterrupt`` raised by a progress callback or a processor): it stops the batch."""
    error = Cancelled(f"the batch was stopped by {describe(exc)}")
    error.__cause__ = exc
    return error


def _log_unrecorded(rel: str, error: LocalError) -> None:
    import logging

    logging.getLogger("resumable").warning("%s: not recorded in the ledger: %s", rel, error)
