"""Every error ``resumable`` raises, in one tree.

::

    ResumableError
    ├── InvalidArgument              (also ValueError)   bad input, found before any network use
    ├── SourceNotFound               (also FileNotFoundError)   404/410, missing object
    ├── AccessDenied                 (also PermissionError)     401/403, denied by the store
    ├── RemoteError                  a permanent answer we cannot use (other 4xx, redirect loop,
    │   │                            a redirect to a non-HTTP(S) URL)
    │   └── UntrustedCertificate     the server's TLS certificate failed verification
    ├── TransientError               retried under the RetryPolicy
    │   ├── ConnectionFailed         (also ConnectionError)   refused, reset, cut mid-body
    │   │   └── CannotConnect        no connection at all: unknown host, refused, unreachable
    │   ├── StallTimeout             (also TimeoutError)      no byte for ``Timeouts.stall`` seconds
    │   │   └── ConnectTimeout       no connection within ``Timeouts.connect`` seconds
    │   ├── ServerBusy               5xx and 429, with the server's Retry-After
    │   └── ProtocolMismatch         the answer broke the protocol (wrong Content-Range, a range
    │                                answer ending early; a short HTTP body is a ConnectionFailed)
    ├── RetriesExhausted             transient failures with no progress used up the retry budget
    │   ├── ConnectionRetriesExhausted  (also ConnectionError)   the last failure: a connection
    │   └── TimeoutRetriesExhausted     (also TimeoutError)      the last failure: a timeout
    ├── Cancelled                    Job.cancel() or Ctrl-C stopped the download; the partial stays
    ├── BatchError                   raise_for_errors(): some items of a batch failed
    ├── ExecutorError                an executor (Dask, a process pool) lost the chunk holding
    │                                this item: a worker died for good, the pool broke
    ├── InternalError                a bug: an exception nothing translated (the original is
    │                                its ``__cause__``); please report it
    ├── VerificationError            (also ValueError)   the bytes are not what was expected
    │   ├── SizeMismatch
    │   └── ChecksumMismatch
    ├── LocalError                   (also OSError)   the local side: destination, partial, sidecar
    │   └── PartialTakenOver         another writer took over the ``.partial`` we were writing
    └── ExtractionError              a verified archive could not be extracted; nothing promoted
        ├── UnsafeArchive            (also ValueError)   a member would escape its folder (absolute
        │                            path, ``..``, a link pointing outside) or is a device file
        ├── ArchiveTooLarge          (also ValueError)   a limit against decompression bombs tripped
        └── CorruptArchive           (also ValueError)   not a readable tar/zip/gz (truncated, CRC)

``ExtractionError`` sits beside ``VerificationError`` rather than under it: the download was
verified and is kept; what failed is what the archive holds (or the disk while writing it, which
is a ``LocalError``). Its subclasses are ``ValueError``\\s, like a checksum mismatch: the bytes are
unacceptable, and retrying will not change them.

Why this shape: callers catch the builtin they already know (``FileNotFoundError``,
``ValueError``, ``TimeoutError``) or ``ResumableError`` for all of ours. ``TransientError`` is what
the retry loop retries, and nothing else is. Every error carries its data as attributes (``url``,
``expected``, ``actual``, ``kept``) and pickles, so it survives process pools and Dask; every URL is
passed through :func:`~resumable.urls.redact` on the way in, and every message through
:func:`~resumable.urls.redact_text` (which also hides the values given to
:func:`~resumable.urls.register_secret`: every ``headers=`` value), so credentials never reach a
message or a log.

This module imports only :mod:`resumable.urls` (which imports nothing from the package), so every
other module can import it.
"""

from __future__ import annotations

from typing import Any

from .urls import redact, redact_text, scrub_secrets

__all__ = [
    "AccessDenied",
    "ArchiveTooLarge",
    "BatchError",
    "Cancelled",
    "CannotConnect",
    "ChecksumMismatch",
    "ConnectTimeout",
    "ConnectionFailed",
    "ConnectionRetriesExhausted",
    "CorruptArchive",
    "ExecutorError",
    "ExtractionError",
    "InternalError",
    "InvalidArgument",
    "LocalError",
    "PartialTakenOver",
    "ProtocolMismatch",
    "RemoteError",
    "ResumableError",
    "RetriesExhausted",
    "ServerBusy",
    "SizeMismatch",
    "SourceNotFound",
    "StallTimeout",
    "TimeoutRetriesExhausted",
    "TransientError",
    "UnsafeArchive",
    "UntrustedCertificate",
    "VerificationError",
]


