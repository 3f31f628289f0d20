"""The two places a processor is attached: one download, and one item of a batch.

Kept here, not in :mod:`resumable.api` or :mod:`resumable.batch`, so those modules only gain a
``process=`` keyword and a lazy import. Nothing here knows the downloader or the job: a single
download gets the :class:`~resumable.engine.Engine`, a batch item its recorder (the ledger's
``extracted`` rows), an emit callback and the cancel event.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InvalidArgument
from ..progress import ProgressCallback, ProgressEvent, null_progress
from ..verify import parse_expected
from ._base import Processor
from ._record import ExtractionRows, ExtractRecord, LedgerStore, MarkerStore
from ._run import ExtractRun, Fetch

if TYPE_CHECKING:
    from ..engine import DownloadRequest, DownloadResult, Engine
    from ..sources import RemoteInfo

__all__ = ["check_processor", "download_one", "extract_item"]

log = logging.getLogger("resumable")


def check_processor(process: object) -> Processor | None:
    if process is None or isinstance(process, Processor):
        return process
    raise InvalidArgument(
        "process must be a processor such as resumable.Untar(...), or None; for a spec "
        f"string use resumable.extract.from_spec(...), got {process!r}"
    )


def download_one(
    engine: Engine,
    request: DownloadRequest,
    process: Processor,
    progress: ProgressCallback | None,
    cancel: threading.Event | None,
) -> DownloadResult:
    """``ResumableDownloader.download(..., process=...)`` of a checked ``request`` (made
    ``streamed`` for a streaming processor); the record is ``A.extracted.json``."""
    user = progress or null_progress
    lock = threading.Lock()  # with stream=True two threads report: the user sees one at a time
    observer: list[ProgressCallback | None] = [None]

    def emit(event: ProgressEvent) -> None:
        with lock:
            user(event)

    def chained(event: ProgressEvent) -> None:
        watch = observer[0]
        if watch is not None:
            watch(event)
        emit(event)

    transfer = engine.prepare(request, chained, cancel)

    def fetch(watch: ProgressCallback | None) -> tuple[DownloadResult, RemoteInfo | None]:
        observer[0] = watch
        result = transfer.run()
        info = transfer.info
        if info is None and expected is None and process.resolve(transfer.dest) is not None:
            # Skipped as already complete: the validators to record for a later "has the
            # remote changed?" check (only needed when there is no expected digest).
            info = transfer.probe("no validators to record")
        return result, info

    expected = request.expected.get("sha256")  # parsed once, with the request

    def remote_changed(record: ExtractRecord) -> bool:
        if expected is not None:
            return expected != record.sha256
        remote = transfer.probe("cannot tell whether it changed")
        return True if remote is None else differs(record, remote)

    run = ExtractRun(process, transfer.dest, request.url, MarkerStore(transfer.dest), emit)
    return run.run(fetch, remote_changed)


def extract_item(
    process: Processor,
    dest: Path,
    url: str,
    *,
    sha256: str | None,
    changed: bool,
    rows: ExtractionRows,
    key: str,
    emit: Callable[[ProgressEvent], None],
    cancel: threading.Event,
    fetch: Fetch,
) -> DownloadResult:
    """One item of a batch: the record is the row ``key`` of ``rows`` (the batch ledger's
    ``extracted`` table); events go to ``emit``; ``cancel`` stops the extraction.

    Without ``sync`` a batch trusts its ledger (as it does for files): an archive deleted after
    its extraction is skipped without a request. With ``sync`` the batch has already asked the
    source whether the object changed (``changed``).
    """
    expected = parse_expected(sha256).get("sha256")

    def remote_changed(record: ExtractRecord) -> bool:
        if changed:
            return True
        return expected is not None and expected != record.sha256

    run = ExtractRun(process, dest, url, LedgerStore(rows, key), emit, cancel)
    return run.run(fetch, remote_changed)


def differs(record: ExtractRecord, remote: RemoteInfo) -> bool:
    """Whether the object may have changed since the recorded version was extracted.

    Without any validator recorded there is nothing to compare: assume it changed (fetching
    again is safe; skipping a changed object is not).
    """
    if remote.size is not None and record.size is not None and remote.size != record.size:
        return True
    pairs = [
        (record.etag, remote.etag),
        (record.version, remote.version),
        (record.last_modified, remote.last_modified),
    ]
    recorded = [(mine, theirs) for mine, theirs in pairs if mine]
    if not recorded:
        return True
    return any(mine != theirs for mine, theirs in recorded)
