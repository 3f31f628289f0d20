"""The Source seam: how the downloader talks to HTTP, S3, GCS, Azure or any fsspec filesystem.

A source answers three questions and nothing else:

- ``stat(url) -> RemoteInfo``: size, validators, provider checksums, range support.
- ``open(url, start, end=None, expect=None) -> Body``: a byte stream from ``start``; the body
  reports where the server really started (``Body.start``) and what the answer says about the
  object (``Body.info``), so the caller can refuse to splice two versions.
- ``list(prefix)``: the objects under a prefix (for batches and sync).

Sources translate their library's exceptions into :mod:`resumable.errors` at their own boundary;
the core never sees a ``requests`` or ``botocore`` exception.

Sources are looked up by URL scheme in a registry of import strings (``"pkg.mod:Class"``), so
``import resumable`` imports neither requests nor fsspec; a source module is imported the first
time its scheme is used. Third parties register with :func:`register` or an entry point in the
``resumable.sources`` group.
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from .._secrets import check_headers, remember
from ..errors import InvalidArgument, ProtocolMismatch
from ..retry import Timeouts
from ..urls import redact
from ._storage_options import StorageOptions

__all__ = [
    "Body",
    "RemoteInfo",
    "Source",
    "SourceConfig",
    "read_into",
    "register",
    "registered_schemes",
    "registrations",
    "source_class",
]


@dataclass(frozen=True)
class RemoteInfo:
    """What a source says about one object.

    Attributes:
        url: the object's URL as given (may hold credentials: never print it, see ``redact``).
        size: size in bytes, ``None`` when unknown (chunked HTTP without a range answer).
        etag: the ETag as sent, quotes and ``W/`` prefix included.
        last_modified: the Last-Modified value as sent (an HTTP date for HTTP).
        version: a version id or generation, for stores that keep versions.
        checksums: provider checksums, ``{kind: value}`` (e.g. ``{"md5": hex}``).
        accept_ranges: whether the source serves byte ranges.
    """

    url: str
    size: int | None = None
    etag: str | None = None
    last_modified: str | None = None
    version: str | None = None
    checksums: Mapping[str, str] = field(default_factory=dict)
    accept_ranges: bool = False

    def __repr__(self) -> str:
        # The URL may be signed: a repr lands in logs and tracebacks, so it shows it redacted.
        return (
            f"RemoteInfo(url={redact(self.url)!r}, size={self.size!r}, etag={self.etag!r}, "
            f"last_modified={self.last_modified!r}, version={self.version!r}, "
            f"checksums={dict(self.checksums)!r}, accept_ranges={self.accept_ranges!r})"
        )

    @property
    def strong_etag(self) -> str | None:
        """The ETag if it is strong; a weak ETag (``W/"..."``) never identifies exact bytes."""
        if self.etag and not self.etag.startswith(("W/", "w/")):
            return self.etag
        return None

    @property
    def has_validator(self) -> bool:
        """Whether this object can be told apart from a later version of itself."""
        return bool(self.version or self.strong_etag or self.last_modified)

    def differs_from(self, other: RemoteInfo) -> bool:
        """True when ``other`` is provably another version of the object.

        Known sizes that differ prove it; otherwise the strongest validator both sides have
        decides (version, then strong ETag, then Last-Modified). With nothing to compare the
        answer is ``False``: whether to trust such an answer is the caller's decision (it
        resumes only from objects that have a validator, or under an expected digest).
        """
        if self.size is not None and other.size is not None and self.size != other.size:
            return True
        for a, b in (
            (self.version, other.version),
            (self.strong_etag, other.strong_etag),
            (self.last_modified, other.last_modified),
        ):
            if a and b:
                return a != b
        return False

    def validators(self) -> dict[str, Any]:
        """The identity of this version and its provider checksums, for the sidecar.

        No URL: URLs may hold credentials.
        """
        return {
            "size": self.size,
            "etag": self.etag,
            "last_modified": self.last_modified,
            "version": self.version,
            "checksums": dict(self.checksums),
        }


@runtime_checkable
class Body(Protocol):
    """A readable answer to ``Source.open``.

    ``start`` is the offset of the first byte the body carries, as the server reported it (a
    server that ignored Range says 0). ``info`` is what the answer says about the object.
    ``read`` returns ``b""`` at the end and raises :class:`~resumable.errors.TransientError`
    subclasses when the transfer breaks.

    Optional: ``length: int | None``, the bytes the answer announced it carries (an HTTP
    Content-Range span or Content-Length). The downloader never writes a byte past it, nor
    past any other length it knows (see :mod:`resumable.bounds`). Optional too:
    ``readinto(buffer) -> int``, ``read`` into a caller's buffer (``0`` at the end), which the
    large-file loops prefer (see :func:`read_into`).
    """

    start: int
    info: RemoteInfo

    def read(self, amount: int) -> bytes: ...

    def close(self) -> None: ...


@runtime_checkable
class Source(Protocol):
    """One transport (HTTP, an fsspec filesystem...). See the module docstring."""

    def stat(self, url: str) -> RemoteInfo: ...

    def open(
        self, url: str, start: int = 0, end: int | None = None, expect: RemoteInfo | None = None
    ) -> Body: ...

    def list(self, prefix: str) -> Iterator[tuple[str, RemoteInfo]]: ...

    def close(self) -> None: ...

    # Optional: ``automatic_connections: int``, the connections a large file gets when the
    # caller says ``connections=None`` (default 8).


@dataclass(frozen=True)
class SourceConfig:
    """What every source is constructed with.

    Attributes:
        timeouts: connect and stall timeouts.
        max_connections: connections a source may keep open to one host (pool size).
        storage_options: fsspec options as given: flat (``{"endpoint_url": ..., "key": ...}``,
            for the scheme of every fsspec URL) or per protocol (``{"s3": {"anon": True}}``).
        options: ``storage_options`` told apart into its form (:class:`StorageOptions`).
        headers: extra HTTP headers (e.g. an ``Authorization`` header) for HTTP(S) sources.
        verify: TLS verification for HTTP(S): ``True`` (default), a CA bundle path, or ``False``.

    The repr names headers and storage options but never shows their values (tokens, keys).
    Headers are checked when the configuration is made (:func:`resumable._secrets.check_headers`:
    an ``InvalidArgument`` before any traffic), and every value of them is registered to be
    hidden from every message and log record (the storage options' credentials are, by the
    fsspec source). The storage options are checked then too: their form (a mix of the two is
    an ``InvalidArgument``), and per-protocol options by the source of each protocol when it has
    a ``check_storage_options(protocol, options)`` (the fsspec source refuses an option the
    filesystem does not accept). Flat options are checked by the source when a scheme is first
    used, before its first request: only then is it known which filesystem they are for.
    """

    timeouts: Timeouts = field(default_factory=Timeouts)
    max_connections: int = 16
    storage_options: Mapping[str, Any] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    verify: bool | str | os.PathLike[str] = True
    options: StorageOptions = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "headers", check_headers(self.headers))
        remember(self.headers)
        options = StorageOptions.parse(self.storage_options, _is_protocol)
        object.__setattr__(self, "options", options)
        object.__setattr__(self, "storage_options", options.by_value())  # a copy: by value
        for protocol, given in options.per_protocol.items():
            check = getattr(source_class(protocol), "check_storage_options", None)
            if callable(check):
                check(protocol, given)

    def __repr__(self) -> str:
        options = self.options.names()
        return (
            f"SourceConfig(timeouts={self.timeouts!r}, max_connections={self.max_connections!r}, "
            f"storage_options=<keys {options}>, headers=<names {sorted(self.headers)}>, "
            f"verify={self.verify!r})"
        )


_HTTP = "resumable.sources.http:HTTPSource"
_FSSPEC = "resumable.sources.fsspec:FsspecSource"
_FSSPEC_SCHEMES = (
    "s3",
    "s3a",
    "gs",
    "gcs",
    "az",
    "abfs",
    "abfss",
    "file",
    "local",
    "memory",
    "hdfs",
)
_registry: dict[str, str | type[Any]] = {
    "http": _HTTP,
    "https": _HTTP,
    **dict.fromkeys(_FSSPEC_SCHEMES, _FSSPEC),
}
_lock = threading.Lock()
_entry_points_loaded = False


def register(scheme: str, target: str | type[Any]) -> None:
    """Serve URLs of ``scheme`` with ``target``: a class, or ``"package.module:Class"``.

    The class is constructed with a :class:`SourceConfig` and must implement :class:`Source`.
    A string is imported only when the scheme is first used.
    """
    if (
        not isinstance(scheme, str)
        or not scheme
        or not scheme.replace("+", "").replace("-", "").replace(".", "").isalnum()
    ):
        raise InvalidArgument(f"invalid URL scheme {scheme!r}")
    if not isinstance(target, type) and not (isinstance(target, str) and ":" in target):
        raise InvalidArgument(
            f"a source is a class or 'package.module:Class', got {target!r} for {scheme!r}"
        )
    with _lock:
        _registry[scheme.lower()] = target


def registered_schemes() -> list[str]:
    """The schemes that have a source, sorted."""
    _load_entry_points()
    return sorted(_registry)


def registrations() -> tuple[tuple[str, str | type[Any]], ...]:
    """The schemes registered with :func:`register` in this process beyond the built-in ones,
    ``(scheme, target)``: what a fan-out worker registers to serve them the same way."""
    with _lock:
        return tuple(
            (scheme, target)
            for scheme, target in _registry.items()
            if not (isinstance(target, str) and target.startswith("resumable.sources."))
        )


def source_class(scheme: str) -> type[Any]:
    """The source class registered for ``scheme``; :class:`InvalidArgument` if there is none."""
    _load_entry_points()
    with _lock:
        target = _registry.get(scheme.lower())
    if target is None and _fsspec_knows(scheme.lower()):
        target = _FSSPEC  # any other protocol fsspec knows (sftp, hf, gdrive, ...)
    if target is None:
        known = ", ".join(registered_schemes())
        raise InvalidArgument(f"no source for URL scheme {scheme!r} (known: {known})")
    if isinstance(target, str):
        module, _, name = target.partition(":")
        try:
            target = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError, ValueError) as exc:
            raise InvalidArgument(
                f"the source registered for {scheme!r} ({target!r}) cannot be loaded: {exc}"
            ) from exc
        with _lock:
            _registry[scheme.lower()] = target
    return target


def _is_protocol(name: str) -> bool:
    """Whether ``name`` is a URL scheme some source serves (a per-protocol options key)."""
    _load_entry_points()
    with _lock:
        registered = name.lower() in _registry
    return registered or _fsspec_knows(name.lower())


def _fsspec_knows(scheme: str) -> bool:
    """Whether fsspec has an implementation for ``scheme`` (imports fsspec, not its backends)."""
    try:
        from fsspec.registry import known_implementations, registry  # noqa: TID251 - names only
    except ImportError:  # pragma: no cover - fsspec is a dependency
        return False
    return scheme in registry or scheme in known_implementations


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    from importlib.metadata import entry_points

    with _lock:
        if _entry_points_loaded:  # another thread scanned them while this one waited
            return
        for ep in entry_points(group="resumable.sources"):
            _registry.setdefault(ep.name.lower(), ep.value)
        _entry_points_loaded = True


def read_into(body: Body, buffer: memoryview) -> int:
    """Read up to ``len(buffer)`` bytes of ``body`` into ``buffer``; ``0`` at the end.

    Through the body's own ``readinto`` when it has one (no new ``bytes`` per read), else a
    ``read`` copied in: every source works, the ones that can avoid the copy do.
    """
    readinto = getattr(body, "readinto", None)
    if readinto is not None:
        got: int = readinto(buffer)
        return got
    data = body.read(len(buffer))
    if len(data) > len(buffer):
        raise ProtocolMismatch(f"a read of {len(buffer)} bytes returned {len(data)}")
    buffer[: len(data)] = data
    return len(data)
