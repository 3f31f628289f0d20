"""A real nginx serving a directory, started and stopped by the tests.

Why: the fault server proves the client's error handling, but only a production server
proves that the happy path (Range, If-Range, ETag, keep-alive, sendfile) works against an
implementation we did not write. nginx is the reference: strong ETags ``"mtime-size"``,
Last-Modified, 206/416, If-Range, and a per-connection ``limit_rate`` to make transfers slow
enough to interrupt.

Layout: ``location /`` serves ``root``; ``location /slow/`` serves the same files throttled
to ``limit_rate`` bytes per second per connection. Every request is written to an access
log that :meth:`NginxServer.access_log_lines` parses, so tests can prove what nginx sent.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .ports import (
    HOST,
    ServerStartError,
    free_port,
    read_text,
    stop_process,
    url_for,
    wait_until_answers,
    write_file,
)

_FALLBACK = "/usr/sbin/nginx"

# Tab-separated: nginx escapes tabs and quotes inside variable values, so a literal tab
# can only be a separator. Empty variables are logged as "-".
LIMITED_CONNECTIONS = 4
"""Requests ``/limited/`` serves at once; the others get a 503."""
PACED_RATE = "20r/s"
"""Requests a second ``/paced/`` serves; the others get a 429."""

_LOG_FIELDS = (
    "$status",
    "$request_method",
    "$request_uri",
    "$http_range",
    "$http_if_range",
    "$body_bytes_sent",
    "$sent_http_content_range",
    "$connection",
    "$msec",
)


def nginx_binary() -> str | None:
    """Path of the nginx executable, or None."""
    found = shutil.which("nginx")
    if found:
        return found
    return _FALLBACK if os.access(_FALLBACK, os.X_OK) else None


def nginx_available() -> bool:
    return nginx_binary() is not None


@dataclass(frozen=True)
class AccessLogEntry:
    """One parsed access-log line."""

    status: int
    method: str
    uri: str
    range: str | None
    if_range: str | None
    body_bytes_sent: int
    content_range: str | None
    connection: int
    """nginx connection serial number: equal values mean a reused keep-alive connection."""
    time: float = 0.0
    """When nginx finished the request (Unix time, milliseconds)."""

    @property
    def path(self) -> str:
        """Unquoted path without query string, e.g. ``/slow/a/file.bin``."""
        return unquote(urlsplit(self.uri).path)


def _unescape(value: str) -> str | None:
    """Undo nginx's ``\\xHH`` escaping of quotes/control bytes; "-" means empty."""
    if value == "-":
        return None
    return re.sub(r"\\x([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), value)


def _quote_conf(value: str | Path) -> str:
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


class NginxServer:
    """nginx on 127.0.0.1:<free port> serving ``root`` (``/``) and throttled (``/slow/``).

    Runs in the foreground (``daemon off``) in its own process group, with every path
    (pid, logs, temp dirs) under a private temporary directory, so it needs no system
    configuration and leaves nothing behind.
    """

    def __init__(self, root: Path, *, limit_rate: str = "20m") -> None:
        self.root = Path(root)
        self.limit_rate = limit_rate
        self.port = 0
        self._tmp: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def error_log(self) -> Path:
        assert self._tmp is not None, "NginxServer is not running"
        return self._tmp / "error.log"

    @property
    def access_log(self) -> Path:
        assert self._tmp is not None, "NginxServer is not running"
        return self._tmp / "access.log"

    def add(self, name: str, data: bytes) -> str:
        """Write ``root/name`` (subdirs created, mtime bumped on rewrite); return its URL."""
        write_file(self.root, name, data)
        return url_for(self.url, name)

    def url_for(self, name: str) -> str:
        return url_for(self.url, name)

    def slow_url(self, name: str) -> str:
        """URL of ``name`` under the throttled ``/slow/`` location."""
        return url_for(f"{self.url}/slow", name)

    def access_log_lines(self, *, min_lines: int = 0, timeout: float = 5.0) -> list[AccessLogEntry]:
        """Parsed access log, waiting up to ``timeout`` for at least ``min_lines`` lines.

        nginx writes the line after the last byte is sent, so the client may finish reading
        a moment before the line exists; pass ``min_lines`` to wait for it.
        """
        deadline = time.monotonic() + timeout
        while True:
            entries = self._parse_access_log()
            if len(entries) >= min_lines or time.monotonic() >= deadline:
                return entries
            time.sleep(0.02)

    def access_log_for(
        self, name: str, *, min_lines: int = 0, timeout: float = 5.0
    ) -> list[AccessLogEntry]:
        """Entries for ``/name`` or ``/slow/name``, waiting for ``min_lines`` of them."""
        paths = {"/" + name, "/slow/" + name}
        deadline = time.monotonic() + timeout
        while True:
            entries = [e for e in self._parse_access_log() if e.path in paths]
            if len(entries) >= min_lines or time.monotonic() >= deadline:
                return entries
            time.sleep(0.02)

    def _parse_access_log(self) -> list[AccessLogEntry]:
        try:
            text = self.access_log.read_text(errors="replace")
        except FileNotFoundError:
            return []
        entries = []
        for line in text.splitlines():
            fields = line.split("\t")
            if len(fields) != len(_LOG_FIELDS):
                continue
            status, method, uri, rng, if_range, sent, content_range, conn, msec = fields
            entries.append(
                AccessLogEntry(
                    status=int(status),
                    method=method,
                    uri=uri,
                    range=_unescape(rng),
                    if_range=_unescape(if_range),
                    body_bytes_sent=int(sent),
                    content_range=_unescape(content_range),
                    connection=int(conn),
                    time=float(msec),
                )
            )
        return entries

    def _config(self, tmp: Path, port: int) -> str:
        user = "user root;" if os.geteuid() == 0 else ""  # else workers can't read 0700 dirs
        root = self.root.resolve()
        log_format = "\\t".join(_LOG_FIELDS)
        temp_paths = "\n".join(
            f"    {kind}_temp_path {_quote_conf(tmp / kind)};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        return f"""\
daemon off;
master_process on;
worker_processes 1;
{user}
pid {_quote_conf(tmp / "nginx.pid")};
error_log {_quote_conf(tmp / "error.log")} warn;

events {{
    worker_connections 256;
}}

http {{
    types {{ }}
    default_type application/octet-stream;
    log_format resumable "{log_format}";
    access_log {_quote_conf(tmp / "access.log")} resumable;
{temp_paths}
    # /limited/: at most {LIMITED_CONNECTIONS} requests at once (503 beyond), each throttled, as
    # a loaded server; /paced/: {PACED_RATE} requests a second (429 beyond), as an API's rate.
    limit_conn_zone $server_name zone=limited:1m;
    limit_req_zone $server_name zone=paced:1m rate={PACED_RATE};
    sendfile on;
    tcp_nopush on;
    etag on;
    keepalive_timeout 30s;

    server {{
        listen {HOST}:{port};
        server_name localhost;

        location / {{
            root {_quote_conf(root)};
        }}
        location /slow/ {{
            alias {_quote_conf(str(root) + "/")};
            limit_rate {self.limit_rate};
        }}
        location /limited/ {{
            alias {_quote_conf(str(root) + "/")};
            limit_rate {self.limit_rate};
            limit_conn limited {LIMITED_CONNECTIONS};
            limit_conn_status 503;
        }}
        location /paced/ {{
            alias {_quote_conf(str(root) + "/")};
            limit_req zone=paced burst=1 nodelay;
            limit_req_status 429;
        }}
    }}
}}
"""

    def start(self) -> NginxServer:
        binary = nginx_binary()
        if binary is None:
            raise ServerStartError("nginx is not installed")
        self.root.mkdir(parents=True, exist_ok=True)
        self._tmp = Path(tempfile.mkdtemp(prefix="resumable-nginx-"))
        for attempt in range(5):
            self.port = free_port()
            conf = self._tmp / "nginx.conf"
            conf.write_text(self._config(self._tmp, self.port))
            self.error_log.unlink(missing_ok=True)
            with open(self._tmp / "stderr.log", "wb") as stderr:
                self._proc = subprocess.Popen(
                    [binary, "-p", str(self._tmp), "-c", str(conf), "-e", str(self.error_log)],
                    stdin=subprocess.DEVNULL,
                    stdout=stderr,
                    stderr=stderr,
                    start_new_session=True,
                )
            try:
                wait_until_answers(HOST, self.port, proc=self._proc, describe=self._describe)
            except ServerStartError:
                in_use = "Address already in use" in read_text(self.error_log)
                self._kill()
                if in_use and attempt < 4:
                    continue  # lost the race for the free port; try another one
                self._cleanup()
                raise
            return self
        raise AssertionError("unreachable")

    def _describe(self) -> str:
        assert self._tmp is not None
        return (
            f"--- nginx error log ---\n{read_text(self.error_log)}\n"
            f"--- nginx stderr ---\n{read_text(self._tmp / 'stderr.log')}\n"
            f"--- nginx.conf ---\n{read_text(self._tmp / 'nginx.conf')}"
        )

    def _kill(self) -> None:
        if self._proc is not None:
            # SIGTERM is nginx's fast shutdown: it does not wait for throttled transfers.
            stop_process(self._proc, signal.SIGTERM, grace=5.0)
            self._proc = None

    def _cleanup(self) -> None:
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def stop(self) -> None:
        self._kill()
        self._cleanup()

    def __enter__(self) -> NginxServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
