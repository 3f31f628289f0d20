"""The downloader: configuration, connection pools and limits, and the entry points.

:class:`ResumableDownloader` holds the retry policy, timeouts, headers and limits, and one
source per URL scheme (so connections stay warm between files and threads). ``download``
validates its arguments before any traffic and runs a :class:`~resumable.transfer.Transfer`;
``start``, ``download_many`` and ``plan`` hand batches to :mod:`resumable.job` and
:mod:`resumable.plan`, which sit above this module and are imported when used.

This module never imports requests, fsspec or tqdm.
"""

from __future__ import annotations

import os
import re
import stat
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from ._checks import check_bool, check_number
from ._guard import guarded, user_callback
from ._paths import check_loop_free, path_text
from ._secrets import check_headers, install_log_filter
from .errors import InvalidArgument, LocalError
from .limits import HostSlots, TokenBucket
from .locator import Locator, RefreshURL
from .progress import ProgressCallback, null_progress
from .retry import RetryPolicy, Timeouts
from .sources import Source, SourceConfig, source_class
from .transfer import DownloadResult, Transfer
from .verify import parse_expected

if TYPE_CHECKING:
    from concurrent.futures import Executor

    from .extract import Processor
    from .job import BatchResult, Job
    from .plan import Plan

__all__ = ["DownloadResult", "ResumableDownloader", "download"]

