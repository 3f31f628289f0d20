"""Awaitable downloads for asyncio applications and notebook cells.

``await resumable.adownload(url, dest)``, ``await d.adownload(...)`` and
``await d.adownload_many(items, dest_dir)`` take the parameters of their synchronous twins and
return the same results. The synchronous engine runs in a thread of its own per call (not the
loop's default executor: a few long downloads must not starve ``getaddrinfo`` and other
``to_thread`` work of the application), so the event loop keeps running while bytes move.

Cancelling the awaiting task (``task.cancel()``, ``asyncio.wait_for`` timing out, a notebook's
interrupt) cancels the transfer: the download's ``cancel`` event (a batch: ``Job.cancel()``) is
set, the coroutine waits for the worker thread to stop at its next read, so the partial and its
sidecar are consistent and a later call resumes with a ``Range`` request, and then
``asyncio.CancelledError`` is raised in the awaiting task as asyncio expects.

This module imports :mod:`asyncio`; ``import resumable`` does not (the names are loaded on first
use through ``resumable.__getattr__`` and the downloader's methods).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import os
    from concurrent.futures import Executor

    from .api import DownloadResult, PathLike, ResumableDownloader
    from .batch.job import BatchResult, Job
    from .extract import Processor
    from .locator import RefreshURL
    from .progress import ProgressCallback

__all__ = ["adownload", "adownload_many", "adownload_with"]

T = TypeVar("T")
POLL = 0.05
"""Seconds between two looks at a running batch for a cancel request (in its waiting thread)."""


async def adownload(
    url: str,
    dest: PathLike,
    *,
    size: int | None = None,
    sha256: str | None = None,
    checksum: str | Iterable[str] | None = None,
    progress: ProgressCallback | bool | None = None,
    connections: int | None = None,
    process: Processor | None = None,
    mirrors: Sequence[str] = (),
    refresh_url: RefreshURL | None = None,
) -> DownloadResult:
    """:func:`resumable.download`, awaitable: the shared default downloader, in a thread.

    Cancelling the awaiting task stops the transfer promptly, keeps the partial resumable and
    raises ``asyncio.CancelledError``.
    """
    from .api import download

    cancel = threading.Event()
    return await run_in_thread(
        lambda: download(
            url,
            dest,
            size=size,
            sha256=sha256,
            checksum=checksum,
            progress=progress,
            connections=connections,
            process=process,
            mirrors=mirrors,
            refresh_url=refresh_url,
            cancel=cancel,
        ),
        cancel.set,
    )


async def adownload_with(
    downloader: ResumableDownloader, url: str, dest: PathLike, **options: Any
) -> DownloadResult:
    """:meth:`ResumableDownloader.adownload`: ``downloader.download(url, dest, **options)``
    in a thread, cancelled with the awaiting task."""
    cancel = threading.Event()
    return await run_in_thread(
        lambda: downloader.download(url, dest, cancel=cancel, **options), cancel.set
    )


async def adownload_many(
    downloader: ResumableDownloader,
    items: Iterable[object] | str,
    dest_dir: PathLike,
    *,
    sync: bool = False,
    progress: ProgressCallback | bool | None = None,
    executor: Executor | None = None,
    process: Processor | None = None,
    checksums: str | os.PathLike[str] | Mapping[str, str] | None = None,
) -> BatchResult:
    """:meth:`ResumableDownloader.adownload_many`: the batch runs as ``start`` runs it; a
    thread waits for it. Cancelling the awaiting task cancels the job (nothing new starts,
    running items stop and stay resumable), waits for it to stop, and raises
    ``asyncio.CancelledError``."""
    stop = threading.Event()

    def run() -> BatchResult:
        job = downloader.start(
            items,
            dest_dir,
            sync=sync,
            progress=progress,
            executor=executor,
            process=process,
            checksums=checksums,
        )
        return _wait(job, stop)

    return await run_in_thread(run, stop.set)


def _wait(job: Job, stop: threading.Event) -> BatchResult:
    """Wait for ``job``, cancelling it as soon as ``stop`` is set."""
    while not job.done():
        if stop.wait(POLL):
            job.cancel()
            break
    return job.wait()


async def run_in_thread(work: Callable[[], T], cancel: Callable[[], object]) -> T:
    """Run ``work`` in a new thread and await its result; if the awaiting task is cancelled,
    call ``cancel()`` (from the loop), wait for ``work`` to end, then re-raise the
    cancellation. The caller's context variables are visible in the thread."""
    future = _start_thread(work)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        cancel()
        await _settle(future)
        raise


async def _settle(future: asyncio.Future[Any]) -> None:
    """Wait until ``future`` is done, through further cancellations (the thread must stop
    before the caller hears that it has), and mark its outcome as retrieved."""
    while not future.done():
        try:
            await asyncio.wait({future})
        except asyncio.CancelledError:
            continue
    if not future.cancelled():
        future.exception()  # a Cancelled from the transfer is the expected outcome


def _start_thread(work: Callable[[], T]) -> asyncio.Future[T]:
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()
    context = contextvars.copy_context()

    def deliver(outcome: Callable[[], None]) -> None:
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
            loop.call_soon_threadsafe(outcome)

    def run() -> None:
        try:
            result = context.run(work)
        except BaseException as exc:
            error = exc  # ``exc`` is unbound when the except block ends, before the callback
            deliver(lambda: None if future.done() else future.set_exception(error))
        else:
            deliver(lambda: None if future.done() else future.set_result(result))

    threading.Thread(target=run, name="resumable-aio", daemon=True).start()
    return future
