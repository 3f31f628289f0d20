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
passed through :func:`redact` on the way in, and every message through :func:`redact_text`
(which also hides the values given to :func:`register_secret`: every ``headers=`` value), so
credentials never reach a message or a log.

This module imports nothing from the package, so every other module can import it.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

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
    "identity",
    "redact",
    "redact_text",
    "register_secret",
    "register_secrets",
]

# Query parameters that carry secrets in signed URLs: AWS SigV4/V2, GCS V4 and V2, Azure SAS,
# CloudFront, Akamai (hdnts, __token__), and the names people use for API keys, tokens and
# passwords. Exact names only: they are credentials, never what names an object.
_SECRET_PARAMS = re.compile(
    r"^(x-amz-(signature|credential|security-token)|x-goog-(signature|credential)"
    r"|signature|sig|se|skoid|sktid|token|access_token|api[-_]?key|key|password|secret"
    r"|policy|key-pair-id|awsaccesskeyid|googleaccessid|oh"  # oh: Meta's CDN signature
    r"|auth|auth[-_]?token|api[-_]?token|x-api-key|(id|refresh|session|security|private)_token"
    r"|client_secret|secret_key|access_key(_id)?|passwd|pwd|jwt|hdnts|__token__|hmac)$",
    re.IGNORECASE,
)
REDACTED = "REDACTED"


# A URL without userinfo, query, parameters or fragment, in a lower-case scheme: redact() and
# identity() return it as it is (what parsing it and putting it back together gives), without
# the parsing, which a batch of small files paid several times per file.
_NOTHING_TO_HIDE = re.compile(
    r"[a-z][a-z0-9+.-]*://[^/@?#;\s\x00-\x1f\x7f]+(/[^@?#;\s\x00-\x1f\x7f]*)?\Z"
)


def redact(url: str) -> str:
    """Return ``url`` with its password and secret query parameters replaced by ``REDACTED``.

    Signed URLs (S3 presigned, GCS signed, Azure SAS) are credentials: anyone holding one can read
    the object. They end up in exception messages, logs and sidecar files unless every place that
    prints a URL prints this instead. Anything that does not parse as a URL is returned unchanged
    apart from ``user:password@`` removal, because a message must never fail to build.
    """
    if _NOTHING_TO_HIDE.match(url):
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        text = re.sub(r"//[^/@\s]*@", f"//{REDACTED}@", url)
        return re.sub(
            r"([?&;#])([^=&;#\s]+)=([^&;#\s]*)",
            lambda m: (
                m.group(0)
                if not _SECRET_PARAMS.match(m.group(2))
                else f"{m.group(1)}{m.group(2)}={REDACTED}"
            ),
            text,
        )
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{REDACTED}@{host}" if ":" in userinfo else f"{REDACTED}@{host}"
    # A fragment can hold parameters too (OAuth's "#access_token=..."): never sent, but shown.
    query, fragment = _redact_params(parts.query), _redact_params(parts.fragment)
    return urlunsplit((parts.scheme, netloc, parts.path, query, fragment))


def _redact_params(text: str) -> str:
    """``a=1&sig=x`` with the values of secret parameters replaced (re-encoded if any is)."""
    if not text or "=" not in text:
        return text
    pairs = parse_qsl(text, keep_blank_values=True)
    if not any(_SECRET_PARAMS.match(k) for k, _ in pairs):
        return text
    return urlencode([(k, REDACTED if _SECRET_PARAMS.match(k) else v) for k, v in pairs], safe="/:")


# The password runs to the LAST "@" before the host (a raw "@" inside it is hidden too).
_TEXT_USERINFO = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^/\s@:?#]*)(?P<pw>:[^/\s?#]*)?@"
)
_TEXT_PARAM = re.compile(r"(?P<sep>[?&;#])(?P<name>[^=&;#\s?\"'<>]+)=(?P<value>[^&;#\s\"'<>]*)")
# Credential headers quoted as "Name: value", "'Name': 'value'" or "'Name': b'value'" (a dict
# of request headers, as botocore logs it at DEBUG). A value runs to a quote or the line's end,
# commas included ("AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...").
_TEXT_AUTH = re.compile(
    r"(?P<name>(?:proxy-)?authorization|x-amz-security-token|cookie|x-api-key|x-auth-token"
    r"|private-token|x-goog-api-key)(?P<sep>[\"']?\s*[:=]\s*b?[\"']?)"
    r"(?P<value>[^\"'\r\n}]+)",
    re.IGNORECASE,
)


