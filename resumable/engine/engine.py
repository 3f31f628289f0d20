"""The engine: :class:`Settings` and the live parts they need (sources, meters, host slots).

An :class:`Engine` is what a downloader holds underneath its public methods, and what a fan-out
worker builds from the :class:`Settings` it was sent. It makes checked
:class:`DownloadRequest` values and runs them: :meth:`Engine.transfer` for one file start to
finish, :meth:`Engine.prepare` for a caller that also needs the transfer's remote information
(a batch records validators; the extraction glue probes for a change).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .._secrets import install_log_filter
from ..limits import HostSlots, TokenBucket
from ..locator import Locator
from ..progress import ProgressCallback, null_progress
from ..sources import RemoteInfo, Source, source_class
from ..urls import redact
from .recover import Recovery, listing
from .request import DownloadRequest, make_request
from .result import DownloadResult
from .settings import AUTO_CONNECTIONS, Settings

if TYPE_CHECKING:
    from .transfer import Transfer

__all__ = ["Engine"]

T = TypeVar("T")


class Engine:
    """Runs downloads under one :class:`Settings`; safe to share between threads.

    Args:
        settings: the configuration, by value.
        sources: source instances for some URL schemes instead of the registered classes.
    """

    def __init__(self, settings: Settings, sources: Mapping[str, Source] | None = None) -> None:
        install_log_filter("resumable", "resumable.progress")  # see resumable._secrets
        self.settings = settings
        self.given: Mapping[str, Source] = {
            scheme.lower(): source for scheme, source in (sources or {}).items()
        }
        self.buckets = [
            bucket
            for bucket in (
                TokenBucket(settings.rate_limit) if settings.rate_limit is not None else None,
                TokenBucket(settings.limit_bph / 3600, capacity=settings.limit_bph)
                if settings.limit_bph
                else None,
            )
            if bucket is not None
        ]
        self.slots = HostSlots(settings.max_per_host, settings.max_connections)
        self.source_config = settings.source_config()
        self._sources: dict[type[Any], Source] = {}
        self._lock = threading.Lock()

    def request(self, url: object, dest: object, **options: Any) -> DownloadRequest:
        """A checked :class:`DownloadRequest` (see :func:`.request.make_request`)."""
        return make_request(url, dest, self.given, **options)

    def prepare(
        self,
        request: DownloadRequest,
        progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
        *,
        sync_dir: Callable[[Path], None] | None = None,
    ) -> Transfer:
        """The one-use transfer of ``request``: ``run()`` it; ``info`` is then the version it
        fetched, and ``probe()`` asks the source again. ``sync_dir`` replaces the directory
        fsync after a rename (a batch fsyncs each directory once, at the end)."""
        # The single-file algorithm (transfer, its phases, the partial writer) is imported at
        # the first download, not by ``import resumable`` (issue 18 item 7).
        from .transfer import Transfer

        source = self.source(request.scheme)
        automatic = getattr(source, "automatic_connections", AUTO_CONNECTIONS)
        wanted = request.connections or self.settings.connections or automatic
        # Chosen for the caller: start as one stream, split only where that is slow (stream.py).
        split = not (request.connections or self.settings.connections)
        if request.streamed:  # a streaming extractor reads D.partial in order: one stream
            wanted = 1
        locator = Locator(
            [request.url, *(url for url, _ in request.mirrors)],
            [source, *(self.source(scheme) for _, scheme in request.mirrors)],
            request.refresh_url or self.settings.refresh_url,
        )
        return Transfer(
            self,
            request,
            source,
            progress or null_progress,
            wanted,
            split=split,
            cancel=cancel,
            sync_dir=sync_dir,
            locator=locator,
        )

    def transfer(
        self,
        request: DownloadRequest,
        progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> DownloadResult:
        """Download ``request``: a complete, verified ``dest`` or a typed error."""
        return self.prepare(request, progress, cancel).run()

    def stat(self, request: DownloadRequest) -> RemoteInfo:
        """The object's metadata, retried, refreshed and failed over like a download."""
        return self.prepare(request).stat()

    def call(self, fn: Callable[[], T], *, url: str, cancel: threading.Event | None = None) -> T:
        """``fn()`` (a one-shot request such as a HEAD or a 1-byte read), retried on transient
        errors under the settings' retry policy; ``cancel`` cuts a wait short."""
        return Recovery(self.settings.retry, url=url, wake=cancel).call(fn)

    def list(
        self, prefix: str, cancel: threading.Event | None = None
    ) -> Iterator[tuple[str, RemoteInfo]]:
        """The objects under ``prefix`` (``(url, info)``), listing again after a transient
        error and skipping what was already yielded (see :func:`.recover.listing`)."""
        source = self.source(prefix.split(":", 1)[0])
        recovery = Recovery(
            self.settings.retry, url=prefix, wake=cancel, what=f"listing {redact(prefix)}"
        )
        return listing(recovery, lambda: source.list(prefix), key=lambda entry: entry[0])

    def meter(self, amount: int, cancel: threading.Event | None = None) -> None:
        """Spend ``amount`` bytes from the rate limit and the hourly budget (waits if needed)."""
        for bucket in self.buckets:
            bucket.take(amount, cancel)

    def source(self, scheme: str) -> Source:
        """The source for ``scheme``: a given instance, or one per registered class, shared."""
        given = self.given.get(scheme.lower())
        if given is not None:
            return given
        cls = source_class(scheme)
        with self._lock:
            source = self._sources.get(cls)
            if source is None:
                source = self._sources[cls] = cls(self.source_config)
            return source

    def close(self) -> None:
        """Close the sources' connection pools (a later call opens new ones)."""
        with self._lock:
            sources, self._sources = list(self._sources.values()), {}
        for source in sources:
            source.close()
