"""An in-process HTTP/1.1 server that misbehaves on request, and proves that it did.

Why: a resumable downloader is only as good as its handling of the ways real servers and
networks fail: connections cut mid-body (FIN or RST), bodies shorter than their
Content-Length, stalls, 503 with Retry-After, CDNs that ignore Range or gzip behind the
client's back, objects replaced between two requests, redirect loops. Real servers do these
things rarely and never on cue, so this server does them deterministically: each object has a
queue of planned :class:`Fault` objects, one consumed per GET. Every request is recorded as a
:class:`Record` (status, Range, If-Range, body bytes really sent, ...) so a test can assert
that the fault happened instead of assuming it.

Without faults the server is a small but RFC 9110-correct origin: strong/weak/no ETag,
Last-Modified, single byte ranges (206/416), If-Range, keep-alive.

Two more behaviours of real deployments:

- **TLS**: ``FaultServer(ssl_context=ctx)`` serves HTTPS (e.g. with a ``trustme`` certificate,
  see ``servers/tls.py``).
- **Signed URLs**: :meth:`FaultServer.sign` protects an object like a presigned S3/GCS URL or a
  CDN link: every request needs a valid signature in a query parameter, else ``403``. A
  signature can be expired by hand (:meth:`FaultServer.expire`) or after it has served a number
  of body bytes (the response is then cut there, and the next request with it gets ``403``):
  a link that expires in the middle of a download.

Usage::

    with FaultServer() as srv:
        url = srv.add("a.bin", data)
        srv.plan("a.bin", Fault.cut(after=1000), Fault.status(503, retry_after=1))
        ...  # first GET is cut after 1000 body bytes, second gets 503, then normal
        assert [r.fault for r in srv.requests_for("a.bin")] == ["cut", "status", None]
"""

from __future__ import annotations

import bisect
import contextlib
import email.utils
import gzip
import hashlib
import re
import secrets
import select
import socket
import socketserver
import ssl
import struct
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

CHUNK = 64 * 1024
"""Bodies are written in chunks of this size, so cuts and stalls land mid-body."""

_BASE_MTIME = 1_704_067_200  # 2024-01-01T00:00:00Z; Last-Modified = base + version seconds

EtagKind = Literal["strong", "weak"] | None

FAULT_KINDS = (
    "cut",
    "status",
    "ignore_range",
    "short_body",
    "wrong_content_range",
    "stall",
    "hang",
    "trickle",
    "gzip",
    "redirect",
    "replace",
    "informational",
    "encoded",
    "slow_headers",
    "overrun",
)
"""Every :attr:`Fault.kind` (handy for parametrised tests)."""


