"""HTTP(S) source: one pooled keep-alive ``requests.Session``, ranges checked, errors translated.

Only this module imports requests and urllib3; GET requests to plain ``http://`` hosts go through
the standard library's ``http.client`` (:mod:`._http_plain`, see :meth:`HTTPSource._plain_get`).
Three rules shape it:

- **Never trust a Range request.** The answer's status and ``Content-Range`` say where the body
  really starts (``Body.start``); a 200 to a ranged request starts at 0. The downloader compares.
- **Ask for exact bytes.** ``Accept-Encoding: identity`` on every request, so ``Content-Length``
  and ranges count stored bytes. A server that compresses anyway is decoded as a whole stream,
  with no size and no ranges (a compressed byte offset means nothing in the stored file).
- **Translate at one boundary.** :func:`._http_errors.translated` maps every requests,
  urllib3 and socket error to :mod:`resumable.errors`; nothing else escapes this module.
"""

from __future__ import annotations

import http.client
import os
import re
from collections.abc import Iterator
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter

from .._version import __version__
from ..cancel import aborted, track
from ..errors import (
    Cancelled,
    InvalidArgument,
    ProtocolMismatch,
    RemoteError,
)
from . import RemoteInfo, SourceConfig
from ._http_answers import (
    announced,
    check_encoding,
    check_framing,
    decodable_encoding,
    decoder_finished,
    describe,
    is_encoded,
    raise_for_status,
)
from ._http_errors import translate, translated
from ._http_plain import PlainAnswer, PlainPool
from ._http_safety import SafeSession, check_redirect, install_log_filter
from ._http_wire import Adapter, Response

__all__ = ["HTTPBody", "HTTPSource"]

# URLs sent as they are (requests would re-quote anything else): RFC 3986 characters only.
_PLAIN_URL = re.compile(r"^https?://[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+$")
_UNSATISFIED_RANGE = re.compile(r"^\s*bytes\s+\*/(\d+)\s*$", re.IGNORECASE)
_E = TypeVar("_E", bound=BaseException)