PathLike = str | os.PathLike[str]
MiB = 1 << 20
# Connections for one large file when ``connections=None`` and the source has no
# ``automatic_connections`` of its own (HTTP: 8; object stores through fsspec: 1).
AUTO_CONNECTIONS = 8


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
        storage_options: per-protocol options for fsspec sources, ``{"s3": {...}}``.
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
        storage_options: Mapping[str, Mapping[str, Any]] | None = None,
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
        headers = check_headers(headers)  # first: a bad token is the likeliest mistake here
        install_log_filter("resumable", "resumable.progress")  # see resumable._secrets
        if not isinstance(workers, int) or workers < 1:
            raise InvalidArgument(f"workers must be a positive integer, got {workers!r}")
        _check_connections(connections)
        if not isinstance(segment_threshold, int) or segment_threshold < 1:
            raise InvalidArgument(f"segment_threshold must be >= 1, got {segment_threshold!r}")
        if not isinstance(block_size, int) or block_size < 64 * 1024:
            raise InvalidArgument(f"block_size must be at least 64 KiB, got {block_size!r}")
        _check_settings(retry, timeouts, sources, limit_bph)
        self.workers = workers
        self.connections = connections
        self.rate_limit = rate_limit
        self.limit_bph = limit_bph
        self.retry = retry or RetryPolicy()
        self.timeouts = timeouts or Timeouts()
        self.locking = locking
        self.block_size = block_size
        self.segment_threshold = segment_threshold
        if not isinstance(verify, (bool, str, os.PathLike)):
            raise InvalidArgument(f"verify must be a bool or a CA bundle path, got {verify!r}")
        if not isinstance(verify, bool) and not os.path.exists(verify):
            raise InvalidArgument(f"verify: no CA bundle at {os.fspath(verify)!r}")
        _check_refresh(refresh_url)
        self.refresh_url = refresh_url
        self._buckets = [
            bucket
            for bucket in (
                TokenBucket(rate_limit) if rate_limit is not None else None,
                TokenBucket(limit_bph / 3600, capacity=limit_bph) if limit_bph else None,
            )
            if bucket is not None
        ]
        self.slots = HostSlots(max_per_host, max_connections)
        self._config = SourceConfig(
            timeouts=self.timeouts,
            max_connections=max(workers * (connections or AUTO_CONNECTIONS), 16),
            storage_options=dict(storage_options or {}),
            headers=headers,
            verify=verify,
        )
        self._sources: dict[type[Any], Source] = {}
        self._given = {scheme.lower(): source for scheme, source in (sources or {}).items()}
        self._lock = threading.Lock()

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
            _check_cancel(cancel)
            dest = _in_directory(dest, url, self._given)
            progress = user_callback(bars)  # what it raises reaches the caller unchanged
            processor = check_processor(process)
            if processor is None:
                job = self._prepare(
                    url,
                    dest,
                    size=size,
                    sha256=sha256,
                    checksum=checksum,
                    progress=progress,
                    connections=connections,
                    mirrors=mirrors,
                    refresh_url=refresh_url,
                    cancel=cancel,
                )
        except InvalidArgument as exc:
            exc.kept = exc.kept or "nothing was fetched and nothing on disk was changed"
            raise
        try:
            if processor is None:
                return job.run()
            from .extract._glue import download_one

            return download_one(
                self,
                url,
                dest,
                processor,
                size=size,
                sha256=sha256,
                checksum=checksum,
                progress=progress,
                connections=connections,
                mirrors=mirrors,
                refresh_url=refresh_url,
                cancel=cancel,
            )
        finally:
            if owned:
                _close(bars)

    def _prepare(
        self,
        url: str,
        dest: PathLike,
        *,
        size: int | None = None,
        sha256: str | None = None,
        checksum: str | Iterable[str] | None = None,
        progress: ProgressCallback | None = None,
        connections: int | None = None,
        cancel: threading.Event | None = None,
        refresh: bool = False,
        sync_dir: Callable[[Path], None] | None = None,
        direct: bool = True,
        mirrors: Sequence[str] = (),
        refresh_url: RefreshURL | None = None,
    ) -> Transfer:
        """Validate one download (before any traffic) and set it up; the batch layer adds
        ``cancel`` (a job's stop flag), ``refresh`` (fetch even if ``dest`` looks complete) and
        ``sync_dir`` (it fsyncs each directory once, at the end); ``direct=False`` keeps even a
        small file in ``D.partial`` (a streaming extractor reads it as it grows)."""
        scheme = _check_url(url, self._given)
        if isinstance(mirrors, str) or not isinstance(mirrors, Sequence):
            raise InvalidArgument(f"mirrors must be a list of URLs, got {mirrors!r}")
        schemes = [_check_url(mirror, self._given) for mirror in mirrors]
        _check_refresh(refresh_url)
        target = _check_dest(dest, look=sync_dir is None)  # a batch: one stat per file less
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
            raise InvalidArgument(f"size must be a non-negative integer, got {size!r}")
        expected = parse_expected(sha256, checksum)
        _check_connections(connections)
        source = self._source(scheme)
        automatic = getattr(source, "automatic_connections", AUTO_CONNECTIONS)
        wanted = connections or self.connections or automatic
        locator = Locator(
            [url, *mirrors],
            [source, *(self._source(other) for other in schemes)],
            refresh_url or self.refresh_url,
        )
        return Transfer(
            self,
            source,
            url,
            target,
            size,
            expected,
            progress or null_progress,
            wanted,
            cancel=cancel,
            refresh=refresh,
            sync_dir=sync_dir,
            direct=direct,
            locator=locator,
        )

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
        from .checksums import checksum_table
        from .job import Job

        owned = progress is True  # our TqdmProgress: the job closes it when it ends
        progress = check_progress(progress)
        table = checksum_table(checksums)
        check_bool(sync, "sync")
        inputs, folder = _as_inputs(items), _check_dest_dir(dest_dir)
        processor = check_processor(process)
        if executor is not None:  # see resumable.fanout
            from .fanout import FanoutJob

            if processor is not None:
                raise InvalidArgument(
                    "process= cannot be combined with executor= yet: extract after the batch, "
                    "or run the batch without an executor"
                )
            job: Job = FanoutJob(
                self, inputs, folder, executor, sync=sync, progress=progress, checksums=table
            )
        else:
            job = Job(
                self,
                inputs,
                folder,
                sync=sync,
                progress=progress,
                process=processor,
                checksums=table,
            )
        if owned:
            job._close_at_end(_close, progress)
        return job

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

    @guarded("plan")
    def plan(self, items: Iterable[object] | str, dest_dir: PathLike) -> Plan:
        """The dry run of a batch: files and bytes in total, already present, and to fetch."""
        from .plan import make_plan

        return make_plan(self, _as_inputs(items), _check_dest_dir(dest_dir))

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

    def _meter(self, amount: int, cancel: threading.Event | None = None) -> None:
        """Spend ``amount`` bytes from the rate limit and the hourly budget (waits if needed)."""
        for bucket in self._buckets:
            bucket.take(amount, cancel)

    def _source(self, scheme: str) -> Source:
        given = self._given.get(scheme.lower())
        if given is not None:
            return given
        cls = source_class(scheme)
        with self._lock:
            source = self._sources.get(cls)
            if source is None:
                source = self._sources[cls] = cls(self._config)
            return source

    def close(self) -> None:
        """Close the sources' connection pools."""
        with self._lock:
            sources, self._sources = list(self._sources.values()), {}
        for source in sources:
            source.close()

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


