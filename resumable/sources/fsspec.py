"""fsspec source: S3, GCS, Azure Blob, local files, memory and any other protocol fsspec knows.

Only this module and its private helpers (``_fsspec_backends``, ``_fsspec_readers``,
``_fsspec_errors``) import fsspec; s3fs, gcsfs, adlfs and their botocore, aiohttp and azure
dependencies are imported lazily, when a URL of theirs is first used. Four rules shape it:

- **Every read is pinned to one version.** :meth:`FsspecSource.open` asks the store what the
  object is now; if that is not what ``expect`` describes, the body starts at byte 0 with the
  current version (``Body.start == 0``, as HTTP answers 200 to a stale ``If-Range``) and the
  downloader restarts the file whole. Otherwise the bytes are requested under the version's
  identity, so an overwrite *during* the transfer cannot splice two versions: S3 sends
  ``VersionId`` and ``If-Match``; GCS asks for the ``generation`` and checks
  ``x-goog-generation``; Azure sends ``If-Match``; local files compare size and mtime of the
  open descriptor. A store that cannot pin (the GCS emulator, generic filesystems) is asked
  again at the end of the body, and a change fails the attempt so the retry restarts it.
- **Stream, never buffer whole objects.** S3, GCS and Azure bodies are one HTTP response
  each, copied on fsspec's event loop straight into the caller's block
  (:meth:`FsspecBody.readinto`); others read through ``fs.open(..., cache_type="none")``.
  Memory stays bounded by the block size (and aiohttp's small read buffer).
- **Provider checksums are whole-object checksums only**, normalised for the core to verify:
  ``md5``/``sha1``/``sha256`` as hex, ``crc32``/``crc32c`` as 8 hex digits (big-endian). An S3
  multipart ETag or a composite checksum (``...-N``) is never reported as one.
- **Translate at one boundary.** :class:`~._fsspec_errors.Boundary` maps every backend
  exception to :mod:`resumable.errors` and scrubs credentials from the messages.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import fsspec
import fsspec.config
from fsspec.spec import AbstractFileSystem

from .._secrets import install_log_filter
from ..errors import InvalidArgument, ProtocolMismatch
from ..urls import redact
from . import RemoteInfo, SourceConfig
from ._fsspec_backends import Backend, LocalBackend, MemoryBackend, Target
from ._fsspec_cloud import AzureBackend, GCSBackend, S3Backend
from ._fsspec_errors import Boundary
from ._fsspec_options import check_options
from ._fsspec_readers import Changed, Reader, read_into

__all__ = ["FsspecBody", "FsspecSource"]

log = logging.getLogger("resumable")


# The loggers of the packages under fsspec, given the redacting filter (resumable._secrets).
_BACKEND_LOGGERS = (
    "fsspec",
    "s3fs",
    "botocore",
    "aiobotocore",
    "boto3",
    "gcsfs",
    "google",
    "adlfs",
    "azure",
    "aiohttp",
    "urllib3",
)


class FsspecSource:
    """Serves every URL whose scheme fsspec knows (``s3://``, ``gs://``, ``az://``, ``file://``...).

    One filesystem per protocol (and per URL-borne option, e.g. an HDFS host), created with
    the caller's options for it (``SourceConfig.options``: the flat ones, or those given for
    the protocol; an option the filesystem does not accept is an ``InvalidArgument`` before
    any request) over fsspec's own configuration
    (``fsspec.config.conf``, ``FSSPEC_*`` variables), never shared with other code
    (``skip_instance_cache``), without listings cache (``stat`` must see overwrites). The
    standard variables (``AWS_ENDPOINT_URL``, ``STORAGE_EMULATOR_HOST``,
    ``AZURE_STORAGE_CONNECTION_STRING``...) work as they do in s3fs, gcsfs and adlfs.

    ``automatic_connections = 1``: with ``connections=None`` an object store is read as one
    stream. Object stores do not throttle single connections the way CDNs do, and ranged reads
    can cost the server the whole object each (moto: a 512 MiB object took 1.7 s as one stream,
    30 s over 8 connections). Pass ``connections=N`` to segment anyway.
    """

    automatic_connections = 1

    @staticmethod
    def check_storage_options(protocol: str, options: Mapping[str, Any]) -> None:
        """``InvalidArgument`` for an option ``protocol``'s filesystem does not accept.

        Called by :class:`SourceConfig` for per-protocol options, so a typo fails when the
        downloader is made. A protocol whose package is missing is checked at its first use
        (where the missing package is the error).
        """
        try:
            cls = fsspec.get_filesystem_class(protocol)
        except (ImportError, ValueError):
            return
        check_options(cls, protocol, options)

    def __init__(self, config: SourceConfig | None = None) -> None:
        self._config = config or SourceConfig()
        self._filesystems: dict[tuple[str, str], AbstractFileSystem] = {}
        self._lock = threading.Lock()
        self._boundary = Boundary(self._config.storage_options)

    # -- the Source protocol ------------------------------------------------------------------

    def stat(self, url: str) -> RemoteInfo:
        """What the store says about the object now (size, validators, provider checksums)."""
        target = self._target(url)
        with self._boundary.translated(url):
            return target.backend.stat(target)

    def open(
        self, url: str, start: int = 0, end: int | None = None, expect: RemoteInfo | None = None
    ) -> FsspecBody:
        """Bytes ``[start, end)`` of the version ``expect`` describes, or the current object whole.

        When the object is no longer ``expect``'s version the body holds the current version
        from byte 0 (``body.start == 0``, ``body.info`` describes it): the caller restarts.
        """
        target = self._target(url)
        for attempt in (1, 2):
            with self._boundary.translated(url):
                current = target.backend.stat(target)
            begin, stop = start, end
            if expect is not None and expect.differs_from(current):
                log.info("%s changed since the partial was written; sending it whole", redact(url))
                begin, stop = 0, None
            try:
                with self._boundary.translated(url, pinned=True):
                    reader = target.backend.reader(target, current, begin, stop)
            except Changed:
                if attempt == 2:
                    raise ProtocolMismatch(
                        "the object kept changing while it was being opened", url=url
                    ) from None
                continue  # it changed between the two requests: ask again what it is now
            body = FsspecBody(target, reader, begin, current, self._boundary)
            body.length = None if stop is None else stop - begin  # bounds the body (bounds.py)
            return body
        raise AssertionError("unreachable")  # pragma: no cover

    def list(self, prefix: str) -> Iterator[tuple[str, RemoteInfo]]:
        """Every object under ``prefix``, recursively, one directory listing at a time.

        URLs are built on ``prefix`` as given (scheme and account spelling kept).
        """
        target = self._target(prefix)
        base = target.path.rstrip("/")
        head = prefix.rstrip("/")
        with self._boundary.translated(prefix):
            # on_error="raise": a listing that fails must not look empty (sync would delete).
            walk = iter(target.fs.walk(target.path, detail=True, on_error="raise"))
        while True:
            with self._boundary.translated(prefix):
                step = next(walk, None)
            if step is None:
                return
            _, _, files = step
            for name in sorted(files):
                details = files[name]
                full = str(details.get("name") or name)
                if details.get("type", "file") != "file" or not full.startswith(base):
                    continue
                url = head + full[len(base) :]
                with self._boundary.translated(prefix):
                    info = target.backend.describe(url, details)
                yield url, info

    def close(self) -> None:
        """Close the filesystems' sessions and connection pools now.

        s3fs, gcsfs and adlfs close them in ``weakref.finalize`` callbacks, which would run at
        some later garbage collection (in whatever thread allocates then); running those
        callbacks here releases the connections when the caller asks.
        """
        with self._lock:
            filesystems, self._filesystems = list(self._filesystems.values()), {}
        for fs in filesystems:
            try:
                _finalize_now(fs)
            except Exception as exc:  # closing must not fail the caller's cleanup
                log.debug("closing a %s filesystem: %s", type(fs).__name__, type(exc).__name__)

    def __repr__(self) -> str:
        # Never the storage options: they hold credentials.
        with self._lock:
            protocols = sorted({scheme for scheme, _ in self._filesystems})
        return f"FsspecSource(protocols={protocols})"

    # -- filesystems --------------------------------------------------------------------------

    def _target(self, url: str) -> Target:
        scheme, sep, _ = url.partition("://")
        if not sep or not scheme:
            raise InvalidArgument("expected a URL such as s3://bucket/key", url=url)
        fs, backend = self._filesystem(scheme.lower(), url)
        with self._boundary.translated(url):
            path = fs._strip_protocol(url)
        return Target(url, fs, path, backend, self._config)

    def _filesystem(self, scheme: str, url: str) -> tuple[AbstractFileSystem, Backend]:
        """The cached filesystem for ``url`` (created on first use) and its backend."""
        try:
            cls = fsspec.get_filesystem_class(scheme)
        except ImportError as exc:
            raise self._missing_package(scheme, exc, url) from None
        except ValueError:
            raise InvalidArgument(f"fsspec knows no protocol {scheme!r}", url=url) from None
        backend = backend_for(cls)
        try:
            url_options = cls._get_kwargs_from_urls(url)
            key = (scheme, repr(sorted(url_options.items())))
            with self._lock:
                fs = self._filesystems.get(key)
            if fs is None:
                # botocore logs the signed request (session token included) at DEBUG: the
                # backend's loggers exist now that its package is imported.
                install_log_filter(*_BACKEND_LOGGERS)
                given = self._config.options.for_protocols(_protocols(cls, scheme))
                check_options(cls, scheme, given, hint=self._hint)  # before any traffic
                options = self._options(cls, scheme, backend, url_options, given)
                fs = cls(**options)
                backend.prepare(fs, options)
                with self._lock:
                    fs = self._filesystems.setdefault(key, fs)
        except InvalidArgument:
            raise  # already ours (an option the filesystem does not accept)
        except ImportError as exc:  # e.g. hdfs:// imports pyarrow only when constructed
            raise self._missing_package(scheme, exc, url) from None
        except (TypeError, ValueError) as exc:
            reason = self._boundary.scrub(str(exc))
            raise InvalidArgument(
                f"cannot use {scheme}:// with these storage_options: {reason}", url=url
            ) from None
        except Exception as exc:  # ftp://, sftp://... connect in the constructor: refused...
            error, cause = self._boundary.translate(exc, url)
            raise error from cause
        return fs, backend

    def _missing_package(self, scheme: str, exc: ImportError, url: str) -> InvalidArgument:
        return InvalidArgument(
            f"{scheme}:// URLs need an extra package ({self._boundary.scrub(str(exc))}); for "
            "S3, GCS and Azure: pip install 'resumable[s3]' (or [gcs], [azure])",
            url=url,
        )

    @property
    def _hint(self) -> str:
        if not self._config.options.flat:
            return ""
        return (
            "; flat storage_options apply to the scheme of every URL read through fsspec: to "
            'give options to one protocol only, nest them as {"<protocol>": {...}}'
        )

    def _options(
        self,
        cls: type[AbstractFileSystem],
        scheme: str,
        backend: Backend,
        url: Mapping[str, Any],
        given: Mapping[str, Any],
    ) -> dict[str, Any]:
        """Our defaults, fsspec's configuration, options the URL implies, the caller's options.

        Later wins; ``config_kwargs`` (botocore settings) are merged key by key, so a caller who
        sets ``{"config_kwargs": {"retries": ...}}`` keeps our timeouts.
        """
        configured: dict[str, Any] = {}
        for name in reversed(_protocols(cls, scheme)):  # the URL's own scheme is most specific
            configured.update(fsspec.config.conf.get(name, {}))
        defaults = backend.defaults(self._config)
        options = {**defaults, **configured, **url, **given}
        for name, value in defaults.items():
            if isinstance(value, Mapping):
                options[name] = {**value, **configured.get(name, {}), **given.get(name, {})}
        options["skip_instance_cache"] = True  # never share: the options may hold credentials
        return options


def _finalize_now(obj: object) -> None:
    """Run the ``weakref.finalize`` callbacks registered for ``obj`` (each runs only once)."""
    registry = getattr(weakref.finalize, "_registry", {})
    for finalizer in list(registry):
        info = finalizer.peek()
        if info is not None and info[0] is obj:
            finalizer()


def _protocols(cls: type[AbstractFileSystem], scheme: str) -> list[str]:
    declared = cls.protocol if isinstance(cls.protocol, (tuple, list)) else (cls.protocol,)
    return list(dict.fromkeys([scheme, *(str(p) for p in declared)]))


class FsspecBody:
    """The answer to :meth:`FsspecSource.open`: a pinned stream read in blocks.

    ``read`` returns as soon as a block (up to ``amount``) has arrived; a connection that
    breaks after some bytes of a block hands those bytes over first and raises on the next
    call, so nothing received is thrown away. A body whose reader could not be pinned asks
    the store again at the end: a changed object fails the attempt (the next one restarts).
    """

    def __init__(
        self,
        target: Target,
        reader: Reader,
        start: int,
        info: RemoteInfo,
        boundary: Boundary,
    ) -> None:
        self.start = start
        self.info = info
        self._target = target
        self._reader = reader
        self._boundary = boundary
        self._done = False
        self.length: int | None = None  # the bytes asked for, when a range was

    def read(self, amount: int) -> bytes:
        if self._done:
            return b""
        data: bytes = self._checked(lambda: self._reader.read(amount))
        return data

    def readinto(self, buffer: memoryview) -> int:
        """``read`` into ``buffer``: straight from the network when the reader can (no copy)."""
        if self._done or not len(buffer):
            return 0
        got: int = self._checked(lambda: read_into(self._reader, buffer))
        return got

    def _checked(self, receive: Callable[[], Any]) -> Any:
        """``receive()`` at the one boundary; at the end, an unpinned object is asked again."""
        url = self._target.url
        try:
            with self._boundary.translated(url, pinned=True):
                data = receive()
                if not data and not self._reader.pinned:
                    now = self._target.backend.stat(self._target)
                    if self.info.differs_from(now):
                        raise Changed
        except Changed:
            self._done = True
            raise ProtocolMismatch(
                "the object changed while it was being read; the next attempt starts it over",
                url=url,
            ) from None
        if not data:
            self._done = True
        return data

    def close(self) -> None:
        self._done = True
        try:
            self._reader.close()
        except Exception as exc:  # closing a broken stream must not hide the real error
            log.debug("closing %s: %s", redact(self._target.url), type(exc).__name__)

    def __enter__(self) -> FsspecBody:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# Which backend serves which filesystem class (the generic one serves the rest).
_BACKENDS: tuple[tuple[str, Backend], ...] = (
    ("s3fs.core.S3FileSystem", S3Backend()),
    ("gcsfs.core.GCSFileSystem", GCSBackend()),
    ("adlfs.spec.AzureBlobFileSystem", AzureBackend()),
    ("fsspec.implementations.local.LocalFileSystem", LocalBackend()),
    ("fsspec.implementations.memory.MemoryFileSystem", MemoryBackend()),
)
_GENERIC = Backend()


def backend_for(cls: type[AbstractFileSystem]) -> Backend:
    """The backend that knows ``cls`` (or a base class of it); the generic one otherwise.

    By class name, so that looking up a backend never imports s3fs, gcsfs or adlfs.
    """
    names = {f"{c.__module__}.{c.__qualname__}" for c in cls.__mro__}
    return next((backend for name, backend in _BACKENDS if name in names), _GENERIC)
