"""How each family of fsspec filesystems describes objects and serves pinned reads.

A backend answers two questions for :class:`~resumable.sources.fsspec.FsspecSource`: what is
this object now (``stat``/``describe`` -> :class:`~resumable.sources.RemoteInfo`, with provider
checksums normalised to hex), and give me bytes ``[start, end)`` of *that* version (``reader``).

- :class:`Backend`: any filesystem; identity from ``info()``, reads through ``fs.open`` (no
  read-ahead cache); unpinned, so the body checks the identity again at its end.
- :class:`LocalBackend`: size + mtime, checked on the open descriptor at every read.
- :class:`MemoryBackend`: fsspec's memory filesystem shares one file object between openers,
  so it is read by stateless slices.

The object stores (S3, GCS, Azure) are in :mod:`._fsspec_cloud`.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import stat as stat_module
from collections.abc import Mapping
from typing import Any

from fsspec.spec import AbstractFileSystem

from ..errors import ProtocolMismatch, SourceNotFound
from . import RemoteInfo, SourceConfig
from ._fsspec_readers import (
    Changed,
    EmptyReader,
    FileReader,
    Reader,
    SliceReader,
)

__all__ = [
    "Backend",
    "LocalBackend",
    "MemoryBackend",
    "Target",
    "byte_count",
    "check_answer",
    "range_header",
    "text",
]


class Target:
    """One URL resolved: its filesystem, the path within it, and how to talk to its backend."""

    __slots__ = ("backend", "config", "fs", "path", "url")

    def __init__(
        self, url: str, fs: AbstractFileSystem, path: str, backend: Backend, config: SourceConfig
    ) -> None:
        self.url = url
        self.fs = fs
        self.path = path
        self.backend = backend
        self.config = config


# -- backends --------------------------------------------------------------------------------------


class Backend:
    """Any fsspec filesystem: identity from ``info()``, reads through ``fs.open``.

    Nothing pins a generic read, so the body asks again at its end (``pinned = False``).
    """

    def defaults(self, config: SourceConfig) -> dict[str, Any]:
        """Constructor options under the caller's (``storage_options`` override them)."""
        return {}

    def prepare(self, fs: AbstractFileSystem, options: Mapping[str, Any]) -> None:
        """Adjust a new filesystem that the constructor cannot (``options``: what it got)."""

    def stat(self, target: Target) -> RemoteInfo:
        fs = target.fs
        fs.invalidate_cache(target.path)
        details = fs.info(target.path)
        if details.get("type", "file") != "file":
            raise SourceNotFound(
                "this is a directory (a prefix), not an object; to download everything under "
                "it, end the URL with '/'",
                url=target.url,
            )
        return self.describe(target.url, details)

    def describe(self, url: str, details: Mapping[str, Any]) -> RemoteInfo:
        def first(*keys: str) -> Any:
            return next((details[k] for k in keys if details.get(k) not in (None, "")), None)

        size = first("size", "Size", "ContentLength")
        modified = first("LastModified", "last_modified", "mtime", "updated", "modified")
        return RemoteInfo(
            url=url,
            size=int(size) if size is not None else None,
            etag=text(first("ETag", "etag", "e_tag")),
            last_modified=text(modified if modified is not None else first("created")),
            version=text(first("VersionId", "version_id", "generation")),
            accept_ranges=True,
        )

    def reader(self, target: Target, info: RemoteInfo, start: int, end: int | None) -> Reader:
        length = byte_count(info, start, end)
        if length == 0:
            return EmptyReader()
        fs = target.fs
        try:
            file = fs.open(target.path, "rb", cache_type="none")
        except TypeError:  # a filesystem whose files take no cache options
            file = fs.open(target.path, "rb")
        try:
            if start:
                file.seek(start)
        except BaseException:
            file.close()
            raise
        return FileReader(file, length)


class LocalBackend(Backend):
    """Local files: the identity is size + mtime, checked on the open descriptor at every read."""

    def stat(self, target: Target) -> RemoteInfo:
        st = os.stat(target.path)
        if stat_module.S_ISDIR(st.st_mode):
            return super().stat(target)  # the directory error, worded once
        return self._describe_stat(target.url, st)

    @staticmethod
    def _describe_stat(url: str, st: os.stat_result) -> RemoteInfo:
        mtime = dt.datetime.fromtimestamp(st.st_mtime_ns / 1e9, tz=dt.timezone.utc)
        return RemoteInfo(
            url=url,
            size=st.st_size,
            etag=f'"{st.st_mtime_ns:x}-{st.st_size:x}"',  # nginx-style: mtime and size
            last_modified=mtime.isoformat(),
            accept_ranges=True,
        )

    def describe(self, url: str, details: Mapping[str, Any]) -> RemoteInfo:
        path = str(details.get("name", ""))
        try:
            return self._describe_stat(url, os.stat(path))
        except OSError:
            return super().describe(url, details)

    def reader(self, target: Target, info: RemoteInfo, start: int, end: int | None) -> Reader:
        file = open(target.path, "rb")  # noqa: SIM115 - closed by the reader
        try:
            fd = file.fileno()

            def check() -> None:
                if self._describe_stat(target.url, os.fstat(fd)).differs_from(info):
                    raise Changed

            check()
            file.seek(start)
        except BaseException:
            file.close()
            raise
        return FileReader(file, byte_count(info, start, end), check)


class MemoryBackend(Backend):
    """fsspec's memory filesystem gives every ``open`` the same file object: read by slices."""

    def reader(self, target: Target, info: RemoteInfo, start: int, end: int | None) -> Reader:
        fs, path = target.fs, target.path
        return SliceReader(
            lambda a, b: bytes(fs.cat_file(path, a, b)), start, byte_count(info, start, end)
        )


# -- helpers ---------------------------------------------------------------------------------------

_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.IGNORECASE)


def text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return str(value)


def byte_count(info: RemoteInfo, start: int, end: int | None) -> int | None:
    """Bytes to read from ``start``: up to ``end`` and the object's size (None: unknown)."""
    stop = end
    if info.size is not None:
        stop = info.size if stop is None else min(stop, info.size)
    return None if stop is None else max(stop - start, 0)


def range_header(start: int, length: int | None) -> str:
    return f"bytes={start}-{'' if length is None else start + length - 1}"


def check_answer(
    info: RemoteInfo,
    start: int,
    *,
    content_range: str | None = None,
    etag: str | None = None,
    version: str | None = None,
) -> None:
    """Never trust a ranged answer: it must start at ``start`` and be ``info``'s version."""
    if etag and info.etag and etag.strip('"') != info.etag.strip('"'):
        raise Changed
    if version and info.version and version != info.version:
        raise Changed
    if content_range:
        match = _CONTENT_RANGE.match(content_range)
        if match is None or int(match.group(1)) != start:
            raise ProtocolMismatch(
                f"asked for bytes from {start}, the answer says {content_range!r}", url=info.url
            )
        if info.size is not None and match.group(3) not in ("*", str(info.size)):
            raise Changed
    elif start:
        raise ProtocolMismatch(
            f"asked for bytes from {start}, the answer has no Content-Range", url=info.url
        )