@dataclass(frozen=True)
class Fault:
    """One planned misbehaviour, applied to exactly one GET. Build with the constructors.

    ``kind`` is the short name stored in :attr:`Record.fault`.
    """

    kind: str
    after: int = 0
    reset: bool = False
    seconds: float = 0.0
    code: int = 0
    retry_after: int | str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    start: int = 0
    rate: float = 0.0
    location: str = ""
    data: bytes = b""
    codes: tuple[int, ...] = ()
    encoding: str = ""
    bytewise: bool = False
    framing: str = "length"
    extra: int | None = 0

    @classmethod
    def cut(cls, after: int, *, reset: bool = False) -> Fault:
        """Honest headers, ``after`` body bytes, then close abruptly (FIN, or RST if reset)."""
        return cls("cut", after=after, reset=reset)

    @classmethod
    def status(
        cls,
        code: int,
        *,
        retry_after: int | str | None = None,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
    ) -> Fault:
        """Answer ``code`` with ``body`` instead of the object (416 gets ``bytes */size``).

        ``retry_after`` is sent verbatim as Retry-After: seconds (int) or an HTTP-date (str).
        """
        return cls(
            "status",
            code=code,
            retry_after=retry_after,
            headers=tuple((headers or {}).items()),
            body=body,
        )

    @classmethod
    def ignore_range(cls) -> Fault:
        """200 with the full body although a Range was asked (a CDN that ignores Range)."""
        return cls("ignore_range")

    @classmethod
    def short_body(cls, n: int) -> Fault:
        """Headers promise the full length, only ``n`` body bytes follow, then a clean FIN."""
        return cls("short_body", after=n)

    @classmethod
    def wrong_content_range(cls, start: int) -> Fault:
        """206 with bytes ``start``-end and an honest Content-Range, whatever was asked."""
        return cls("wrong_content_range", start=start)

    @classmethod
    def stall(cls, after: int, seconds: float) -> Fault:
        """Send ``after`` body bytes, go silent for ``seconds`` (socket open), then close.

        The silence ends early if the client closes its end (it timed out) or on stop().
        With ``after`` >= the body length the client gets the whole body before the stall.
        """
        return cls("stall", after=after, seconds=seconds)

    @classmethod
    def hang(cls, seconds: float = 0.0) -> Fault:
        """Send nothing at all for ``seconds``, then close (0 = drop the request at once).

        Exercises the client's read timeout while waiting for the status line, and the
        "server closed the connection without a response" path. Recorded with status 0.
        """
        return cls("hang", seconds=seconds)

    @classmethod
    def trickle(cls, bytes_per_second: float) -> Fault:
        """Send the whole (normal) response body slowly, in small paced writes."""
        return cls("trickle", rate=bytes_per_second)

    @classmethod
    def gzip(cls) -> Fault:
        """200 + ``Content-Encoding: gzip`` of the whole object, whatever Accept-Encoding said."""
        return cls("gzip")

    @classmethod
    def redirect(cls, location: str, code: int = 302) -> Fault:
        """Redirect to ``location`` (relative or absolute; may be the same path)."""
        return cls("redirect", location=location, code=code)

    @classmethod
    def replace(cls, data: bytes) -> Fault:
        """Replace the object by a new version just before answering this GET normally."""
        return cls("replace", data=data)

    @classmethod
    def informational(cls, *codes: int) -> Fault:
        """Interim answers (``103 Early Hints``, ``100 Continue``...) before the normal one."""
        return cls("informational", codes=codes)

    @classmethod
    def encoded(cls, encoding: str, body: bytes | None = None) -> Fault:
        """200 + ``Content-Encoding: encoding`` whatever Accept-Encoding said, over ``body``
        (default: the object's bytes as they are; a client that cannot decode that encoding
        cannot tell)."""
        return cls(
            "encoded",
            encoding=encoding,
            data=b"" if body is None else body,
            after=-1 if body is None else 0,
        )

    @classmethod
    def slow_headers(cls, interval: float, *, bytewise: bool = False) -> Fault:
        """A status line, then one more header line every ``interval`` seconds, never ending
        (until the client goes away). :attr:`Record.header_lines` counts the lines sent.
        ``bytewise``: one header line that never ends, a byte per interval (counted)."""
        return cls("slow_headers", seconds=interval, bytewise=bytewise)

    @classmethod
    def overrun(
        cls,
        extra: int | None,
        *,
        framing: Literal["chunked", "close", "length", "excess"] = "chunked",
    ) -> Fault:
        """The normal answer (200, or 206 with an honest Content-Range), whose body then runs
        ``extra`` bytes past it (``None``: endlessly, until the client hangs up).

        ``framing`` says how the body's end is marked: ``"chunked"`` (Transfer-Encoding, no
        Content-Length), ``"close"`` (no length: the body ends when the connection closes) or
        ``"length"`` (a Content-Length that counts the extra bytes, contradicting the
        Content-Range) or ``"excess"`` (an honest Content-Length, and the extra bytes after
        it on the kept-alive connection, where the next answer should start). ``extra=0``
        with ``"chunked"`` is an honest chunked answer.
        """
        return cls("overrun", extra=extra, framing=framing)


@dataclass(frozen=True)
class Record:
    """What the server saw and did for one request (appended when the response ends)."""

    method: str
    path: str
    """Request target as sent, including any query string."""
    headers: dict[str, str]
    """Request headers, names as sent by the client (use :meth:`header` to look up)."""
    range: str | None
    if_range: str | None
    status: int
    """Status code sent; 0 if no status line was sent (:meth:`Fault.hang`)."""
    fault: str | None
    body_bytes_sent: int
    """Body bytes handed to the socket before the response ended or was cut."""
    content_range: str | None
    etag: str | None
    conn_id: int
    """Server-side connection number: equal ids mean the client reused a connection."""
    seq: int
    """Request number in order of arrival; :attr:`FaultServer.log` is sorted by it."""
    header_lines: int = 0
    """Header lines sent by :meth:`Fault.slow_headers` before the client went away."""

    def header(self, name: str) -> str | None:
        """Case-insensitive lookup of a request header."""
        lname = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == lname), None)