def _restore(cls: type[ResumableError], args: tuple[Any, ...]) -> ResumableError:
    """Rebuild an error without calling its ``__init__`` (see ``ResumableError.__reduce__``)."""
    err = cls.__new__(cls)
    err.args = args
    return err


class ResumableError(Exception):
    """Base of every error raised by ``resumable``.

    Attributes:
        url: the URL involved, credentials redacted (``None`` when no URL is involved).
        kept: what was left on disk, in words (``"partial kept at ... (N of M bytes), resumable"``);
            filled in by the downloader when it knows.
    """

    def __init__(self, message: str, *, url: str | None = None, kept: str | None = None) -> None:
        # The one gate every message passes: whatever a message was built from (a third
        # party's text, an argument's repr, a server's words), no credential gets through.
        message = redact_text(message) if isinstance(message, str) else message
        super().__init__(message)
        self.message = message
        self.url = scrub_secrets(redact(url)) if url is not None else None
        self.kept = kept

    def __str__(self) -> str:
        text = self.message
        if self.url and self.url not in text:
            text = f"{text} [{self.url}]"
        if self.kept:
            text = f"{text}; {self.kept}"
        return text

    def __reduce__(self) -> tuple[Any, ...]:
        # Subclasses take different constructor arguments; restoring from args + __dict__ keeps
        # every one of them picklable without a __reduce__ each.
        return (_restore, (type(self), self.args), self.__dict__)


class InvalidArgument(ResumableError, ValueError):
    """An argument is invalid: malformed URL, unknown scheme, bad digest, negative size."""


class SourceNotFound(ResumableError, FileNotFoundError):
    """The object does not exist at the source (HTTP 404/410, missing key)."""


class AccessDenied(ResumableError, PermissionError):
    """The source refused access (HTTP 401/403, denied by the store)."""

    def __init__(self, message: str, *, url: str | None = None, status: int | None = None) -> None:
        super().__init__(message, url=url)
        self.status = status


class RemoteError(ResumableError):
    """The source answered in a way that retrying will not fix (other 4xx, redirect loop)."""

    def __init__(self, message: str, *, url: str | None = None, status: int | None = None) -> None:
        super().__init__(message, url=url)
        self.status = status


class UntrustedCertificate(RemoteError):
    """The server's TLS certificate failed verification (unknown issuer, wrong host, expired).

    Not retried: the same certificate would fail again. Verification is on by default; give the
    private CA's bundle with ``ResumableDownloader(verify="/path/to/ca.pem")``.
    """


class TransientError(ResumableError):
    """A failure worth retrying. ``retry_after`` is the wait the server asked for, if any."""

    retry_after: float | None = None


class ConnectionFailed(TransientError, ConnectionError):
    """The connection could not be made, or broke (refused, reset, cut mid-body)."""


class CannotConnect(ConnectionFailed):
    """No connection could be made: the host name does not resolve, the port refused, no route.

    The request never reached a server, so this is most often a wrong or dead address: until the
    file has moved a byte, these get only ``RetryPolicy.connect_attempts`` quick attempts. Once it
    has, a refusal is a server restarting mid-download and gets the ordinary budget.
    """


class StallTimeout(TransientError, TimeoutError):
    """No byte arrived for ``seconds``: the transfer stalled (or the connect timed out)."""

    def __init__(self, message: str, *, url: str | None = None, seconds: float | None = None):
        super().__init__(message, url=url)
        self.seconds = seconds


class ConnectTimeout(StallTimeout):
    """No connection within ``Timeouts.connect`` seconds (a host that drops packets): like
    :class:`CannotConnect`, the request never left, and it is retried as one."""