def _check_cancel(cancel: object) -> None:
    if cancel is not None and not isinstance(cancel, threading.Event):
        raise InvalidArgument(f"cancel must be a threading.Event or None, got {cancel!r}")


def _check_settings(retry: object, timeouts: object, sources: object, limit_bph: object) -> None:
    """The settings whose wrong type would only fail later, raw, inside a download."""
    if retry is not None and not isinstance(retry, RetryPolicy):
        raise InvalidArgument(f"retry must be a RetryPolicy or None, got {retry!r}")
    if timeouts is not None and not isinstance(timeouts, Timeouts):
        raise InvalidArgument(f"timeouts must be a Timeouts or None, got {timeouts!r}")
    if sources is not None and (
        not isinstance(sources, Mapping)
        or not all(isinstance(k, str) and k for k in sources)
        or not all(callable(getattr(v, "open", None)) for v in sources.values())
        or not all(callable(getattr(v, "stat", None)) for v in sources.values())
    ):
        raise InvalidArgument(
            f"sources must map URL schemes (str) to sources (with stat() and open()), got "
            f"{sources!r}"
        )
    if limit_bph is not None:
        check_number(limit_bph, "limit_bph")


def _check_refresh(refresh_url: object) -> None:
    if refresh_url is not None and not callable(refresh_url):
        raise InvalidArgument(f"refresh_url must be a callable or None, got {refresh_url!r}")


_UNSAFE = re.compile(r"[\s\x00-\x1f]")  # whitespace (str.isspace) and control characters


def _check_url(url: object, given: Mapping[str, Source]) -> str:
    """Validate a URL without touching the network; return its scheme."""
    if not isinstance(url, str) or not url.strip():
        raise InvalidArgument(f"url must be a non-empty string, got {url!r}")
    if _UNSAFE.search(url):
        raise InvalidArgument("url contains whitespace or control characters", url=url)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError as exc:
        raise InvalidArgument(f"malformed url: {exc}", url=url) from None
    if not parts.scheme:
        raise InvalidArgument("url has no scheme (expected e.g. https://...)", url=url)
    if parts.scheme.lower() not in given:
        source_class(parts.scheme)  # unknown scheme -> InvalidArgument
    if parts.scheme in ("http", "https") and not parts.hostname:
        raise InvalidArgument("url has no host", url=url)
    return parts.scheme


def _as_inputs(items: Iterable[object] | str) -> Iterable[object]:
    """A single URL, pair or Item is one input, not an iterable of characters or fields."""
    from .items import Item

    if isinstance(items, (str, Item)) or (
        isinstance(items, tuple) and len(items) == 2 and isinstance(items[0], str)
    ):
        return [items]
    return items


