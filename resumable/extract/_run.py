"""When processing happens: after verification, once per archive version, and never twice.

:class:`ExtractRun` wraps one download (a single call or one batch item):

1. An archive deleted after an earlier extraction, whose record is ``done`` for the same
   object, processor and (as far as can be told without fetching) version, is ``skipped``
   without downloading it again.
2. The download runs as usual (resume, verify, promote). With ``Untar(stream=True)`` a
   :class:`~resumable.extract._stream.Follower` feeds the tar parser while the bytes arrive.
3. If the record is ``done`` for this processor and the verified file's SHA-256, nothing is
   extracted again. Otherwise the archive is extracted into the staging folder and promoted
   (:mod:`._stage`), the record is made durable as ``done``, and only then is the archive
   deleted if asked.

A re-downloaded archive (the remote changed) has another SHA-256, so it is extracted again;
an interrupted extraction left a record that is not ``done``, so it is extracted again too.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from .._threads import Guarded
from ..engine.result import ExtractResult
from ..errors import ExtractionError, LocalError
from ..progress import EventKind, ProgressCallback, ProgressEvent
from ..urls import identity, redact
from ._base import Processor
from ._limits import Budget
from ._record import ExtractRecord, RecordStore
from ._stage import Staging
from ._stream import Follower, StreamStopped

if TYPE_CHECKING:
    from ..engine import DownloadResult
    from ..sources import RemoteInfo

__all__ = ["ExtractResult", "ExtractRun", "Fetch"]

log = logging.getLogger("resumable")

Fetch = Callable[["ProgressCallback | None"], "tuple[DownloadResult, RemoteInfo | None]"]
"""Runs the download; the argument, if given, must also see every progress event."""


class ExtractRun:
    """Process one download's archive (see the module docstring). Used once, by one thread."""

    def __init__(
        self,
        processor: Processor,
        archive: Path,
        url: str,
        store: RecordStore,
        emit: Callable[[ProgressEvent], None],
        cancel: threading.Event | None = None,
    ) -> None:
        self.p = processor
        self.archive = archive
        self.url = url
        self.safe_url = redact(url)
        self.identity = identity(url)
        self.store = store
        self.emit = emit
        self.cancel = cancel
        self.staging = Staging(archive)
        self._unrouted = 0

    def run(self, fetch: Fetch, remote_changed: Callable[[ExtractRecord], bool]) -> DownloadResult:
        resolved = self.p.resolve(self.archive)
        if resolved is None:
            return fetch(None)[0]
        self.p = resolved
        record = self.store.load()
        if (
            self._reusable(record)
            and record is not None
            and record.archive_deleted
            and not self.archive.exists()
            and not remote_changed(record)
        ):
            return self._skip_all(record)
        if getattr(self.p, "stream", False):
            with self.staging.locked():
                return self._streamed(fetch)
        result, info = fetch(None)
        with self.staging.locked():
            return self._after(result, info, None)

    # -- decisions ------------------------------------------------------------------------------

    def _reusable(self, record: ExtractRecord | None) -> bool:
        """A done record of this object and processor whose results are still there."""
        return (
            record is not None
            and record.state == "done"
            and record.identity == self.identity
            and record.fingerprint == self.p.fingerprint()
            and all(os.path.lexists(t) for t in record.targets)
        )

    def _skip_all(self, record: ExtractRecord) -> DownloadResult:
        from ..engine import DownloadResult

        size = record.size or 0
        self.emit(ProgressEvent(EventKind.SKIPPED, self.safe_url, self.archive, size, size))
        sha = record.sha256 or ""
        return DownloadResult(
            url=self.safe_url,
            path=self.archive,
            size=size,
            sha256=sha,
            status="skipped",
            bytes_transferred=0,
            digests={"sha256": sha},
            extracted=self._result(record, "skipped"),
        )

    def _after(
        self,
        result: DownloadResult,
        info: RemoteInfo | None,
        streamed: tuple[list[Path], Budget] | None,
    ) -> DownloadResult:
        """The archive is verified: reuse the record, promote what streamed, or extract."""
        record = self.store.load()  # again: another process may have finished meanwhile
        if self._reusable(record) and record is not None and record.sha256 == result.sha256:
            self.staging.discard()
            if self.p.delete_archive:
                record = self._delete_archive(record)
            return dataclasses.replace(result, extracted=self._result(record, "skipped"))
        done = self._extract(result, info, record, streamed)
        return dataclasses.replace(
            result, extracted=self._result(done, "extracted", streamed=streamed is not None)
        )

    # -- extraction -----------------------------------------------------------------------------

    def _extract(
        self,
        result: DownloadResult,
        info: RemoteInfo | None,
        previous: ExtractRecord | None,
        streamed: tuple[list[Path], Budget] | None,
    ) -> ExtractRecord:
        targets = self.p.targets(self.archive)
        # Folders this library created whole for this object (whatever processor made them).
        owned = (
            previous.owned if previous is not None and previous.identity == self.identity else ()
        )
        record = ExtractRecord(
            state="extracting",
            fingerprint=self.p.fingerprint(),
            identity=self.identity,
            sha256=result.sha256,
            size=result.size,
            etag=info.etag if info else None,
            version=info.version if info else None,
            last_modified=info.last_modified if info else None,
            targets=tuple(str(t) for t in targets),
            owned=owned,
        )
        self.store.save(record)  # an interrupted run is never mistaken for a done one
        try:
            if streamed is not None:
                slots, budget = streamed
            else:
                slots = self.staging.fresh(len(targets), stage_files=not self._folders())
                budget = self._budget(lambda: result.size)
                self.p.extract(self.archive, slots, budget)
            now_owned = []
            for slot, target in zip(slots, targets, strict=True):
                if not os.path.lexists(slot):
                    continue  # nothing was routed there
                whole = self.p.owns_target() and str(target) in owned
                created = not os.path.lexists(target)
                self.staging.promote(slot, target, replace_whole=whole)
                if self.p.owns_target() and (created or whole):
                    now_owned.append(str(target))
                elif not os.path.lexists(target):
                    target.mkdir(parents=True, exist_ok=True)
        except BaseException as exc:
            self.staging.discard()
            if isinstance(exc, ExtractionError) and exc.url is None:
                exc.url = self.safe_url
            if isinstance(exc, (ExtractionError, LocalError)):
                self.store.save(record.with_(state="failed", error=str(exc)))
            raise
        self.staging.discard()
        for target in targets:  # a route no member matched still gets its (empty) folder
            if self._folders() and not os.path.lexists(target):
                target.mkdir(parents=True, exist_ok=True)
        kept = [path for path in owned if path not in now_owned and os.path.lexists(path)]
        done = record.with_(
            state="done",
            owned=tuple(kept + now_owned),
            members=budget.members,
            bytes=budget.bytes,
            archive_deleted=self.p.delete_archive,
        )
        self.store.save(done, durable=True)
        self._unrouted = budget.unrouted
        budget.report(final=True)
        if self.p.delete_archive:
            self._unlink_archive()
        return done

    def _folders(self) -> bool:
        from ._single import Decompress

        return not isinstance(self.p, Decompress)

    def _budget(self, size: Callable[[], int | None]) -> Budget:
        return Budget(
            self.p.limits,
            archive=self.archive,
            url=self.safe_url,
            size=size,
            emit=self.emit,
            cancel=self.cancel,
        )

    def _delete_archive(self, record: ExtractRecord) -> ExtractRecord:
        if not record.archive_deleted:
            record = record.with_(archive_deleted=True)
            self.store.save(record, durable=True)
        self._unlink_archive()
        return record

    def _unlink_archive(self) -> None:
        try:
            self.archive.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise LocalError(
                f"extracted, but cannot delete {self.archive}: {exc.strerror}",
                path=str(self.archive),
            ) from exc

    def _result(
        self, record: ExtractRecord, status: Literal["extracted", "skipped"], streamed: bool = False
    ) -> ExtractResult:
        return ExtractResult(
            archive=self.archive,
            status=status,
            targets=tuple(Path(t) for t in record.targets),
            members=record.members,
            bytes=record.bytes,
            unrouted=self._unrouted if status == "extracted" else 0,
            archive_deleted=record.archive_deleted and not self.archive.exists(),
            streamed=streamed,
        )

    # -- streaming ------------------------------------------------------------------------------

    def _streamed(self, fetch: Fetch) -> DownloadResult:
        from ._tar import extract_tar_stream

        follower = Follower(self.archive)
        targets = self.p.targets(self.archive)
        slots = self.staging.fresh(len(targets))
        budget = self._budget(lambda: follower.total)
        budget.position = follower.tell
        failure: list[BaseException] = []

        def parse() -> None:
            try:
                extract_tar_stream(self.p, follower, slots, budget)  # type: ignore[arg-type]
                follower.drain()
            except BaseException as exc:
                failure.append(exc)

        thread = Guarded(parse, name="resumable-untar-stream")
        thread.start()
        try:
            result, info = fetch(follower.observe)
        except BaseException:
            follower.stop("the download failed")
            thread.join()
            follower.close()
            self.staging.discard()
            raise
        follower.stop("the download ended", force=False)  # no DONE event: wake the parser
        thread.join()
        follower.close()
        error = failure[0] if failure else None
        if error is not None and not isinstance(
            error, (StreamStopped, ExtractionError, LocalError)
        ):
            self.staging.discard()
            raise error  # cancelled, or the user's progress callback failed
        if error is None and follower.sha256() == result.sha256:
            return self._after(result, info, (slots, budget))
        why = follower.reason if isinstance(error, StreamStopped) else error or "other bytes"
        log.info("%s: streaming extraction not used (%s); extracting the file", self.archive, why)
        self.staging.discard()
        return self._after(result, info, None)