@dataclass
class _Object:
    data: bytes
    etag_kind: EtagKind
    last_modified: bool
    ranges: bool
    version: int
    etag: str | None = field(init=False)
    last_modified_ts: int = field(init=False)

    def __post_init__(self) -> None:
        digest = hashlib.sha256(self.data).hexdigest()[:16]
        tag = f'"{digest}-v{self.version}"'
        self.etag = {"strong": tag, "weak": f"W/{tag}", None: None}[self.etag_kind]
        self.last_modified_ts = _BASE_MTIME + self.version

    @property
    def last_modified_http(self) -> str:
        return email.utils.formatdate(self.last_modified_ts, usegmt=True)

    def validator_headers(self) -> list[tuple[str, str]]:
        headers = []
        if self.etag is not None:
            headers.append(("ETag", self.etag))
        if self.last_modified:
            headers.append(("Last-Modified", self.last_modified_http))
        return headers

    def if_range_matches(self, value: str) -> bool:
        """RFC 9110 13.1.5: only a strong ETag or an exactly equal date validates."""
        value = value.strip()
        if value.startswith('"'):
            return self.etag_kind == "strong" and value == self.etag
        if value.startswith("W/") or not self.last_modified:
            return False
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return False
        return int(parsed.timestamp()) == self.last_modified_ts


_INTERIM = {100: "Continue", 102: "Processing", 103: "Early Hints"}

_SINGLE_RANGE = re.compile(r"\s*bytes\s*=\s*([0-9]*)\s*-\s*([0-9]*)\s*", re.IGNORECASE)


def parse_range(header: str, size: int) -> tuple[int, int] | Literal["unsatisfiable"] | None:
    """Parse a single byte range against ``size``.

    Returns inclusive ``(first, last)``, ``"unsatisfiable"`` (answer 416), or ``None`` when
    the header must be ignored (malformed, other unit, or several ranges, which a server may
    answer with the full 200).
    """
    match = _SINGLE_RANGE.fullmatch(header)
    if match is None:
        return None
    first_s, last_s = match.groups()
    if first_s == "":  # suffix: the last N bytes
        if last_s == "":
            return None
        n = int(last_s)
        if n == 0 or size == 0:
            return "unsatisfiable"
        return max(0, size - n), size - 1
    first = int(first_s)
    if last_s != "" and int(last_s) < first:
        return None
    if first >= size:
        return "unsatisfiable"
    last = size - 1 if last_s == "" else min(int(last_s), size - 1)
    return first, last


@dataclass
class _Signing:
    """Signatures issued for one object: token -> body bytes it may still serve (None: any)."""

    param: str
    valid: dict[str, int | None] = field(default_factory=dict)
    expired: set[str] = field(default_factory=set)


