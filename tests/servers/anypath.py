"""An HTTP server that serves a small generated archive under every path: the docs' hosts.

Why: the examples in README.md and docs/ name thousands of files (``shard-{000000..000999}.tar``,
SA-1B's links, mirrors on other hosts) and extract them with ``Untar``/``Unzip``. Writing each
name into nginx's root would tie the test to every name in the prose; this server answers any
path instead, with one archive chosen by the name's extension, so an example runs as written.

- ``.zip``: a zip; ``.tgz``/``.tar.gz``: a gzipped tar; ``SHA256SUMS``: the digests of the
  archives under the names the examples use; anything else: a tar holding ``<n>.jpg`` and
  ``<n>.json`` (the SA-1B layout the routing examples expect).
- Real origin semantics where the library looks: ``HEAD``, a strong ``ETag``,
  ``Last-Modified``, ``Accept-Ranges`` and single byte ranges (206/416), HTTP/1.1 keep-alive.
- Paths are ``/<host>/<path>``: each example host keeps its own folder (mirrors stay apart).
- ``ArchiveServer(ssl_context=...)`` serves HTTPS, for the private-CA example.
"""

from __future__ import annotations

import email.utils
import gzip
import hashlib
import io
import ssl
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .faultserver import parse_range
from .ports import HOST

_MTIME = 1_704_067_200  # 2024-01-01T00:00:00Z


def _tar(member: str = "sa_1") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in (
            (f"{member}.jpg", b"\xff\xd8\xff" + bytes(4096)),
            (f"{member}.json", b"{}"),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = _MTIME
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(zipfile.ZipInfo("train/0.jpg", (2024, 1, 1, 0, 0, 0)), bytes(4096))
    return buffer.getvalue()


TAR = _tar()
TGZ = gzip.compress(TAR, mtime=_MTIME)
ZIP = _zip()

SUMS_NAMES = [f"shard-{i:06d}.tar" for i in range(141)] + [
    f"imagenet_train-{i:06d}.tgz" for i in range(141)
]
"""The names the docs' checksum files list (their shard ranges)."""


def body_for(path: str) -> bytes:
    """The bytes served at ``path`` (see the module docstring)."""
    name = path.rsplit("/", 1)[-1]
    if name == "SHA256SUMS":
        return sha256sums().encode()
    if name.endswith(".zip"):
        return ZIP
    if name.endswith((".tgz", ".tar.gz")):
        return TGZ
    return TAR


def sha256sums(names: list[str] = SUMS_NAMES) -> str:
    """A GNU ``SHA256SUMS`` text for ``names``, as ``sha256sum`` writes it."""
    return "".join(f"{hashlib.sha256(body_for(n)).hexdigest()}  {n}\n" for n in names)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_GET(self) -> None:
        self._serve(head=False)

    def _serve(self, *, head: bool) -> None:
        path = self.path.split("?", 1)[0]
        if path.endswith("/"):
            self.send_error(404)
            return
        body = body_for(path)
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        status, start, end = 200, 0, len(body)
        wanted = self.headers.get("Range")
        if_range = self.headers.get("If-Range")
        if wanted and (if_range is None or if_range == etag):
            parsed = parse_range(wanted, len(body))
            if parsed == "unsatisfiable":
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if parsed is not None:
                status, (start, last) = 206, parsed
                end = last + 1
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(end - start))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", etag)
        self.send_header("Last-Modified", email.utils.formatdate(_MTIME, usegmt=True))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(body)}")
        self.end_headers()
        if not head:
            self.wfile.write(body[start:end])


class ArchiveServer:
    """The server in a thread on 127.0.0.1 and a free port; ``url_for(host)`` is a host's root."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self._ssl_context = ssl_context
        self._httpd: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._httpd is not None, "ArchiveServer is not running"
        scheme = "https" if self._ssl_context else "http"
        return f"{scheme}://{HOST}:{self._httpd.server_address[1]}"

    def url_for(self, host: str) -> str:
        return f"{self.url}/{host}"

    def start(self) -> ArchiveServer:
        self._httpd = ThreadingHTTPServer((HOST, 0), _Handler)
        self._httpd.daemon_threads = True
        if self._ssl_context is not None:
            self._httpd.socket = self._ssl_context.wrap_socket(self._httpd.socket, server_side=True)
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> ArchiveServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
