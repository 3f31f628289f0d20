"""Fan a batch out over any ``concurrent.futures.Executor``: a Dask cluster, a process pool.

``download_many(items, dest_dir, executor=client.get_executor())`` runs the same
:class:`~resumable.Job` (lazy inputs, ledger, ``sync``, ``status()``, ``cancel()``) with a
:class:`FanoutRunner`: its single dispatcher thread sends the downloads to the executor in chunks
instead of running them on local threads (:class:`~resumable.batch.runner.LocalRunner`).

- **What stays in the caller.** Inputs are consumed lazily (a template of 100k shards or a
  bucket listing streams); each item is checked (a safe, unique destination) and looked up in
  the ledger here, so a rerun skips finished files without sending them anywhere. Only the
  caller writes the ledger: workers return results and typed errors, and the caller records
  them.
- **What travels.** A chunk holds ``workers`` items at first and up to 8 times as many once
  every executor slot has work (one worker's downloader fetches them ``workers`` at a time),
  the engine's configuration (:class:`~resumable.batch.chunks.DownloaderSpec`: retry
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
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias, cast

from .._threads import Guarded
from ..engine import Engine
from ..errors import ExecutorError, InvalidArgument, ResumableError
from ..progress import EventKind, ProgressEvent
from .chunks import ChunkResult, DownloaderSpec, run_chunk
from .feeder import END
from .items import Work
from .ledger import Ledger
from .links import Channel, LocalChannel, channel_for
from .runner import Batch
from .steps import stopped_by
from .task import Outcome, Task

if TYPE_CHECKING:
    from concurrent.futures import Executor, Future

__all__ = ["FanoutRunner", "spec_of"]

Running: TypeAlias = "dict[Future[ChunkResult], dict[int, tuple[Work, Path]]]"
"""Chunks out on the executor, each with its items by key."""

_CAPACITY_TTL = 5.0  # seconds between two looks at a Dask cluster's size
_CHUNK_GROWTH = 8  # chunks grow to at most this many times ``workers`` items
_CANCEL_SLACK = 5.0  # seconds beyond the timeouts for a cancelled chunk to come back


def spec_of(engine: Engine) -> DownloaderSpec:
    """An engine's configuration by value, refusing what cannot reach another process."""
    from ..sources import registrations

    registry = registrations()
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