def _check_dest_dir(dest_dir: object) -> Path:
    path = Path(path_text(dest_dir, "dest_dir")).expanduser().absolute()
    check_loop_free(path, "dest_dir")
    if path.exists() and not path.is_dir():
        raise InvalidArgument(f"dest_dir {path} exists and is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LocalError(f"cannot create {path}: {exc.strerror}", path=str(path)) from exc
    return path


def check_progress(progress: ProgressCallback | bool | None) -> ProgressCallback | None:
    """``progress=``: ``None``/``False`` (none), ``True`` (a new ``TqdmProgress``) or a
    callable; anything else is an :class:`InvalidArgument`, before any traffic."""
    if progress is None or progress is False:
        return None
    if progress is True:
        from .progress.bars import TqdmProgress

        return TqdmProgress()
    if isinstance(progress, type):
        raise InvalidArgument(
            f"progress must be a callable instance, got the class {progress.__name__}; "
            f"write progress={progress.__name__}() or progress=True"
        )
    if not callable(progress):
        raise InvalidArgument(
            f"progress must be a callable, True (TqdmProgress()), False or None, got {progress!r}"
        )
    return progress


def _close(progress: object) -> None:
    close = getattr(progress, "close", None)
    if callable(close):
        close()


def _in_directory(dest: PathLike, url: str, given: Mapping[str, Source]) -> PathLike:
    """``dest`` itself, or ``dest/<object name>`` when ``dest`` is an existing directory or ends
    with a separator (as pooch, huggingface_hub and ``fs.get`` take a folder)."""
    if not isinstance(dest, (str, os.PathLike)) or not isinstance(url, str):
        return dest  # _prepare names the bad argument
    text = os.fspath(dest)
    if not isinstance(text, str) or not text:
        return dest
    separators = (os.sep, os.altsep) if os.altsep else (os.sep,)
    if not (text.endswith(separators) or os.path.isdir(os.path.expanduser(text))):
        return dest
    from .items import relative_name

    _check_url(url, given)  # a bad URL is named as such, not as a missing object name
    name = unquote(urlsplit(url).path.rpartition("/")[2])
    if not name:
        raise InvalidArgument(
            f"dest {text} is a directory and the URL has no object name to put in it "
            "(it ends with '/'); give the file's path",
            url=url,
        )
    return Path(os.path.expanduser(text)) / relative_name(name)


def check_processor(process: object) -> Processor | None:
    """``None``, or a processor (the extract package loads only when one is given)."""
    if process is None:
        return None
    from .extract._glue import check_processor as check

    return check(process)


def _check_connections(connections: object) -> None:
    if connections is not None and (
        not isinstance(connections, int) or isinstance(connections, bool) or connections < 1
    ):
        raise InvalidArgument(f"connections must be None or >= 1, got {connections!r}")


def _check_dest(dest: object, *, look: bool = True) -> Path:
    """``look=False`` skips the ``stat``: Transfer.run refuses a directory too, before it
    creates anything, with the one ``stat`` of ``dest`` it makes anyway."""
    if isinstance(dest, Path) and dest.is_absolute() and not look:
        path = dest  # a batch's, made by safe_destination: no need to parse it again
    else:
        path = Path(path_text(dest, "dest")).expanduser()
    if look:
        check_loop_free(path.parent, "dest")
        _check_existing_dest(path)
    if path.name.endswith((".partial", ".partial.json", ".partial.lock")):
        raise InvalidArgument(f"dest {path} uses a name reserved for resumable's own files")
    return path.absolute()


def _check_existing_dest(path: Path) -> None:
    """An existing ``dest`` must be a regular file (or a link to one): a download replaces
    it; a FIFO, socket or device is not ours to replace (and a FIFO blocks whoever opens it)."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return  # missing (or a dangling link, replaced like a missing file)
    if stat.S_ISDIR(mode):
        raise InvalidArgument(f"dest {path} is a directory; give the file's path")
    if not stat.S_ISREG(mode):
        raise InvalidArgument(
            f"dest {path} exists and is not a regular file (a FIFO, socket or device); "
            "give the path of a file"
        )
