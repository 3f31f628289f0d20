"""How a fanned-out batch's workers talk back to the caller: progress and cancellation.

Each kind of executor gets a :class:`Channel` on the caller's side and a :class:`Link` that
travels (pickled) with every chunk to the worker:

================  ==================================  =======================================
executor          progress while a chunk runs         cancellation reaches running chunks by
================  ==================================  =======================================
Dask              thinned batches every second, as    a ``distributed.Event``, polled once a
                  Dask structured events              second per worker process
                  (``Worker.log_event`` ->
                  ``Client.subscribe_topic``)
thread pool       thinned batches every 0.2 s,        a ``threading.Event``
                  through an in-process queue
any other         none live: each chunk brings its    a flag file in ``dest_dir/.resumable/``,
(process pool)    thinned events back when it ends    polled twice a second (same machine or
                                                      a shared filesystem)
================  ==================================  =======================================

The trade-off: Dask events pass through the scheduler, which keeps the last
``distributed.admin.low-level-log-length`` (1000) messages of a topic, so they are thinned on
the worker (the latest byte count per file, lifecycle events in order) and sent at most once a
second per chunk. A generic executor has no side channel, so its progress arrives per chunk:
keep chunks small (they hold ``workers`` items) when live bars matter.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import pickle
import queue
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from .._threads import Guarded
from ..cancel import CancelToken
from ..progress import ProgressEvent

__all__ = ["Channel", "Link", "channel_for"]

Publish = Callable[[list[ProgressEvent]], None]
log = logging.getLogger("resumable")


class Link(Protocol):
    """The worker's end: ``attach()`` gives ``(publish or None, cancel event)``."""

    interval: float

    def attach(self) -> tuple[Publish | None, threading.Event]: ...

    def detach(self) -> None: ...


class Channel(Protocol):
    """The caller's end."""

    link: Link

    def drain(self) -> list[ProgressEvent]:
        """Events that arrived since the last call."""
        ...

    def cancel(self) -> None: ...

    def close(self) -> None: ...


def channel_for(executor: Any, flag_dir: Path) -> Channel:
    """The channel that fits ``executor`` (see the module docstring)."""
    from concurrent.futures import ThreadPoolExecutor

    client = _dask_client(executor)
    if client is not None:
        return DaskChannel(client)
    if isinstance(executor, ThreadPoolExecutor):
        return LocalChannel()
    return FileChannel(flag_dir)


def _distributed() -> Any:
    """``distributed``, untyped on purpose: it is an optional dependency (``resumable[dask]``)."""
    return importlib.import_module("distributed")


def _dask_client(executor: Any) -> Any:
    if type(executor).__module__.split(".")[0] != "distributed":
        return None
    return getattr(executor, "_client", None)


# -- a process-wide watcher: one poll per job per worker process, however many chunks run ----


class _Watcher:
    def __init__(self, interval: float) -> None:
        self._interval = interval
        self._jobs: dict[str, tuple[Callable[[], bool], threading.Event, int]] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def watch(self, key: str, check: Callable[[], bool]) -> threading.Event:
        """The event for job ``key``, set once ``check()`` is true (checked now if new, so a
        chunk that starts after a cancel fetches nothing)."""
        with self._lock:
            _, event, count = self._jobs.get(key, (check, CancelToken(), 0))
            self._jobs[key] = (check, event, count + 1)
            if self._thread is None or not self._thread.is_alive():
                self._thread = Guarded(self._loop, name="resumable-cancel-watch")
                self._thread.start()  # one that died anyway is started again by the next watch
        if count == 0:
            self._check(check, event)
        return event

    def unwatch(self, key: str) -> None:
        with self._lock:
            check, event, count = self._jobs[key]
            if count > 1:
                self._jobs[key] = (check, event, count - 1)
            else:
                del self._jobs[key]

    def _loop(self) -> None:
        while True:
            threading.Event().wait(self._interval)
            with self._lock:
                jobs = list(self._jobs.values())
                if not jobs:
                    self._thread = None
                    return
            for check, event, _ in jobs:
                self._check(check, event)

    @staticmethod
    def _check(check: Callable[[], bool], event: threading.Event) -> None:
        if event.is_set():
            return
        try:
            if check():
                event.set()
        except Exception:  # the scheduler is briefly unreachable: try again next time
            log.debug("cancel check failed; trying again", exc_info=True)