class ServerBusy(TransientError):
    """The server answered 5xx or 429; ``retry_after`` holds its Retry-After in seconds."""

    def __init__(
        self, *, url: str | None = None, status: int, retry_after: float | None = None
    ) -> None:
        hint = f", Retry-After {retry_after:g}s" if retry_after is not None else ""
        super().__init__(f"server answered HTTP {status}{hint}", url=url)
        self.status = status
        self.retry_after = retry_after


class ProtocolMismatch(TransientError):
    """The answer contradicted the request: wrong Content-Range, body shorter than announced.

    Retried, because a fresh request usually gets a correct answer (a proxy cut the body, a CDN
    node served a bad range); the bytes concerned are never kept.
    """


class RetriesExhausted(ResumableError):
    """Transient failures kept happening without progress until the retry budget ran out.

    ``attempts`` counts the attempts made; ``reason`` is the last failure, which is also
    ``__cause__`` when raised. What is raised is of the last failure's builtin family when it
    has one (:meth:`after` picks the class): a dead host ends as a ``ConnectionError``, a silent
    one as a ``TimeoutError``, so ``except ConnectionError`` works as it does with urllib3 or
    fsspec, and ``except RetriesExhausted`` still catches every one.
    """

    def __init__(self, *, url: str | None, attempts: int, reason: str) -> None:
        tries = "1 attempt" if attempts == 1 else f"{attempts} attempts"
        super().__init__(f"gave up after {tries} without progress: {reason}", url=url)
        self.attempts = attempts
        self.reason = reason

    @staticmethod
    def after(error: TransientError, *, url: str | None, attempts: int) -> RetriesExhausted:
        """The error that ends a budget whose last failure was ``error``, in its family."""
        kind: type[RetriesExhausted] = RetriesExhausted
        if isinstance(error, ConnectionError):
            kind = ConnectionRetriesExhausted
        elif isinstance(error, TimeoutError):
            kind = TimeoutRetriesExhausted
        return kind(url=url, attempts=attempts, reason=error.message)


class ConnectionRetriesExhausted(RetriesExhausted, ConnectionError):
    """The retry budget ran out on connection failures (unknown host, refused, reset)."""


class TimeoutRetriesExhausted(RetriesExhausted, TimeoutError):
    """The retry budget ran out on timeouts (no connection in time, or no byte in time)."""


class Cancelled(ResumableError):
    """The download was cancelled (``Job.cancel()``, Ctrl-C); what was fetched stays resumable."""


class BatchError(ResumableError):
    """Some items of a batch failed. ``failures`` holds ``(item, error)`` pairs.

    Raised by ``BatchResult.raise_for_errors()``; the message counts the failures by type and
    shows the first few, so a log line says what went wrong without a loop over ``failures``.
    """

    def __init__(self, failures: list[tuple[Any, BaseException]], *, succeeded: int = 0):
        kinds: dict[str, int] = {}
        for _, error in failures:
            kinds[type(error).__name__] = kinds.get(type(error).__name__, 0) + 1
        summary = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
        first = "; ".join(_told(error) for _, error in failures[:3])
        more = f"; and {len(failures) - 3} more" if len(failures) > 3 else ""
        super().__init__(
            f"{len(failures)} of {len(failures) + succeeded} items failed ({summary}): "
            f"{first}{more}"
        )
        self.failures = failures
        self.succeeded = succeeded


def _told(error: BaseException) -> str:
    """One failure in a :class:`BatchError` message: its message, and its causes as text that
    the message does not already say (a stored error keeps no traceback, so this is where the
    cause is told)."""
    text = str(error)
    told: list[str] = []
    cause = error
    for _ in range(4):
        nxt = cause.__cause__ or (None if cause.__suppress_context__ else cause.__context__)
        if nxt is None or nxt is error:
            break
        cause = nxt
        own = str(cause)
        if type(cause).__name__ == "Cause":  # already "Type: message", redacted (_light)
            told.append(own)
        elif own not in text:
            described = f"{type(cause).__name__}: {own}"
            told.append(described if isinstance(cause, ResumableError) else redact_text(described))
    return f"{text} (caused by {' <- '.join(told)})" if told else text


