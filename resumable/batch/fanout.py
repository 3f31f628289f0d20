"""Fan a batch out over any ``concurrent.futures.Executor``: a Dask cluster, a process pool.

``download_many(items, dest_dir, executor=client.get_executor())`` runs a :class:`FanoutJob`:
the same :class:`~resumable.Job` (lazy inputs, ledger, ``sync``, ``status()``, ``cancel()``),
whose single dispatcher thread sends the downloads to the executor in chunks instead of running
them on local threads.

- **What stays in the caller.** Inputs are consumed lazily (a template of 100k shards or a
  bucket listing streams); each item is checked (a safe, unique destination) and looked up in
  the ledger here, so a rerun skips finished files without sending them anywhere. Only the
  caller writes the ledger: workers return results and typed errors, and the caller records
  them.
- **What travels.** A chunk holds ``workers`` items at first and up to 8 times as many once
  every executor slot has work (one worker's downloader fetches them ``workers`` at a time),
  the downloader's configuration (:class:`~resumable.batch.chunks.DownloaderSpec`: retry
  policy, timeouts, headers, ``storage_options``, limits, picklable ``sources``) and a link for
  progress and cancellation (:mod:`resumable.batch.links`). Progress callables never travel: the
  worker's events come back and the caller's callback gets them, on one thread at a time.
- **Backpressure.** At most about twice the executor's capacity in chunks is submitted at
  once (Dask: its worker threads, re-read every few seconds as the cluster scales; a pool: its
  ``max_workers``); the next chunk is sent as one finishes.
- **Failures.** An item's failure is its outcome. When the executor loses a whole chunk, Dask
  has usually already run it again on another worker (``allowed-failures``), where each file
  resumes from its partial on a shared destination; if it still fails (``KilledWorker``, a
  broken process pool), every item of that chunk fails with :class:`~resumable.ExecutorError`
  and its partials stay for the next run.
"""

from __future__ import annotations

import os
import pickle
import queue
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._threads import Guarded
from ..engine import Engine
from ..errors import ExecutorError, InvalidArgument, LocalError, ResumableError
from ..progress import EventKind, ProgressCallback, ProgressEvent
from .chunks import ChunkResult, DownloaderSpec, Outcome, Task, run_chunk
from .job import _END, Job, _stopped_by
from .ledger import Ledger
from .links import Channel, LocalChannel, channel_for

if TYPE_CHECKING:
    from collections.abc import Iterable

    from ..api import ResumableDownloader
    from .checksums import ChecksumTable
    from .items import Work

__all__ = ["FanoutJob", "spec_of"]

_CAPACITY_TTL = 5.0  # seconds between two looks at a Dask cluster's size
_CHUNK_GROWTH = 8  # chunks grow to at most this many times ``workers`` items
_CANCEL_SLACK = 5.0  # seconds beyond the timeouts for a cancelled chunk to come back


def spec_of(engine: Engine) -> DownloaderSpec:
    """An engine's configuration by value, refusing what cannot reach another process."""
    from ..sources import _lock, _registry

    with _lock:
        registry = tuple(
            (scheme, target)
            for scheme, target in _registry.items()
            if not (isinstance(target, str) and target.startswith("resumable.sources."))
        )
    # The settings by value (a refresh_url must pickle: a module-level function).
    spec = DownloaderSpec(engine.settings, dict(engine.given), registry)
    try:
        pickle.dumps(spec)
    except Exception as exc:
        raise InvalidArgument(
            "this downloader's configuration cannot be sent to other processes "
            f"({type(exc).__name__}: {exc}); give sources as classes registered with "
            "resumable.register('scheme', 'package.module:Class') instead of instances, "
            "or use a ThreadPoolExecutor"
        ) from exc
    return spec


