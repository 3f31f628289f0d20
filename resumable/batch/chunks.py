"""What runs on a worker of a fanned-out batch: one chunk of items through a local downloader.

:func:`run_chunk` is the function :mod:`resumable.batch.fanout` submits to the executor. It gets
everything by value, so any ``concurrent.futures.Executor`` can ship it (a Dask cluster, a
process pool): a :class:`DownloaderSpec` (the downloader's configuration, never its connection
pools, locks or callbacks), the chunk's :class:`Task` list, and a link back to the caller
(:mod:`resumable.batch.links`) for live progress and cancellation.

Each worker process keeps one :class:`~resumable.ResumableDownloader` per configuration, so
connection pools stay warm from one chunk to the next; the items of a chunk download in
parallel on ``workers`` threads, exactly as in a local batch. Limits (``rate_limit``,
``limit_bph``, ``max_per_host``, ``max_connections``) are enforced by that downloader, so they
apply *per worker process*.

Nothing here writes the ledger: every item comes back as an :class:`Outcome` (a result or a
typed error, both picklable) and the caller records it. Progress events are thinned by a
:class:`Reporter` (the latest ``progress`` per file, lifecycle events in order) and sent every
``interval`` seconds; what was not sent yet travels back with the chunk, and each item's final
event (``done``, ``skipped`` or ``failed``) always travels with its outcome, so the caller
emits it exactly once, after everything else about that file.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import pickle
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._light import light
from .._threads import Guarded
from ..engine import Engine, Settings
from ..errors import ResumableError
from ..partial import fsync_dir
from ..progress import EventKind, ProgressEvent
from .task import Outcome, Task, download

if TYPE_CHECKING:
    from .links import Link

__all__ = ["ChunkResult", "DownloaderSpec", "Outcome", "Reporter", "Task", "run_chunk"]

log = logging.getLogger("resumable")

TERMINAL = (EventKind.DONE, EventKind.FAILED, EventKind.SKIPPED)
Publish = Callable[[list[ProgressEvent]], None]


@dataclass(frozen=True)
class DownloaderSpec:
    """A downloader's configuration, by value: what a worker needs to build its own.

    ``sources`` holds the downloader's ``sources=`` instances when they pickle; ``registry``
    the schemes registered with :func:`resumable.register` in the caller's process, so a
    worker serves them the same way.
    """

    settings: Settings
    sources: Mapping[str, Any] = field(default_factory=dict)
    registry: tuple[tuple[str, Any], ...] = ()

    @property
    def key(self) -> str:
        """Identifies the configuration (workers cache one downloader per key).

        Built from reprs, not pickles: a ``RetryPolicy`` pickles its random generator's state,
        which changes between two chunks of the same job."""
        parts = (repr(self.settings), sorted(self.sources.items()), self.registry)
        return hashlib.sha256(repr(parts).encode()).hexdigest()

    def build(self) -> Engine:
        from ..sources import register

        for scheme, target in self.registry:
            register(scheme, target)
        return Engine(self.settings, dict(self.sources) or None)


@dataclass(frozen=True)
class ChunkResult:
    """A chunk's outcomes, and the progress events the live link had not delivered."""

    outcomes: list[Outcome]
    events: list[ProgressEvent]
    worker: str


