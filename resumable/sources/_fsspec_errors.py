"""The fsspec source's error boundary: backend exceptions in, :mod:`resumable.errors` out.

Every call into fsspec, s3fs, gcsfs, adlfs, botocore, aiohttp or azure-core runs inside
:meth:`Boundary.translated`. The mapping is a table, consulted in order of authority:

1. the S3 error code (``RequestTimeout`` is a 400 that means "retry"; ``SlowDown`` a 503);
2. the HTTP status anywhere in the exception's chain (botocore, aiohttp, gcsfs, azure-core);
3. the exception's class, by name (a library that was never imported cannot have raised);
4. the builtin it is (``FileNotFoundError``, ``PermissionError``, ``TimeoutError``, errno).

Messages are built from the backend's words after every credential we know of (string values
under secret-looking keys of the storage options and fsspec's configuration, the parts of
connection strings and SAS tokens, the standard secret environment variables) is replaced by
``REDACTED`` and every URL is redacted; an original exception that quotes a secret is not
chained (``raise ... from None``), so no traceback or error reporter prints it.
"""

from __future__ import annotations

import asyncio
import errno
import os
import re
import socket
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import fsspec.config

from ..errors import (
    AccessDenied,
    CannotConnect,
    ConnectionFailed,
    ConnectTimeout,
    InvalidArgument,
    ProtocolMismatch,
    RemoteError,
    ResumableError,
    ServerBusy,
    SourceNotFound,
    StallTimeout,
)
from ..urls import redact, register_secrets
from ._fsspec_readers import Changed

__all__ = ["Boundary"]


_SECRET_KEY = re.compile(
    r"key|secret|token|passw|sas|credential|connection|signature|auth|session", re.IGNORECASE
)
_SECRET_ENV = (
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AZURE_STORAGE_CONNECTION_STRING",
    "AZURE_STORAGE_KEY",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_STORAGE_CLIENT_SECRET",
    "AZURE_CLIENT_SECRET",
)
# Backend exception classes by qualified name (so nothing is imported to compare), with the
# error each one means; the first entry that any exception of the chain is an instance of wins.
_BY_CLASS: tuple[tuple[str, str], ...] = (
    ("botocore.exceptions.NoCredentialsError", "denied"),
    ("botocore.exceptions.PartialCredentialsError", "denied"),
    ("google.auth.exceptions.DefaultCredentialsError", "denied"),
    ("google.auth.exceptions.RefreshError", "denied"),
    ("azure.core.exceptions.ClientAuthenticationError", "denied"),
    ("azure.core.exceptions.ResourceNotFoundError", "missing"),
    ("azure.core.exceptions.ResourceModifiedError", "changed"),
    ("botocore.exceptions.ConnectTimeoutError", "connect-timeout"),
    ("aiohttp.client_exceptions.ConnectionTimeoutError", "connect-timeout"),
    ("botocore.exceptions.ReadTimeoutError", "timeout"),
    ("aiohttp.client_exceptions.ServerTimeoutError", "timeout"),
    ("azure.core.exceptions.ServiceRequestTimeoutError", "timeout"),
    ("azure.core.exceptions.ServiceResponseTimeoutError", "timeout"),
    ("fsspec.exceptions.FSTimeoutError", "timeout"),
    ("asyncio.exceptions.TimeoutError", "timeout"),
    ("botocore.exceptions.ParamValidationError", "invalid"),
    ("aiohttp.client_exceptions.InvalidURL", "invalid"),
    # No connection at all (unknown host, refused, unreachable): the request never left. A TLS
    # failure while connecting is not one (aiohttp's certificate errors are connector errors).
    ("aiohttp.client_exceptions.ClientConnectorCertificateError", "connection"),
    ("aiohttp.client_exceptions.ClientConnectorSSLError", "connection"),
    ("botocore.exceptions.EndpointConnectionError", "unreachable"),
    ("aiohttp.client_exceptions.ClientConnectorError", "unreachable"),
    ("azure.core.exceptions.ServiceRequestError", "unreachable"),  # "no request was sent"
    ("botocore.exceptions.HTTPClientError", "connection"),
    ("botocore.exceptions.IncompleteReadError", "connection"),
    ("botocore.exceptions.ResponseStreamingError", "connection"),
    ("aiohttp.client_exceptions.ClientError", "connection"),
    ("azure.core.exceptions.ServiceResponseError", "connection"),
    ("requests.exceptions.RequestException", "connection"),
)
# S3 error codes whose meaning the HTTP status does not carry (RequestTimeout is a 400).
_S3_CODES = {
    "RequestTimeout": "timeout",
    "ExpiredToken": "denied",
    "InvalidToken": "denied",
    "TokenRefreshRequired": "denied",
    "SlowDown": "busy",
    "InvalidBucketName": "invalid",
    "NoSuchBucket": "missing",
    "NoSuchKey": "missing",
    "NoSuchVersion": "missing",
    "PreconditionFailed": "changed",
}
# Our error for each kind of failure, from (url, reason, HTTP status).
_BUILD: dict[str, Callable[[str, str, int | None], ResumableError]] = {
    "missing": lambda url, why, _: SourceNotFound(f"no such object ({why})", url=url),
    "denied": lambda url, why, status: AccessDenied(
        f"access denied: {why}", url=url, status=status
    ),
    "busy": lambda url, _, status: ServerBusy(url=url, status=status or 503),
    "timeout": lambda url, why, _: StallTimeout(f"timed out: {why}", url=url),
    "connect-timeout": lambda url, why, _: ConnectTimeout(f"timed out connecting: {why}", url=url),
    "unreachable": lambda url, why, _: CannotConnect(f"connection failed: {why}", url=url),
    "connection": lambda url, why, _: ConnectionFailed(f"connection failed: {why}", url=url),
    "io": lambda url, why, _: ConnectionFailed(f"read failed: {why}", url=url),
    "changed": lambda url, why, _: ProtocolMismatch(
        f"the object changed during the request ({why})", url=url
    ),
    "invalid": lambda url, why, _: InvalidArgument(f"invalid URL or bucket: {why}", url=url),
    "remote": lambda url, why, status: RemoteError(
        f"HTTP {status}: {why}" if status else why, url=url, status=status
    ),
}
# The connection could not be made at all (an ftp:// or sftp:// constructor connects).
_UNREACHABLE_ERRNO = {errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH}
_TRANSIENT_ERRNO = {
    errno.EIO,
    errno.EAGAIN,
    errno.EBUSY,
    errno.ETIMEDOUT,
    errno.ECONNRESET,
    errno.ECONNREFUSED,
    errno.ECONNABORTED,
    errno.EPIPE,
    errno.ENETUNREACH,
    errno.EHOSTUNREACH,
    errno.ESTALE,
    getattr(errno, "EREMOTEIO", 121),
}


