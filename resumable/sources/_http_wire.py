"""What both HTTP engines read off the wire the same way: the answer's head, and cancellation.

Both engines (``http.client`` directly, see :mod:`._http_plain`, and urllib3 under requests)
parse an answer with ``http.client.HTTPResponse``; :class:`Response` replaces it in both, and
the connection classes here put every connection in the current cancel scope
(:mod:`resumable.cancel`) when a request is sent on it. What :class:`Response` changes:

- **Interim answers are skipped.** ``http.client`` skips ``100 Continue`` only; a
  ``103 Early Hints`` (or ``102 Processing``) before the real answer became the answer, an
  "unexpected HTTP 103", and left the real one on the connection for the next request. Every
  ``1xx`` but ``101 Switching Protocols`` (never asked for) is read and dropped, at most
  :data:`MAX_INTERIM` of them.
- **The head has a time bound.** The stall timeout bounds each wait for bytes, so a server
  that trickles one header line a second was bounded only by the 100-header limit, and one
  that sends ``103`` answers forever not at all. The status line and headers (interim answers
  included) must all arrive within one stall timeout (the socket's timeout when the answer is
  awaited); past it the attempt ends in :class:`HeadTimeout`, a timeout that is retried.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import time
from typing import Any

import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from ..cancel import SPARE, shut_if_aborted, track

__all__ = ["MAX_INTERIM", "Adapter", "HeadTimeout", "NotConnected", "Response"]

MAX_INTERIM = 32
"""Most interim (1xx) answers accepted before the real one."""


class HeadTimeout(TimeoutError):
    """The status line and headers did not all arrive within the time bound."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"the answer's status line and headers took longer than {seconds:g}s")
        self.seconds = seconds


class NotConnected(Exception):
    """The plain engine could not make a connection (``reason``: the socket's error, a
    ``TimeoutError`` when the connect timeout passed): the request never left. It tells
    the error boundary what urllib3's ``NewConnectionError`` tells it for the other engine."""

    def __init__(self, reason: OSError) -> None:
        super().__init__(reason)
        self.reason = reason


class _Bounded:
    """The answer's file while its head is read: each line waits at most what is left.

    The socket's timeout is lowered only when what is left of the bound is at least
    :data:`_SLACK` of it below the timeout in force: a head that arrives in one packet (nearly
    all of them) costs no ``settimeout`` (an ``ioctl`` each) at all, and a trickled one is
    still cut within ``(1 + _SLACK)`` times the bound.
    """

    def __init__(self, fp: Any, sock: socket.socket, stall: float) -> None:
        self._fp, self._sock, self._stall = fp, sock, stall
        self._deadline = time.monotonic() + stall
        self.timeout = stall  # the socket's timeout now

    def readline(self, limit: int = -1) -> bytes:
        """One line, each wait for bytes bounded by what is left (a line trickled a byte at a
        time is bounded too: ``readline`` itself would wait once per byte)."""
        line = bytearray()
        while limit < 0 or len(line) < limit:
            left = self._deadline - time.monotonic()
            if left <= 0:
                raise HeadTimeout(self._stall)
            if self.timeout - left > _SLACK * self._stall:
                self._sock.settimeout(left)
                self.timeout = left
            try:
                available = self._fp.peek(1)  # what is buffered; at most one recv when empty
            except TimeoutError:
                if time.monotonic() >= self._deadline:
                    raise HeadTimeout(self._stall) from None
                raise
            if not available:
                break  # the end of the stream
            want = len(available) if limit < 0 else min(len(available), limit - len(line))
            end = available.find(b"\n", 0, want)
            line += self._fp.read(end + 1 if end >= 0 else want)  # buffered: no wait
            if end >= 0:
                break
        return bytes(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fp, name)


_SLACK = 0.05
"""How far past its bound a trickled head may run, as a fraction of it (see ``_Bounded``)."""


