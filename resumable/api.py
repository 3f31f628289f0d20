"""The public API: :class:`ResumableDownloader` and :func:`download`.

:class:`ResumableDownloader` checks its arguments into a frozen
:class:`~resumable.engine.Settings` and holds one :class:`~resumable.engine.Engine` (one source
per URL scheme, so connections stay warm between files and threads). ``download``
builds a checked request and hands it to the engine (:class:`~resumable.engine.Engine`);
``start``, ``download_many`` and ``plan`` hand batches to the batch layer, imported when used.
This is the top of the library: nothing in it imports this module.

This module never imports requests, fsspec or tqdm.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ._arguments import (
    check_cancel,
    check_dest_dir,
    check_processor,
    check_progress,
    check_sources,
    close_progress,
    in_directory,
)
from ._guard import guarded, user_callback
from .batch.items import as_inputs
from .engine import DownloadResult, Settings
from .engine.settings import MiB
from .errors import InvalidArgument
from .locator import RefreshURL
from .progress import ProgressCallback
from .retry import RetryPolicy, Timeouts
from .sources import Source

if TYPE_CHECKING:
    from concurrent.futures import Executor

    from .batch.job import BatchResult, Job
    from .batch.plan import Plan
    from .extract import Processor

__all__ = ["DownloadResult", "ResumableDownloader", "download"]

PathLike = str | os.PathLike[str]


class ResumableDownloader:
    """Downloads files so that they are never corrupt, half-written or restarted from zero.

    One downloader holds connection pools and configuration; share it between calls and
    threads. Use it as a context manager, or call :meth:`close`, to release connections.

    >>> with ResumableDownloader(retry=RetryPolicy(attempts=5)) as d:       # doctest: +SKIP
    ...     d.download("https://example.org/shard-000000.tar", "data/shard-000000.tar")

    Args:
        workers: files downloaded in parallel by batch calls.
        connections: most connections for one file; ``None`` lets the source choose (HTTP: 8;
            object stores: 1, see ``FsspecSource``). Files of at least
            ``segment_threshold`` bytes from sources that serve ranges are split into pieces
            fetched in parallel; smaller files use one connection.
        rate_limit: bytes per second across all transfers of this downloader (a token bucket).
        storage_options: fsspec options, flat (``{"endpoint_url": ..., "key": ...}``, for the
            scheme of every fsspec URL) or per protocol (``{"s3": {...}, "gs": {...}}``); see
            ``docs/sources.md``. An option the filesystem does not accept is an
            ``InvalidArgument`` before any request.
        limit_bph: a budget of bytes per hour across all transfers (AIStore's ``--limit-bph``):
            spent at full speed, then refilled at ``limit_bph / 3600`` bytes per second.
        max_per_host: most connections to one host at once, across files and segments.
        max_connections: most connections at once overall, across files and segments.
        retry: when and how to retry transient failures.
        timeouts: connect and stall timeouts (there is no overall timeout).
        headers: extra HTTP headers for every HTTP(S) request. Checked here: a name that is not
            an RFC 9110 token, or a value that cannot be sent (a trailing newline, CR, LF, NUL,
            a character outside latin-1) is an ``InvalidArgument`` naming the header, never
            showing the value. Every value is hidden from messages and logs (``REDACTED``),
            and credential-named headers are not sent to another host after a redirect.
        locking: take ``D.partial.lock`` to avoid duplicate work between processes (correctness
            never depends on it).
        block_size: most bytes read per call on the hot path.
        segment_threshold: the size from which a file is downloaded in segments.
        sources: source instances to use for some URL schemes instead of the registered
            classes, e.g. ``{"mem": MemorySource(...)}`` from :mod:`resumable.testing`.
        verify: TLS verification for HTTP(S): ``True`` (the default: the system bundle, or
            ``REQUESTS_CA_BUNDLE``), the path of a CA bundle (a private CA), or ``False``.
        refresh_url: ``refresh_url(failed_url) -> str | None``, called when a URL is refused
            (401/403, or 400 as GCS answers an expired signature) to get a fresh signed URL
            for the same object; the download goes on from the same offset. See
            :mod:`resumable.locator`.
    """

    def __init__(
        self,
        workers: int = 8,
        connections: int | None = None,
        rate_limit: float | None = None,
        storage_options: Mapping[str, Any] | None = None,
        *,
        retry: RetryPolicy | None = None,
        timeouts: Timeouts | None = None,
        headers: Mapping[str, str] | None = None,
        locking: bool = True,
        block_size: int = 4 * MiB,
        segment_threshold: int = 64 * MiB,
        sources: Mapping[str, Source] | None = None,
        limit_bph: int | None = None,
        max_per_host: int | None = None,
        max_connections: int | None = None,
        verify: bool | str | os.PathLike[str] = True,
        refresh_url: RefreshURL | None = None,
    ) -> None:
        self.settings = Settings.checked(
            workers=workers,
            connections=connections,
            rate_limit=rate_limit,
            limit_bph=limit_bph,
            max_per_host=max_per_host,
            max_connections=max_connections,
            retry=retry,
            timeouts=timeouts,
            headers=headers,
            storage_options=storage_options,
            verify=verify,
            locking=locking,
            block_size=block_size,
            segment_threshold=segment_threshold,
            refresh_url=refresh_url,
        )
        check_sources(sources)
        from .engine.engine import Engine  # the machinery, loaded by the first downloader

        self.engine = Engine(self.settings, sources)

    # Read-only views of the settings under the constructor's names.

    @property
    def workers(self) -> int:
        """files downloaded in parallel by batch calls (``Settings.workers``)."""
        return self.settings.workers

    @property
    def connections(self) -> int | None:
        """most connections for one file, or ``None`` (``Settings.connections``)."""
        return self.settings.connections

    @property
    def retry(self) -> RetryPolicy:
        """the retry policy (``Settings.retry``)."""
        return self.settings.retry

    @property
    def timeouts(self) -> Timeouts:
        """the connect and stall timeouts (``Settings.timeouts``)."""
        return self.settings.timeouts

    @property
    def refresh_url(self) -> RefreshURL | None:
        """the fresh-URL hook, or ``None`` (``Settings.refresh_url``)."""
        return self.settings.refresh_url

    @guarded("download")
    def download(
        self,
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
        cancel: threading.Event | None = None,
    ) -> DownloadResult:
        """Download ``url`` to ``dest``, resuming a partial from an earlier call.

        Args:
            url: ``http(s)://...`` or any registered scheme.
            dest: the destination file; missing parent directories are created. An existing
                directory, or a path ending with a separator (``"data/"``), means
                ``dest/<object name>``, the name as ``download_many`` gives it (the URL path's
                last segment, percent-decoded); a URL without one is an ``InvalidArgument``.
            size: the expected size in bytes; checked against the source before fetching.
            sha256: the expected SHA-256 (64 hex digits).
            checksum: ``"<algorithm>:<hex>"`` (any hashlib algorithm), or several.
            progress: called with a :class:`ProgressEvent` as the download moves; ``True``
                means a new :class:`~resumable.TqdmProgress`; ``None`` or ``False``: none.
            connections: most connections for this file (default: the downloader's).
            process: what to do with the verified file, e.g. ``Untar(...)``, ``Unzip(...)``,
                ``Decompress()`` (see :mod:`resumable.extract`); runs once per version of the
                file, recorded in ``dest.extracted.json``; the result's ``extracted`` says
                what it produced.
            mirrors: other URLs of the same object, tried in order when the current one fails
                for good (404, 403, another 4xx, retries exhausted); the download goes on from
                the same offset. ``url`` names the file in the sidecar, results and errors.
            refresh_url: a fresh-URL hook for this download (default: the downloader's).
            cancel: a ``threading.Event``; setting it (from any thread) stops the download at
                its next read or wait with :class:`~resumable.Cancelled`, the partial kept
                resumable (what :meth:`adownload` does when its task is cancelled).

        Returns:
            A :class:`DownloadResult`; ``dest`` holds the complete, verified file (unless a
            processor deleted it with ``delete_archive=True``).

        Raises:
            InvalidArgument: bad arguments (before any network traffic).
            SourceNotFound, AccessDenied, RemoteError: the source refused.
            RetriesExhausted: transient failures without progress used up the retry budget.
            SizeMismatch, ChecksumMismatch: the bytes are not what was expected.
            LocalError: the destination cannot be written (e.g. the disk is full).
            ExtractionError: the processor refused or could not read the verified archive
                (``UnsafeArchive``, ``ArchiveTooLarge``, ``CorruptArchive``); it is kept.

        The partial is kept (resumable) after every error except a verification failure; an
        existing ``dest`` is never modified by a failed call.
        """
        owned = progress is True  # our TqdmProgress: closed when the download ends
        bars = None
        try:
            bars = check_progress(progress)
            check_cancel(cancel)
            dest = in_directory(dest, url, self.engine.given)
            progress = user_callback(bars)  # what it raises reaches the caller unchanged
            processor = check_processor(process)
            request = self.engine.request(
                url,
                dest,
                size=size,
                sha256=sha256,
                checksum=checksum,
                connections=connections,
                mirrors=mirrors,
                refresh_url=refresh_url,
                # A streaming extractor reads D.partial as it grows: one connection, no
                # direct path.
                streamed=getattr(processor, "stream", False),
            )
        except InvalidArgument as exc:
            exc.kept = exc.kept or "nothing was fetched and nothing on disk was changed"
            raise
        try:
            if processor is None:
                return self.engine.transfer(request, progress, cancel)
            from .extract._glue import download_one

            return download_one(self.engine, request, processor, progress, cancel)
        finally:
            if owned:
                close_progress(bars)

    # -- batches (the batch layer sits above this module: imported when used) -----------------

    @guarded("start")
    def start(
        self,
        items: Iterable[object] | str,
        dest_dir: PathLike,
        *,
        sync: bool = False,
        progress: ProgressCallback | bool | None = None,
        executor: Executor | None = None,
        process: Processor | None = None,
        checksums: str | os.PathLike[str] | Mapping[str, str] | None = None,
    ) -> Job:
        """Start a batch in the background and return its :class:`~resumable.Job` handle.

        ``items``: URLs (brace templates allowed; a URL ending in ``/`` is a prefix to list),
        ``(url, dest)`` pairs with ``dest`` relative to ``dest_dir``, or :class:`~resumable.Item`
        objects, in any mix, consumed lazily. ``workers`` files download at once.
        ``executor``: fan the batch out (see :meth:`download_many`).
        ``process``: a processor (``Untar(...)``...) for every file whose ``Item`` has none;
        completion is recorded in the ledger, so a rerun skips extracted archives.
        ``progress``: a callable, or ``True`` for a new :class:`~resumable.TqdmProgress`.
        ``checksums``: a checksum file's path or text (``SHA256SUMS``, ``MD5SUMS``... see
        :func:`resumable.read_checksums`) or a mapping ``{name: "algo:hex"}``; each item is
        verified against the entry named by its destination relative to ``dest_dir``, or else
        a listed path with the same tail (``x.tar`` for ``train/x.tar``; see docs/batches.md).
        An item the file does not name is downloaded without a digest to check (logged); one
        whose own digest of the same algorithm differs fails with ``InvalidArgument``.
        """
        from ._arguments import start_job

        options = {"sync": sync, "progress": progress, "executor": executor, "process": process}
        return start_job(self.engine, items, dest_dir, checksums=checksums, **options)

    @guarded("download_many")
    def download_many(
        self,
        items: Iterable[object] | str,
        dest_dir: PathLike,
        *,
        sync: bool = False,
        progress: ProgressCallback | bool | None = None,
        executor: Executor | None = None,
        process: Processor | None = None,
        checksums: str | os.PathLike[str] | Mapping[str, str] | None = None,
    ) -> BatchResult:
        """Download a batch and return a :class:`~resumable.BatchResult`; never raises for a
        failed item (see ``BatchResult.failed`` and ``raise_for_errors()``).

        ``sync=True`` also deletes files this library downloaded earlier from the same
        templates or prefixes that are gone at the source, and fetches again files whose remote
        changed; files it did not create are never touched. Ctrl-C cancels the batch promptly,
        leaving every partial resumable, then re-raises ``KeyboardInterrupt``.

        ``executor``: any ``concurrent.futures.Executor``, e.g. a Dask ``Client.get_executor()``
        or a ``ProcessPoolExecutor``: items go to it in chunks, each worker downloads with its own
        copy of this downloader's configuration into ``dest_dir`` as given (a shared filesystem,
        or each node's own disk), and this process keeps the ledger (see ``docs/dask.md``).
        ``process`` applies a processor to each verified file, and ``checksums`` verifies
        each item against a checksum file (see :meth:`start`).
        """
        job = self.start(
            items,
            dest_dir,
            sync=sync,
            progress=progress,
            executor=executor,
            process=process,
            checksums=checksums,
        )
        try:
            return job.wait()
        except BaseException:
            job.cancel()
            job.wait()
            raise

    @guarded("prefetch")
    def prefetch(
        self,
        items: Iterable[object] | str,
        dest_dir: PathLike,
        *,
        ahead: int = 4,
        keep: bool = True,
        max_bytes: int | None = None,
        errors: str = "raise",
        **options: Any,
    ) -> Iterator[DownloadResult]:
        """Results in INPUT order (each file complete) while the next ``ahead`` items download.

        The item the loop holds stays until it asks for the next; ``keep=False`` then deletes
        its file. ``max_bytes`` bounds bytes fetched and not consumed plus bytes in flight; an
        item larger, or of a size nothing tells (``Item.size``, a listing, a HEAD), is an
        ``InvalidArgument`` at its place, before its GET. ``errors``: ``"raise"`` a failed
        item's error at its place, or ``"skip"`` it. A rerun resumes; leaving the loop cancels
        what is in flight. ``options``: ``progress``, ``executor``, ``process``, ``checksums``.
        """
        from ._arguments import prefetch

        return prefetch(self.engine, items, dest_dir, ahead, keep, max_bytes, errors, options)

    @guarded("plan")
    def plan(self, items: Iterable[object] | str, dest_dir: PathLike) -> Plan:
        """The dry run of a batch: files and bytes in total, already present, and to fetch."""
        from .batch.plan import make_plan

        return make_plan(self.engine, as_inputs(items), check_dest_dir(dest_dir))

    async def adownload(self, url: str, dest: PathLike, **options: Any) -> DownloadResult:
        """:meth:`download` for asyncio callers: same parameters and result; the transfer
        runs in a thread, so the event loop keeps running. Cancelling the awaiting task stops
        the transfer, keeps the partial resumable and raises ``asyncio.CancelledError``
        (see :mod:`resumable.aio`)."""
        from .aio import adownload_with

        return await adownload_with(self, url, dest, **options)

    async def adownload_many(
        self, items: Iterable[object] | str, dest_dir: PathLike, **options: Any
    ) -> BatchResult:
        """:meth:`download_many` for asyncio callers: same parameters and result. Cancelling
        the awaiting task cancels the batch (running items stop and stay resumable), waits
        for it to stop and raises ``asyncio.CancelledError`` (see :mod:`resumable.aio`)."""
        from .aio import adownload_many

        return await adownload_many(self, items, dest_dir, **options)

    def close(self) -> None:
        """Close the sources' connection pools."""
        self.engine.close()

    def __enter__(self) -> ResumableDownloader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"ResumableDownloader(workers={self.workers}, connections={self.connections}, "
            f"retry={self.retry!r}, timeouts={self.timeouts!r})"
        )


_default: ResumableDownloader | None = None
_default_lock = threading.Lock()


@guarded("download")
def download(
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
    cancel: threading.Event | None = None,
) -> DownloadResult:
    """Download one file with a shared default :class:`ResumableDownloader`.

    See :meth:`ResumableDownloader.download`. The shared downloader keeps its connections warm
    between calls, so a loop over shards reuses one keep-alive connection per host.
    """
    global _default
    with _default_lock:
        if _default is None:
            _default = ResumableDownloader()
        downloader = _default
    return downloader.download(
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
    )
