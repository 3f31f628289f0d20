"""Test doubles for code that uses ``resumable``: an in-memory source and a fault injector.

The same fakes our own unit tests use, so a training pipeline can test its download step
without a server::

    from resumable import ResumableDownloader, ConnectionFailed
    from resumable.testing import FaultySource, MemorySource

    store = MemorySource({"mem://bucket/shard-000000.tar": b"..."})
    flaky = FaultySource(store).fail_open(ConnectionFailed("reset")).cut_body(100)
    with ResumableDownloader(sources={"mem": flaky}) as d:
        d.download("mem://bucket/shard-000000.tar", tmp_path / "shard.tar")
    assert flaky.calls == ["open", "open", "open"]

Both behave like a well-behaved object store: strong ETags and versions that change on
``put``, byte ranges, and a ranged read pinned to an old version answers from byte 0 with the
new version (as HTTP ``If-Range`` does), so resume and restart logic is exercised for real.
"""

from __future__ import annotations

import hashlib
import threading
from collections import deque
from collections.abc import Iterator, Mapping
from typing import Any

from .errors import ConnectionFailed, SourceNotFound
from .sources import RemoteInfo

__all__ = ["FaultySource", "MemoryBody", "MemorySource"]


class MemoryBody:
    """A body over bytes in memory; ``cut_after`` raises ConnectionFailed after N bytes."""

    def __init__(self, data: bytes, start: int, info: RemoteInfo) -> None:
        self.start = start
        self.info = info
        self._view = memoryview(data)[start:]
        self._pos = 0
        self.cut_after: int | None = None

    def read(self, amount: int) -> bytes:
        if self.cut_after is not None and self._pos >= self.cut_after:
            raise ConnectionFailed("connection cut by FaultySource", url=self.info.url)
        end = self._pos + amount
        if self.cut_after is not None:
            end = min(end, self.cut_after)
        chunk = bytes(self._view[self._pos : end])
        self._pos += len(chunk)
        return chunk

    def close(self) -> None:
        self._view.release()


class MemorySource:
    """A :class:`~resumable.sources.Source` serving ``{url: bytes}`` from memory.

    Args:
        objects: initial objects, by full URL.
        ranges: serve byte ranges (``False`` answers every read from byte 0, like a server
            that ignores Range).
    """

    def __init__(self, objects: Mapping[str, bytes] | None = None, *, ranges: bool = True):
        self._lock = threading.Lock()
        self._objects: dict[str, tuple[bytes, int]] = {}
        self._ranges = ranges
        for url, data in (objects or {}).items():
            self.put(url, data)

    def put(self, url: str, data: bytes) -> RemoteInfo:
        """Store a new version of ``url`` (new ETag and version); return its info."""
        with self._lock:
            version = self._objects.get(url, (b"", 0))[1] + 1
            self._objects[url] = (bytes(data), version)
        return self.stat(url)

    def delete(self, url: str) -> None:
        with self._lock:
            self._objects.pop(url, None)

    def _get(self, url: str) -> tuple[bytes, RemoteInfo]:
        with self._lock:
            if url not in self._objects:
                raise SourceNotFound("no such object in MemorySource", url=url)
            data, version = self._objects[url]
        etag = f'"{hashlib.md5(data).hexdigest()}-{version}"'
        info = RemoteInfo(
            url=url,
            size=len(data),
            etag=etag,
            version=str(version),
            checksums={"md5": hashlib.md5(data).hexdigest()},
            accept_ranges=self._ranges,
        )
        return data, info

    def stat(self, url: str) -> RemoteInfo:
        return self._get(url)[1]

    def open(
        self, url: str, start: int = 0, end: int | None = None, expect: RemoteInfo | None = None
    ) -> MemoryBody:
        data, info = self._get(url)
        if not self._ranges or (expect is not None and expect.differs_from(info)):
            start = 0  # like HTTP: 200 with the whole (current) object
        if end is not None:
            data = data[:end]
        return MemoryBody(data, min(start, len(data)), info)

    def list(self, prefix: str) -> Iterator[tuple[str, RemoteInfo]]:
        with self._lock:
            urls = sorted(u for u in self._objects if u.startswith(prefix))
        for url in urls:
            yield url, self.stat(url)

    def close(self) -> None:
        """Nothing to release."""


class FaultySource:
    """Wraps any source and injects planned failures, recording every call in ``calls``.

    Plans are queues consumed one per call: ``fail_stat(e1, e2)`` makes the next two ``stat``
    calls raise ``e1`` then ``e2``; ``cut_body(after)`` makes the next body opened raise
    :class:`~resumable.ConnectionFailed` after ``after`` bytes. The ``fail_*`` and ``cut_*``
    methods return ``self`` so plans chain.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: list[str] = []
        self._stat: deque[BaseException] = deque()
        self._open: deque[BaseException] = deque()
        self._cuts: deque[int] = deque()
        self._list_cuts: deque[tuple[int, BaseException]] = deque()
        self._lock = threading.Lock()

    def fail_stat(self, *errors: BaseException) -> FaultySource:
        self._stat.extend(errors)
        return self

    def fail_open(self, *errors: BaseException) -> FaultySource:
        self._open.extend(errors)
        return self

    def cut_list(self, after: int, error: BaseException) -> FaultySource:
        """The next listing raises ``error`` after yielding ``after`` entries."""
        self._list_cuts.append((after, error))
        return self

    def cut_body(self, *after: int) -> FaultySource:
        self._cuts.extend(after)
        return self

    def _next(self, queue: deque[Any]) -> Any:
        with self._lock:
            return queue.popleft() if queue else None

    def stat(self, url: str) -> RemoteInfo:
        self.calls.append("stat")
        error = self._next(self._stat)
        if error is not None:
            raise error
        info: RemoteInfo = self.inner.stat(url)
        return info

    def open(
        self, url: str, start: int = 0, end: int | None = None, expect: RemoteInfo | None = None
    ) -> Any:
        self.calls.append("open")
        error = self._next(self._open)
        if error is not None:
            raise error
        body = self.inner.open(url, start, end, expect)
        cut = self._next(self._cuts)
        if cut is not None:
            if not isinstance(body, MemoryBody):
                raise TypeError("cut_body needs a MemorySource underneath")
            body.cut_after = cut
        return body

    def list(self, prefix: str) -> Iterator[tuple[str, RemoteInfo]]:
        """The inner listing; a planned ``cut_list(after, error)`` raises after that many."""
        self.calls.append("list")
        cut = self._next(self._list_cuts)
        for n, entry in enumerate(self.inner.list(prefix)):
            if cut is not None and n == cut[0]:
                raise cut[1]
            yield entry
        if cut is not None:
            raise cut[1]  # planned after the end: fail there

    def close(self) -> None:
        self.inner.close()