class FanoutRunner:
    """Runs a batch's downloads on ``executor`` (see the module docstring)."""

    def __init__(self, engine: Engine, executor: Executor, dest_dir: Path) -> None:
        if not callable(getattr(executor, "submit", None)):
            raise InvalidArgument(
                f"executor must be a concurrent.futures.Executor (e.g. a Dask "
                f"Client.get_executor()), got {executor!r}"
            )
        self._executor = executor
        self._settings = engine.settings
        folder = dest_dir / Ledger.DIRNAME
        folder.mkdir(parents=True, exist_ok=True)
        self._channel: Channel = channel_for(executor, folder)
        in_process = isinstance(self._channel, LocalChannel)
        try:
            self._spec: DownloaderSpec | Engine = engine if in_process else spec_of(engine)
        except BaseException:
            self._channel.close()
            raise
        # Chunks grow (see _grow): ``workers`` items while the executor fills up, then twice
        # as many per chunk sent, up to ``_CHUNK_GROWTH`` times ``workers``.
        self._chunk_size = self._chunk_min = engine.settings.workers
        self._sent = 0
        self._capacity_at = (0.0, 1)
        self._lock = threading.Lock()
        self._submitted: dict[Path, Work] = {}  # destinations of items out on the executor
        self._callback_errors: dict[Path, BaseException] = {}
        self._closed = False

    def threads(self, batch: Batch) -> list[threading.Thread]:
        self._batch = batch
        return [Guarded(self._dispatch, name="resumable-fanout", on_error=batch.died)]

    def close(self) -> None:
        """Close the channel (its subscription, flag file); idempotent."""
        with self._lock:
            closed, self._closed = self._closed, True
        if not closed:
            self._channel.close()

    # -- the dispatcher thread --------------------------------------------------------------------

    def _dispatch(self) -> None:
        running: Running = {}
        buffer: dict[int, tuple[Work, Path]] = {}
        tasks: list[Task] = []
        try:
            self._dispatch_loop(running, buffer, tasks)
        except BaseException as exc:  # a bug, or memory ran out: no item is left without outcome
            self._abandon(running, buffer, exc)
            raise
        finally:
            self._deliver(self._channel.drain())
            self.close()

    def _dispatch_loop(
        self,
        running: Running,
        buffer: dict[int, tuple[Work, Path]],
        tasks: list[Task],
    ) -> None:
        """Take items, send them in chunks, collect outcomes, until the input and the chunks
        are done. ``running``, ``buffer`` and ``tasks`` are the caller's (see _abandon)."""
        from concurrent.futures import FIRST_COMPLETED, wait  # loaded when a batch fans out

        ended = cancelled = False
        key = 0
        stop_by = 0.0  # once cancelled: when chunks still out are given up
        while not (ended and not running and not tasks):
            if self._batch.cancel.is_set() and not cancelled:
                cancelled = True
                stop_by = time.monotonic() + self._cancel_grace()
                self._channel.cancel()
                buffer.clear()  # not started: dropped, as a local job drops them
                tasks.clear()
            full = len(running) >= self._capacity()
            while not ended and not full and len(tasks) < self._chunk_size:
                try:
                    work = self._batch.feeder.take(timeout=0.05 if running or tasks else 0.2)
                except queue.Empty:
                    break
                if work is END:
                    ended = True
                    break
                self._batch.tally.queued(-1)
                if self._batch.cancel.is_set():
                    continue
                if not isinstance(work, Work):  # an input that could not be expanded
                    raw, error = cast("tuple[object, Exception]", work)
                    self._batch.steps.input_failed(raw, error)
                    continue
                task = self._task(key, work)
                if task is not None:
                    buffer[key] = (work, Path(task.dest))
                    tasks.append(task)
                    key += 1
            if tasks and not full and not self._batch.cancel.is_set():
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
        timeouts = self._settings.timeouts
        return timeouts.stall + timeouts.connect + _CANCEL_SLACK

    def _give_up(self, running: Running) -> None:
        """Fail the items of chunks that did not come back after a cancel (ExecutorError; what
        such a worker still writes is verified again by the next run, never trusted)."""
        grace = self._cancel_grace()
        for future, works in list(running.items()):
            future.cancel()
            self._lost(works, TimeoutError(f"no answer {grace:.0f}s after the cancel"))
            del running[future]

    def _abandon(
        self,
        running: Running,
        buffer: dict[int, tuple[Work, Path]],
        exc: BaseException,
    ) -> None:
        """The dispatcher is dying: every item it holds fails, none is left without outcome."""
        self._batch.cancel.set()
        self._channel.cancel()
        for works in [buffer, *running.values()]:
            for work, dest in list(works.values()):
                with self._lock:
                    self._submitted.pop(dest, None)
                self._batch.tally.settled(dest)
                error = ResumableError(
                    f"the batch stopped: its dispatcher failed ({type(exc).__name__}: {exc})",
                    url=work.item.url,
                )
                self._batch.steps.record_failure(work.item, error, work)
        buffer.clear()
        running.clear()

    def _task(self, key: int, work: Work) -> Task | None:
        """Check an item here (destination, ledger); ``None`` if it is already settled."""
        steps = self._batch.steps
        try:
            return steps.admit(key, work)
        except Exception as exc:
            steps.fail(work, exc)
        except BaseException as exc:  # e.g. SystemExit from the callback: this item, then stop
            steps.fail(work, stopped_by(exc))
            self._batch.cancel.set()
        return None

    def _submit(
        self,
        running: Running,
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
            known = self._batch.tally.in_flight(dest)
            final = ProgressEvent(
                EventKind.FAILED,
                error.url or "",
                dest,
                known.done if known else 0,
                known.total if known else work.item.size,
                error=error,
            )
            self._settle(work, dest, Outcome(0, error=error, final=final), known=False)

    def _settle(self, work: Work, dest: Path, outcome: Outcome, *, known: bool = True) -> None:
        """The item is back: the per-item steps record it (``known=False``: the chunk was lost,
        so the worker could not say whether it left a partial)."""
        with self._lock:
            self._submitted.pop(dest, None)
            callback_error = self._callback_errors.pop(dest, None)
        self._batch.tally.settled(dest)
        self._batch.steps.settle(work, outcome, callback_error, partial_known=known)

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
                self._batch.steps.on_event(event)
            except Exception as exc:
                with self._lock:
                    self._callback_errors[event.path] = exc
            except BaseException as exc:  # SystemExit and the like: that file, then stop
                with self._lock:
                    self._callback_errors[event.path] = stopped_by(exc)
                self._batch.cancel.set()