class Response(http.client.HTTPResponse):
    """``http.client``'s answer, skipping interim answers, with a time bound on its head."""

    def __init__(self, sock: socket.socket, *args: Any, **kwargs: Any) -> None:
        super().__init__(sock, *args, **kwargs)
        self._sock: socket.socket | None = sock  # until the head is read

    def begin(self) -> None:
        self._begin()
        if self.status == 101:  # the connection now speaks another protocol: never reuse it
            self.will_close = True

    def _begin(self) -> None:
        sock, self._sock = self._sock, None
        stall = sock.gettimeout() if sock is not None else None
        if self.headers is not None or sock is None or stall is None:
            super().begin()  # (no timeout asked for: no bound either)
            return
        fp = self.fp
        bounded = _Bounded(fp, sock, stall)
        self.fp = bounded
        try:
            super().begin()
        finally:
            if self.fp is bounded:  # (http.client sets it to None when it gives up)
                self.fp = fp
            if bounded.timeout != stall:
                with contextlib.suppress(OSError):
                    sock.settimeout(stall)

    def readinto1(self, b: Any) -> int:
        """``read1`` into the caller's buffer: what one ``recv`` got, and no new ``bytes``.

        The large-file loops fill a few reused blocks instead of allocating a block per read:
        a new multi-megabyte ``bytes`` per read is an ``mmap``, page faults and a ``munmap``
        each time (measured on 1 GiB: ~0.3 s of CPU more than reading into one buffer). A
        chunked answer has no such path in ``http.client``; it is copied from ``read1``.
        """
        if self.fp is None or self._method == "HEAD":  # type: ignore[attr-defined]
            return 0
        buffer = memoryview(b).cast("B")
        if self.chunked:
            data = self.read1(len(buffer))
            buffer[: len(data)] = data
            return len(data)
        if self.length is not None and len(buffer) > self.length:
            buffer = buffer[: self.length]
        got = self.fp.readinto1(buffer)
        if not got and len(buffer):
            self._close_conn()  # type: ignore[attr-defined]
        elif self.length is not None:
            self.length -= got
            if not self.length:
                self._close_conn()  # type: ignore[attr-defined]
        return got

    def _read_status(self) -> tuple[str, int, str]:
        for _ in range(MAX_INTERIM + 1):
            version, status, reason = super()._read_status()  # type: ignore[misc]
            if not 100 <= status < 200 or status == 101:
                return version, status, reason
            http.client.parse_headers(self.fp)  # an interim answer's headers: dropped
        raise http.client.HTTPException(f"more than {MAX_INTERIM} interim (1xx) answers")


# -- urllib3: the same answer, and every connection in the current cancel scope ----------------


class _Tracked(HTTPConnection):
    """Joins the current cancel scope when it connects (urllib3 connects an HTTPS connection,
    TLS handshake included, before sending the request) and for every request."""

    response_class = Response

    def connect(self) -> None:
        track(self)
        try:
            super().connect()
        finally:
            spare = getattr(self, SPARE, None)
            setattr(self, SPARE, None)
            if spare is not None:
                spare.close()

    def request(self, *args: Any, **kwargs: Any) -> None:
        track(self)
        super().request(*args, **kwargs)

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        # Wrapping it in TLS detaches this object's descriptor during the handshake: a cancel
        # shuts the socket through a descriptor of its own meanwhile.
        setattr(self, SPARE, sock.dup())
        shut_if_aborted(self, sock)  # a cancel that came while connecting
        return sock


class _HTTPConnection(_Tracked):
    pass


class _HTTPSConnection(_Tracked, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


_POOLS = {"http": _HTTPPool, "https": _HTTPSPool}


class Adapter(HTTPAdapter):
    """requests' adapter with the pools above (direct and through an HTTP proxy; a SOCKS
    proxy keeps its own connection classes)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: Any, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if manager.pool_classes_by_scheme is urllib3.poolmanager.pool_classes_by_scheme:
            manager.pool_classes_by_scheme = _POOLS
        return manager
