"""Watch a destination's files on disk while a download runs: the largest size they reached.

Used to prove that a body running past a known length never reached the disk past it (the
bytes a server really sent come from its request log; what the client wrote, from here).
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path


class DiskWatch:
    """Polls the sizes of ``dest`` and its ``.partial`` (every ~0.5 ms); keeps the peak.

    A context manager: polling runs between ``__enter__`` and ``__exit__``.
    """

    def __init__(self, dest: Path) -> None:
        self.paths = [dest.with_name(dest.name + ".partial"), dest]
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="diskwatch")

    def _run(self) -> None:
        while not self._stop.wait(0.0005):
            for path in self.paths:
                with contextlib.suppress(OSError):
                    self.peak = max(self.peak, os.stat(path).st_size)

    def __enter__(self) -> DiskWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
