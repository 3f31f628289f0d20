"""Plain ``http://`` GETs on the standard library's ``http.client``, with our own keep-alive pool.

A batch of small files from a plain host (an in-cluster mirror, an AIStore gateway, a local
nginx) is limited by the Python work per request, paid under the GIL, not by bytes. Measured
on 2,000 files of 256 KiB over loopback with 16 threads (``http.client`` in both cases):
urllib3's pool cost ~0.35 ms of CPU per request more than a bare ``http.client`` connection,
and ~13 more thread switches per file, mostly from its response wrapper: ``read1`` copies
every byte through a ``BytesIO`` buffer while holding the GIL, and each request polls the
socket and sets its timeout twice.

So :class:`PlainPool` keeps idle ``http.client.HTTPConnection`` objects per host (last in,
first out: the warmest first) and hands back the ``http.client.HTTPResponse``, whose
``read1`` returns what one ``recv`` got. It serves only what needs none of requests' or
urllib3's features: :class:`~resumable.sources.http.HTTPSource` decides that (no proxy, no
credentials, no TLS, a URL that needs no quoting) and sends everything else, redirects
included, through requests.

What a pool does for correctness, done here too:

- **Stale keep-alive connections.** A server may close an idle connection at any time. A
  request on a reused connection that fails before any byte of an answer arrived is sent
  once more on a new connection (a GET is idempotent); a new connection's failure is the
  caller's error.
- **Timeouts.** ``connect`` bounds the TCP handshake; ``stall`` bounds each wait for bytes.
- **Interim answers and the head's time bound**, and **cancellation**: as on the urllib3
  engine, see :mod:`._http_wire` and :mod:`resumable.cancel`.
- **Reuse only when clean.** A connection goes back to the pool only when its answer was
  read to the end and the server did not ask to close; anything else is closed.
"""

from __future__ import annotations

import http.client
import select
import socket
import threading
import weakref
from collections.abc import Iterable, Mapping
from typing import Any

from ..cancel import shut_if_aborted, track
from ._http_wire import NotConnected, Response

__all__ = ["PlainAnswer", "PlainPool"]

# A reused connection the server had closed fails in one of these ways before any answer.
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


class _Connection(http.client.HTTPConnection):
    """``http.client.HTTPConnection`` with separate connect and read timeouts."""

    response_class = Response

    def __init__(self, host: str, port: int | None, connect: float, stall: float) -> None:
        super().__init__(host, port, timeout=stall)
        self._connect_timeout = connect

    def connect(self) -> None:
        try:
            sock = socket.create_connection((self.host, self.port), self._connect_timeout)
        except OSError as exc:  # unknown host, refused, unreachable, timed out
            raise NotConnected(exc) from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(self.timeout)
        self.sock = sock
        shut_if_aborted(self, sock)


class PlainPool:
    """Keep-alive ``http://`` connections to one host, at most ``size`` of them idle."""

    def __init__(self, host: str, port: int | None, *, connect: float, stall: float, size: int):
        self._host, self._port = host, port
        self._connect, self._stall = connect, stall
        self._size = size
        self._idle: list[_Connection] = []
        self._lock = threading.Lock()
        # A downloader dropped without close() still closes its idle sockets (as urllib3 does).
        weakref.finalize(self, _close_all, self._idle)

    def get(self, target: str, headers: Mapping[str, str | bytes]) -> PlainAnswer:
        """Send ``GET target`` and return the answer once its headers have arrived."""
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        if conn is not None and _readable(conn):
            conn.close()  # bytes past the last answer's length (or its close): never an answer
            conn = None
        if conn is not None:
            try:
                return self._send(conn, target, headers)
            except _STALE:
                pass  # closed by the server while idle: once more, on a new connection
        return self._send(
            _Connection(self._host, self._port, self._connect, self._stall), target, headers
        )

    def _send(
        self, conn: _Connection, target: str, headers: Mapping[str, str | bytes]
    ) -> PlainAnswer:
        track(conn)  # a cancel shuts its socket (resumable.cancel)
        try:
            conn.request("GET", target, headers=headers)
            return PlainAnswer(self, conn, conn.getresponse())
        except BaseException:
            conn.close()
            raise

    def release(self, conn: _Connection) -> None:
        with self._lock:
            if len(self._idle) < self._size:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            idle = self._idle[:]
            self._idle.clear()
        _close_all(idle)


def _readable(conn: _Connection) -> bool:
    """Whether an idle connection has something to read: bytes a server sent past its last
    answer's length, or its close. Either way it cannot carry the next answer (urllib3's
    ``is_connection_dropped`` makes the same check)."""
    sock = conn.sock
    if sock is None:
        return True
    try:
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True


def _close_all(connections: list[_Connection]) -> None:
    for conn in connections:
        conn.close()


class _Headers(dict[str, str]):
    """The answer's headers for reading by name in any case (the first of repeated ones).

    ``http.client``'s own ``get`` scans every header and re-parses each: a dozen lookups per
    file cost more than building this dict once."""

    def __init__(self, items: Iterable[tuple[str, str]]) -> None:
        super().__init__()
        for name, value in items:
            self.setdefault(name.lower(), value)

    def get(self, name: str, default: Any = None) -> Any:
        return super().get(name.lower(), default)


class PlainAnswer:
    """One answer: what :class:`~resumable.sources.http.HTTPSource` reads of a response."""

    def __init__(
        self, pool: PlainPool, conn: _Connection, response: http.client.HTTPResponse
    ) -> None:
        self._pool: PlainPool | None = pool
        self._conn = conn
        self.raw = response  # read1(n): the bytes one recv brought, up to n
        self.status_code = response.status
        self.headers = _Headers(response.msg.items())
        self.reason: str | None = response.reason

    def close(self) -> None:
        """Return the connection if the answer was read to its end, else close it (rather than
        reading what may be gigabytes to keep a connection)."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        response = self.raw
        # http.client closes an answer when a read finds its end, not when the last byte of
        # a known length arrives (length 0): both are the whole body.
        whole = response.isclosed() or response.length == 0
        response.close()
        if whole and not response.will_close:
            pool.release(self._conn)
        else:
            self._conn.close()
