"""Plumbing shared by the subprocess servers (nginx, ``python -m http.server``).

Why this exists: both servers are external processes that must bind a free port on
127.0.0.1, be polled until they really answer HTTP (a started process is not a listening
one), be stopped without leaving strays behind, and have files dropped into their document
root. Doing this in one place keeps :mod:`nginx` and :mod:`simple` short and identical in
behaviour.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

HOST = "127.0.0.1"


class ServerStartError(RuntimeError):
    """A test server did not come up; the message carries its logs."""


def free_port(host: str = HOST) -> int:
    """Return a TCP port that was free a moment ago.

    There is an unavoidable race between closing this probe socket and the server binding
    the port, so callers retry with another port when the bind fails.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_answers(
    host: str,
    port: int,
    *,
    timeout: float = 10.0,
    proc: subprocess.Popen[bytes] | None = None,
    describe: Callable[[], str] = lambda: "",
) -> None:
    """Block until ``HEAD /`` on host:port gets *any* HTTP response (even 403/404).

    Raises :class:`ServerStartError` if ``proc`` exits first or ``timeout`` elapses; the
    message includes ``describe()`` (typically the server's error log), so a CI failure says
    why the server did not start instead of just "connection refused".
    """
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ServerStartError(
                f"server process exited with code {proc.returncode} before answering on "
                f"{host}:{port}\n{describe()}"
            )
        conn = http.client.HTTPConnection(host, port, timeout=1.0)
        try:
            conn.request("HEAD", "/")
            conn.getresponse().close()
        except OSError as exc:  # refused while starting, or reset
            last_error = exc
            time.sleep(0.05)
        else:
            return
        finally:
            conn.close()
    raise ServerStartError(
        f"server did not answer HTTP on {host}:{port} within {timeout:.0f} s "
        f"(last error: {last_error!r})\n{describe()}"
    )


def stop_process(proc: subprocess.Popen[bytes], first_signal: int, *, grace: float = 3.0) -> None:
    """Stop ``proc`` (started with ``start_new_session=True``) and its whole process group.

    Sends ``first_signal`` to the leader, waits ``grace`` seconds, then SIGKILLs the group so
    that no worker process survives the test session. Always reaps the leader, so Python
    does not warn about a still-running subprocess.
    """
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(first_signal)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # stragglers (e.g. nginx workers)
    proc.wait()


def read_text(path: Path) -> str:
    """Read a log file for an error message; never raise (it may not exist yet)."""
    try:
        return path.read_text(errors="replace")
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"


def write_file(root: Path, name: str, data: bytes) -> Path:
    """Write ``data`` to ``root/name`` (creating subdirectories) and return the path.

    The write goes to a temporary file that is renamed into place, so a server never
    serves a half-written file. When the file already existed, its mtime is pushed at
    least one second past the old one: nginx derives ETag and Last-Modified from
    (mtime in seconds, size), so a same-size rewrite within the same second would otherwise
    keep the old validators and the new content would be indistinguishable from the old.
    """
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    old_mtime = path.stat().st_mtime if path.exists() else None
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    if old_mtime is not None:
        new_mtime = max(time.time(), int(old_mtime) + 1.0)
        os.utime(tmp, (new_mtime, new_mtime))
    tmp.replace(path)
    return path


def url_for(base: str, name: str) -> str:
    """``base`` + ``/`` + percent-quoted ``name`` (slashes kept)."""
    return f"{base}/{quote(name)}"