class HTTPSource:
    """Serves ``http://`` and ``https://`` URLs.

    One ``requests.Session`` per downloader, with a connection pool of
    ``SourceConfig.max_connections`` per host, so consecutive files from one server reuse a warm
    keep-alive connection. requests' own retries are off: the downloader's policy decides.
    Proxies, ``.netrc`` and ``REQUESTS_CA_BUNDLE`` work as they do in requests.

    ``automatic_connections = 8``: with ``connections=None`` a large file is fetched over 8
    connections, since CDNs and web servers often limit each connection's speed.
    """

    automatic_connections = 8

    def __init__(self, config: SourceConfig | None = None) -> None:
        config = config or SourceConfig()
        self._timeout = (config.timeouts.connect, config.timeouts.stall)
        self._stall = config.timeouts.stall
        install_log_filter()  # urllib3 logs request lines, signatures included, at DEBUG
        session = _Session(verify=config.verify)
        self._pool_size = max(config.max_connections, 1)  # per host, both kinds of pool
        adapter = Adapter(
            pool_connections=self._pool_size, pool_maxsize=self._pool_size, max_retries=0
        )
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.max_redirects = 10
        default_agent = str(session.headers.get("User-Agent", ""))
        session.headers["User-Agent"] = f"resumable/{__version__} {default_agent}".strip()
        session.headers["Accept-Encoding"] = "identity"
        session.headers.update(config.headers)
        self._session = session
        # For _plain_get: a pool per (scheme, host), or False when requests must handle it.
        self._pools: dict[tuple[str, str], Any] = {}
        self._headers: dict[str, str | bytes] = dict(session.headers)
        self._urllib3_timeout = urllib3.Timeout(
            connect=config.timeouts.connect, read=config.timeouts.stall
        )

    def stat(self, url: str) -> RemoteInfo:
        """HEAD the URL; fall back to a one-byte GET when HEAD is refused.

        Presigned S3/GCS URLs are signed for GET only and answer 403 to HEAD; some servers
        answer 405/501. The fallback ``Range: bytes=0-0`` GET then gives the same facts.
        """
        with translated(url, self._stall):
            response = self._session.head(url, allow_redirects=True, timeout=self._timeout)
            response.close()
            if response.status_code in (403, 405, 501):
                response = self._session.get(
                    url, headers={"Range": "bytes=0-0"}, stream=True, timeout=self._timeout
                )
                response.close()
        raise_for_status(response, url)
        _, info = describe(response, url)
        if response.status_code == 206 and info.size is None:
            raise ProtocolMismatch("a 206 answer without the object's total size", url=url)
        return info

    def open(
        self, url: str, start: int = 0, end: int | None = None, expect: RemoteInfo | None = None
    ) -> HTTPBody:
        """GET ``url`` from byte ``start`` (to ``end``, exclusive), pinned to ``expect``.

        With a ``start`` or ``end``, sends ``Range`` and, when ``expect`` has one, ``If-Range``
        with its strong ETag, else its Last-Modified date (a weak ETag is never used there:
        RFC 9110 forbids it and it does not identify bytes). A 416 for a range starting at or
        past the end comes back as an empty body whose ``info.size`` tells the real size.
        """
        headers: dict[str, str] = {}
        if start > 0 or end is not None:
            headers["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
            if expect is not None:
                validator = expect.strong_etag or expect.last_modified
                if validator:
                    headers["If-Range"] = validator
        with translated(url, self._stall):
            response: _Response | None = self._plain_get(url, headers)
            if response is None:
                response = self._session.get(
                    url, headers=headers, stream=True, timeout=self._timeout, allow_redirects=True
                )
        try:
            if response.status_code == 416 and "Range" in headers:
                return self._unsatisfiable(response, url, start)
            raise_for_status(response, url)
            check_encoding(response, url)
            check_framing(response, url)
            body_start, info = describe(response, url)
            encoded = is_encoded(response)
            if encoded and response.status_code == 206:
                raise ProtocolMismatch("a compressed answer to a byte-range request", url=url)
            if encoded and not isinstance(response, PlainAnswer):  # (which is never encoded)
                response.raw.decode_content = True
            return HTTPBody(response, url, body_start, info, self._stall)
        except BaseException:
            response.close()
            raise

    def _plain_get(self, url: str, headers: dict[str, str]) -> _Answer | PlainAnswer | None:
        """The GET straight through the adapter's urllib3 pool, when requests adds nothing.

        requests' own work per request (preparing, merging settings and cookies, hooks) costs
        ~0.3 ms of CPU: more than a 256 KiB file's transfer on loopback, and the GIL makes a
        batch of small files pay it in series. When a host needs none of it (no proxy, no
        credentials from the URL or ``.netrc``, no session auth) and the URL needs no
        re-quoting, the request goes to the same connection pool directly: the same TLS
        settings, headers and timeouts. Anything else (and any redirect: the host is then
        remembered) goes through requests, whose redirect rules (:class:`SafeSession`) apply.

        A plain ``http://`` host skips urllib3 too: :class:`~._http_plain.PlainPool` (why is
        in that module). A body compressed despite ``Accept-Encoding: identity`` also hands
        the host to requests, which decodes it.
        """
        if not _PLAIN_URL.match(url):
            return None
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc)
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = self._plain_pool(url, parts.username, parts.password)
        if pool is False:
            return None
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        answer: _Answer | PlainAnswer
        if isinstance(pool, PlainPool):
            answer = pool.get(target, {**self._headers, **headers})
            if not 300 <= answer.status_code < 400 and not decodable_encoding(answer):
                return answer  # (an encoding nobody here decodes is refused by open())
            answer.close()
        else:
            raw = pool.urlopen(
                "GET",
                target,
                headers={**self._headers, **headers},
                redirect=False,
                retries=False,
                preload_content=False,
                decode_content=False,
                timeout=self._urllib3_timeout,
                release_conn=False,
            )
            answer = _Answer(raw)
            if not 300 <= answer.status_code < 400:
                return answer
            raw.drain_conn()  # a redirect's short body: its connection stays in the pool
            raw.release_conn()
        # A redirect (requests follows it, under our rules) or, from http.client, a body
        # compressed despite Accept-Encoding: identity (requests decodes it): from now on this
        # host goes through requests.
        location = answer.headers.get("Location")
        if location and 300 <= answer.status_code < 400:
            check_redirect(url, location, answer.status_code)  # refused here, not asked again
        self._pools[key] = False
        return None

    def _plain_pool(self, url: str, user: str | None, password: str | None) -> Any:
        """The adapter's pool for ``url``'s host, or ``False`` if requests must handle it."""
        if user or password or self._session.auth is not None:
            return False
        settings = self._session.merge_environment_settings(url, {}, None, None, None)
        if settings["proxies"] or requests.utils.get_netrc_auth(url):
            return False
        adapter = self._session.get_adapter(url)
        if not isinstance(adapter, HTTPAdapter):
            return False
        if url.startswith("http://"):  # no TLS: the standard library's client is enough
            parts = urlsplit(url)
            return PlainPool(
                parts.hostname or "",
                parts.port,
                connect=self._timeout[0],
                stall=self._stall,
                size=self._pool_size,
            )
        prepared = requests.Request("GET", url).prepare()
        return adapter.get_connection_with_tls_context(
            prepared, settings["verify"], None, settings["cert"]
        )

    def _unsatisfiable(self, response: _Response, url: str, start: int) -> HTTPBody:
        response.close()
        match = _UNSATISFIED_RANGE.match(response.headers.get("Content-Range", ""))
        if match is None:
            raise RemoteError(
                f"HTTP 416 for a range from byte {start}, without the object's size", url=url
            )
        _, info = describe(response, url)
        sized = RemoteInfo(
            url=url,
            size=int(match.group(1)),
            etag=info.etag,
            last_modified=info.last_modified,
            accept_ranges=True,
        )
        return HTTPBody(response, url, start, sized, self._stall)

    def list(self, prefix: str) -> Iterator[tuple[str, RemoteInfo]]:
        """Plain HTTP has no listing; prefixes need an fsspec source (``s3://``, ``gs://``...)."""
        raise InvalidArgument(
            "HTTP(S) URLs cannot be listed as a prefix; give the files' URLs or a brace template",
            url=prefix,
        )

    def close(self) -> None:
        for pool in self._pools.values():
            if isinstance(pool, PlainPool):
                pool.close()
        self._session.close()