class Boundary:
    """Where backend exceptions become :mod:`resumable.errors`, with credentials scrubbed."""

    def __init__(self, storage_options: Mapping[str, Any]) -> None:
        secrets: set[str] = set()
        _collect_secrets(storage_options, secrets, secret=False)
        _collect_secrets(dict(fsspec.config.conf), secrets, secret=False)
        self._given = frozenset(secrets)
        register_secrets(self._secrets)  # hidden from every message and log record as well

    @property
    def _secrets(self) -> list[str]:
        """Known secrets, the environment's as it is now; longest first, so that a connection
        string is replaced before the account key inside it."""
        secrets = set(self._given)
        for name in _SECRET_ENV:
            _add_secret(os.environ.get(name), secrets)
        return sorted(secrets, key=len, reverse=True)

    @contextmanager
    def translated(self, url: str, *, pinned: bool = False) -> Iterator[None]:
        """Re-raise anything a backend raises as ours. ``pinned``: inside a pinned read, where
        "not found" and "precondition failed" mean the version changed (raises ``Changed``)."""
        try:
            yield
        except (ResumableError, Changed):
            raise
        except Exception as exc:
            error, cause = self._translate(exc, url, pinned)
            # "from None" when the original quotes a secret: tracebacks, logging and error
            # reporters then show neither it as the cause nor it as the context.
            raise error from cause

    def translate(self, exc: Exception, url: str) -> tuple[Exception, Exception | None]:
        """Our error for ``exc`` raised outside a read (a filesystem's constructor), and the
        cause to chain (``None`` when it quotes a credential)."""
        return self._translate(exc, url, False)

    def _translate(
        self, exc: Exception, url: str, pinned: bool
    ) -> tuple[Exception, Exception | None]:
        """Our error for ``exc``, and ``exc`` itself unless its text quotes a credential."""
        reason = self.scrub(_reason(exc))
        leaked = any(secret in _chain_text(exc) for secret in self._secrets)
        cause = None if leaked else exc
        kind, status = _classify(exc)
        if pinned and kind in ("missing", "changed"):
            return Changed(), cause
        return _BUILD[kind](url, reason, status), cause

    def scrub(self, text: str) -> str:
        """``text`` without any credential we know of, and with every URL in it redacted."""
        for secret in self._secrets:
            text = text.replace(secret, "REDACTED")
        return re.sub(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+", lambda m: redact(m.group()), text)


def _classify(exc: BaseException) -> tuple[str, int | None]:
    """``(kind, HTTP status)`` for a backend exception, looking through its causes."""
    chain = _chain(exc)
    status = next((s for s in map(_status, chain) if s is not None), None)
    code = next((c for c in map(_s3_code, chain) if c), None)
    if code in _S3_CODES:
        return _S3_CODES[code], status
    if status is not None:
        if status in (404, 410):
            return "missing", status
        if status in (401, 403):
            return "denied", status
        if status == 412:
            return "changed", status
        if status == 429 or (500 <= status <= 599 and status not in (501, 505)):
            return "busy", status
        if status == 416:
            return "changed", status  # the range no longer fits: the object shrank
        if status == 400:
            return "invalid", status
        return "remote", status  # the status is the authority: 405, 409, 501, a redirect...
    names = {f"{c.__module__}.{c.__qualname__}" for error in chain for c in type(error).__mro__}
    for name, kind in _BY_CLASS:  # in the table's order: a timeout anywhere in the chain wins
        if name in names:
            return kind, status
    for error in chain:
        if isinstance(error, FileNotFoundError):
            return "missing", status
        if isinstance(error, PermissionError) or str(error).startswith("Forbidden"):
            return "denied", status
        if isinstance(error, (TimeoutError, asyncio.TimeoutError)):
            return "timeout", status
        if isinstance(error, (ConnectionRefusedError, socket.gaierror)) or (
            isinstance(error, OSError) and error.errno in _UNREACHABLE_ERRNO
        ):
            return "unreachable", status
        if isinstance(error, ConnectionError):
            return "connection", status
        if isinstance(error, (IsADirectoryError, NotADirectoryError, ValueError)):
            return "invalid", status
        if isinstance(error, OSError) and error.errno in _TRANSIENT_ERRNO:
            return "busy" if error.errno == errno.EBUSY else "io", status
    return "remote", status


def _s3_code(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, Mapping):
        code = response.get("Error", {}).get("Code")
        return str(code) if code else None
    return None


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not s for s in seen) and len(seen) < 8:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _chain_text(exc: BaseException) -> str:
    return "\n".join(f"{e!s} {e!r}" for e in _chain(exc))


