"""Shared fixtures: test HTTP servers and per-test unique object names.

- ``fault_server``: a fresh :class:`servers.FaultServer` per test (nothing leaks between
  tests: objects, plans and the request log start empty), stopped afterwards.
- ``nginx`` / ``simple_http``: one real server per session (starting processes per test
  would dominate the run time). Their document roots are shared, so tests must not reuse
  file names: build names from ``unique_prefix``, e.g. ``f"{unique_prefix}/file.bin"``.
- ``make_nginx``: a factory for dedicated nginx instances (other ``limit_rate``, own root).
- Test data: ``servers.make_data(size, seed)`` (a plain function, import it).

nginx missing: the nginx tests are skipped locally but *fail* when ``CI`` is set, so a CI
job whose install step silently broke cannot go green by skipping them.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from servers import FaultServer, NginxServer, SimpleHTTPServer, nginx_available


def require_nginx() -> None:
    """Skip (locally) or fail (under CI) when nginx is not installed."""
    if nginx_available():
        return
    message = "nginx is not installed (Debian/Ubuntu: apt-get install nginx-light)"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI must install it", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NginxServer]:
    """A real nginx for the whole session: ``/`` (Range, ETag) and ``/slow/`` (20 MB/s)."""
    require_nginx()
    with NginxServer(tmp_path_factory.mktemp("nginx-root")) as server:
        yield server


@pytest.fixture
def make_nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., NginxServer]]:
    """Start dedicated nginx instances (e.g. ``make_nginx(limit_rate="1m")``) for this test.

    For when the shared ``nginx`` (20 MB/s on ``/slow/``) does not fit: a much lower rate to
    interrupt a transfer reliably, or a private root. All are stopped after the test.
    """
    require_nginx()
    started: list[NginxServer] = []

    def start(root: Path | None = None, *, limit_rate: str = "20m") -> NginxServer:
        root = root if root is not None else tmp_path_factory.mktemp("nginx-root")
        server = NginxServer(root, limit_rate=limit_rate).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def simple_http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleHTTPServer]:
    """``python -m http.server`` for the whole session: always 200, ignores Range."""
    with SimpleHTTPServer(tmp_path_factory.mktemp("simple-root")) as server:
        yield server


@pytest.fixture
def fault_server() -> Iterator[FaultServer]:
    """A fresh fault-injecting server for this test; fails it if the server itself crashed."""
    with FaultServer() as server:
        yield server
    assert not server.errors, f"FaultServer raised while handling requests: {server.errors!r}"


@pytest.fixture
def unique_prefix(request: pytest.FixtureRequest) -> str:
    """A URL-safe directory name unique to this test (node id slug + hash).

    Use it for files on the session-wide servers: ``nginx.add(f"{unique_prefix}/a.bin", d)``.
    """
    node_id = request.node.nodeid
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", node_id.rsplit("::", 1)[-1]).strip("-.")[:60]
    return f"{slug}-{hashlib.sha1(node_id.encode()).hexdigest()[:8]}"
