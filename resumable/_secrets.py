"""The caller's secrets: headers checked before any traffic, known values hidden in every text.

A token handed to ``headers=`` leaks in two ways unless the library stops it at its door:

- **A value that cannot be sent.** A token read from a file keeps its trailing newline; a
  pasted one may hold a non-latin-1 character. ``http.client`` then raises a bare
  ``ValueError``/``UnicodeEncodeError`` quoting the value, and requests raises an error that
  looks like a connection failure, so it was retried and logged at every attempt. So
  :func:`check_headers` refuses, at construction, names that are not RFC 9110 tokens and values
  that are not latin-1 or hold CR, LF, NUL or another control character, with an
  :class:`~resumable.errors.InvalidArgument` that names the header and never shows the value.
- **A value quoted by some message.** A token has no syntax by which it can be recognised, so
  :func:`remember` registers every value given (:func:`resumable.urls.register_secret`):
  every :class:`~resumable.errors.ResumableError` message and
  :func:`~resumable.urls.redact_text` then hide it, and :class:`RedactFilter` passes every
  log record of ``resumable`` (and of ``urllib3``/``requests``) through ``redact_text``.

:func:`is_secret_name` says which headers are credentials by their name: they are never sent
to another host after a redirect (:class:`~resumable.sources._http_safety.SafeSession`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping

from .errors import InvalidArgument
from .urls import redact_text, register_secret

__all__ = ["RedactFilter", "check_headers", "install_log_filter", "is_secret_name", "remember"]

# RFC 9110 section 5.6.2: token = 1*tchar.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Control characters other than HTAB (RFC 9110 section 5.5 allows only VCHAR, obs-text, SP, HTAB).
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_SECRET_NAME = re.compile(
    r"authorization|cookie|token|key|secret|auth|passw|credential|session|signature",
    re.IGNORECASE,
)
# Headers the library sets itself, per request, to resume: a fixed one would break every
# request (each GET would ask for the same range).
_OURS = frozenset({"range", "if-range"})
_AUTH_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]*\s+(?P<credentials>\S.*)$", re.S)
_UNCHANGED = "nothing was fetched and nothing on disk was changed"


def is_secret_name(name: str) -> bool:
    """Whether a header (or storage option) named ``name`` carries a credential by its name:
    ``Authorization``, ``Proxy-Authorization``, ``Cookie``, ``X-Api-Key``, ``X-Auth-Token``...
    """
    return bool(_SECRET_NAME.search(name))


def check_headers(headers: object) -> dict[str, str]:
    """``headers`` as a plain dict, or :class:`InvalidArgument` naming the bad header.

    A value is never shown (any of them may be a credential); a name is shown only when it is
    a valid token, so a whole ``"Authorization: Bearer ..."`` given as a name is not echoed.
    """
    if headers is None:
        return {}
    pairs: Iterable[tuple[object, object]]
    if isinstance(headers, Mapping):
        pairs = headers.items()
    else:  # (name, value) pairs, as dict() takes them; never a string
        try:
            if isinstance(headers, (str, bytes)):
                raise TypeError
            pairs = dict(headers).items()  # type: ignore[call-overload]
        except (TypeError, ValueError):
            raise _invalid(
                f"headers must be a mapping of names to values, got {type(headers).__name__}"
            ) from None
    return {_checked_name(name): _checked_value(name, value) for name, value in pairs}


def _checked_name(name: object) -> str:
    if not isinstance(name, str):
        raise _invalid(f"a header name must be a str, got {type(name).__name__}")
    if not _TOKEN.fullmatch(name):
        raise _invalid(
            "a header name must be an RFC 9110 token (ASCII letters, digits and "
            f"!#$%&'*+-.^_`|~; no space, no ':'), and one of {len(name)} characters is not "
            "(it is not shown: it may hold a secret; give the value separately, as "
            "headers={'Name': 'value'})"
        )
    if name.lower() in _OURS:
        raise _invalid(
            f"header {name!r} is set by resumable itself on each request (to resume); it "
            "cannot be given in headers="
        )
    return name


def _checked_value(name: object, value: object) -> str:
    if not isinstance(value, str):
        raise _invalid(f"the value of header {name!r} must be a str, got {type(value).__name__}")
    problem = _value_problem(value)
    if problem:
        raise _invalid(f"the value of header {name!r} {problem} (the value is not shown)")
    return value


def _value_problem(value: str) -> str | None:
    """Why ``value`` cannot be sent as it is, in words, or ``None``."""
    stripped = value.rstrip("\r\n")
    if stripped != value and not _CONTROL.search(stripped):
        return (
            "ends with a newline, a common mistake when a token is read from a file: "
            "strip it (.strip())"
        )
    if "\r" in value or "\n" in value:
        return "holds a newline (CR or LF), which would end the header early"
    control = _CONTROL.search(value)
    if control:
        kind = "NUL" if control.group() == "\x00" else f"control character {control.group()!r}"
        return f"holds a {kind} at position {control.start()}, which HTTP does not allow"
    try:
        value.encode("latin-1")
    except UnicodeEncodeError as exc:
        return (
            f"holds a character that is not latin-1 at position {exc.start} (HTTP header "
            "values are ISO-8859-1 bytes: percent-encode or base64 it)"
        )
    if value[:1].isspace():
        return "starts with whitespace"
    return None


def _invalid(message: str) -> InvalidArgument:
    return InvalidArgument(message, kept=_UNCHANGED)


def remember(headers: Mapping[str, str]) -> None:
    """Register the header values as secrets (see :func:`resumable.urls.register_secret`).

    Every value is registered, a credential-named header's from 4 characters, any other's
    from 12 (shorter values are words that messages hold: ``identity``, ``no-cache``), and
    so is the credential after an auth scheme (``Bearer <token>``, ``Basic <base64>``). The
    storage options' credentials are registered by the fsspec source's error boundary
    (:class:`~resumable.sources._fsspec_errors.Boundary`), which knows their shapes
    (connection strings, SAS tokens, the environment's secrets).
    """
    for name, value in headers.items():
        shortest = 4 if is_secret_name(name) else 12
        register_secret(value, min_length=shortest)
        match = _AUTH_SCHEME.match(value.strip())
        if match:
            register_secret(match["credentials"], min_length=shortest)


class RedactFilter(logging.Filter):
    """Rewrites a record's message, and its traceback text, with :func:`redact_text`.

    It never drops a record. A traceback (``exc_info``) is formatted here and stored redacted
    in ``exc_text``, which the standard ``Formatter`` prints instead of formatting it again.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to the handler to report
            return True
        clean = redact_text(message)
        if clean != message:
            record.msg, record.args = clean, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = redact_text(logging.Formatter().formatException(record.exc_info))
        return True


_FILTER = RedactFilter()


def install_log_filter(*prefixes: str) -> None:
    """Attach the redacting filter to the loggers named ``prefixes`` and their existing
    children (idempotent). A filter runs only for records logged on its own logger, so each
    module's logger gets it."""
    names = set(prefixes) | {
        name
        for name in list(logging.Logger.manager.loggerDict)
        if name.startswith(tuple(f"{prefix}." for prefix in prefixes))
    }
    for name in names:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