def _status(exc: BaseException) -> int | None:
    """The HTTP status an exception carries (botocore, aiohttp, gcsfs, azure, ours).

    Not aiohttp's ``HttpProcessingError`` family: its ``code`` 400 is aiohttp's own verdict on
    a broken answer (a body cut short of its Content-Length), not a status the server sent.
    """
    if any(
        f"{c.__module__}.{c.__qualname__}" == "aiohttp.http_exceptions.HttpProcessingError"
        for c in type(exc).__mro__
    ):
        return None
    response = getattr(exc, "response", None)
    if isinstance(response, Mapping):
        code = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if isinstance(code, int):
            return code
    for attribute in ("status_code", "status", "code"):
        value = getattr(exc, attribute, None)
        if isinstance(value, int) and 100 <= value <= 599:
            return value
    return None


def _reason(exc: BaseException) -> str:
    """A short readable reason: the first words found along the chain, or the type's name.

    fsspec turns asyncio timeouts into a bare ``FSTimeoutError()``; the words are in its cause.
    """
    for error in _chain(exc):
        text = str(error).strip()
        if text:
            line = text.splitlines()[0]
            return line if len(line) <= 300 else line[:300] + "..."
    return type(exc).__name__


def _collect_secrets(value: Any, out: set[str], *, secret: bool) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            _collect_secrets(item, out, secret=secret or bool(_SECRET_KEY.search(str(key))))
    elif isinstance(value, (list, tuple)):
        for item in value:
            _collect_secrets(item, out, secret=secret)
    elif secret:
        _add_secret(value, out)


def _add_secret(value: Any, out: set[str]) -> None:
    """Remember ``value`` and, for connection strings and SAS tokens, each secret part."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str) or len(value) < 6:
        return
    out.add(value)
    for part in re.split(r"[;&]", value):
        name, sep, item = part.partition("=")
        if sep and len(item) >= 6 and (_SECRET_KEY.search(name) or name.lower() == "sig"):
            out.add(item)
