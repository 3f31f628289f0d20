"""The download step of one batch item, wherever it runs: a :class:`Task` in, an
:class:`Outcome` out.

Both runners use :func:`download`: the local runner on its worker threads, the executor fan-out
on a remote worker (:mod:`resumable.batch.chunks`). Everything here is a value that pickles, so
a task and its outcome can cross a process boundary; the caller's side checks the item before
(:meth:`~resumable.batch.steps.Steps.admit`) and records the outcome after
(:meth:`~resumable.batch.steps.Steps.settle`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..partial import Partial
from ..progress import ProgressCallback, ProgressEvent
from ..sources import RemoteInfo

if TYPE_CHECKING:
    from ..engine import DownloadResult, Engine

__all__ = ["Outcome", "Task", "download"]


@dataclass(frozen=True)
class Task:
    """One item to download: the caller has checked it and chosen its absolute destination.

    ``refresh``: fetch it again even if a complete file is there (it changed on disk or at the
    source). ``streamed``: a processor reads the file while it downloads (one connection)."""

    key: int
    url: str
    dest: str
    size: int | None = None
    sha256: str | None = None
    checksum: str | Sequence[str] | None = None
    refresh: bool = False
    mirrors: tuple[str, ...] = ()
    streamed: bool = False


@dataclass(frozen=True)
class Outcome:
    """How one task ended.

    Attributes:
        key: the task's key.
        result: the download's result, or ``None`` on error or when not started.
        info: the remote object that was downloaded (validators, for the ledger).
        stat: ``(size, mtime_ns)`` of the destination as the worker saw it.
        error: the error (on a remote worker, any exception that does not pickle is replaced
            by a :class:`~resumable.ResumableError` naming it).
        partial: whether a ``.partial`` was left (the ledger records ``partial``).
        started: ``False`` when the batch was cancelled before this task began.
        final: the item's last progress event (done, skipped or failed), when it has not been
            emitted yet (a remote worker sends it back with the outcome).
    """

    key: int
    result: DownloadResult | None = None
    info: RemoteInfo | None = None
    stat: tuple[int, int] | None = None
    error: BaseException | None = None
    partial: bool = False
    started: bool = True
    final: ProgressEvent | None = None


def download(
    engine: Engine,
    task: Task,
    progress: ProgressCallback,
    cancel: threading.Event,
    sync_dir: Callable[[Path], None],
) -> Outcome:
    """Download ``task`` with ``engine``; an ``Exception`` is the outcome's ``error``, never
    raised (a ``BaseException`` such as ``SystemExit`` from a callback is raised: it stops the
    batch). ``sync_dir`` collects the directories to fsync once, when the batch ends."""
    if cancel.is_set():
        return Outcome(task.key, started=False)
    dest = Path(task.dest)
    try:
        request = engine.request(
            task.url,
            dest,
            size=task.size,
            sha256=task.sha256,
            checksum=task.checksum,
            refresh=task.refresh,
            streamed=task.streamed,
            mirrors=task.mirrors,
            look=False,
        )
        transfer = engine.prepare(request, progress, cancel, sync_dir=sync_dir)
        result = transfer.run()
        st = os.stat(result.path)
        return Outcome(
            task.key, result=result, info=transfer.info, stat=(st.st_size, st.st_mtime_ns)
        )
    except Exception as exc:
        return Outcome(task.key, error=exc, partial=os.path.exists(Partial(dest).data))
