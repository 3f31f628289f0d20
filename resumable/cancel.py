"""Prompt cancellation: a cancel reaches a thread blocked on the network at once.

A download waiting in ``recv()`` for a silent server (before the headers, in the middle of a
body, on each connection of a segmented download) notices nothing until its stall timeout
expires: up to a minute by default. Python cannot interrupt another thread's blocked system
call, but a socket shut down with ``shutdown(SHUT_RDWR)`` from any thread makes that
``recv()`` return at once. One mechanism serves every wait:

- :class:`CancelToken` is the ``threading.Event`` a job (or a fanned-out chunk) is cancelled
  with. Its ``set()`` also aborts every :class:`Scope` attached to it. Waits that are not on a
  socket wait on the token itself, which ``set()`` ends (retry back-off, a rate limit), or
  check it every 0.1 s at most (a connection slot, another process's lock on the partial,
  another writer finishing the file).
- Connections being set up are covered as they connect (a TLS handshake included); only the
  TCP connect itself (and a DNS lookup) still waits out the connect timeout.
- :class:`Scope` is what one download has on the network: the connections it is using. A
  source adds a connection to the thread's current scope (:func:`current`) each time it sends
  a request on it; :meth:`Scope.abort` shuts down the sockets of the connections it still
  owns (one reused by another download since belongs to that download's scope), and any
  connection added later is shut at once. The source then reports :class:`~.errors.Cancelled`
  (never a short body, see :func:`aborted`), so the transfer keeps its partial.
- A segmented download gives its workers a child scope: stopping it (an error, a callback's
  exception, Ctrl-C on the calling thread) aborts only its own connections, and a cancel of
  the parent reaches them too.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import socket

__all__ = ["SPARE", "CancelToken", "Scope", "aborted", "current", "watching"]

_current: contextvars.ContextVar[Scope | None] = contextvars.ContextVar(
    "resumable_scope", default=None
)
_OWNER = "_resumable_scope"  # the attribute a connection's owning scope is kept in
SPARE = "_resumable_spare"
"""A connection's attribute for a second descriptor of a socket still being set up: a TLS
handshake detaches the socket object's own descriptor before ``sock`` is assigned again."""


class Scope:
    """The connections one download (or one segmented fetch) is using; see the module doc."""

    def __init__(self, parent: Scope | None = None) -> None:
        self._lock = threading.Lock()
        self._connections: weakref.WeakSet[Any] = weakref.WeakSet()
        self._children: weakref.WeakSet[Scope] = weakref.WeakSet()
        self.aborted = False
        if parent is not None:
            parent._adopt(self)

    def _adopt(self, child: Scope) -> None:
        with self._lock:
            self._children.add(child)
            aborted = self.aborted
        if aborted:
            child.abort()

    def add(self, connection: Any) -> None:
        """Own ``connection`` (anything with a ``sock`` attribute) from now on; shut it at
        once if this scope is already aborted."""
        setattr(connection, _OWNER, self)
        with self._lock:
            self._connections.add(connection)
            aborted = self.aborted
        if aborted:
            shut(getattr(connection, "sock", None))

    def abort(self) -> None:
        """Shut down the sockets of the connections this scope still owns, and its children's."""
        with self._lock:
            if self.aborted:
                return
            self.aborted = True
            connections = list(self._connections)
            children = list(self._children)
        for connection in connections:
            if getattr(connection, _OWNER, None) is self:
                shut(getattr(connection, "sock", None))
                shut(getattr(connection, SPARE, None))
        for child in children:
            child.abort()

    @contextlib.contextmanager
    def entered(self) -> Iterator[Scope]:
        """Make this the current scope of the calling thread while the block runs."""
        reset = _current.set(self)
        try:
            yield self
        finally:
            _current.reset(reset)


class CancelToken(threading.Event):
    """A ``threading.Event`` whose ``set()`` also aborts the scopes attached to it."""

    def __init__(self) -> None:
        super().__init__()
        self._scopes_lock = threading.Lock()
        self._scopes: weakref.WeakSet[Scope] = weakref.WeakSet()

    def set(self) -> None:
        super().set()
        with self._scopes_lock:
            scopes = list(self._scopes)
        for scope in scopes:
            scope.abort()

    def attach(self, scope: Scope) -> None:
        with self._scopes_lock:
            self._scopes.add(scope)
        if self.is_set():
            scope.abort()

    def detach(self, scope: Scope) -> None:
        with self._scopes_lock:
            self._scopes.discard(scope)


@contextlib.contextmanager
def watching(cancel: threading.Event | None) -> Iterator[Scope]:
    """A scope for one download on the calling thread, aborted when ``cancel`` is set.

    A plain ``threading.Event`` is still checked between reads and waits; only a
    :class:`CancelToken` can also interrupt a read that is blocked."""
    scope = Scope()
    token = cancel if isinstance(cancel, CancelToken) else None
    if token is not None:
        token.attach(scope)
    try:
        with scope.entered():
            yield scope
    finally:
        if token is not None:
            token.detach(scope)


def current() -> Scope | None:
    """The calling thread's scope, or ``None`` outside a download."""
    return _current.get()


def track(connection: Any) -> None:
    """Put ``connection`` in the calling thread's scope (a source calls this per request)."""
    scope = _current.get()
    if scope is not None:
        scope.add(connection)


def shut_if_aborted(connection: Any, sock: socket.socket) -> None:
    """A socket just created for ``connection``: shut it if its scope was aborted meanwhile."""
    scope = getattr(connection, _OWNER, None)
    if scope is not None and scope.aborted:
        shut(sock)


def aborted() -> bool:
    """Whether the calling thread's scope was aborted (what a read returned is then not data)."""
    scope = _current.get()
    return scope is not None and scope.aborted


def shut(sock: socket.socket | None) -> None:
    """``shutdown(SHUT_RDWR)`` on the file descriptor: a blocked ``recv`` returns at once.

    The base ``socket.shutdown`` rather than an ``SSLSocket``'s own, which would also drop
    its TLS state under the thread that is reading."""
    if sock is None:
        return
    import socket  # loaded already by whatever made ``sock``; not by ``import resumable``

    with contextlib.suppress(OSError, ValueError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