class ExecutorError(ResumableError):
    """The executor of a fanned-out batch could not run, or lost, the chunk holding this item.

    A Dask worker died more often than ``distributed.scheduler.allowed-failures`` allows
    (``KilledWorker``), a process pool broke, or the chunk could not be sent to a worker.
    ``cause`` names the executor's own error. Partials on a shared destination stay resumable:
    running the batch again continues them.
    """

    def __init__(self, message: str, *, url: str | None = None, cause: str | None = None):
        super().__init__(message, url=url, kept="partials kept; run the batch again to resume")
        self.cause = cause


class InternalError(ResumableError):
    """An exception that no part of resumable translated reached a public call: a bug in
    resumable or in a library it uses. The original exception is ``__cause__`` (and its type
    and message, redacted, are in this one's), and it was logged at ERROR. Nothing about the
    download's files is implied beyond what ``kept`` says: run again after reporting it.
    """


class VerificationError(ResumableError, ValueError):
    """The downloaded bytes are not what was expected; nothing was published."""

    def __init__(
        self, message: str, *, url: str | None = None, expected: Any = None, actual: Any = None
    ) -> None:
        super().__init__(message, url=url)
        self.expected = expected
        self.actual = actual


class SizeMismatch(VerificationError):
    """The size differs from the expected size (``expected`` and ``actual`` in bytes)."""

    def __init__(self, *, url: str | None = None, expected: int, actual: int, what: str = "size"):
        super().__init__(
            f"{what} mismatch: expected {expected} bytes, got {actual}",
            url=url,
            expected=expected,
            actual=actual,
        )


class ChecksumMismatch(VerificationError):
    """A digest differs from the expected one. ``algorithm`` names it (``sha256``, ``md5``...).

    ``origin`` says where the expected value came from when it was not the caller (e.g. "the
    checksum the source reported", for provider checksums verified automatically).
    """

    def __init__(
        self,
        *,
        url: str | None = None,
        algorithm: str,
        expected: str,
        actual: str,
        origin: str | None = None,
    ):
        against = f" against {origin}" if origin else ""
        super().__init__(
            f"{algorithm} mismatch{against}: expected {expected}, got {actual}",
            url=url,
            expected=expected,
            actual=actual,
        )
        self.algorithm = algorithm
        self.origin = origin


class LocalError(ResumableError, OSError):
    """The local side failed: the destination is unusable, the disk is full, a sidecar is bad."""

    def __init__(self, message: str, *, url: str | None = None, path: str | None = None):
        super().__init__(message, url=url)
        self.path = path


class PartialTakenOver(LocalError):
    """Another writer took over the ``.partial`` this download was writing.

    This happens only when file locking silently failed (NFS, Lustre): the owner token in the
    sidecar showed a different writer, so this download stopped rather than interleave bytes.
    """


class ExtractionError(ResumableError):
    """A downloaded (and verified) archive could not be extracted.

    Nothing of it was promoted into the target folders: what was written went to a staging
    folder that is removed. The archive itself is kept, even with ``delete_archive=True``.

    Attributes:
        path: the archive.
        member: the member concerned, if one is (as named in the archive).
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        member: str | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__(message, url=url)
        self.path = path
        self.member = member

    def __str__(self) -> str:
        text = super().__str__()
        if self.path and self.path not in text:
            text = f"{text} (archive {self.path})"
        return text


class UnsafeArchive(ExtractionError, ValueError):
    """A member would land outside its target folder (an absolute name, ``..``, a symlink or
    hard link pointing outside) or is a device file, FIFO or other special file. The whole
    archive is refused."""


class ArchiveTooLarge(ExtractionError, ValueError):
    """Extracting would pass a limit of :class:`~resumable.extract.ExtractLimits` (total bytes,
    members, or the ratio of extracted bytes to archive bytes): a decompression bomb, or a
    limit set too low. ``limit`` names it; ``expected`` is the limit, ``actual`` the value seen."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        limit: str,
        expected: float,
        actual: float,
    ) -> None:
        super().__init__(message, path=path)
        self.limit = limit
        self.expected = expected
        self.actual = actual


class CorruptArchive(ExtractionError, ValueError):
    """The archive cannot be read: truncated, a bad CRC, not the format its name says."""
