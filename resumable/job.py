"""Batches: many items through one downloader, with a handle to watch, wait for and cancel.

A :class:`Job` runs a feeder thread that consumes the inputs lazily into a small queue (so a
generator of 100k items needs no more memory than a few dozen) and ``workers`` threads that
download. Each item is independent: its failure is recorded, never raised; the job's
:class:`BatchResult` holds the successes, the failures and, after ``sync``, what was deleted.

The ledger (``dest_dir/.resumable/``) makes reruns cheap: a file recorded as done and unchanged
on disk (same size and mtime) is skipped by ``stat`` alone, and earlier errors can be reported.
``cancel()`` (and Ctrl-C in ``download_many``) stops promptly: queued items are not started,
running ones stop at their next read, and every partial stays resumable.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._guard import guarded, typed, user_callback
from .errors import (
    BatchError,
    Cancelled,
    ExtractionError,
    InvalidArgument,
    SourceNotFound,
    identity,
)
from .items import Work, iter_work, safe_destination
from .ledger import Entry, Ledger
from .partial import fsync_dir
from .progress import EventKind, ProgressCallback, ProgressEvent
from .sources import RemoteInfo

if TYPE_CHECKING:
    from .core import DownloadResult, ResumableDownloader
    from .extract import Processor

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
        head = "Cancelled" if self.cancelled else "Done"
        text = f"{head}: {counts['downloaded']} files downloaded"
        for status in ("resumed", "skipped"):
            if counts[status]:
                text += f", {counts[status]} {status}"
        if self.deleted:
            text += f", {len(self.deleted)} deleted by sync"
        errors = len(self.failed)
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
        return (
            f"{state}: {done} done ({self.skipped} skipped), {self.failed} failed, "
            f"{self.active} active, {self.queued} queued; "
            f"{self.bytes_transferred / 1e6:.1f} MB at {self.rate / 1e6:.1f} MB/s{eta}"
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
    ) -> None:
        self._d = downloader
        self._process = process
        self.dest_dir = dest_dir
        self._sync = sync
        self._progress = user_callback(progress)  # its exceptions are recorded unchanged
        self._callback_lock = threading.Lock()
        self._lock = threading.Lock()
        self._cancel = threading.Event()
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
        self._feeder = threading.Thread(target=self._feed, args=(items,), daemon=True)
        self._feeder.name = "resumable-feeder"
        self._workers = self._make_workers()
        self._feeder.start()
        for worker in self._workers:
            worker.start()
        self._closer = threading.Thread(target=self._close_when_done, daemon=True)
        self._closer.start()

    def _make_workers(self) -> list[threading.Thread]:
        """The threads that consume the queue (each gets one ``_END``); ``fanout`` overrides it."""
        return [
            threading.Thread(target=self._work, name=f"resumable-worker-{i}", daemon=True)
            for i in range(self._d.workers)
        ]

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
        while not self._finished.wait(0.1):
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
                with self._lock:
                    self._counts["queued"] += 1
                while not self._cancel.is_set():
                    if self._queue.qsize() < self._high:
                        self._queue.put(work)
                        break
                    self._hungry.clear()
                    if self._queue.qsize() >= self._high:  # (re-read: a set() may have come)
                        self._hungry.wait(0.1)
            else:
                with self._lock:
                    self._exhausted = True
        except BaseException as exc:  # the input iterator itself failed
            self._record_failure("<input>", exc)
        finally:
            for _ in self._workers:
                self._queue.put(_END)

    def _take(self, timeout: float | None = None) -> Any:
        """The next input (``queue.Empty`` after ``timeout``); wakes the feeder at the low mark."""
        work = self._queue.get(timeout=timeout)
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
            self._run(work)

    def _close_when_done(self) -> None:
        self._feeder.join()
        for worker in self._workers:
            worker.join()
        try:
            if self._sync and self._exhausted and not self._cancel.is_set():
                self._sync_deletions()
        finally:
            try:
                self._sync_directories()
            finally:
                self._ledger.close()
                self._finished.set()

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
            from .extract._glue import batch_item, check_processor

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
        finally:
            with self._lock:
                self._in_flight.pop(self._root / work.rel, None)  # event.path is under _root

    def _check(self, work: Work) -> tuple[Path, Entry | None, bool]:
        """The checks before fetching, in the caller's process: a safe, unique destination and
        its ledger entry. Returns ``(dest, entry, refresh)``."""
        item = work.item
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
            entry = None  # another object was downloaded to this path before
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
        download = self._d._prepare(
            item.url,
            dest,
            size=item.size,
            sha256=item.sha256,
            checksum=item.checksum,
            progress=progress,
            cancel=self._cancel,
            refresh=changed,
            connections=1 if streamed else None,
            sync_dir=self._defer_sync,
            direct=not streamed,
            mirrors=item.mirrors,
        )
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
            # Gone at the source; only templates and prefixes are mirrored (before the
            # ledger records the failure, which would hide that the file was ours).
            self._delete_if_ours(work.rel)
        # After the download (while extracting), the ledger keeps the file as done.
        self._record_failure(work.item, exc, None if after_download else work, partial)

    def _skip_by_ledger(self, work: Work, dest: Path, entry: Entry | None) -> DownloadResult | None:
        """A file recorded as done and untouched since is skipped without reading it."""
        from .transfer import DownloadResult
        from .verify import parse_expected

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
        probe = self._d._prepare(
            work.item.url, self._root / work.rel, mirrors=work.item.mirrors, cancel=self._cancel
        )
        remote = probe._stat()
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
        if result.status != "skipped" or info is not None or not self._ledger.get(work.rel):
            self._ledger.done(
                work.rel,
                result.path,
                identity=identity(work.item.url),
                origin=work.origin,
                sha256=result.sha256,
                etag=info.etag if info else None,
                version=info.version if info else None,
                last_modified=info.last_modified if info else None,
                stat=stat,
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
        # An extraction failure leaves the download done (the ledger keeps saying so).
        if work is not None and not isinstance(exc, (Cancelled, ExtractionError)):
            if partial is None:
                partial = (self.dest_dir / (work.rel + ".partial")).exists()
            self._ledger.failed(
                work.rel,
                identity=identity(work.item.url),
                origin=work.origin,
                error=str(exc),
                partial=partial,
            )
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
        if the file is still exactly as downloaded: a file modified locally, or never downloaded
        by this library, is never touched.
        """
        for origin in sorted(self._origins - self._incomplete):
            for entry in self._ledger.by_origin(origin):
                if entry.path not in self._seen:
                    self._delete_if_ours(entry.path)

    def _delete_if_ours(self, rel: str) -> None:
        """Delete a file gone at the source, if the ledger shows this library made it as is."""
        entry = self._ledger.get(rel)
        if entry is None or entry.state != "done":
            return
        path = self.dest_dir / rel
        if entry.unchanged_on_disk(path):
            path.unlink()
            self._ledger.forget(rel)
            with self._lock:
                self._deleted.append(path)
            log.info("sync: deleted %s (gone at the source)", path)
        elif path.exists():
            log.warning("sync: kept %s: gone at the source but changed locally", path)

    def _list(self, prefix: str) -> Any:
        """List ``prefix``, listing again after a transient error (the retry policy's budget)."""
        source = self._d._source(_scheme(prefix))
        return self._d.retry.iterate(
            lambda: source.list(prefix), key=lambda entry: entry[0], url=prefix, wake=self._cancel
        )


def _scheme(url: str) -> str:
    return url.split(":", 1)[0].lower()
