"""The one boundary where requests, urllib3, http.client and socket errors become
:mod:`resumable.errors` for the HTTP(S) source: :func:`translated` around every request and
:func:`translate` for the per-block read path. Nothing else escapes the source.

A connection that was never made (unknown host, refused, no route) is a
:class:`~resumable.errors.CannotConnect` and a connect timeout a
:class:`~resumable.errors.ConnectTimeout`: the retry policy gives those a few quick attempts
(see :mod:`resumable.retry`). Reasons never include the URL (it may hold credentials).
"""

from __future__ import annotations

import http.client
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn, TypeVar

import requests
import urllib3

from ..cancel import aborted
from ..errors import (
    Cancelled,
    CannotConnect,
    ConnectionFailed,
    ConnectTimeout,
    InvalidArgument,
    ProtocolMismatch,
    RemoteError,
    StallTimeout,
    UntrustedCertificate,
)
from ..urls import redact_text
from ._http_safety import scrub_chain
from ._http_wire import HeadTimeout, NotConnected

__all__ = ["translate", "translated"]

_E = TypeVar("_E", bound=BaseException)


@contextmanager
def translated(url: str, stall: float) -> Iterator[None]:
    """Map requests, urllib3 and socket errors to :mod:`resumable.errors` (the one boundary)."""
    try:
        yield
    except Exception as exc:  # every branch re-raises; the table is in translate
        translate(exc, url, stall)


def translate(exc: Exception, url: str, stall: float) -> NoReturn:
    scrub_chain(exc)  # it becomes our error's __cause__, which tracebacks print
    if aborted():  # a cancel shut the socket: whatever the read raised, it is that
        raise Cancelled("cancelled", url=url) from exc
    e = requests.exceptions
    u = urllib3.exceptions
    if isinstance(exc, e.TooManyRedirects):
        raise RemoteError("too many redirects (a redirect loop?)", url=url) from exc
    if isinstance(exc, (e.InvalidURL, e.MissingSchema, e.InvalidSchema, u.LocationParseError)):
        raise InvalidArgument(f"invalid URL: {_reason(exc)}", url=url) from exc
    if isinstance(exc, e.ConnectTimeout):
        raise ConnectTimeout("timed out connecting", url=url) from exc
    plain = _find(exc, NotConnected)  # the plain engine's (see _http_plain): the socket's error
    cause = exc if plain is None else plain.reason  # is the cause, not the marker around it
    if plain is not None and isinstance(plain.reason, TimeoutError):
        raise ConnectTimeout("timed out connecting", url=url) from cause
    if plain is not None or _find(exc, urllib3.exceptions.NewConnectionError) is not None:
        # No connection at all (unknown host, refused, no route): the request never left.
        raise CannotConnect(f"connection failed: {_reason(exc)}", url=url) from cause
    head = _find(exc, HeadTimeout)
    if head is not None:
        raise StallTimeout(str(head), url=url, seconds=head.seconds) from exc
    if _is_timeout(exc):
        raise StallTimeout(f"no data for {stall:g}s", url=url, seconds=stall) from exc
    if isinstance(exc, (e.SSLError, u.SSLError)) and "CERTIFICATE_VERIFY_FAILED" in str(exc):
        raise UntrustedCertificate(
            f"TLS certificate verification failed: {_reason(exc)}", url=url
        ) from exc
    if isinstance(exc, (e.ContentDecodingError, u.DecodeError)):
        raise ProtocolMismatch(f"undecodable body: {_reason(exc)}", url=url) from exc
    broken = (e.ConnectionError, e.ChunkedEncodingError, u.HTTPError, http.client.HTTPException)
    if isinstance(exc, (*broken, OSError)):
        raise ConnectionFailed(f"connection failed: {_reason(exc)}", url=url) from exc
    raise exc


def _find(exc: BaseException, kind: type[_E]) -> _E | None:
    """``exc`` or the first exception of type ``kind`` that it wraps."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, kind):
            return current
        nested: list[Any] = [getattr(current, "reason", None), *current.args[:1]]
        nested += [current.__cause__, current.__context__]
        current = next((n for n in nested if isinstance(n, BaseException)), None)
    return None


def _is_timeout(exc: BaseException) -> bool:
    """Read timeouts hide at several depths (requests wraps urllib3 wraps socket.timeout)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(
            current,
            (
                requests.exceptions.ReadTimeout,
                urllib3.exceptions.ReadTimeoutError,
                socket.timeout,
                TimeoutError,
            ),
        ):
            return True
        nested: list[Any] = [getattr(current, "reason", None), *current.args[:1]]
        nested += [current.__cause__, current.__context__]
        current = next((n for n in nested if isinstance(n, BaseException)), None)
    return "timed out" in str(exc)


def _reason(exc: BaseException) -> str:
    """The innermost readable reason, without the URL (it may hold credentials).

    requests and urllib3 wrap the real cause (``MaxRetryError(reason=NewConnectionError)``,
    ``ProtocolError("Connection broken: ...", IncompleteRead)``) and quote the URL in between.
    """
    seen: set[int] = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        inner = getattr(exc, "reason", None)
        if not isinstance(inner, BaseException) and exc.args:
            inner = exc.args[0]
        if not isinstance(inner, BaseException):
            break
        exc = inner
    text = exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)
    # requests quotes the URL ("... with url: /path?sig=..."): it may hold credentials.
    text = redact_text(re.sub(r"(https?://\S+|with url: \S+)", "<url>", text))
    if len(text) > 200:
        text = text[:200] + "..."
    return text or type(exc).__name__
