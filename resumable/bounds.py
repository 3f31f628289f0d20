"""Every length that is known bounds the body before a byte of it is written.

A body may run past what it should carry: a chunked or close-delimited answer that goes on
past the caller's ``size``, a 206 whose body outruns its ``Content-Range``, an object that grows
while it is read. Checking after the write (or only at the end) lets such a body fill the disk.
So every path that writes bytes (the direct path, the single stream, each segment) reads its
answer through :func:`bounded`, which caps every read to what is left of the smallest known
length and never hands over a byte past it. What that means for the download depends on which
length the body ran past:

- **what the answer announced** (``Content-Range``/``Content-Length``, ``Body.length``), **the
  object's size** (from the answer, the sidecar, a store's stat) or **the range asked for**: the
  server sent more than it said. :class:`~resumable.errors.ProtocolMismatch`, a transient error:
  the bytes within the bound stay on disk and the next attempt continues from them.
- **the caller's** ``size`` (or a listing's), when the answer announced no length: the data
  proves the object larger than expected. :class:`~resumable.errors.SizeMismatch`.

When several bounds are equal the server's own announcement wins (it is the one broken).

The end of the body is confirmed by one more read once the allowance is used up: ``b""`` is the
end, any byte is the overrun (it is dropped, never written).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .errors import ProtocolMismatch, ResumableError, SizeMismatch
from .sources import Body, RemoteInfo, read_into

__all__ = ["BoundedBody", "bounded"]


@dataclass(frozen=True)
class _Limit:
    """At most ``bytes`` from the body's start; past it, ``error(received)`` is raised."""

    bytes: int
    error: Callable[[int], ResumableError]


class BoundedBody:
    """``body`` read never past ``limit`` (see the module docstring)."""

    def __init__(self, body: Body, limit: _Limit | None) -> None:
        self.start = body.start
        self.info: RemoteInfo = body.info
        self.body = body
        self._limit = limit
        self._left = None if limit is None else limit.bytes

    def read(self, amount: int) -> bytes:
        left = self._left
        if left is None or self._limit is None:
            return self.body.read(amount)
        if left <= 0:
            extra = self.body.read(1)  # the end, or proof of an overrun (never handed over)
            if extra:
                raise self._limit.error(self._limit.bytes + len(extra))
            return b""
        data = self.body.read(min(amount, left))
        if len(data) > left:  # a source that returned more than it was asked for
            raise self._limit.error(self._limit.bytes - left + len(data))
        self._left = left - len(data)
        return data

    def readinto(self, buffer: memoryview) -> int:
        """``read`` into ``buffer``, under the same limit (see :func:`~.sources.read_into`)."""
        left = self._left
        if left is None or self._limit is None:
            return read_into(self.body, buffer)
        if left <= 0 or not hasattr(self.body, "readinto"):
            data = self.read(len(buffer))  # the end's one-byte check, or a source without it
            if len(data) > len(buffer):
                raise ProtocolMismatch(f"a read of {len(buffer)} bytes returned {len(data)}")
            buffer[: len(data)] = data
            return len(data)
        got = read_into(self.body, buffer[: min(len(buffer), left)])
        self._left = left - got
        return got

    def close(self) -> None:
        self.body.close()


def bounded(
    body: Body,
    *,
    url: str,
    total: int | None = None,
    size: int | None = None,
    end: int | None = None,
) -> BoundedBody:
    """``body`` capped at the smallest known length, measured from ``body.start``.

    Args:
        total: the object's size as known before or from this answer (``None``: unknown).
        size: the caller's expected size (``size=``, or a listing's).
        end: the exclusive end of the range asked for (a segment's end).

    The body's own announcement is ``body.length`` when the source sets it (optional in the
    :class:`~resumable.sources.Body` protocol).
    """
    start = body.start
    announced: int | None = getattr(body, "length", None)
    limits: list[_Limit] = []  # in order of precedence when equal: the server's word first
    if announced is not None:
        limits.append(_Limit(announced, _overrun(url, f"the {announced} bytes it announced")))
    if total is not None:
        limits.append(_Limit(total - start, _overrun(url, f"the object's end at byte {total}")))
    if end is not None:
        limits.append(_Limit(end - start, _overrun(url, f"the range asked for (to byte {end})")))
    if size is not None:
        limits.append(_Limit(size - start, _too_large(url, size, start)))
    smallest = min(limits, key=lambda limit: limit.bytes, default=None)  # the first of equals
    return BoundedBody(body, smallest)


def _overrun(url: str, what: str) -> Callable[[int], ResumableError]:
    def error(received: int) -> ResumableError:
        return ProtocolMismatch(f"the answer ran past {what}; the excess was not written", url=url)

    return error


def _too_large(url: str, size: int, start: int) -> Callable[[int], ResumableError]:
    def error(received: int) -> ResumableError:
        return SizeMismatch(url=url, expected=size, actual=start + received, what="size")

    return error