@dataclass
class _Reply:
    """A fully decided response: what to announce and how to deliver it."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""
    send: int | None = None  # body bytes to actually send; None = all
    ending: Literal["keep", "fin", "rst", "stall", "hang"] = "keep"
    seconds: float = 0.0
    rate: float = 0.0
    interim: tuple[int, ...] = ()  # 1xx status codes sent before the answer
    header_interval: float = 0.0  # slow headers: one line per interval, forever
    header_bytewise: bool = False  # ... or one byte of one endless line per interval
    framing: str = "length"  # or "chunked", "close", "excess": see Fault.overrun
    extra: int | None = 0  # bytes sent past the body (None: until the client hangs up)


ENDLESS_CAP = 4 << 30
"""An endless body stops after this many bytes (a safety net for a client that never stops)."""


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 64
    owner: FaultServer

    def server_bind(self) -> None:
        # HTTPServer.server_bind() calls socket.getfqdn(), which can stall on DNS.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "127.0.0.1", self.server_address[1]

    def shutdown_request(self, request: Any) -> None:
        # For an RST the socket must be closed without shutdown(SHUT_WR), which sends FIN.
        if self.owner._take_reset(request):
            self.close_request(request)
        else:
            super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Keep stderr quiet; collect real bugs in :attr:`FaultServer.errors`.

        OSErrors (client disconnected, stop() shut the socket) are expected and dropped.
        """
        exc = sys.exc_info()[1]
        if exc is not None and not isinstance(exc, OSError):
            self.owner._add_error(exc)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer
    timeout = 60  # safety net for forgotten idle keep-alive connections

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default per-request stderr logging."""

    def setup(self) -> None:
        super().setup()
        self.conn_id = self.server.owner._register(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.owner._unregister(self.connection)

    def do_GET(self) -> None:
        self._serve()

    def do_HEAD(self) -> None:
        self._serve()

    def _serve(self) -> None:
        owner = self.server.owner
        path = urlsplit(self.path).path
        name = unquote(path)[1:]
        seq = owner._begin()
        reply: _Reply | None = None
        fault: Fault | None = None
        sent = 0
        self.header_lines = 0
        try:
            fault = owner._take_fault(name) if self.command == "GET" else owner._head_fault(name)
            reply = owner._decide(self, name, fault)
            sent = self._deliver(reply)
        finally:
            status = reply.status if reply is not None else 0
            headers = dict(reply.headers) if reply is not None else {}
            owner._record(
                Record(
                    method=self.command,
                    path=self.path,
                    headers=dict(self.headers.items()),
                    range=self.headers.get("Range"),
                    if_range=self.headers.get("If-Range"),
                    status=0 if reply is not None and reply.ending == "hang" else status,
                    fault=fault.kind if fault is not None else None,
                    body_bytes_sent=sent,
                    content_range=headers.get("Content-Range"),
                    etag=headers.get("ETag"),
                    conn_id=self.conn_id,
                    seq=seq,
                    header_lines=self.header_lines,
                )
            )

    def _idle(self, seconds: float) -> None:
        """Keep the connection open and silent for ``seconds``.

        Ends early on :meth:`FaultServer.stop` or once the client has closed its end (it
        gave up after its read timeout), so a long stall neither delays the request log
        nor outlives the test that planned it.
        """
        deadline = time.monotonic() + seconds
        stopping = self.server.owner._stopping
        while not stopping.wait(min(0.05, max(0.0, deadline - time.monotonic()))):
            if time.monotonic() >= deadline:
                return
            try:
                readable, _, _ = select.select([self.connection], [], [], 0)
                if readable and not self.connection.recv(1, socket.MSG_PEEK):
                    return  # EOF: the client is gone
            except (OSError, ValueError):  # ValueError: TLS sockets refuse MSG_PEEK
                return

    def _slow_headers(self, reply: _Reply) -> None:
        """The status line, then a header line per interval until the client goes away."""
        self.send_response(reply.status)
        self.flush_headers()
        stopping = self.server.owner._stopping
        self.close_connection = True
        if reply.header_bytewise:
            self.wfile.write(b"X-Slow: ")
        while not stopping.wait(reply.header_interval) and self.header_lines < 60_000:
            if reply.header_bytewise:
                self.wfile.write(b"a")
            else:
                self.wfile.write(f"X-Slow-{self.header_lines}: {self.header_lines}\r\n".encode())
            self.header_lines += 1

    def _deliver(self, reply: _Reply) -> int:
        """Write ``reply`` to the socket; return the body bytes really written."""
        stopping = self.server.owner._stopping
        if reply.ending == "hang":
            self._idle(reply.seconds)
            self.close_connection = True
            return 0
        sent = 0
        try:
            for code in reply.interim:
                phrase = _INTERIM.get(code, "Informational")
                self.wfile.write(
                    f"HTTP/1.1 {code} {phrase}\r\nLink: </hint.css>; rel=preload\r\n\r\n".encode()
                )
            if reply.header_interval:
                self._slow_headers(reply)
                return 0
            self.send_response(reply.status)
            for key, value in reply.headers:
                self.send_header(key, value)
            self.end_headers()
            if self.command == "HEAD":
                return 0
            body = reply.body if reply.send is None else reply.body[: reply.send]
            step = max(1, int(reply.rate / 20)) if reply.rate else CHUNK
            for chunk in _pieces(body, step, reply.extra):
                if stopping.is_set():
                    self.close_connection = True
                    return sent
                if reply.framing == "chunked":
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                else:
                    self.wfile.write(chunk)
                sent += len(chunk)
                if reply.rate:
                    stopping.wait(len(chunk) / reply.rate)
            if reply.framing == "chunked":
                self.wfile.write(b"0\r\n\r\n")
        except OSError:  # client went away (EPIPE, ECONNRESET) or stop() shut the socket
            self.close_connection = True
            return sent
        if reply.ending == "stall":
            self._idle(reply.seconds)
        if reply.ending == "rst":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.server.owner._mark_reset(self.connection)
        if reply.ending != "keep" or reply.framing == "close":
            self.close_connection = True
        return sent


def _pieces(body: bytes, step: int, extra: int | None) -> Iterator[bytes]:
    """``body`` in writes of ``step`` bytes, then ``extra`` bytes of filler (``None``: until
    :data:`ENDLESS_CAP`)."""
    for offset in range(0, len(body), step):
        yield body[offset : offset + step]
    left = ENDLESS_CAP if extra is None else extra
    filler = b"overrun!" * (CHUNK // 8)
    while left > 0:
        yield filler[: min(left, CHUNK)]
        left -= min(left, CHUNK)


class FaultServer:
    """Fault-injecting HTTP/1.1 server on 127.0.0.1 (random port), in a background thread.

    Thread-safe. Use as a context manager or call :meth:`start` / :meth:`stop`.
    """

    settle_timeout = 3.0
    """How long :attr:`log` waits for in-flight requests to finish before snapshotting."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self._ssl_context = ssl_context
        self._signed: dict[str, _Signing] = {}
        self._lock = threading.Condition()
        self._objects: dict[str, _Object] = {}
        self._redirects: dict[str, tuple[str, int]] = {}
        self._plans: dict[str, deque[Fault]] = {}
        self._head_codes: dict[str, int] = {}
        self._log: list[Record] = []
        self._errors: list[BaseException] = []
        self._version = 0
        self._in_flight = 0
        self._seq = 0
        self._conns: dict[socket.socket, threading.Thread] = {}
        self._resets: set[socket.socket] = set()
        self._conn_counter = 0
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> FaultServer:
        if self._httpd is not None:
            return self
        self._stopping.clear()
        httpd = _HTTPServer(("127.0.0.1", 0), _Handler)
        httpd.owner = self
        if self._ssl_context is not None:
            # The handshake happens in the handler thread (first read), not in the accept loop.
            httpd.socket = self._ssl_context.wrap_socket(
                httpd.socket, server_side=True, do_handshake_on_connect=False
            )
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
            name=f"FaultServer:{httpd.server_port}",
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop promptly: wake stalls/trickles, shut every open connection, close the port."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        with self._lock:
            conns = dict(self._conns)
        for sock in conns:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes handlers blocked in recv/send
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for thread in conns.values():
            thread.join(timeout=2)  # they were all woken above; this returns at once

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("FaultServer is not running")
        scheme = "https" if self._ssl_context is not None else "http"
        return f"{scheme}://127.0.0.1:{self._httpd.server_port}"

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("FaultServer is not running")
        return self._httpd.server_port

    def url_for(self, name: str) -> str:
        return f"{self.url}/{quote(name)}"

    # -- objects and plans -------------------------------------------------------------

    def add(
        self,
        name: str,
        data: bytes,
        *,
        etag: EtagKind = "strong",
        last_modified: bool = True,
        ranges: bool = True,
    ) -> str:
        """Serve ``data`` at ``/name`` (replacing any previous object); return its URL.

        ``ranges=False`` mimics ``python -m http.server``: always 200, no Accept-Ranges.
        """
        with self._lock:
            self._version += 1
            self._objects[name] = _Object(data, etag, last_modified, ranges, self._version)
        return self.url_for(name)

    def replace(self, name: str, data: bytes) -> None:
        """Publish a new version: new content, new ETag, Last-Modified one second later."""
        with self._lock:
            old = self._objects[name]
            self._version += 1
            self._objects[name] = _Object(
                data, old.etag_kind, old.last_modified, old.ranges, self._version
            )

    def add_variant(self, name: str, query: str, data: bytes) -> str:
        """Serve ``data`` at ``/name?query`` only (an API that names objects by query
        parameters, ``?file=x&sp=train``); return that URL. Other queries get ``/name``."""
        self.add(f"{name}?{query}", data)
        return f"{self.url_for(name)}?{query}"

    def head_status(self, name: str, code: int | None) -> None:
        """Answer every HEAD for ``name`` with ``code`` while GETs work as usual (a server
        whose metadata request disagrees with its read); ``None`` ends it."""
        with self._lock:
            if code is None:
                self._head_codes.pop(name, None)
            else:
                self._head_codes[name] = code

    def remove(self, name: str) -> None:
        """Delete an object: every later request for it (HEAD included) gets a 404."""
        with self._lock:
            self._objects.pop(name, None)

    def content(self, name: str) -> bytes:
        """Current content of an object (after any :meth:`Fault.replace`)."""
        with self._lock:
            return self._objects[name].data

    def etag(self, name: str) -> str | None:
        with self._lock:
            return self._objects[name].etag

    def add_redirect(self, name: str, location: str, code: int = 302) -> str:
        """Make ``/name`` always redirect to ``location`` (same path = redirect loop)."""
        with self._lock:
            self._redirects[name] = (location, code)
        return self.url_for(name)

    def sign(
        self,
        name: str,
        *,
        param: str = "X-Amz-Signature",
        serves: int | None = None,
        query: dict[str, str] | None = None,
    ) -> str:
        """Require a signature for ``name`` from now on, and return a URL with a new one.

        Requests (HEAD too) without a valid ``param`` get ``403 Request has expired``.
        ``serves``: the signature expires once it has served that many body bytes; the
        response that reaches the limit is cut there (FIN). ``query``: more parameters to put
        in the URL (``X-Amz-Date``...), not checked.
        """
        token = secrets.token_hex(12)
        with self._lock:
            signing = self._signed.setdefault(name, _Signing(param))
            signing.valid[token] = serves
        return f"{self.url_for(name)}?{urlencode({**(query or {}), param: token})}"

    def expire(self, name: str) -> None:
        """Every signature issued so far for ``name`` stops working (403)."""
        with self._lock:
            signing = self._signed[name]
            signing.expired.update(signing.valid)
            signing.valid.clear()

    def plan(self, name: str, *faults: Fault) -> None:
        """Queue ``faults`` for ``name``: the next GETs consume one each, then all is normal."""
        with self._lock:
            self._plans.setdefault(name, deque()).extend(faults)

    def unplan(self, name: str) -> None:
        """Drop the faults still queued for ``name`` (those no GET consumed)."""
        with self._lock:
            self._plans.pop(name, None)

    def pending(self, name: str) -> list[Fault]:
        """Faults planned for ``name`` that no GET has consumed yet."""
        with self._lock:
            return list(self._plans.get(name, ()))

    def reset(self) -> None:
        """Drop all objects, redirects, plans and the request log."""
        with self._lock:
            self._objects.clear()
            self._redirects.clear()
            self._plans.clear()
            self._head_codes.clear()
            self._signed.clear()
            self._log.clear()

    # -- the request log ---------------------------------------------------------------

    @property
    def log(self) -> list[Record]:
        """Snapshot of all records in arrival order, once in-flight requests have finished
        (waiting at most :attr:`settle_timeout`).

        Waiting matters: the client can see the last body byte a moment before the handler
        thread appends the record.
        """
        with self._lock:
            self._lock.wait_for(lambda: self._in_flight == 0, timeout=self.settle_timeout)
            return list(self._log)

    @property
    def arrived(self) -> int:
        """Requests received so far, finished or not (a stalled one is not in :attr:`log` yet)."""
        with self._lock:
            return self._seq

    @property
    def errors(self) -> list[BaseException]:
        """Unexpected exceptions raised while handling requests (bugs in this server or a
        misuse such as planning ``Fault.replace`` for an unknown name). Should stay empty;
        the ``fault_server`` fixture asserts that it does."""
        with self._lock:
            return list(self._errors)

    def requests_for(self, name: str) -> list[Record]:
        """Records whose path (query string ignored) is ``/name``."""
        return [r for r in self.log if unquote(urlsplit(r.path).path) == "/" + name]

    # -- internals used by the handler ------------------------------------------------

    def close_idle(self) -> int:
        """Close every open connection, as a server's keep-alive timeout does (a FIN, with no
        ``Connection: close`` beforehand); call it between requests. Returns how many."""
        with self._lock:
            conns = list(self._conns)
        for sock in conns:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        return len(conns)

    def _add_error(self, exc: BaseException) -> None:
        with self._lock:
            self._errors.append(exc)

    def _register(self, sock: socket.socket) -> int:
        with self._lock:
            self._conn_counter += 1
            self._conns[sock] = threading.current_thread()
            return self._conn_counter

    def _unregister(self, sock: socket.socket) -> None:
        with self._lock:
            self._conns.pop(sock, None)

    def _mark_reset(self, sock: socket.socket) -> None:
        with self._lock:
            self._resets.add(sock)

    def _take_reset(self, sock: socket.socket) -> bool:
        with self._lock:
            if sock in self._resets:
                self._resets.discard(sock)
                return True
            return False

    def _begin(self) -> int:
        with self._lock:
            self._in_flight += 1
            self._seq += 1
            return self._seq

    def _record(self, record: Record) -> None:
        with self._lock:
            # Records complete out of order (a handler thread may be descheduled after its
            # last byte while the client already sent its next request); keep arrival order.
            bisect.insort(self._log, record, key=lambda r: r.seq)
            self._in_flight -= 1
            self._lock.notify_all()

    def _head_fault(self, name: str) -> Fault | None:
        with self._lock:
            code = self._head_codes.get(name)
        return None if code is None else Fault.status(code)

    def _take_fault(self, name: str) -> Fault | None:
        with self._lock:
            queue = self._plans.get(name)
            return queue.popleft() if queue else None

    def _decide(self, handler: _Handler, name: str, fault: Fault | None) -> _Reply:
        """Turn (request, object, fault) into a :class:`_Reply`. No I/O happens here."""
        if fault is not None and fault.kind == "replace":
            self.replace(name, fault.data)
        query = urlsplit(handler.path).query
        with self._lock:
            obj = self._objects.get(f"{name}?{query}") if query else None
            obj = obj or self._objects.get(name)
            redirect = self._redirects.get(name)
        if fault is not None and fault.kind == "hang":
            return _Reply(0, [], ending="hang", seconds=fault.seconds)
        if fault is not None and fault.kind == "redirect":
            redirect = (fault.location, fault.code)
        if redirect is not None:
            location, code = redirect
            return _Reply(code, [("Location", location), ("Content-Length", "0")])
        token = self._signature(handler, name)
        if token == "":
            body = b"Request has expired\n"
            headers = [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
            return _Reply(403, headers, body)
        if fault is not None and fault.kind == "status":
            return _status_reply(fault, obj)
        if obj is None:
            body = b"not found\n"
            headers = [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
            return _Reply(404, headers, body)
        if fault is not None and fault.kind == "encoded":
            body = obj.data if fault.after < 0 else fault.data
            headers = [
                ("Content-Type", "application/octet-stream"),
                ("Content-Encoding", fault.encoding),
                ("Content-Length", str(len(body))),
                *obj.validator_headers(),
            ]
            return _Reply(200, headers, body)
        if fault is not None and fault.kind == "slow_headers":
            return _Reply(200, [], header_interval=fault.seconds, header_bytewise=fault.bytewise)
        if fault is not None and fault.kind == "gzip":
            body = gzip.compress(obj.data, mtime=0)
            headers = [
                ("Content-Type", "application/octet-stream"),
                ("Content-Encoding", "gzip"),
                ("Content-Length", str(len(body))),
                *obj.validator_headers(),
            ]
            return _Reply(200, headers, body)
        reply = _normal_reply(handler, obj, fault)
        if token is not None and handler.command == "GET":
            reply = self._spend(name, token, reply)
        if fault is None:
            return reply
        if fault.kind == "cut":
            return replace(reply, send=fault.after, ending="rst" if fault.reset else "fin")
        if fault.kind == "short_body":
            return replace(reply, send=fault.after, ending="fin")
        if fault.kind == "stall":
            return replace(reply, send=fault.after, ending="stall", seconds=fault.seconds)
        if fault.kind == "trickle":
            return replace(reply, rate=fault.rate)
        if fault.kind == "informational":
            return replace(reply, interim=fault.codes)
        if fault.kind == "overrun":
            return _overrun(reply, fault)
        return reply  # replace, ignore_range, wrong_content_range: handled in _normal_reply

    def _signature(self, handler: _Handler, name: str) -> str | None:
        """The valid signature of this request; ``""`` if it needs one and has none valid;
        ``None`` if ``name`` is not signed."""
        with self._lock:
            signing = self._signed.get(name)
            if signing is None:
                return None
            values = parse_qs(urlsplit(handler.path).query).get(signing.param, [])
            token = values[0] if values else ""
            return token if token in signing.valid else ""

    def _spend(self, name: str, token: str, reply: _Reply) -> _Reply:
        """Count the body bytes a signature serves; cut the reply where it expires."""
        with self._lock:
            signing = self._signed[name]
            left = signing.valid.get(token)
            if left is None:
                return reply
            length = len(reply.body) if reply.send is None else reply.send
            if length < left:
                signing.valid[token] = left - length
                return reply
            del signing.valid[token]
            signing.expired.add(token)
            return replace(reply, send=left, ending="fin")


def _overrun(reply: _Reply, fault: Fault) -> _Reply:
    """``reply`` with its body running ``fault.extra`` bytes past what it announces."""
    headers = [(k, v) for k, v in reply.headers if k.lower() != "content-length"]
    framing = "close" if fault.framing == "length" and fault.extra is None else fault.framing
    if framing == "chunked":
        headers.append(("Transfer-Encoding", "chunked"))
    elif framing == "close":  # an endless Content-Length cannot be written: no length at all
        headers.append(("Connection", "close"))
    elif framing == "excess":
        headers.append(("Content-Length", str(len(reply.body))))  # honest, then more follows
    elif fault.extra is not None:
        headers.append(("Content-Length", str(len(reply.body) + fault.extra)))
    return replace(reply, headers=headers, framing=framing, extra=fault.extra)


def _status_reply(fault: Fault, obj: _Object | None) -> _Reply:
    headers: list[tuple[str, str]] = []
    if fault.body:
        headers.append(("Content-Type", "text/plain"))
    headers.append(("Content-Length", str(len(fault.body))))
    if fault.retry_after is not None:
        headers.append(("Retry-After", str(fault.retry_after)))
    if fault.code == 416:
        headers.append(("Content-Range", f"bytes */{len(obj.data) if obj else 0}"))
    headers.extend(fault.headers)
    return _Reply(fault.code, headers, fault.body)


def _normal_reply(handler: _Handler, obj: _Object, fault: Fault | None) -> _Reply:
    """The RFC-correct answer, except for the range-related faults."""
    size = len(obj.data)
    common = [("Content-Type", "application/octet-stream"), *obj.validator_headers()]
    if obj.ranges:
        common.append(("Accept-Ranges", "bytes"))
    kind = fault.kind if fault is not None else None

    if fault is not None and fault.kind == "wrong_content_range":
        first, last = fault.start, size - 1
        return _Reply(
            206,
            [
                *common,
                ("Content-Range", f"bytes {first}-{last}/{size}"),
                ("Content-Length", str(max(0, last - first + 1))),
            ],
            obj.data[first:],
        )

    range_header = handler.headers.get("Range")
    if_range = handler.headers.get("If-Range")
    wanted: tuple[int, int] | Literal["unsatisfiable"] | None = None
    if (
        handler.command == "GET"  # RFC 9110 14.2: Range is defined for GET only
        and obj.ranges
        and range_header is not None
        and kind != "ignore_range"
        and (if_range is None or obj.if_range_matches(if_range))
    ):
        wanted = parse_range(range_header, size)

    if wanted == "unsatisfiable":
        return _Reply(416, [*common, ("Content-Range", f"bytes */{size}"), ("Content-Length", "0")])
    if wanted is None:
        return _Reply(200, [*common, ("Content-Length", str(size))], obj.data)
    first, last = wanted
    return _Reply(
        206,
        [
            *common,
            ("Content-Range", f"bytes {first}-{last}/{size}"),
            ("Content-Length", str(last - first + 1)),
        ],
        obj.data[first : last + 1],
    )
