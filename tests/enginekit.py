"""Shared set-up for the engine's phase tests: an Engine over in-memory sources, a transfer's
state, and what the progress callback saw. No sockets: MemorySource and FaultySource only."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from resumable import ProgressEvent, RetryPolicy
from resumable.engine import Engine, Settings
from resumable.engine.state import State
from resumable.engine.transfer import Transfer
from resumable.testing import FaultySource, MemorySource

URL = "mem://bucket/obj.bin"
MIRROR = "mem://mirror/obj.bin"
KiB = 1 << 10
MiB = 1 << 20


def data(size: int, seed: int = 1) -> bytes:
    """Deterministic bytes that differ at every offset (a splice shows)."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}-{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


def sha(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


class Run:
    """One transfer of ``URL`` to ``dest`` over ``source``, and the events it emitted."""

    def __init__(
        self,
        source: MemorySource | FaultySource,
        dest: Path,
        *,
        attempts: int = 4,
        waits: list[float] | None = None,
        sources: dict[str, Any] | None = None,
        on_event: Callable[[ProgressEvent], object] | None = None,
        settings: dict[str, Any] | None = None,
        cancel: threading.Event | None = None,
        **options: Any,
    ) -> None:
        sleep = waits.append if waits is not None else (lambda s: None)
        retry = RetryPolicy(attempts=attempts, backoff=1, backoff_max=1, jitter=0, sleep=sleep)
        self.engine = Engine(
            Settings.checked(retry=retry, **(settings or {})), sources or {"mem": source}
        )
        self.events: list[ProgressEvent] = []
        self.on_event = on_event
        request = self.engine.request(options.pop("url", URL), dest, **options)
        self.transfer: Transfer = self.engine.prepare(request, self._progress, cancel)

    def _progress(self, event: ProgressEvent) -> None:
        self.events.append(event)
        if self.on_event is not None:
            self.on_event(event)

    @property
    def state(self) -> State:
        return self.transfer.state

    def kinds(self) -> list[str]:
        return [str(e.kind) for e in self.events]


def files(folder: Path) -> list[str]:
    """What is in ``folder`` (hidden private files included)."""
    return sorted(os.listdir(folder))
