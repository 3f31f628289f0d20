"""A TCP proxy on loopback that counts (and may throttle) the bytes a server sends to clients.

Why: nginx writes the body bytes of every response to its access log, but the object-store
emulators do not (moto runs werkzeug in a thread, with no such log). Crash torture must count
every byte the server sent, including what a process killed with ``kill -9`` had in its socket
buffers and never wrote, so the count is taken on the wire, between the client and the
emulator. Throttling each connection makes a download last long enough to be killed at a
random moment, as nginx's ``limit_rate`` does.

The count includes response headers (a few hundred bytes per request) and non-body answers
(HEAD, listings): it is an upper bound on the body bytes, never an underestimate.

Usage::

    with CountingProxy(upstream_port=moto.port, rate=16 << 20) as proxy:
        endpoint = proxy.url           # give clients this instead of the server's address
        before = proxy.sent
        ...
        print(proxy.sent - before)     # bytes from the server to clients meanwhile
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time

from .ports import HOST

CHUNK = 64 * 1024


class CountingProxy:
    """Forwards every connection on a free loopback port to ``upstream_port``.

    Args:
        upstream_port: the server's port on 127.0.0.1.
        rate: most bytes per second sent to each client connection (``None``: unthrottled).
    """

    def __init__(self, upstream_port: int, *, rate: float | None = None) -> None:
        self.upstream_port = upstream_port
        self.rate = rate
        self._sent = 0
        self._accepted = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def sent(self) -> int:
        """Bytes handed to client sockets so far (server to client), headers included."""
        with self._lock:
            return self._sent

    @property
    def connections(self) -> int:
        """Client connections accepted so far (a request never sent opens none)."""
        with self._lock:
            return self._accepted

    def start(self) -> CountingProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((HOST, 0))
        listener.listen(128)
        self._listener = listener
        self.port = listener.getsockname()[1]
        threading.Thread(target=self._accept, name="proxy-accept", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.close()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()

    def __enter__(self) -> CountingProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self._accepted += 1
            try:
                server = socket.create_connection((HOST, self.upstream_port), timeout=10)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            # A small send buffer towards the client, so that what counts as sent is close to
            # what the client could have read (the kernel would otherwise grow it to MiBs).
            client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 256 * 1024)
            with self._lock:
                self._sockets.update((client, server))
            threading.Thread(target=self._pump, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, True), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, downstream: bool) -> None:
        began = time.monotonic()
        moved = 0
        try:
            while not self._stopping.is_set():
                data = src.recv(CHUNK)
                if not data:
                    break
                dst.sendall(data)
                if downstream:
                    moved += len(data)
                    with self._lock:
                        self._sent += len(data)
                    if self.rate:
                        ahead = moved / self.rate - (time.monotonic() - began)
                        if ahead > 0:
                            self._stopping.wait(ahead)
        except OSError:
            pass
        finally:
            # Half-close the other way so the peer sees the end; the other pump closes fully.
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)
            with contextlib.suppress(OSError):
                src.shutdown(socket.SHUT_RD)
            if downstream:
                for sock in (src, dst):
                    with contextlib.suppress(OSError):
                        sock.close()
                with self._lock:
                    self._sockets.difference_update((src, dst))
