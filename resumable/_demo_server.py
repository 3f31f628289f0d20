"""A small loopback HTTP server for ``python -m resumable demo``: ranges, ETags, one cut.

It serves generated in-memory shards the way a real object store or CDN does (``Range``,
``If-Range``, strong ``ETag``, ``Last-Modified``), throttled per connection so progress is
visible, and cuts the connection once, midway through one chosen shard, so the demo shows an
automatic retry that resumes instead of restarting. Standard library only; not a production
server.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


class DemoServer:
    """Serve ``{name: bytes}`` on 127.0.0.1 in a background thread (a context manager)."""

    def __init__(self, files: dict[str, bytes], *, rate: int = 64 << 20, cut: str | None = None):
        self.files = files
        self.rate = rate
        self.cut_pending = {cut} if cut else set()
        self.cuts = 0
        self.modified = formatdate(time.time() - 60, usegmt=True)
        self.etags = {n: '"' + hashlib.md5(d).hexdigest() + '"' for n, d in files.items()}
        self._lock = threading.Lock()
        self._httpd = _QuietServer(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def take_cut(self, name: str) -> bool:
        with self._lock:
            if name in self.cut_pending:
                self.cut_pending.discard(name)
                self.cuts += 1
                return True
            return False

    def __enter__(self) -> DemoServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client hanging up mid-body is part of the demo, not an error to print."""


def _handler(server: DemoServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the demo prints its own story."""

        def do_HEAD(self) -> None:
            self._serve(body=False)

        def do_GET(self) -> None:
            self._serve(body=True)

        def _serve(self, body: bool) -> None:
            name = self.path.lstrip("/")
            data = server.files.get(name)
            if data is None:
                self.send_error(404)
                return
            etag = server.etags[name]
            start, end, status = 0, len(data), 200
            match = _RANGE.match(self.headers.get("Range", ""))
            if_range = self.headers.get("If-Range")
            if match and if_range in (None, etag, server.modified):
                start = int(match.group(1))
                end = min(int(match.group(2)) + 1, len(data)) if match.group(2) else len(data)
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                status = 206
            self.send_response(status)
            self.send_header("Content-Type", "application/x-tar")
            self.send_header("Content-Length", str(end - start))
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("ETag", etag)
            self.send_header("Last-Modified", server.modified)
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(data)}")
            self.end_headers()
            if body:
                self._send(data, start, end, cut=body and server.take_cut(name))

        def _send(self, data: bytes, start: int, end: int, cut: bool) -> None:
            step = 256 << 10
            stop_at = start + (end - start) // 2 if cut else end
            began = time.monotonic()
            sent = 0
            for offset in range(start, stop_at, step):
                chunk = data[offset : min(offset + step, stop_at)]
                self.wfile.write(chunk)
                sent += len(chunk)
                ahead = sent / server.rate - (time.monotonic() - began)
                if ahead > 0:
                    time.sleep(ahead)
            if cut:
                self.wfile.flush()
                self.close_connection = True
                self.connection.close()

    return Handler
