"""HTTP servers for the test suite: one that fails on cue, and two real ones.

- :class:`FaultServer` (in-process): RFC-correct by default, with per-object queues of
  planned :class:`Fault` objects and a request log that proves each fault happened.
- :class:`NginxServer`: a real production server (Range, If-Range, strong ETag, throttled
  ``/slow/`` location) started from a private config.
- :class:`SimpleHTTPServer`: ``python -m http.server``, which ignores Range (always 200).
- :func:`make_tls`: a ``trustme`` CA and a server certificate, for ``FaultServer(ssl_context=)``.
- Object-store emulators for the fsspec source: :class:`MotoS3Server` (S3, in-process),
  :class:`GCSEmulator` (GCS, in-process), :class:`AzuriteServer` (Azure Blob, Node process),
  and :class:`Store` adapters that put objects in a fresh bucket of each (plus local files
  and fsspec's memory filesystem).

Import as ``from servers import ...``: ``tests/`` has no ``__init__.py``, so pytest puts
``tests/`` itself on ``sys.path`` (rootdir-relative "prepend" import mode).
Fixtures wrapping these live in ``tests/conftest.py``.
"""

from __future__ import annotations

import random

from .azurite import AzuriteServer, azurite_available
from .faultserver import FAULT_KINDS, Fault, FaultServer, Record, parse_range
from .gcs import GCSEmulator, gcs_emulator_available
from .moto_s3 import MotoS3Server, moto_available
from .nginx import AccessLogEntry, NginxServer, nginx_available
from .ports import ServerStartError, free_port, wait_until_answers
from .simple import SimpleHTTPServer
from .stores import AzureStore, GCSStore, LocalStore, MemoryStore, S3Store, Store
from .tls import TLSFiles, make_tls


def make_data(size: int, seed: int = 0) -> bytes:
    """Deterministic pseudo-random bytes: same (size, seed) gives the same bytes, fast.

    Random rather than repetitive content, so an offset error (resuming at the wrong byte)
    always changes the hash and never goes unnoticed.
    """
    return random.Random(seed).randbytes(size)


__all__ = [
    "FAULT_KINDS",
    "AccessLogEntry",
    "AzureStore",
    "AzuriteServer",
    "Fault",
    "FaultServer",
    "GCSEmulator",
    "GCSStore",
    "LocalStore",
    "MemoryStore",
    "MotoS3Server",
    "NginxServer",
    "Record",
    "S3Store",
    "ServerStartError",
    "SimpleHTTPServer",
    "Store",
    "TLSFiles",
    "azurite_available",
    "free_port",
    "gcs_emulator_available",
    "make_data",
    "make_tls",
    "moto_available",
    "nginx_available",
    "parse_range",
    "wait_until_answers",
]
