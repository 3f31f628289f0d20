"""HTTP servers for the test suite: one that fails on cue, and two real ones.

- :class:`FaultServer` (in-process): RFC-correct by default, with per-object queues of
  planned :class:`Fault` objects and a request log that proves each fault happened.
- :class:`NginxServer`: a real production server (Range, If-Range, strong ETag, throttled
  ``/slow/`` location) started from a private config.
- :class:`SimpleHTTPServer`: ``python -m http.server``, which ignores Range (always 200).

Import as ``from servers import ...``: ``tests/`` has no ``__init__.py``, so pytest puts
``tests/`` itself on ``sys.path`` (rootdir-relative "prepend" import mode).
Fixtures wrapping these live in ``tests/conftest.py``.
"""

from __future__ import annotations

import random

from .faultserver import FAULT_KINDS, Fault, FaultServer, Record, parse_range
from .nginx import AccessLogEntry, NginxServer, nginx_available
from .ports import ServerStartError, free_port, wait_until_answers
from .simple import SimpleHTTPServer


def make_data(size: int, seed: int = 0) -> bytes:
    """Deterministic pseudo-random bytes: same (size, seed) gives the same bytes, fast.

    Random rather than repetitive content, so an offset error (resuming at the wrong byte)
    always changes the hash and never goes unnoticed.
    """
    return random.Random(seed).randbytes(size)


__all__ = [
    "FAULT_KINDS",
    "AccessLogEntry",
    "Fault",
    "FaultServer",
    "NginxServer",
    "Record",
    "ServerStartError",
    "SimpleHTTPServer",
    "free_port",
    "make_data",
    "nginx_available",
    "parse_range",
    "wait_until_answers",
]
