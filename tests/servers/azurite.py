"""Azurite (Microsoft's Azure Storage emulator, from npm) as a subprocess, for the fsspec source.

Why a Node process: Azurite is the emulator Microsoft maintains, so adlfs and azure-storage-blob
talk to it exactly as to Azure. It is pinned in the repository's ``package.json`` (3.35.0: later
versions need Node >= 21) and installed with ``npm ci`` by ``.ci/install-system-deps``.

Facts that shape the tests (see shared/TEST-SERVERS.md): ``content_md5`` exists only for
single-shot uploads (staged blocks have none, as on Azure); If-Range is ignored, but ``etag`` with
``match_condition`` (If-Match) answers 412 after a change; no versioning.

The binary is started directly (not through npx, whose death orphans the server) in its own
process group, and stopped with SIGTERM then SIGKILL: it can linger after an aborted download.
"""

from __future__ import annotations

import http.client
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from .ports import HOST, ServerStartError, free_port, read_text, stop_process

ROOT = Path(__file__).resolve().parents[2]
BINARY = ROOT / "node_modules" / ".bin" / "azurite-blob"

ACCOUNT = "devstoreaccount1"
# The well-known development storage key, published in Azure's documentation: not a secret.
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


def azurite_available() -> bool:
    return BINARY.exists() and shutil.which("node") is not None


class AzuriteServer:
    """``azurite-blob`` in memory on 127.0.0.1 and a free port."""

    def __init__(self) -> None:
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._tmp: Path | None = None

    @property
    def blob_endpoint(self) -> str:
        return f"http://{HOST}:{self.port}/{ACCOUNT}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint={self.blob_endpoint};"
        )

    def storage_options(self) -> dict[str, Any]:
        """adlfs options (``storage_options={"az": ...}``)."""
        return {"connection_string": self.connection_string}

    def service_client(self) -> Any:
        """A synchronous ``BlobServiceClient`` for seeding containers and blobs."""
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient.from_connection_string(self.connection_string)

    def start(self, *, attempts: int = 3) -> AzuriteServer:
        self._tmp = Path(tempfile.mkdtemp(prefix="resumable-azurite-"))
        for _ in range(attempts):
            self.port = free_port()
            command = [str(BINARY), "--blobHost", HOST, "--blobPort", str(self.port)]
            command += ["--inMemoryPersistence", "--silent", "--loose", "--skipApiVersionCheck"]
            command += ["--disableTelemetry"]
            with open(self._tmp / "azurite.log", "ab") as log:
                self._proc = subprocess.Popen(
                    command,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                    cwd=self._tmp,
                )
            try:
                self._wait_until_ready()
            except ServerStartError:
                stop_process(self._proc, signal.SIGTERM)
                self._proc = None
                continue  # most likely the port was taken in between: try another
            return self
        log_text = read_text(self._tmp / "azurite.log")
        self._cleanup()
        raise ServerStartError(f"azurite-blob did not start ({attempts} attempts)\n{log_text}")

    def _wait_until_ready(self, timeout: float = 20.0) -> None:
        """Ready when ``/devstoreaccount1?comp=list`` gets any HTTP answer (~0.5 s)."""
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise ServerStartError(f"azurite-blob exited with {self._proc.returncode}")
            conn = http.client.HTTPConnection(HOST, self.port, timeout=1.0)
            try:
                conn.request("GET", f"/{ACCOUNT}?comp=list")
                conn.getresponse().read()
            except OSError:
                time.sleep(0.05)
            else:
                return
            finally:
                conn.close()
        raise ServerStartError(f"azurite-blob did not answer on port {self.port}")

    def stop(self) -> None:
        if self._proc is not None:
            stop_process(self._proc, signal.SIGTERM, grace=5.0)
            self._proc = None
        self._cleanup()

    def _cleanup(self) -> None:
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def __enter__(self) -> AzuriteServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
