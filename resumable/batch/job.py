"""Batches: many items through one downloader, with a handle to watch, wait for and cancel.

A :class:`Job` runs a feeder thread that consumes the inputs lazily into a small queue (so a
generator of 100k items needs no more memory than a few dozen) and ``workers`` threads that
download. Each item is independent: its failure is recorded, never raised; the job's
:class:`BatchResult` holds the successes, the failures and, after ``sync``, what was deleted.

The ledger (``dest_dir/.resumable/``) makes reruns cheap: a file recorded as done and unchanged
on disk (same size and mtime) is skipped by ``stat`` alone, and earlier errors can be reported.
``cancel()`` (and Ctrl-C in ``download_many``) stops promptly: queued items are not started,
running ones stop at their next read, and every partial stays resumable.

No thread of a job dies silently (see :mod:`resumable._threads`): an item's failure, even a
``BaseException`` from a progress callback, is that item's outcome; a thread that dies anyway
cancels the job and leaves a typed error in ``failed``; the feeder stops when no worker is left
to take its items, and the workers when no feeder is left to give them any. A ledger that cannot
be written (a full disk) fails each item still to run with its :class:`LocalError`. Stored errors
are light (:func:`resumable._light.light`): no traceback, causes as text.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._guard import guarded, typed, user_callback
from .._light import light
from .._threads import POLL, Guarded
from ..cancel import CancelToken, watching
from ..errors import (
    BatchError,
    Cancelled,
    ExtractionError,
    InvalidArgument,
    LocalError,
    ResumableError,
    SourceNotFound,
    identity,
    redact,
)
from ..partial import Partial, fsync_dir
from ..progress import EventKind, ProgressCallback, ProgressEvent
from ..progress_lines import format_bytes  # one unit system: binary, as the bars
from ..sources import RemoteInfo
from .items import Work, iter_work, safe_destination
from .ledger import Entry, Ledger

if TYPE_CHECKING:
    from ..api import DownloadResult, ResumableDownloader
    from ..extract import Processor
    from .checksums import ChecksumTable

__all__ = ["BatchResult", "FileProgress", "Job", "JobStatus"]

log = logging.getLogger("resumable")
_END = object()


@dataclass(frozen=True)
class BatchResult:
    """The outcome of a batch. Per-item failures are here, never raised by ``download_many``.

    Attributes:
        ok: one :class:`DownloadResult` per file now complete (downloaded, resumed, skipped).
        failed: ``(item, error)`` pairs, ``error`` a typed :class:`ResumableError`.
        cancelled: the job was cancelled before every item ran.
        deleted: files removed by ``sync`` (downloaded earlier, gone at the source).
    """

    ok: list[DownloadResult] = field(default_factory=list)
    failed: list[tuple[object, BaseException]] = field(default_factory=list)
    cancelled: bool = False
    deleted: list[Path] = field(default_factory=list)

    def raise_for_errors(self) -> None:
        """Raise :class:`BatchError` if any item failed (or the job was cancelled)."""
        if self.failed:
            raise BatchError(self.failed, succeeded=len(self.ok))
        if self.cancelled:
            raise Cancelled(f"the batch was cancelled after {len(self.ok)} files")

    @property
    def summary(self) -> str:
        """One line, e.g. ``Done: 120 files downloaded, 3 resumed, 10 skipped, 21 errors``."""
        counts = {"downloaded": 0, "resumed": 0, "skipped": 0}
        for result in self.ok:
            counts[result.status] += 1
        # Items stopped by the cancel are not errors: their partials are kept to resume.
        stopped = sum(isinstance(exc, Cancelled) for _, exc in self.failed)
        errors = len(self.failed) - stopped
        if self.cancelled:
            text = f"Cancelled: {len(self.ok)} files done ({counts['downloaded']} downloaded"
        else:
            text = f"Done: {counts['downloaded']} files downloaded"
        for status in ("resumed", "skipped"):
            if counts[status]:
                text += f", {counts[status]} {status}"
        text += ")" if self.cancelled else ""
        if stopped:
            text += f", {stopped} in flight kept resumable"
        if self.deleted:
            text += f", {len(self.deleted)} deleted by sync"
        if self.cancelled and not errors:
            return text
        return f"{text}, {errors} error{'s' if errors != 1 else ''}"

    def __str__(self) -> str:
        return self.summary


@dataclass(frozen=True)
class FileProgress:
    """A file in flight: its path, bytes on disk so far, and size if known."""

    path: Path
    done: int
    total: int | None


@dataclass(frozen=True)
class JobStatus:
    """A snapshot of a running (or finished) job. ``str()`` gives a one-line summary."""

    queued: int
    active: int
    downloaded: int
    resumed: int
    skipped: int
    failed: int
    bytes_transferred: int
    rate: float
    """Bytes per second over the last few seconds."""
    eta: float | None
    """Seconds left, estimated from finished files once the input is exhausted; else None."""
    in_flight: tuple[FileProgress, ...]
    errors: tuple[tuple[object, BaseException], ...]
    finished: bool
    cancelled: bool

    def __str__(self) -> str:
        done = self.downloaded + self.resumed + self.skipped
        eta = f", ETA {self.eta:.0f}s" if self.eta is not None else ""
        state = "cancelled" if self.cancelled else "finished" if self.finished else "running"
        counts = f"{self.failed} failed, {self.active} active, {self.queued} queued"
        if self.cancelled:  # stopped by the cancel is not failed: those partials are kept
            stopped = sum(isinstance(exc, Cancelled) for _, exc in self.errors)
            errors = self.failed - stopped
            counts = f"{stopped} in flight kept resumable, " + (
                f"{errors} failed, " if errors else ""
            )
            counts += f"{self.active} active, {self.queued} not started"
        return (
            f"{state}: {done} done ({self.skipped} skipped), {counts}; "
            f"{format_bytes(self.bytes_transferred)} at {format_bytes(self.rate)}/s{eta}"
        )


class Job:
    """A batch running in the background; see :meth:`ResumableDownloader.start`."""

    def __init__(
        self,
        downloader: ResumableDownloader,
        items: Iterable[object],
        dest_dir: Path,
        *,
        sync: bool = False,
        progress: ProgressCallback | None = None,
        process: Processor | None = None,
        checksums: ChecksumTable | None = None,
    ) -> None:
        self._d = downloader
        self._process = process
        self._checksums = checksums
        self._at_end: list[tuple[Callable[[Any], None], Any]] | None = []  # None: ended
        self.dest_dir = dest_dir
        self._sync = sync
        self._progress = user_callback(progress)  # its exceptions are recorded unchanged
        self._callback_lock = threading.Lock()
        self._lock = threading.Lock()
        self._cancel = CancelToken()  # set() also shuts the connections in use
        self._finished = threading.Event()
        self._ledger = Ledger(dest_dir)
        # Inputs wait here for the workers, between a low and a high mark: the feeder tops the
        # queue up to ``_high`` and then sleeps until the workers have taken it down to
        # ``_low``. A queue bounded at one size woke the feeder for every item taken (a GIL
        # hand-over per file).
        self._queue: queue.Queue[Any] = queue.Queue()
        self._high = max(2 * downloader.workers, 16)
        self._low = self._high // 2
        self._hungry = threading.Event()
        self._ok: list[DownloadResult] = []
        self._failed: list[tuple[object, BaseException]] = []
        self._in_flight: dict[Path, FileProgress] = {}
        self._counts = {"downloaded": 0, "resumed": 0, "skipped": 0, "queued": 0}
        self._bytes_done = 0  # bytes_transferred of finished files
        self._samples: deque[tuple[float, int]] = deque(maxlen=64)
        self._exhausted = False
        self._seen: set[str] = set()
        self._origins: set[str] = set()
        self._incomplete: set[str] = set()  # inputs whose expansion or listing failed
        self._deleted: list[Path] = []
        self._unsynced: set[Path] = set()  # directories with renames not yet fsynced
        self._root = dest_dir.resolve()
        self._checked_folders: set[str] = set()  # see safe_destination
        self._started = time.monotonic()
        self._feeder = Guarded(
            self._feed, args=(items,), name="resumable-feeder", on_error=self._thread_died
        )
        self._workers = self._make_workers()
        self._closer = Guarded(
            self._close_when_done, name="resumable-closer", on_error=self._closer_died
        )
        try:
            for thread in (self._feeder, *self._workers, self._closer):
                thread.start()
        except RuntimeError as exc:  # "can't start new thread": out of threads or memory
            self._undo_start()
            count = len(self._workers) + 2
            raise LocalError(
                f"cannot start the batch's {count} threads ({exc}); use fewer workers",
                path=str(dest_dir),
            ) from None

    def _undo_start(self) -> None:
        """Stop the threads that did start (each ends once cancelled), and close the ledger."""
        self._cancel.set()
        for worker in self._workers:
            if worker.is_alive():
                worker.join()  # cancelled with nothing queued: it ends within a poll
        self._ledger.close()

    def _make_workers(self) -> list[threading.Thread]:
        """The threads that consume the queue (each gets one ``_END``); ``fanout`` overrides it."""
        return [
            Guarded(self._work, name=f"resumable-worker-{i}", on_error=self._thread_died)
            for i in range(self._d.workers)
        ]

    def _thread_died(self, exc: BaseException) -> None:
        """A thread of this job died (a bug, or memory ran out): stop the job and say why."""
        name = threading.current_thread().name
        error = ResumableError(f"the batch stopped: its thread {name} failed: {_text(exc)}")
        self._cancel.set()
        self._record_failure(f"<{name}>", error)

    def _closer_died(self, exc: BaseException) -> None:
        self._thread_died(exc)
        self._finished.set()  # nothing else would set it

    # -- public -----------------------------------------------------------------------------------

    def cancel(self) -> None:
        """Stop promptly: nothing new starts, running downloads stop and stay resumable."""
        self._cancel.set()

    @guarded("Job.wait", passes=(TimeoutError,))
    def wait(self, timeout: float | None = None) -> BatchResult:
        """Wait for the job to end and return its result.

        Raises:
            TimeoutError: ``timeout`` seconds passed first (the job keeps running).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        # Short waits, so Ctrl-C reaches the waiting thread at once.
        while not self._finished.wait(POLL):
            if not self._closer.is_alive():  # it sets _finished even when it fails
                self._finished.wait(POLL)
                break
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"the batch is still running after {timeout}s: {self.status()}")
        return self.result()

    @guarded("Job.result")
    def result(self) -> BatchResult:
        """The result so far (complete once the job has finished)."""
        with self._lock:
            return BatchResult(
                ok=list(self._ok),
                failed=list(self._failed),
                cancelled=self._cancel.is_set(),
                deleted=list(self._deleted),
            )

    def done(self) -> bool:
        """Whether the job has ended (finished, or cancelled and stopped)."""
        return self._finished.is_set()

    def status(self) -> JobStatus:
        """A snapshot: counts, bytes, rate, ETA and the files in flight (cheap; poll it)."""
        now = time.monotonic()
        with self._lock:
            in_flight = tuple(self._in_flight.values())
            current = self._bytes_done + sum(f.done for f in in_flight)
            self._samples.append((now, current))
            then, earlier = self._samples[0]
            if now - then < 1.0 or len(self._samples) < 2:
                then, earlier = self._started, 0
            rate = (current - earlier) / (now - then) if now > then else 0.0
            finished_files = len(self._ok) + len(self._failed)
            left = self._counts["queued"] + len(in_flight)
            eta = None
            if self._exhausted and finished_files and rate > 0:
                average = self._bytes_done / finished_files
                remaining = left * average - sum(f.done for f in in_flight)
                eta = max(0.0, remaining / rate)
            return JobStatus(
                queued=self._counts["queued"],
                active=len(in_flight),
                downloaded=self._counts["downloaded"],
                resumed=self._counts["resumed"],
                skipped=self._counts["skipped"],
                failed=len(self._failed),
                bytes_transferred=current,
                rate=rate,
                eta=eta if left else 0.0,
                in_flight=in_flight,
                errors=tuple(self._failed),
                finished=self._finished.is_set(),
                cancelled=self._cancel.is_set(),
            )

    # -- threads ----------------------------------------------------------------------------------

    def _feed(self, items: Iterable[object]) -> None:
        try:
            for work in iter_work(items, self._list):
                if self._cancel.is_set():
                    break
                if self._checksums is not None and isinstance(work, Work):
                    work = self._checksums.attach(work)
                with self._lock:
                    self._counts["queued"] += 1
                while not self._cancel.is_set():
                    if self._queue.qsize() < self._high:
                        self._queue.put(work)
                        break
                    self._hungry.clear()
                    if self._queue.qsize() >= self._high:  # (re-read: a set() may have come)
                        self._hungry.wait(POLL)
                    if not any(worker.is_alive() for worker in self._workers):
                        return  # nobody left to take items (each death cancelled the job)
                if self._cancel.is_set():
                    break
            else:
                with self._lock:
                    self._exhausted = True
        except BaseException as exc:  # the input iterator itself failed
            self._record_failure("<input>", _input_error(exc))
        finally:
            for _ in self._workers:
                self._queue.put(_END)

    def _take(self, timeout: float | None = None) -> Any:
        """The next input (``queue.Empty`` after ``timeout``); wakes the feeder at the low mark.

        Never waits on a feeder that is gone: it always leaves an ``_END`` per worker, but
        a queue that stays empty once it died means the end as well. Nor, once cancelled, on
        one still inside the caller's ``items`` (a generator waiting for input)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            step = POLL if deadline is None else max(0.0, min(POLL, deadline - time.monotonic()))
            try:
                work = self._queue.get(timeout=step)
                break
            except queue.Empty:
                ended = not self._feeder.is_alive() or self._cancel.is_set()
                if ended and self._queue.empty():
                    return _END
                if deadline is not None and time.monotonic() >= deadline:
                    raise
        if self._queue.qsize() <= self._low:
            self._hungry.set()
        return work

    def _work(self) -> None:
        while (work := self._take()) is not _END:
            with self._lock:
                self._counts["queued"] -= 1
            if self._cancel.is_set():
                continue
            if isinstance(work, tuple):
                raw = work[0]
                if isinstance(raw, str):
                    with self._lock:  # never prune what a failed listing did not reach
                        self._incomplete.add(identity(raw))
                self._record_failure(*work)
                continue
            with watching(self._cancel):  # the item's requests (a sync's HEAD too) stop on cancel
                self._run(work)

    def _close_when_done(self) -> None:
        # Both end: each stops once the other is gone (see _feed, _take). A cancelled job does
        # not wait for a feeder blocked in the caller's ``items``: it is left to end on its own.
        while self._feeder.is_alive() and not self._cancel.is_set():
            self._feeder.join(POLL)
        for worker in self._workers:
            worker.join()
        try:
            if self._sync and self._exhausted and not self._cancel.is_set():
                self._sync_deletions()
        except Exception as exc:  # the ledger cannot be read or written: nothing is deleted
            self._record_failure("<sync>", exc)
        finally:
            try:
                self._sync_directories()
                self._ledger.close()
            except Exception as exc:  # rows queued for a ledger that can no longer be written
                self._record_failure("<ledger>", exc)
            finally:
                self._run_at_end()
                self._finished.set()

    def _close_at_end(self, close: Callable[[Any], None], what: Any) -> None:
        """Call ``close(what)`` once the job has ended (at once if it has): the progress bars
        ``progress=True`` made for it."""
        with self._lock:
            if self._at_end is not None:
                self._at_end.append((close, what))
                return
        close(what)

    def _run_at_end(self) -> None:
        with self._lock:
            pending, self._at_end = self._at_end or [], None
        for close, what in pending:
            try:
                close(what)
            except Exception:  # a renderer failing to close must not hide the job's end
                log.debug("closing the progress renderer failed", exc_info=True)

    def _defer_sync(self, directory: Path) -> None:
        with self._lock:
            self._unsynced.add(directory)

    def _sync_directories(self) -> None:
        """fsync each directory a file was renamed into, once, before the job reports done.

        A rename is durable only once its directory is synced. Doing it per file cost a
        journal commit per file; once per directory gives the same guarantee when the job
        returns. A power cut before that loses renames, never data: the ledger is only trusted
        for a file whose size and mtime still match, so a lost file is fetched again.
        """
        with self._lock:
            directories, self._unsynced = self._unsynced, set()
        for directory in sorted(directories):
            fsync_dir(directory)

    # -- one item ---------------------------------------------------------------------------------

    def _run(self, work: Work) -> None:
        item = work.item
        fetched = False  # a failure after this is the processor's: the file stays done
        try:
            process = item.process or self._process
            if process is None:
                admitted = self._admit(work)
                if admitted is None:
                    return
                dest, changed = admitted
                result, info = self._download(work, dest, changed, None)
                self._finish(work, result, info)
                return
            from ..extract._glue import batch_item, check_processor

            dest, entry, changed = self._check(work)

            def fetch(observe: ProgressCallback | None) -> tuple[DownloadResult, Any]:
                nonlocal fetched
                skipped = None if changed else self._skip_by_ledger(work, dest, entry)
                if skipped is not None:
                    out: tuple[DownloadResult, RemoteInfo | None] = (skipped, None)
                else:
                    out = self._download(work, dest, changed, observe)
                self._record(work, *out)
                fetched = True
                return out

            processor = check_processor(process) or process
            self._count(batch_item(self, work, dest, processor, changed, fetch))
        except Exception as exc:  # typed errors, and a user's progress callback failing
            self._fail(work, typed(exc, "download_many"), after_download=fetched)
        except BaseException as exc:  # e.g. SystemExit from a callback: this item, then stop
            self._fail(work, _stopped_by(exc), after_download=fetched)
            self._cancel.set()
        finally:
            with self._lock:
                self._in_flight.pop(self._root / work.rel, None)  # event.path is under _root

    def _ledger_writable(self) -> None:
        """Fail an item before it starts when the ledger can no longer record it (a full disk):
        a batch of 100k items then ends at once instead of fetching files it cannot record."""
        broken = self._ledger.broken
        if broken is not None:
            raise LocalError(f"not started: {broken}", path=str(self.dest_dir / Ledger.DIRNAME))

    def _check(self, work: Work) -> tuple[Path, Entry | None, bool]:
        """The checks before fetching, in the caller's process: a safe, unique destination and
        its ledger entry. Returns ``(dest, entry, refresh)``."""
        item = work.item
        self._ledger_writable()
        dest = safe_destination(self._root, work.rel, self._checked_folders)
        with self._lock:
            if work.rel in self._seen:
                raise InvalidArgument(
                    f"destination {work.rel!r} is already used by another item of this batch"
                )
            self._seen.add(work.rel)
            if work.origin is not None:
                self._origins.add(work.origin)
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
            self._sync and entry is not None and self._remote_changed(work, entry)
        )
        return dest, entry, changed

    def _admit(self, work: Work) -> tuple[Path, bool] | None:
        """:meth:`_check`, then skip by the ledger. Returns ``(dest, refresh)``, or ``None``
        when the ledger skipped the item (already recorded)."""
        dest, entry, changed = self._check(work)
        skipped = None if changed else self._skip_by_ledger(work, dest, entry)
        if skipped is not None:
            self._finish(work, skipped, None)
            return None
        return dest, changed

    def _download(
        self, work: Work, dest: Path, changed: bool, observe: ProgressCallback | None
    ) -> tuple[DownloadResult, RemoteInfo | None]:
        """Download one item here (``observe`` also sees its events: an extractor streaming)."""
        item = work.item
        progress: ProgressCallback = self._on_event
        if observe is not None:

            def progress(event: ProgressEvent) -> None:
                observe(event)
                self._on_event(event)

        streamed = getattr(item.process or self._process, "stream", False)
        engine = self._d.engine
        request = engine.request(
            item.url,
            dest,
            size=item.size,
            sha256=item.sha256,
            checksum=item.checksum,
            refresh=changed,
            streamed=streamed,
            mirrors=item.mirrors,
            look=False,
        )
        download = engine.prepare(request, progress, self._cancel, sync_dir=self._defer_sync)
        return download.run(), download.info

    def _fail(
        self,
        work: Work,
        exc: BaseException,
        partial: bool | None = None,
        *,
        after_download: bool = False,
    ) -> None:
        if isinstance(exc, SourceNotFound) and self._sync and work.origin is not None:
            # Maybe gone at the source; only templates and prefixes are mirrored (before the
            # ledger records the failure, which would hide that the file was ours).
            try:
                self._delete_if_ours(work.rel, work.item.url, listed=work.listed)
            except LocalError as ledger_error:  # the item fails with its own error anyway
                log.warning("sync: %s: %s", work.rel, ledger_error)
        # After the download (while extracting), the ledger keeps the file as done.
        self._record_failure(work.item, exc, None if after_download else work, partial)

    def _skip_by_ledger(self, work: Work, dest: Path, entry: Entry | None) -> DownloadResult | None:
        """A file recorded as done and untouched since is skipped without reading it."""
        from ..engine import DownloadResult
        from ..verify import parse_expected

        if entry is None or not entry.unchanged_on_disk(dest) or entry.sha256 is None:
            return None
        expected = parse_expected(work.item.sha256)
        if expected.get("sha256", entry.sha256) != entry.sha256:
            return None
        if work.item.checksum is not None:
            return None  # other digests are not in the ledger: let the core verify the file
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

    def _remote_changed(self, work: Work, entry: Entry) -> bool:
        """For ``sync``: whether the object changed since this file was downloaded."""
        if entry.state != "done":
            return False
        if not (entry.etag or entry.version or entry.last_modified):
            return True  # nothing to compare with: fetch again to be sure
        # Through a transfer's stat: retried, and refreshed or failed over like a download.
        engine = self._d.engine
        request = engine.request(work.item.url, self._root / work.rel, mirrors=work.item.mirrors)
        probe = engine.prepare(request, cancel=self._cancel)
        remote = probe.probe("sync: cannot tell whether it changed; fetching it")
        if remote is None:
            return True
        if entry.etag or entry.version:
            before = (entry.version or None, entry.etag)
            changed = before != (remote.version or None, remote.etag)
        else:  # a server with dates only (python -m http.server): a new date is a new object
            changed = entry.last_modified != remote.last_modified
        return changed or remote.size != entry.size

    def _finish(
        self,
        work: Work,
        result: DownloadResult,
        info: RemoteInfo | None,
        stat: tuple[int, int] | None = None,
    ) -> None:
        """Record a finished item and count it; ``stat`` is ``(size, mtime_ns)`` when another
        machine wrote the file (the ledger must not stat a path that may be on its disk)."""
        self._record(work, result, info, stat)
        self._count(result)

    def _record(
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

    def _count(self, result: DownloadResult) -> None:
        with self._lock:
            self._ok.append(result)
            self._counts[result.status] += 1
            self._bytes_done += result.bytes_transferred

    def _record_failure(
        self,
        item: object,
        exc: BaseException,
        work: Work | None = None,
        partial: bool | None = None,
    ) -> None:
        light(exc)  # kept until the batch is dropped: no frames, no responses (see _light)
        # An extraction failure leaves the download done (the ledger keeps saying so).
        if work is not None and not isinstance(exc, (Cancelled, ExtractionError)):
            if partial is None:
                partial = Partial(self.dest_dir / work.rel).data.exists()
            try:
                self._ledger.failed(
                    work.rel,
                    identity=identity(work.item.url),
                    origin=work.origin,
                    error=str(exc),
                    partial=partial,
                )
            except LocalError as ledger_error:  # the item fails either way; say both
                log.warning("%s: not recorded in the ledger: %s", work.rel, ledger_error)
        with self._lock:
            self._failed.append((item, exc))

    # -- progress ---------------------------------------------------------------------------------

    def _on_event(self, event: ProgressEvent) -> None:
        with self._lock:
            if event.kind in (EventKind.STARTED, EventKind.PROGRESS, EventKind.RETRYING):
                self._in_flight[event.path] = FileProgress(event.path, event.done, event.total)
        self._emit(event)

    def _emit(self, event: ProgressEvent) -> None:
        if self._progress is None:
            return
        with self._callback_lock:  # the user's callback never runs on two threads at once
            self._progress(event)

    # -- sync -------------------------------------------------------------------------------------

    def _sync_deletions(self) -> None:
        """Delete files this library downloaded from the same inputs that are gone at the source.

        Only ledger entries of this run's templates/prefixes that this run did not see, and only
        if :meth:`_delete_if_ours` agrees: a file this library did not write, or that changed
        locally since, is never touched, nor one the source does not confirm is gone.
        """
        for origin in sorted(self._origins - self._incomplete):
            for entry in self._ledger.by_origin(origin):
                if entry.path not in self._seen:
                    self._delete_if_ours(entry.path, entry.identity, listed=False)

    def _delete_if_ours(self, rel: str, url: str, *, listed: bool) -> None:
        """Delete the file at ``rel`` if this library wrote it, nobody changed it since, and
        the object ``url`` is gone at the source (:meth:`_gone`). Every sync delete goes here."""
        entry = self._ledger.get(rel)
        if entry is None:
            return
        path = self.dest_dir / rel
        if not entry.written_by_us(path):
            if entry.written_size is not None and path.exists():
                log.warning("sync: kept %s: gone at the source but changed locally", path)
            elif path.exists():
                log.info("sync: kept %s: the ledger has no record that this library wrote it", path)
            return
        if not self._gone(url, listed=listed):
            log.warning("sync: kept %s: the source does not confirm that it is gone", path)
            return
        path.unlink()
        self._ledger.forget(rel)
        with self._lock:
            self._deleted.append(path)
        log.info("sync: deleted %s (gone at the source)", path)

    def _gone(self, url: str, *, listed: bool) -> bool:
        """The one decision behind every ``sync`` delete: is the object at ``url`` gone?

        Only when the source agrees with itself: no listing of this run holds it (``listed``),
        and both a metadata request (``stat``: a HEAD for HTTP) and a read of its first byte
        (a GET) answer "not found" (:class:`SourceNotFound`, a 404 or 410). One probe's 404
        while the other finds the object (a HEAD that disagrees with GET, a listing that
        disagrees with a read), or any other answer (403, 5xx, a timeout, a cancel), is not
        proof: the file stays, and the next run asks again.
        """
        if listed:
            return False
        try:
            source = self._d.engine.source(_scheme(url))
        except ResumableError:
            return False

        def read() -> None:
            source.open(url, 0, 1).close()

        return self._not_found(lambda: source.stat(url), url) and self._not_found(read, url)

    def _not_found(self, probe: Callable[[], object], url: str) -> bool:
        """Whether ``probe`` (retried on transient errors) says the object does not exist."""
        try:
            self._d.engine.call(probe, url=url, cancel=self._cancel)
        except SourceNotFound:
            return True
        except ResumableError as exc:
            log.info("sync: %s: no proof that it is gone (%s)", redact(url), exc)
        return False

    def _list(self, prefix: str) -> Any:
        """List ``prefix``, listing again after a transient error (the retry policy's budget)."""
        return self._d.engine.list(prefix, self._cancel)


def _stopped_by(exc: BaseException) -> Cancelled:
    """The typed error for a ``BaseException`` that is not an ``Exception`` (``SystemExit``,
    ``KeyboardInterrupt`` raised by a progress callback or a processor): it stops the batch."""
    error = Cancelled(f"the batch was stopped by {_text(exc)}")
    error.__cause__ = exc
    return error


def _input_error(exc: BaseException) -> ResumableError:
    """The items iterable raised: a typed error saying so (a listing's own errors are typed)."""
    if isinstance(exc, ResumableError):
        return exc
    error = InvalidArgument(f"the items given to the batch raised {_text(exc)}")
    error.__cause__ = exc
    return error


def _text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _scheme(url: str) -> str:
    return url.split(":", 1)[0].lower()
