"""``python -m http.server`` as a test server: the archetypal server without Range support.

Why: plenty of real-world file servers (this one, many embedded and ad-hoc servers) always
answer ``200`` with the full body, send no ``Accept-Ranges`` and no ``ETag``. A resumable
downloader must notice that a resume was not honoured and restart from zero instead of
appending the whole file to the partial one. Running the real stdlib module in a subprocess
(rather than a handler imitating it) keeps us honest about what it actually does.

Facts worth knowing: it speaks HTTP/1.0 (one request per connection), sends
``Last-Modified`` and ``Content-Length``, answers ``If-Modified-Since`` with 304, and
ignores ``Range``/``If-Range`` entirely.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from .ports import HOST, free_port, read_text, stop_process, url_for, wait_until_answers, write_file


class SimpleHTTPServer:
    """``python -m http.server --bind 127.0.0.1 PORT --directory ROOT`` in a subprocess."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.port = 0
        self._tmp: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def log_path(self) -> Path:
        """The server's stderr: one ``"GET /x HTTP/1.1" 200 -`` line per request."""
        assert self._tmp is not None, "SimpleHTTPServer is not running"
        return self._tmp / "http.server.log"

    def add(self, name: str, data: bytes) -> str:
        """Write ``root/name`` (subdirs created, mtime bumped on rewrite); return its URL."""
        write_file(self.root, name, data)
        return url_for(self.url, name)

    def url_for(self, name: str) -> str:
        return url_for(self.url, name)

    def start(self) -> SimpleHTTPServer:
        self.root.mkdir(parents=True, exist_ok=True)
        self._tmp = Path(tempfile.mkdtemp(prefix="resumable-httpserver-"))
        self.port = free_port()
        command = [sys.executable, "-u", "-m", "http.server", "--bind", HOST, str(self.port)]
        command += ["--directory", str(self.root)]
        with open(self.log_path, "wb") as log:
            self._proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        try:
            wait_until_answers(
                HOST, self.port, proc=self._proc, describe=lambda: read_text(self.log_path)
            )
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self._proc is not None:
            stop_process(self._proc, signal.SIGTERM, grace=3.0)
            self._proc = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def __enter__(self) -> SimpleHTTPServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