class _Session(SafeSession):
    """The safe session (see :mod:`._http_safety`), reading proxy and CA-bundle settings from
    the environment once per host rather than on every request.

    requests scans ``os.environ`` (proxies, ``no_proxy``, ``REQUESTS_CA_BUNDLE``) for each
    request: ~0.3 ms, a third of its per-request cost, paid thousands of times by a batch of
    small files. The environment is read when a host is first used by this downloader.
    """

    def __init__(self, verify: bool | str | os.PathLike[str] = True) -> None:
        super().__init__(verify)
        self._environment: dict[tuple[str, str], Any] = {}

    def merge_environment_settings(
        self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> Any:
        if not isinstance(url, str) or proxies or verify not in (None, True) or cert is not None:
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc.rpartition("@")[2])
        cached = self._environment.get(key)
        if cached is None:
            cached = super().merge_environment_settings(url, {}, None, verify, None)
            self._environment[key] = cached
        return {**cached, "proxies": dict(cached["proxies"]), "stream": stream}


class _Answer:
    """What the source reads of a ``requests.Response``, over a bare urllib3 response."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.status_code: int = raw.status
        self.headers = raw.headers
        self.reason: str | None = raw.reason

    def close(self) -> None:
        """Like ``requests.Response.close``: a body read to its end has already returned its
        connection to the pool; closing one mid-body discards the connection."""
        self.raw.close()
        self.raw.release_conn()


_Response = requests.Response | _Answer | PlainAnswer


class HTTPBody:
    """The body of one GET, read in large blocks through urllib3 with errors translated."""

    def __init__(
        self,
        response: _Response,
        url: str,
        start: int,
        info: RemoteInfo,
        stall: float,
    ) -> None:
        self.start = start
        self.info = info
        self._response = response
        self._raw: urllib3.HTTPResponse | http.client.HTTPResponse = response.raw
        self._url = url
        self._stall = stall
        self._empty = response.status_code == 416
        self.length = 0 if self._empty else announced(response)  # bounds the body (bounds.py)

    def read(self, amount: int) -> bytes:
        """Up to ``amount`` bytes, as soon as any have arrived; ``b""`` at the end of the body.

        ``read1`` rather than ``read``: ``read(n)`` waits to fill ``n`` bytes and, when the
        connection breaks, discards what it had buffered, so a cut would lose up to a block.
        ``read1`` hands over every received byte before the error surfaces (and progress is
        reported as bytes arrive). Measured no slower on loopback: ~300 KiB per call.
        """
        if self._empty:
            return b""
        try:  # (not the translated context manager: this runs for every block)
            chunk = self._raw.read1(amount)
        except Exception as exc:
            translate(exc, self._url, self._stall)
        if not chunk:
            self._check_end()
        return chunk

    def readinto(self, buffer: memoryview) -> int:
        """:meth:`read` into ``buffer``: straight from the socket on the ``http.client`` path
        (one ``recv``, no new ``bytes``), copied from ``read1`` on urllib3's."""
        if self._empty:
            return 0
        raw = self._raw
        try:
            if isinstance(raw, Response):
                got = raw.readinto1(buffer)
            else:
                chunk = raw.read1(len(buffer))
                got = len(chunk)
                buffer[:got] = chunk
        except Exception as exc:
            translate(exc, self._url, self._stall)
        if not got:
            self._check_end()
        return got

    def track(self) -> None:
        """Move this answer's connection to the calling thread's cancel scope: a segmented
        download's worker continuing the answer its calling thread received."""
        connection = getattr(self._response, "_conn", None)  # a PlainAnswer's
        if connection is None:
            connection = getattr(self._raw, "_connection", None)  # urllib3's
        if connection is not None:
            track(connection)

    def _check_end(self) -> None:
        """The body ended: make sure it really did. A socket shut by a cancel
        (:mod:`resumable.cancel`) also reads as an end, and a compressed stream cut short
        inside complete HTTP framing decodes to a shorter body without any error."""
        if aborted():
            raise Cancelled("cancelled", url=self._url)
        decoder = getattr(self._raw, "_decoder", None)  # urllib3's, when it decodes
        if decoder is not None and not decoder_finished(decoder):
            raise ProtocolMismatch(
                "the compressed body ended before the end of its compressed stream",
                url=self._url,
            )

    def close(self) -> None:
        # Closing mid-body discards the connection rather than draining gigabytes to reuse it.
        self._response.close()

    def __enter__(self) -> HTTPBody:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
