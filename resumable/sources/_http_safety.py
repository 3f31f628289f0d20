"""The HTTP source's safety rules: TLS verification, safe redirects, no secret in any text.

Kept apart from :mod:`resumable.sources.http` (the transfer mechanics) because these are policy
about credentials, and each rule answers a way a signed URL or a token leaks in practice:

- **TLS is verified** (requests' default), and an explicit CA bundle given to the downloader
  wins over ``REQUESTS_CA_BUNDLE`` (requests lets the environment override a session's
  ``verify``, so a private CA set in code would silently be ignored).
- **Redirects stay on HTTP(S).** A ``Location`` with another scheme (``file:``, ``ftp:``,
  ``gopher:``...) is refused with :class:`~resumable.errors.RemoteError` before any request.
  requests would raise ``InvalidSchema`` with the target URL in its message. A redirect to
  another host (or from https to http) drops ``Authorization`` (requests'
  ``Session.rebuild_auth``) and every other header named as a credential (``X-Api-Key``,
  ``Proxy-Authorization``, ``Cookie``: :func:`resumable._secrets.is_secret_name`).
- **No secret in text.** urllib3 logs each request line at DEBUG, query string included
  (``"GET /k?X-Amz-Signature=... HTTP/1.1"``), and requests/urllib3 exceptions quote the URL.
  A logging filter redacts urllib3's records, and :func:`scrub_chain` redacts the messages of
  the third-party exceptions chained under ours (``__cause__``), which tracebacks print.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from .._secrets import install_log_filter as _install
from .._secrets import is_secret_name
from ..errors import RemoteError
from ..urls import redact_text

__all__ = ["SafeSession", "check_redirect", "install_log_filter", "scrub_chain"]

_HTTP_SCHEMES = ("http", "https")


class SafeSession(requests.Session):
    """A ``requests.Session`` that refuses non-HTTP redirects and keeps an explicit ``verify``.

    ``verify``: ``True`` (the system/certifi bundle, or ``REQUESTS_CA_BUNDLE``), a CA bundle
    file or directory, or ``False`` (no verification; urllib3 warns on every request).
    """

    def __init__(self, verify: bool | str | os.PathLike[str] = True) -> None:
        super().__init__()
        self.verify = os.fspath(verify) if isinstance(verify, os.PathLike) else verify

    def merge_environment_settings(
        self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> Any:
        # requests consults REQUESTS_CA_BUNDLE whenever the per-request verify is None/True,
        # overriding a session-level bundle or False: pass ours explicitly unless it is True.
        if verify is None and self.verify is not True:
            verify = self.verify
        return super().merge_environment_settings(url, proxies, stream, verify, cert)

    def get_redirect_target(self, resp: requests.Response) -> str | None:
        location: str | None = super().get_redirect_target(resp)
        if location is not None:
            try:
                check_redirect(resp.url, location, resp.status_code)
            except RemoteError:
                resp.close()
                raise
        return location

    def rebuild_auth(self, prepared_request: Any, response: Any) -> None:
        """requests drops ``Authorization`` on a redirect to another host (or https -> http);
        drop every other header named as a credential too (``Proxy-Authorization``,
        ``X-Api-Key``, ``X-Auth-Token``...): a token is for the host it was given for."""
        super().rebuild_auth(prepared_request, response)  # type: ignore[no-untyped-call]
        old, new = response.request.url, prepared_request.url
        if self.should_strip_auth(old, new):  # type: ignore[no-untyped-call]
            for name in [n for n in prepared_request.headers if is_secret_name(n)]:
                del prepared_request.headers[name]


def check_redirect(url: str, location: str, status: int) -> None:
    """Raise :class:`RemoteError` unless ``location`` (relative to ``url``) is http(s)."""
    scheme = urlsplit(urljoin(url, location)).scheme.lower()
    if scheme not in _HTTP_SCHEMES:
        raise RemoteError(
            f"refused a redirect to a {scheme or 'schemeless'}: URL (only http and https "
            "are followed)",
            url=url,
            status=status,
        )


_URLLIB3_LOGGERS = (
    "urllib3",
    "urllib3.connectionpool",
    "urllib3.connection",
    "urllib3.poolmanager",
    "urllib3.response",
    "urllib3.util.retry",
    "requests",
)


def install_log_filter() -> None:
    """Attach the redacting filter (:class:`resumable._secrets.RedactFilter`) to urllib3's and
    requests' loggers (idempotent), the module loggers that may not exist yet included."""
    _install(*_URLLIB3_LOGGERS)


def scrub_chain(exc: BaseException) -> None:
    """Redact the messages of ``exc`` and every exception it wraps or was caused by, in place.

    requests' ``ConnectionError(MaxRetryError("... with url: /k?sig=..."))`` ends up as the
    ``__cause__`` of our error; a traceback or ``logging.exception`` prints it.
    """
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        with contextlib.suppress(AttributeError, TypeError):  # exotic exception types
            current.args = tuple(
                redact_text(arg) if isinstance(arg, str) else arg for arg in current.args
            )
        for name in ("url", "reason"):
            value = getattr(current, name, None)
            if isinstance(value, str):
                with contextlib.suppress(AttributeError, TypeError):  # a read-only attribute
                    setattr(current, name, redact_text(value))
        nested = [getattr(current, "reason", None), current.__cause__, current.__context__]
        nested += list(current.args)
        pending.extend(n for n in nested if isinstance(n, BaseException))
