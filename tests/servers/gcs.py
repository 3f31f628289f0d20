"""gcp-storage-emulator in-process: the GCS JSON API on loopback, for the fsspec source.

Why this emulator: it is pure Python (no binary to fetch), starts in milliseconds, and computes
real ``md5Hash`` and ``crc32c`` values, so provider checksums are tested against an
implementation we did not write. Facts that shape the tests (see shared/TEST-SERVERS.md):

- ``generation`` changes on every overwrite, but downloads ignore ``generation=`` and
  ``ifGenerationMatch=`` and send no ``x-goog-generation`` header: the source must notice an
  overwrite by comparing what ``info()`` reports, not by trusting the pin;
- no suffix ranges (``bytes=-N``); ``x-goog-hash`` only on whole-object GETs;
- one request at a time (a plain ``http.server.HTTPServer``).

gcsfs must be imported with ``GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false`` or every call waits for a
60 s gRPC timeout against the emulator: ``tests/conftest.py`` sets it before anything imports
gcsfs.
"""

from __future__ import annotations

import importlib.util
import json
import urllib.request
from typing import Any

from .ports import HOST


def gcs_emulator_available() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("gcp_storage_emulator", "gcsfs"))


class GCSEmulator:
    """``gcp_storage_emulator.server.create_server(..., in_memory=True)`` on a free port."""

    def __init__(self) -> None:
        self._server: Any = None
        self.port = 0

    @property
    def endpoint_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def storage_options(self) -> dict[str, Any]:
        """gcsfs options (``storage_options={"gs": ...}``): this endpoint, no credentials."""
        return {"endpoint_url": self.endpoint_url, "token": "anon"}

    def create_bucket(self, name: str) -> None:
        body = json.dumps({"name": name}).encode()
        request = urllib.request.Request(
            f"{self.endpoint_url}/storage/v1/b?project=test",
            data=body,
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def wipe(self) -> None:
        """Forget every bucket and object."""
        self._server.wipe()

    def start(self) -> GCSEmulator:
        from gcp_storage_emulator.server import create_server

        self._server = create_server(HOST, 0, in_memory=True)
        self._server.start()
        # Bound to port 0: the kernel chose; the emulator does not expose it publicly.
        self.port = int(self._server._api._httpd.server_port)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> GCSEmulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
