"""Feed progress events to an ``fsspec.callbacks.Callback``.

Code that already reports fsspec transfers through a ``Callback`` (``TqdmCallback``, a
``Callback(hooks=...)``, a GUI's own subclass) can watch resumable downloads with the same
object. The adapter follows fsspec's own conventions:

- the callback's ``size`` and ``value`` are *absolute* (``set_size`` / ``absolute_update``),
  so a rewound file simply lowers ``value``;
- with ``unit="bytes"`` (the default, like ``get_file``) they are bytes: the sum of the sizes
  known so far, and the bytes on disk across all files (resumed bytes included);
- with ``unit="files"`` (like a multi-file ``get``) they count files: ``total_files`` and the
  files finished;
- each file also gets a child from ``callback.branched(url, path)`` that receives that file's
  bytes and is closed when it ends (the base ``Callback`` returns a no-op child).

fsspec is not imported: any object with ``set_size``, ``absolute_update`` and, optionally,
``branched`` works. An exception raised by the callback propagates like any progress
callback's: it stops that download and leaves its partial resumable.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Literal

from ..errors import InvalidArgument
from . import EventKind, ProgressEvent
from .tally import Tally

__all__ = ["FsspecCallbackProgress"]


class FsspecCallbackProgress:
    """A progress callable that drives an ``fsspec.callbacks.Callback``.

    >>> from fsspec.callbacks import TqdmCallback                         # doctest: +SKIP
    >>> progress = resumable.FsspecCallbackProgress(TqdmCallback())       # doctest: +SKIP
    >>> resumable.download(url, "shard.tar", progress=progress)           # doctest: +SKIP

    Args:
        callback: the fsspec ``Callback`` (or any object with ``set_size`` and
            ``absolute_update``).
        unit: ``"bytes"``: the callback counts bytes across all files; ``"files"``: it counts
            finished files, as fsspec's multi-file ``get`` does.
        total_files: the number of files, for ``unit="files"`` (``set_size`` is called with it).
    """

    def __init__(
        self,
        callback: Any,
        *,
        unit: Literal["bytes", "files"] = "bytes",
        total_files: int | None = None,
    ) -> None:
        if unit not in ("bytes", "files"):
            raise InvalidArgument(f"unit must be 'bytes' or 'files', got {unit!r}")
        for method in ("set_size", "absolute_update"):
            if not callable(getattr(callback, method, None)):
                raise InvalidArgument(f"callback has no {method}(): pass an fsspec Callback")
        self.callback = callback
        self.unit = unit
        self._tally = Tally(total_files)
        self._children: dict[Path, Any] = {}
        self._size: int | None = None
        self._lock = threading.Lock()
        if unit == "files" and total_files is not None:
            self._size = total_files
            callback.set_size(total_files)

    def __call__(self, event: ProgressEvent) -> None:
        with self._lock:
            ended = self._tally.add(event) is None
            self._child(event, ended)
            if self.unit == "bytes":
                size, value = self._tally.size, self._tally.done
            else:
                size, value = self._tally.total_files or self._tally.seen, self._tally.finished
            if size != self._size:
                self._size = size
                self.callback.set_size(size)
            self.callback.absolute_update(value)

    def _child(self, event: ProgressEvent, ended: bool) -> None:
        child = self._children.get(event.path)
        if child is None:
            if ended and event.kind is not EventKind.SKIPPED:
                return
            branched = getattr(self.callback, "branched", None)
            child = branched(event.url, str(event.path)) if callable(branched) else None
            if child is None:
                return
            self._children[event.path] = child
        if event.total is not None and getattr(child, "size", None) != event.total:
            child.set_size(event.total)
        child.absolute_update(event.done)
        if ended:
            del self._children[event.path]
            child.close()