def redact_text(text: str) -> str:
    """``text`` with every credential that looks like part of a URL or a header replaced.

    For free text that may quote URLs or request lines: third-party exception messages and log
    records (urllib3 logs ``"GET /k?X-Amz-Signature=... HTTP/1.1"`` at DEBUG). Passwords in
    ``scheme://user:password@``, the values of the query parameters :func:`redact` hides, and
    ``Authorization`` header values become ``REDACTED``; so does every value given to
    :func:`register_secret` (the ``headers=`` values of every downloader), wherever it appears.
    """
    text = _scrub_registered(text)
    text = _TEXT_USERINFO.sub(
        lambda m: (
            f"{m['scheme']}{m['user']}:{REDACTED}@" if m["pw"] else f"{m['scheme']}{REDACTED}@"
        ),
        text,
    )
    text = _TEXT_PARAM.sub(
        lambda m: f"{m['sep']}{m['name']}={REDACTED}" if _SECRET_PARAMS.match(m["name"]) else m[0],
        text,
    )
    return _TEXT_AUTH.sub(lambda m: f"{m['name']}{m['sep']}{REDACTED}", text)


# The caller's own secrets: values that mean nothing as URL syntax (a bearer token, an API key,
# a cookie) and can only be recognised by being known. Shorter values would hide ordinary words
# and numbers of every message ("X-Debug: 1"), so they are not remembered; the oldest are
# forgotten past _MAX_SECRETS (a process minting a token per downloader for days).
_MIN_SECRET = 4
_MAX_SECRETS = 1024
_secrets: dict[str, None] = {}  # insertion-ordered set
_secrets_lock = threading.Lock()
_secrets_pattern: re.Pattern[str] | None = None


def register_secret(value: str, *, min_length: int = _MIN_SECRET) -> None:
    """Hide ``value`` from every text ``resumable`` lets out, from now on, in this process.

    :class:`~resumable.ResumableDownloader` registers every ``headers=`` value (and the
    credential after an auth scheme, ``Bearer <token>``) and the secret-looking
    ``storage_options``; call it for secrets of your own that could reach a message (a token
    inside a URL path). Every :class:`ResumableError` message, :func:`redact_text` (and so
    ``resumable``'s, ``urllib3``'s and ``requests``' log records) then shows ``REDACTED``
    instead. The value is also hidden as Python would quote it (``'\\n'``, ``'\\x00'``).
    Values shorter than ``min_length`` are ignored: hiding them would garble every message.
    """
    global _secrets_pattern
    if not isinstance(value, str):
        return
    forms = {value, value.strip(), repr(value)[1:-1], ascii(value)[1:-1]}
    forms = {form for form in forms if len(form) >= max(min_length, 1)}
    with _secrets_lock:
        if forms <= _secrets.keys():
            return  # known already (every downloader of a process registers its headers)
        for form in forms:
            _secrets.setdefault(form, None)
        while len(_secrets) > _MAX_SECRETS:
            del _secrets[next(iter(_secrets))]
        ordered = sorted(_secrets, key=len, reverse=True)  # the longest form wins
        _secrets_pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None


def register_secrets(values: Iterable[str], *, min_length: int = _MIN_SECRET) -> None:
    """:func:`register_secret` for each of ``values``."""
    for value in values:
        register_secret(value, min_length=min_length)


def _scrub_registered(text: str) -> str:
    pattern = _secrets_pattern
    return pattern.sub(REDACTED, text) if pattern is not None else text


