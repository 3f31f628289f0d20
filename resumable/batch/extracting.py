"""A batch item with a processor (:mod:`resumable.extract`): download, then extract.

The extraction is told what to record and where to emit, never given the job: its record is
the ledger's ``extracted`` row for the item, its events go to the batch's callback, and the
batch's cancel stops it. A failure after the download is the processor's: the file stays
recorded as done (``fetched``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ..extract._glue import check_processor, extract_item
from ..progress import ProgressCallback, ProgressEvent
from .task import download

if TYPE_CHECKING:
    from ..engine import DownloadResult, Engine
    from ..extract import Processor
    from ..sources import RemoteInfo
    from .items import Work
    from .steps import Steps

__all__ = ["extract"]


def extract(
    steps: Steps,
    engine: Engine,
    work: Work,
    process: Processor,
    sync_dir: Callable[[Path], None],
    fetched: list[bool],
) -> DownloadResult:
    """Download ``work`` (or skip it by the ledger) and process it; the extraction is
    recorded in the ledger's ``extracted`` rows, its events go to ``emit``."""

    dest, entry, changed = steps.check(work)
    processor = check_processor(process) or process
    task = steps.task(0, work, dest, changed, getattr(processor, "stream", False))

    def fetch(observe: ProgressCallback | None) -> tuple[DownloadResult, RemoteInfo | None]:
        skipped = None if changed else steps.skip_by_ledger(work, dest, entry)
        if skipped is not None:
            out: tuple[DownloadResult, RemoteInfo | None] = (skipped, None)
        else:
            progress = steps.on_event if observe is None else _both(observe, steps.on_event)
            outcome = download(engine, task, progress, steps.cancel, sync_dir)
            if outcome.error is not None:
                raise outcome.error
            assert outcome.result is not None
            out = (outcome.result, outcome.info)
        steps.record(work, *out)
        fetched[0] = True
        return out

    return extract_item(
        processor,
        dest,
        work.item.url,
        sha256=work.item.sha256,
        changed=changed,
        rows=steps.ledger,
        key=work.rel,
        emit=steps.emit,
        cancel=steps.cancel,
        fetch=fetch,
    )


def _both(first: ProgressCallback, then: ProgressCallback) -> ProgressCallback:
    def progress(event: ProgressEvent) -> None:
        first(event)
        then(event)

    return progress