class Reporter:
    """Thins a chunk's progress events and sends them every ``interval`` seconds.

    Aggregation: between two sends, only the latest ``progress`` event of each file is kept;
    ``started``, ``retrying`` and ``verified`` are kept in order. A file's final event is set
    aside for its :class:`Outcome`. With ``publish=None`` nothing is sent live and everything
    returns with the chunk (:meth:`close`).
    """

    def __init__(self, publish: Publish | None, interval: float = 0.5) -> None:
        self._publish = publish
        self._interval = interval
        self._pending: list[ProgressEvent] = []
        self._latest: dict[Path, int] = {}  # index in _pending of each file's progress event
        self._final: dict[Path, ProgressEvent] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if publish is not None:
            self._thread = Guarded(self._loop, name="resumable-report")
            self._thread.start()

    def __call__(self, event: ProgressEvent) -> None:
        if event.error is not None:
            event = replace(event, error=picklable(event.error))
        with self._lock:
            if event.kind in TERMINAL:
                self._final[event.path] = event
                return
            index = self._latest.get(event.path)
            if event.kind is EventKind.PROGRESS and index is not None:
                self._pending[index] = event
                return
            self._pending.append(event)
            if event.kind is EventKind.PROGRESS:
                self._latest[event.path] = len(self._pending) - 1
            else:
                self._latest.pop(event.path, None)

    def final(self, path: Path) -> ProgressEvent | None:
        with self._lock:
            return self._final.pop(path, None)

    def _take(self) -> list[ProgressEvent]:
        with self._lock:
            batch, self._pending, self._latest = self._pending, [], {}
        return batch

    def _loop(self) -> None:
        assert self._publish is not None
        while not self._stop.wait(self._interval):
            batch = self._take()
            if batch:
                try:
                    self._publish(batch)
                except Exception:  # progress is best effort; the downloads go on
                    log.warning("could not send progress to the caller", exc_info=True)

    def close(self) -> list[ProgressEvent]:
        """Stop sending; return what was not sent (it travels back with the chunk)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return self._take()


def picklable(exc: BaseException) -> BaseException:
    """``exc`` if it pickles, else a :class:`ResumableError` that names it (a third-party
    exception holding a socket or a lock must not lose the whole chunk's results)."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return ResumableError(f"{type(exc).__module__}.{type(exc).__qualname__}: {exc}")
    return exc


# -- the worker side ------------------------------------------------------------------------------

_CACHE_SIZE = 4
_downloaders: OrderedDict[str, Engine] = OrderedDict()
_in_use: dict[str, int] = {}  # chunks running with each cached downloader
_downloaders_lock = threading.Lock()


@contextlib.contextmanager
def _downloader_for(spec: DownloaderSpec) -> Iterator[Engine]:
    """This process's downloader for ``spec``, kept warm between chunks. At most a few idle
    ones are kept; one that a running chunk uses is never closed under it."""
    key = spec.key
    with _downloaders_lock:
        downloader = _downloaders.get(key)
        if downloader is None:
            downloader = _downloaders[key] = spec.build()
        _downloaders.move_to_end(key)
        _in_use[key] = _in_use.get(key, 0) + 1
    try:
        yield downloader
    finally:
        with _downloaders_lock:
            _in_use[key] -= 1
            if not _in_use[key]:
                del _in_use[key]
            idle = [k for k in _downloaders if k not in _in_use]
            for old in idle[: max(0, len(_downloaders) - _CACHE_SIZE)]:
                _downloaders.pop(old).close()


def run_chunk(spec: DownloaderSpec | Engine, tasks: Sequence[Task], link: Link) -> ChunkResult:
    """Download ``tasks`` with this process's downloader for ``spec``; never raises for an item.

    ``spec`` is the caller's engine itself when the executor runs in the caller's process
    (a thread pool): nothing needs to be rebuilt or pickled then.
    """
    if isinstance(spec, Engine):
        return _run(spec, tasks, link)
    with _downloader_for(spec) as downloader:
        return _run(downloader, tasks, link)


def _run(downloader: Engine, tasks: Sequence[Task], link: Link) -> ChunkResult:
    publish, cancel = link.attach()
    reporter = Reporter(publish, link.interval)
    renamed_in: set[Path] = set()  # folders fsynced once when the chunk ends (as a Job does)
    try:
        threads = max(1, min(downloader.settings.workers, len(tasks)))
        from concurrent.futures import ThreadPoolExecutor  # loaded when a chunk runs

        with ThreadPoolExecutor(threads, thread_name_prefix="resumable-chunk") as pool:
            outcomes = list(
                pool.map(lambda t: _one(downloader, t, reporter, cancel, renamed_in), tasks)
            )
    finally:
        for folder in sorted(renamed_in):
            fsync_dir(folder)
        events = reporter.close()
        link.detach()
    return ChunkResult(outcomes, events, f"{os.uname().nodename}:{os.getpid()}")


def _one(
    engine: Engine,
    task: Task,
    reporter: Reporter,
    cancel: threading.Event,
    renamed_in: set[Path],
) -> Outcome:
    if cancel.is_set():
        return Outcome(task.key, started=False)
    outcome = download(engine, task, reporter, cancel, renamed_in.add)  # set.add: atomic
    error = outcome.error
    if error is not None:  # it waits in the chunk's result: no frames kept alive
        outcome = replace(outcome, error=light(picklable(error)))
    return replace(outcome, final=reporter.final(Path(task.dest)))