_file_watcher = _Watcher(0.5)
_dask_watcher = _Watcher(1.0)


# -- thread pools: everything stays in this process --------------------------------------------


class LocalLink:
    interval = 0.2

    def __init__(self, sink: queue.SimpleQueue[list[ProgressEvent]], cancel: threading.Event):
        self._sink = sink
        self._cancel = cancel

    def attach(self) -> tuple[Publish | None, threading.Event]:
        return self._sink.put, self._cancel

    def detach(self) -> None:
        pass


class LocalChannel:
    def __init__(self) -> None:
        self._sink: queue.SimpleQueue[list[ProgressEvent]] = queue.SimpleQueue()
        self._cancel = CancelToken()  # set() also shuts the connections in use
        self.link: Link = LocalLink(self._sink, self._cancel)

    def drain(self) -> list[ProgressEvent]:
        events: list[ProgressEvent] = []
        with contextlib.suppress(queue.Empty):
            while True:
                events.extend(self._sink.get_nowait())
        return events

    def cancel(self) -> None:
        self._cancel.set()

    def close(self) -> None:
        pass


# -- any executor: a flag file; progress comes back with each chunk ----------------------------


class FileLink:
    interval = 0.5

    def __init__(self, flag: str) -> None:
        self.flag = flag

    def attach(self) -> tuple[Publish | None, threading.Event]:
        return None, _file_watcher.watch(self.flag, lambda: os.path.exists(self.flag))

    def detach(self) -> None:
        _file_watcher.unwatch(self.flag)


class FileChannel:
    def __init__(self, flag_dir: Path) -> None:
        self._flag = flag_dir / f"cancel-{uuid.uuid4().hex}"
        self.link: Link = FileLink(str(self._flag))

    def drain(self) -> list[ProgressEvent]:
        return []

    def cancel(self) -> None:
        self._flag.touch()

    def close(self) -> None:
        self._flag.unlink(missing_ok=True)


# -- Dask: structured events for progress, a distributed.Event for cancellation ------------------


class DaskLink:
    interval = 1.0

    def __init__(self, topic: str) -> None:
        self.topic = topic

    def attach(self) -> tuple[Publish | None, threading.Event]:
        distributed = _distributed()
        worker = distributed.get_worker()
        # The client is looked up here, on the task's thread: the watcher's thread has none.
        flag = distributed.Event(self.topic, client=distributed.get_client())

        def publish(batch: list[ProgressEvent]) -> None:
            worker.log_event(self.topic, pickle.dumps(batch))

        return publish, _dask_watcher.watch(self.topic, flag.is_set)

    def detach(self) -> None:
        _dask_watcher.unwatch(self.topic)


class DaskChannel:
    def __init__(self, client: Any) -> None:
        self._client = client
        self._topic = f"resumable-{uuid.uuid4().hex}"
        self._events: queue.SimpleQueue[bytes] = queue.SimpleQueue()
        self._flag = _distributed().Event(self._topic, client=client)
        self.link: Link = DaskLink(self._topic)
        client.subscribe_topic(self._topic, self._on_message)

    def _on_message(self, event: tuple[float, Any]) -> None:
        # Runs on the client's event loop: hand over, never call user code here.
        self._events.put(event[1])

    def drain(self) -> list[ProgressEvent]:
        events: list[ProgressEvent] = []
        with contextlib.suppress(queue.Empty):
            while True:
                # Our own workers pickled these, as Dask pickles every task and result.
                events.extend(pickle.loads(self._events.get_nowait()))
        return events

    def cancel(self) -> None:
        self._flag.set()

    def close(self) -> None:
        with contextlib.suppress(Exception):  # the client may already be closing
            self._client.unsubscribe_topic(self._topic)
        with contextlib.suppress(Exception):
            self._flag.clear()
