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
from typing import Any

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


# -- object stores for the fsspec source ---------------------------------------------------------
#
# One emulator per session (moto and the GCS emulator in-process, Azurite as a Node process), a
# fresh bucket per test. gcsfs must not start its experimental gRPC path against an emulator
# (every call would wait 60 s): the variable is read when gcsfs is first imported.
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")

from servers import (  # noqa: E402 - after the environment above
    AzureStore,
    AzuriteServer,
    GCSEmulator,
    GCSStore,
    LocalStore,
    MemoryStore,
    MotoS3Server,
    S3Store,
    Store,
    azurite_available,
    gcs_emulator_available,
    moto_available,
)


def require_server(available: bool, message: str) -> None:
    """Skip (locally) or fail (under CI) when an emulator is not installed."""
    if available:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI must install it", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[MotoS3Server]:
    """moto's S3 server for the session; fake credentials in the environment meanwhile."""
    require_server(moto_available(), "moto[server] and boto3 are not installed (test group)")
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    with pytest.MonkeyPatch.context() as patch:
        for name, value in MotoS3Server.environ().items():
            patch.setenv(name, value)
        patch.delenv("AWS_PROFILE", raising=False)
        patch.delenv("AWS_ENDPOINT_URL", raising=False)
        with MotoS3Server() as server:
            yield server


@pytest.fixture(scope="session")
def gcs_emulator() -> Iterator[GCSEmulator]:
    """gcp-storage-emulator for the session (in memory)."""
    require_server(gcs_emulator_available(), "gcp-storage-emulator and gcsfs are not installed")
    with GCSEmulator() as server:
        yield server


@pytest.fixture(scope="session")
def azurite() -> Iterator[AzuriteServer]:
    """Azurite's blob service for the session (in memory)."""
    require_server(azurite_available(), "Azurite is not installed (npm ci in the repository root)")
    with AzuriteServer() as server:
        yield server


@pytest.fixture
def s3_store(moto_s3: MotoS3Server) -> S3Store:
    """A fresh unversioned bucket."""
    return S3Store(moto_s3)


@pytest.fixture
def s3_versioned_store(moto_s3: MotoS3Server) -> S3Store:
    """A fresh bucket with versioning enabled."""
    return S3Store(moto_s3, versioned=True)


@pytest.fixture
def gcs_store(gcs_emulator: GCSEmulator) -> GCSStore:
    return GCSStore(gcs_emulator)


@pytest.fixture
def azure_store(azurite: AzuriteServer) -> AzureStore:
    return AzureStore(azurite)


@pytest.fixture
def local_store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "remote")


@pytest.fixture
def memory_store() -> Iterator[MemoryStore]:
    store = MemoryStore()
    yield store
    if store.fs.exists(f"/{store.bucket}"):
        store.fs.rm(f"/{store.bucket}", recursive=True)


STORES = ["s3", "s3-versioned", "gcs", "azure", "file", "memory"]
_STORE_FIXTURES = {
    "s3": "s3_store",
    "s3-versioned": "s3_versioned_store",
    "gcs": "gcs_store",
    "azure": "azure_store",
    "file": "local_store",
    "memory": "memory_store",
}


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest) -> Store:
    """Each backend in turn: the same scenario against S3, GCS, Azure, files and memory."""
    fixture: Store = request.getfixturevalue(_STORE_FIXTURES[request.param])
    return fixture


@pytest.fixture(params=[name for name in STORES if name not in ("file", "memory")])
def checksummed_store(request: pytest.FixtureRequest) -> Store:
    """Each backend that reports provider checksums (S3, GCS, Azure)."""
    fixture: Store = request.getfixturevalue(_STORE_FIXTURES[request.param])
    return fixture


@pytest.fixture
def fsspec_source() -> Iterator[Callable[..., Any]]:
    """Make ``FsspecSource`` objects (``fsspec_source(storage_options)``), closed afterwards.

    Closing runs the filesystems' session finalizers now, inside this test, rather than at
    some later garbage collection in the middle of another test.
    """
    from resumable.sources import SourceConfig
    from resumable.sources.fsspec import FsspecSource

    made: list[FsspecSource] = []

    def make(storage_options: dict[str, Any] | None = None) -> FsspecSource:
        source = FsspecSource(SourceConfig(storage_options=storage_options or {}))
        made.append(source)
        return source

    yield make
    for source in made:
        source.close()