# Signed URLs, by kind: the parameters that prove a URL is of that kind (all present, names
# compared in lower case), and the parameters of that kind that change each time the URL is
# signed again (exact names, or prefixes ending in "*"). Only a URL of that kind loses them:
# elsewhere ``sp``, ``st``, ``expires`` or ``token`` are ordinary parameters that may name the
# object (``?file=x&sp=train``).
_SIGNED_KINDS: tuple[tuple[frozenset[str], frozenset[str]], ...] = (
    # AWS Signature V4 presigned URLs (S3 and any SigV4 service); x-id: the operation, added
    # by some SDKs.
    (frozenset({"x-amz-signature"}), frozenset({"x-amz-*", "x-id"})),
    # AWS Signature V2 query authentication (legacy S3 presigned URLs).
    (
        frozenset({"awsaccesskeyid", "signature", "expires"}),
        frozenset({"awsaccesskeyid", "signature", "expires", "x-amz-security-token"}),
    ),
    # Google Cloud Storage V4 signed URLs, and the V2 ones.
    (frozenset({"x-goog-signature"}), frozenset({"x-goog-*"})),
    (
        frozenset({"googleaccessid", "signature", "expires"}),
        frozenset({"googleaccessid", "signature", "expires"}),
    ),
    # Azure shared access signatures (service, account and user delegation SAS): a signed
    # version and a signature. ``snapshot`` and ``versionid`` name a blob: kept.
    (
        frozenset({"sv", "sig"}),
        frozenset(
            {
                *("sv", "ss", "srt", "sp", "st", "se", "sip", "spr", "sr", "sdd", "si", "sig"),
                *("ses", "skoid", "sktid", "skt", "ske", "sks", "skv", "saoid", "suoid"),
                *("scid", "sduoid", "rscc", "rscd", "rsce", "rscl", "rsct"),
            }
        ),
    ),
    # CloudFront signed URLs: canned (Expires) or custom (Policy) policy.
    (
        frozenset({"signature", "key-pair-id"}),
        frozenset({"expires", "policy", "signature", "key-pair-id"}),
    ),
    # Meta's CDN (the SA-1B links): signature, expiry and per-signing cache keys.
    (frozenset({"oh", "oe"}), frozenset({"oh", "oe", "_nc_*"})),
    # Token authentication of CDNs such as Bunny and KeyCDN: a token with its expiry.
    (frozenset({"token", "expires"}), frozenset({"token", "expires", "token_path"})),
    (frozenset({"token", "expire"}), frozenset({"token", "expire"})),
    # Akamai's token (``exp=...~acl=...~hmac=...`` in one parameter), by its usual names.
    (frozenset({"__token__"}), frozenset({"__token__"})),
    (frozenset({"hdnts"}), frozenset({"hdnts"})),
)


def _signing_params(names: set[str]) -> tuple[set[str], tuple[str, ...]]:
    """The signing parameters to drop for a URL whose query has ``names`` (lower case):
    exact names and name prefixes, from every kind of signed URL it is."""
    exact: set[str] = set()
    prefixes: list[str] = []
    for proof, signing in _SIGNED_KINDS:
        if proof <= names:
            exact.update(name for name in signing if not name.endswith("*"))
            prefixes.extend(name[:-1] for name in signing if name.endswith("*"))
    return exact, tuple(prefixes)


def identity(url: str) -> str:
    """The object a URL names, for deciding whether a partial or a ledger row belongs to it.

    Credentials are redacted (:func:`redact`) and, for a signed URL of a known kind (S3 or GCS
    presigned, Azure SAS, CloudFront, Meta's CDN), that kind's signing parameters (signature,
    date, expiry, SAS fields) are dropped, so a URL signed again tomorrow still resumes the
    same partial. Every other parameter is kept: ``?file=x&sp=train`` and ``?file=x&sp=test``
    are two objects, as are two ``versionId`` values.
    """
    if _NOTHING_TO_HIDE.match(url):
        return url
    url = redact(url)
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    exact, prefixes = _signing_params({k.lower() for k, _ in pairs})
    query = urlencode(
        [(k, v) for k, v in pairs if k.lower() not in exact and not k.lower().startswith(prefixes)]
    )
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, query, ""))


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
        self.url = _scrub_registered(redact(url)) if url is not None else None
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
        super().__init__(f"gave up after {attempts} attempts without progress: {reason}", url=url)
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