class FanoutJob(Job):
    """A :class:`~resumable.Job` whose downloads run on ``executor`` (see the module docstring)."""

    def __init__(
        self,
        downloader: ResumableDownloader,
        items: Iterable[object],
        dest_dir: Path,
        executor: Executor,
        *,
        sync: bool = False,
        progress: ProgressCallback | None = None,
        checksums: ChecksumTable | None = None,
    ) -> None:
        if not callable(getattr(executor, "submit", None)):
            raise InvalidArgument(
                f"executor must be a concurrent.futures.Executor (e.g. a Dask "
                f"Client.get_executor()), got {executor!r}"
            )
        self._executor = executor
        folder = dest_dir / Ledger.DIRNAME
        folder.mkdir(parents=True, exist_ok=True)
        self._channel: Channel = channel_for(executor, folder)
        in_process = isinstance(self._channel, LocalChannel)
        self._spec: DownloaderSpec | Engine = (
            downloader.engine if in_process else spec_of(downloader.engine)
        )
        # Chunks grow (see _grow): ``workers`` items while the executor fills up, then twice
        # as many per chunk sent, up to ``_CHUNK_GROWTH`` times ``workers``.
        self._chunk_size = self._chunk_min = downloader.workers
        self._sent = 0
        self._capacity_at = (0.0, 1)
        self._submitted: dict[Path, Work] = {}  # destinations of items out on the executor
        self._callback_errors: dict[Path, BaseException] = {}
        try:
            super().__init__(
                downloader, items, dest_dir, sync=sync, progress=progress, checksums=checksums
            )
        except BaseException:  # e.g. the ledger cannot be opened: no subscription left behind
            self._channel.close()
            raise

    def _make_workers(self) -> list[threading.Thread]:
        return [Guarded(self._dispatch, name="resumable-fanout", on_error=self._thread_died)]

    # -- the dispatcher thread --------------------------------------------------------------------

    def _dispatch(self) -> None:
        running: dict[Future[ChunkResult], dict[int, tuple[Work, Path]]] = {}
        buffer: dict[int, tuple[Work, Path]] = {}
        tasks: list[Task] = []
        try:
            self._dispatch_loop(running, buffer, tasks)
        except BaseException as exc:  # a bug, or memory ran out: no item is left without outcome
            self._abandon(running, buffer, exc)
            raise
        finally:
            self._deliver(self._channel.drain())
            self._channel.close()

    def _dispatch_loop(
        self,
        running: dict[Future[ChunkResult], dict[int, tuple[Work, Path]]],
        buffer: dict[int, tuple[Work, Path]],
        tasks: list[Task],
    ) -> None:
        """Take items, send them in chunks, collect outcomes, until the input and the chunks
        are done. ``running``, ``buffer`` and ``tasks`` are the caller's (see _abandon)."""
        ended = cancelled = False
        key = 0
        stop_by = 0.0  # once cancelled: when chunks still out are given up
        while not (ended and not running and not tasks):
            if self._cancel.is_set() and not cancelled:
                cancelled = True
                stop_by = time.monotonic() + self._cancel_grace()
                self._channel.cancel()
                buffer.clear()  # not started: dropped, as a local job drops them
                tasks.clear()
            full = len(running) >= self._capacity()
            while not ended and not full and len(tasks) < self._chunk_size:
                try:
                    work = self._take(timeout=0.05 if running or tasks else 0.2)
                except queue.Empty:
                    break
                if work is _END:
                    ended = True
                    break
                with self._lock:
                    self._counts["queued"] -= 1
                if self._cancel.is_set():
                    continue
                if isinstance(work, tuple):  # an input that could not be expanded
                    self._work_failed(work)
                    continue
                task = self._task(key, work)
                if task is not None:
                    buffer[key] = (work, Path(task.dest))
                    tasks.append(task)
                    key += 1
            if tasks and not full and not self._cancel.is_set():
                self._submit(running, list(tasks), dict(buffer))
                buffer.clear()
                tasks.clear()
            self._deliver(self._channel.drain())
            if running:
                done, _ = wait(list(running), timeout=0.1, return_when=FIRST_COMPLETED)
                for future in done:
                    self._collect(future, running[future])  # settled items leave it one by one
                    del running[future]
                if cancelled and running and time.monotonic() > stop_by:
                    self._give_up(running)

    def _cancel_grace(self) -> float:
        """Seconds a cancelled chunk has to come back: its transfers stop at their next read,
        within the stall timeout; beyond that its worker is hung (stopped, swapping), and the
        executor never tells."""
        timeouts = self._d.timeouts
        return timeouts.stall + timeouts.connect + _CANCEL_SLACK

    def _give_up(self, running: dict[Future[ChunkResult], dict[int, tuple[Work, Path]]]) -> None:
        """Fail the items of chunks that did not come back after a cancel (ExecutorError; what
        such a worker still writes is verified again by the next run, never trusted)."""
        grace = self._cancel_grace()
        for future, works in list(running.items()):
            future.cancel()
            self._lost(works, TimeoutError(f"no answer {grace:.0f}s after the cancel"))
            del running[future]

    def _abandon(
        self,
        running: dict[Future[ChunkResult], dict[int, tuple[Work, Path]]],
        buffer: dict[int, tuple[Work, Path]],
        exc: BaseException,
    ) -> None:
        """The dispatcher is dying: every item it holds fails, none is left without outcome."""
        self._cancel.set()
        self._channel.cancel()
        for works in [buffer, *running.values()]:
            for work, dest in list(works.values()):
                with self._lock:
                    self._submitted.pop(dest, None)
                    self._in_flight.pop(dest, None)
                error = ResumableError(
                    f"the batch stopped: its dispatcher failed ({type(exc).__name__}: {exc})",
                    url=work.item.url,
                )
                self._record_failure(work.item, error, work)
        buffer.clear()
        running.clear()

    def _work_failed(self, work: tuple[Any, ...]) -> None:
        """An input whose expansion or listing failed (the local job's ``_work`` does the same)."""
        from ..errors import identity

        raw = work[0]
        if isinstance(raw, str):
            with self._lock:
                self._incomplete.add(identity(raw))
        self._record_failure(*work)

    def _task(self, key: int, work: Work) -> Task | None:
        """Check an item here (destination, ledger); ``None`` if it is already settled."""
        try:
            admitted = self._admit(work)
        except Exception as exc:
            self._fail(work, exc)
            return None
        except BaseException as exc:  # e.g. SystemExit from the callback: this item, then stop
            self._fail(work, _stopped_by(exc))
            self._cancel.set()
            return None
        if admitted is None:
            return None
        dest, refresh = admitted
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
        )

    def _submit(
        self,
        running: dict[Future[ChunkResult], dict[int, tuple[Work, Path]]],
        tasks: list[Task],
        works: dict[int, tuple[Work, Path]],
    ) -> None:
        with self._lock:
            for work, dest in works.values():
                self._submitted[dest] = work
        try:
            future = self._executor.submit(run_chunk, self._spec, tasks, self._channel.link)
        except Exception as exc:  # shut down, broken pool, not picklable
            self._lost(works, exc)
            return
        running[future] = works
        self._grow()

    def _grow(self) -> None:
        """Small chunks first, larger ones once every executor slot has had work.

        Each chunk costs a fixed price (a round trip, a thread pool, its directory fsyncs) and
        ends with a tail: its last files run while its other threads idle. Chunks of
        ``workers`` items made a process pool slower than one process (2,000 files of 256 KiB
        on 2 processes: 6.8 s; with chunks of 8 times that: 3.8 s). Growing only after the
        first ``capacity`` chunks keeps a small batch spread over every worker.
        """
        self._sent += 1
        if self._sent >= self._capacity():
            self._chunk_size = min(2 * self._chunk_size, _CHUNK_GROWTH * self._chunk_min)

    def _capacity(self) -> int:
        """Chunks to keep submitted: twice what the executor runs at once."""
        at, capacity = self._capacity_at
        now = time.monotonic()
        if now - at < _CAPACITY_TTL:
            return capacity
        client = getattr(self._executor, "_client", None)
        threads: int | None = None
        if client is not None and hasattr(client, "nthreads"):
            try:
                threads = sum(client.nthreads().values())
            except Exception:
                threads = None
        if threads is None:
            threads = getattr(self._executor, "_max_workers", None) or os.cpu_count() or 1
        capacity = 2 * max(1, threads)
        self._capacity_at = (now, capacity)
        return capacity

    # -- outcomes ---------------------------------------------------------------------------------

    def _collect(self, future: Future[ChunkResult], works: dict[int, tuple[Work, Path]]) -> None:
        try:
            chunk = future.result()
        except BaseException as exc:  # KilledWorker, BrokenProcessPool, CancelledError
            self._lost(works, exc)
            return
        self._deliver(chunk.events)
        for outcome in chunk.outcomes:
            work, dest = works.pop(outcome.key)
            self._settle(work, dest, outcome)
        if works:  # a chunk that forgot items would be a bug: never lose them silently
            self._lost(works, RuntimeError("the chunk returned no outcome for these items"))

    def _lost(self, works: dict[int, tuple[Work, Path]], exc: BaseException) -> None:
        cause = f"{type(exc).__name__}: {exc}"
        for work, dest in works.values():
            error = ExecutorError(
                f"the executor lost the chunk holding this item ({cause})",
                url=work.item.url,
                cause=cause,
            )
            with self._lock:
                known = self._in_flight.get(dest)
            final = ProgressEvent(
                EventKind.FAILED,
                error.url or "",
                dest,
                known.done if known else 0,
                known.total if known else work.item.size,
                error=error,
            )
            self._settle(work, dest, Outcome(0, error=error, final=final), partial=None)

    def _settle(
        self, work: Work, dest: Path, outcome: Outcome, partial: bool | None = False
    ) -> None:
        """Record one item's outcome (ledger, counts) after its final progress event.

        ``partial=None``: the worker could not say whether it left a partial (the chunk was
        lost); the ledger then looks at the destination from here."""
        with self._lock:
            self._submitted.pop(dest, None)
            self._in_flight.pop(dest, None)
            callback_error = self._callback_errors.pop(dest, None)
        if not outcome.started:
            return
        try:
            if outcome.final is not None and callback_error is None:
                self._emit(outcome.final)
        except Exception as exc:  # the user's callback failed on the final event
            callback_error = exc
        except BaseException as exc:  # SystemExit and the like: this item, then stop
            callback_error = _stopped_by(exc)
            self._cancel.set()
        kept = outcome.partial if partial is not None else None
        if callback_error is not None:
            self._fail(work, callback_error, partial=kept)
        elif outcome.result is not None:
            try:
                self._finish(work, outcome.result, outcome.info, outcome.stat)
            except LocalError as exc:  # the ledger cannot record it (a full disk)
                self._fail(work, exc, partial=False)
        else:
            assert outcome.error is not None
            self._fail(work, outcome.error, partial=kept)

    # -- progress ---------------------------------------------------------------------------------

    def _deliver(self, events: list[ProgressEvent]) -> None:
        """Workers' events for files still out, to ``status()`` and the user's callback.

        A callback that raises marks that file failed (with the callback's exception) when its
        outcome arrives; the worker is not interrupted.
        """
        for event in events:
            with self._lock:
                if event.path not in self._submitted or event.path in self._callback_errors:
                    continue  # late (the outcome came first) or silenced
            try:
                self._on_event(event)
            except Exception as exc:
                with self._lock:
                    self._callback_errors[event.path] = exc
            except BaseException as exc:  # SystemExit and the like: that file, then stop
                with self._lock:
                    self._callback_errors[event.path] = _stopped_by(exc)
                self._cancel.set()
