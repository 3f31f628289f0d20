"""Batches: many items through one downloader, with a handle to watch, wait for and cancel.

A :class:`Job` runs a feeder thread that consumes the inputs lazily into a small queue (so a
generator of 100k items needs no more memory than a few dozen) and ``workers`` threads that
download. Each item is independent: its failure is recorded, never raised; the job's
:class:`BatchResult` holds the successes, the failures and, after ``sync``, what was deleted.

The ledger (``dest_dir/.resumable/``) makes reruns cheap: a file recorded as done and unchanged
on disk (same size and mtime) is skipped by ``stat`` alone, and earlier errors can be reported.
``cancel()`` (and Ctrl-C in ``download_many``) stops promptly: queued items are not started,
running ones stop at their next read, and every partial stays resumable.

:meth:`Job.as_completed` yields each item's result as it settles (the log is
:class:`~resumable.batch.completions.Completions`, fed by the tally). A job is a context
manager: the block's normal end waits for the job; leaving it by an exception, or after
breaking out of an ``as_completed`` loop, cancels the job and waits for its threads.

A job is composed, not subclassed: a :class:`~resumable.batch.feeder.Feeder` (the inputs), a
:class:`~resumable.batch.runner.Runner` (local threads, or the executor fan-out), the per-item
:class:`~resumable.batch.steps.Steps`, a :class:`~resumable.batch.tally.Tally` (counts, results),
the ledger and, with ``sync``, :class:`~resumable.batch.sync.Sync`.

No thread of a job dies silently (see :mod:`resumable._threads`): an item's failure, even a
``BaseException`` from a progress callback, is that item's outcome; a thread that dies anyway
cancels the job and leaves a typed error in ``failed``; the feeder stops when no worker is left
to take its items, and the workers when no feeder is left to give them any. A ledger that cannot
be written (a full disk) fails each item still to run with its :class:`LocalError`. Stored errors
are light (:func:`resumable._light.light`): no traceback, causes as text.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from .._guard import guarded, user_callback
from .._threads import POLL, Guarded
from ..cancel import CancelToken
from ..errors import InvalidArgument, LocalError, ResumableError
from ..progress import ProgressCallback, ProgressEvent
from .completions import Completion, Completions, check_errors
from .results import BatchResult, FileProgress, JobStatus

if TYPE_CHECKING:
    from ..engine import DownloadResult, Engine
    from ..extract import Processor
    from .checksums import ChecksumTable
    from .runner import Runner
    from .sync import Sync

__all__ = ["BatchResult", "FileProgress", "Job", "JobStatus"]

log = logging.getLogger("resumable")


class Job:
    """A batch running in the background; see :meth:`ResumableDownloader.start`.

    Args:
        engine: runs the downloads (its settings' ``workers`` threads by default).
        items: the inputs, consumed lazily.
        dest_dir: the destination directory (its ledger is ``dest_dir/.resumable/``).
        sync: mirror templates and prefixes (see :mod:`resumable.batch.sync`).
        progress: the user's callback (called on one thread at a time).
        process: a processor for every item whose ``Item`` has none.
        checksums: digests for the items, by destination.
        runner: where the downloads run; default: ``workers`` local threads.
        on_end: called once when the job has ended (closes the bars ``progress=True`` made).
        on_settled: also told of each item as it settles (``prefetch`` orders them).
        retain: keep every result and the completion log (``result()``, ``as_completed``);
            ``prefetch`` keeps counts only, so 100k items cost no more memory than a few.
    """

    def __init__(
        self,
        engine: Engine,
        items: Iterable[object],
        dest_dir: Path,
        *,
        sync: bool = False,
        progress: ProgressCallback | None = None,
        process: Processor | None = None,
        checksums: ChecksumTable | None = None,
        runner: Runner | None = None,
        on_end: Callable[[], None] | None = None,
        on_settled: Callable[[Completion], None] | None = None,
        retain: bool = True,
    ) -> None:
        # The batch's machinery is imported with the first job, not by ``import resumable``
        # (issue 18 item 7): the ledger (sqlite3), the runners, the per-item steps.
        from .feeder import Feeder
        from .ledger import Ledger
        from .revisits import cooperate
        from .runner import Batch, LocalRunner
        from .steps import Steps
        from .sync import Sync
        from .tally import Tally

        self.dest_dir = dest_dir
        self._runner = runner or LocalRunner(engine.settings.workers)
        self._on_end = on_end
        self._progress = user_callback(progress)  # its exceptions are recorded unchanged
        self._callback_lock = threading.Lock()
        self._cancel = CancelToken()  # set() also shuts the connections in use
        self._finished = threading.Event()
        self._completions = Completions() if retain else None
        self._on_settled = on_settled
        self._abandoned = False  # an as_completed loop was left before the job's end
        self._tally = Tally(on_settled=self._settled, retain=retain)
        self._unsynced: set[Path] = set()  # directories with renames not yet fsynced
        self._lock = threading.Lock()
        self._sync: Sync | None = None
        # Processes sharing dest_dir split the items (the local runner; see .claims).
        self._claims, revisits = None, None
        try:
            self._claims, revisits = cooperate(engine, dest_dir, runner is None)
            self._ledger = Ledger(dest_dir, self._claims)
        except BaseException:  # no channel or subscription of the runner left behind
            self._runner.close()
            if self._claims is not None:
                self._claims.close()
            raise
        self._sync = (
            Sync(engine, self._ledger, dest_dir, self._tally, self._cancel) if sync else None
        )
        self._steps = Steps(
            engine,
            self._ledger,
            dest_dir,
            self._tally,
            self._cancel,
            self._emit,
            sync=self._sync,
            process=process,
            claims=self._claims,
            revisits=revisits,
        )
        self._feeder = Feeder(
            items,
            lambda prefix: engine.list(prefix, self._cancel),
            self._tally,
            self._cancel,
            checksums=checksums,
            high=max(2 * engine.settings.workers, 16),
            revisits=revisits,
        )
        batch = Batch(
            engine,
            self._steps,
            self._feeder,
            self._tally,
            self._cancel,
            self._defer_sync,
            self._thread_died,
        )
        self._workers = self._runner.threads(batch)
        self._feeder.consumers = self._workers
        self._feeder.thread = Guarded(
            self._feeder.feed, name="resumable-feeder", on_error=self._thread_died
        )
        self._closer = Guarded(
            self._close_when_done, name="resumable-closer", on_error=self._closer_died
        )
        try:
            for thread in (self._feeder.thread, *self._workers, self._closer):
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
        self._runner.close()
        try:
            self._ledger.close()
        finally:
            if self._claims is not None:
                self._claims.close()

    def _thread_died(self, exc: BaseException) -> None:
        """A thread of this job died (a bug, or memory ran out): stop the job and say why."""
        name = threading.current_thread().name
        from .feeder import describe

        error = ResumableError(f"the batch stopped: its thread {name} failed: {describe(exc)}")
        self._cancel.set()
        self._tally.failed(f"<{name}>", error)

    def _closer_died(self, exc: BaseException) -> None:
        self._thread_died(exc)
        self._finished.set()  # nothing else would set it

    def _settled(self, completion: Completion) -> None:
        if self._completions is not None:
            self._completions.add(completion)
        if self._on_settled is not None:
            self._on_settled(completion)

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
        return self._tally.result(cancelled=self._cancel.is_set())

    @guarded("Job.as_completed")
    def as_completed(self, errors: str = "raise") -> Iterator[DownloadResult]:
        """Each item's :class:`DownloadResult` as soon as it is complete, verified and in place
        (with a processor: once its extraction is recorded), in the order they finish. Items
        skipped because they were already complete are yielded too.

        Called after the job ended, it yields every result. ``errors="raise"``: a failed item's
        error is raised after every result that came before it was yielded (the job goes on
        unless the iterator's ``with`` block is left with it, which cancels the job);
        ``errors="skip"``: failures are left out (see ``result().failed``).

        Raises:
            InvalidArgument: ``errors`` is neither ``"raise"`` nor ``"skip"``.
        """
        mode = check_errors(errors)
        if self._completions is None:  # a prefetch's own job: its results went to the caller
            raise InvalidArgument("this job keeps no results to iterate over (retain=False)")
        return self._follow(self._completions, mode)

    def _follow(self, log: Completions, errors: str) -> Iterator[DownloadResult]:
        ended = False
        try:
            for completion in log.follow(self._ended):
                if completion.result is not None:
                    yield completion.result
                elif errors == "raise" and completion.error is not None:
                    raise completion.error
            ended = True
        finally:
            # Closed early (a break, an exception in the loop's body): a ``with`` block
            # around it then cancels rather than waits (see __exit__).
            self._abandoned = self._abandoned or not (ended or self._ended())

    def _ended(self) -> bool:
        """The job has ended, or can no longer end by itself (its closer thread died)."""
        return self._finished.is_set() or not self._closer.is_alive()

    def __enter__(self) -> Job:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Wait for the job; cancel it first if the block was left early (an exception, or a
        ``break`` out of ``as_completed``). Partials stay resumable either way."""
        if kind is not None or self._abandoned:
            self.cancel()
        self.wait()

    def done(self) -> bool:
        """Whether the job has ended (finished, or cancelled and stopped)."""
        return self._finished.is_set()

    def status(self) -> JobStatus:
        """A snapshot: counts, bytes, rate, ETA and the files in flight (cheap; poll it)."""
        return self._tally.status(finished=self._finished.is_set(), cancelled=self._cancel.is_set())

    # -- the end ----------------------------------------------------------------------------------

    def _close_when_done(self) -> None:
        # Both end: each stops once the other is gone (see Feeder). A cancelled job does not
        # wait for a feeder blocked in the caller's ``items``: it is left to end on its own.
        feeder = self._feeder.thread
        while feeder is not None and feeder.is_alive() and not self._cancel.is_set():
            feeder.join(POLL)
        for worker in self._workers:
            worker.join()
        try:
            self._runner.close()
            if self._sync is not None and self._tally.is_exhausted and not self._cancel.is_set():
                self._sync.delete_missing(self._steps.seen)
        except Exception as exc:  # the ledger cannot be read or written: nothing is deleted
            self._tally.failed("<sync>", exc)
        finally:
            try:
                self._sync_directories()
                self._ledger.close()
            except Exception as exc:  # rows queued for a ledger that can no longer be written
                self._tally.failed("<ledger>", exc)
            finally:
                if self._claims is not None:
                    self._claims.close()  # after the ledger: its file has one writer at a time
                self._run_at_end()
                self._finished.set()

    def _run_at_end(self) -> None:
        if self._on_end is None:
            return
        try:
            self._on_end()
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
        from ..partial import fsync_dir  # the .partial protocol: loaded by the first download

        with self._lock:
            directories, self._unsynced = self._unsynced, set()
        for directory in sorted(directories):
            fsync_dir(directory)

    def _emit(self, event: ProgressEvent) -> None:
        if self._progress is None:
            return
        with self._callback_lock:  # the user's callback never runs on two threads at once
            self._progress(event)
