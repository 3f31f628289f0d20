"""What one transfer knows, as one explicit value that the phases pass along.

The single-file algorithm is a few phases (:mod:`.existing`, :mod:`.direct`, :mod:`.resume`,
:mod:`.stream`, :mod:`.parallel`, :mod:`.takeover`, :mod:`.finish`) driven by
:class:`~resumable.engine.transfer.Transfer`. They share two values:

- :class:`Context`: what never changes during the transfer (the request, the settings, where
  progress goes, the cancel event, the locator that knows which URL to ask);
- :class:`State`: what is known so far (the version being fetched, the offset, the bytes kept,
  the hasher, the open ``.partial``), plus the few operations every phase needs on it (report
  an event, restart from byte 0, write the sidecar).

Keeping it in one value, rather than in attributes of one large class, is what lets each phase
be a small module with its own tests: a phase takes the state and returns an outcome.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import Cancelled, ResumableError
from ..locator import Locator, Target
from ..partial import Partial
from ..private import PrivateFile
from ..progress import EventKind, ProgressCallback, ProgressEvent
from ..ranges import RangeSet
from ..sources import RemoteInfo, Source
from ..verify import (
    BackgroundHasher,
    Digests,
    InlineHasher,
    check_size,
    pick_provider_checksum,
)
from .recover import Recovery
from .result import DownloadResult, Status

if TYPE_CHECKING:
    from ..limits import HostSlots
    from .request import DownloadRequest
    from .settings import Settings

__all__ = ["Context", "Services", "State"]


class Services(Protocol):
    """What a transfer uses of the :class:`~resumable.engine.Engine` that made it: its
    settings, the host slots and the byte meters. A protocol, so the phases below the engine
    module never import it (imports point down, as calls do)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def slots(self) -> HostSlots: ...

    def meter(self, amount: int, cancel: threading.Event | None = None) -> None: ...


@dataclass(frozen=True)
class Context:
    """What one transfer is asked to do, and with what (never changes while it runs).

    ``url`` names the object (sidecar, results, errors); the URL actually requested is the
    locator's (a refreshed signature or a mirror).
    """

    engine: Services
    request: DownloadRequest
    locator: Locator
    source: Source  # the source of ``url`` (a mirror's may differ: the locator knows)
    progress: ProgressCallback
    connections: int = 1
    split: bool = False  # connections chosen automatically: one stream first (stream.py)
    cancel: threading.Event | None = None
    sync_dir: Callable[[Path], None] | None = None  # replaces the directory fsync (batches)
    safe_url: str = ""
    host: str = ""

    @property
    def settings(self) -> Settings:
        return self.engine.settings

    @property
    def url(self) -> str:
        return self.request.url

    @property
    def dest(self) -> Path:
        return self.request.dest

    @property
    def size(self) -> int | None:
        return self.request.size

    @property
    def expected(self) -> Mapping[str, str]:
        return self.request.expected

    def expected_record(self) -> dict[str, Any]:
        """What the sidecar records of the caller's expectations."""
        return {"size": self.size, **self.expected}


@dataclass(eq=False)
class State:
    """What is known about the transfer so far (mutable; one thread uses it)."""

    ctx: Context
    partial: Partial
    target: Target  # the request in flight (set by each attempt)
    info: RemoteInfo | None = None  # the version being downloaded, once known
    offset: int = 0  # bytes of the partial that belong to that version
    resumed_from: int = 0  # bytes kept from an earlier call
    fetched: int = 0  # bytes fetched by this call
    high_water: int = 0  # furthest offset reached: retries count as progress only past it
    segments: RangeSet | None = None  # a segmented partial's recorded ranges
    single_stream: bool = False  # a server showed it cannot serve ranges: never segmented
    unpinned: bool = False  # a mirror took over: adopt its validators at its first answer
    provider: dict[str, str] = field(default_factory=dict)  # checksums the source vouches for
    hasher: InlineHasher = field(default_factory=lambda: InlineHasher(Digests()))
    kept: tuple[PrivateFile, RemoteInfo] | None = None  # bytes the direct path received
    direct_moved: int = 0  # how many (charged to the budget when the protocol takes over)
    started: bool = False  # STARTED was emitted
    callback_failed: bool = False  # the progress callback raised: report nothing more
    reported: bool = False  # the failure was reported and the partial tidied
    yielded: bool = False  # another writer owns the partial now: never tidy it away

    # -- what is known -------------------------------------------------------------------------

    def total(self) -> int | None:
        if self.info is not None and self.info.size is not None:
            return self.info.size
        return self.ctx.size

    def resumable(self, info: RemoteInfo | None) -> bool:
        """Bytes of ``info``'s version may be continued: a validator pins the version, or an
        expected digest will catch a splice (and trigger one whole refetch)."""
        return bool(self.ctx.expected) or (info is not None and info.has_validator)

    def changed(self, info: RemoteInfo) -> bool:
        """Whether ``info`` is provably not the version the partial holds."""
        return self.info is not None and self.info.differs_from(info)

    def segmentable(self, info: RemoteInfo) -> bool:
        """Large enough, ranges served, a validator to pin every piece to, more than one
        connection allowed, not ruled out. Without a validator (no strong ETag, no
        Last-Modified, no version) pieces could come from two versions: one stream instead."""
        return (
            not self.single_stream
            and self.ctx.connections > 1
            and info.accept_ranges
            and info.has_validator
            and info.size is not None
            and info.size >= self.ctx.settings.segment_threshold
        )

    def partial_size(self) -> int:
        try:
            return os.stat(self.partial.data).st_size
        except OSError:
            return 0

    # -- hashing ---------------------------------------------------------------------------------

    def use_provider_checksum(self, info: RemoteInfo) -> None:
        """Verify a checksum the source reported, unless the caller gave a SHA-256 already."""
        expected = self.ctx.expected
        self.provider = {} if "sha256" in expected else pick_provider_checksum(info.checksums)

    def algorithms(self) -> Digests:
        return Digests([*self.ctx.expected, *self.provider])

    def hash_later(self) -> None:
        """A placeholder until the size is known (replaced before any byte)."""
        self.hasher = InlineHasher(self.algorithms())

    def new_hasher(self, size: int | None) -> None:
        """Inline for one-block files (no thread to start), in the background otherwise."""
        small = size is not None and size <= self.ctx.settings.block_size
        digests = self.algorithms()
        self.hasher = InlineHasher(digests) if small else BackgroundHasher(digests)

    # -- the partial -------------------------------------------------------------------------------

    def record(self, info: RemoteInfo | None, ranges: RangeSet | None = None) -> None:
        """Write the sidecar: this object, ``info``'s validators, the caller's expectations."""
        validators = info.validators() if info is not None else {}
        self.partial.write_sidecar(
            self.ctx.url, validators, self.ctx.expected_record(), ranges=ranges
        )

    def adopt(self, info: RemoteInfo) -> None:
        """Record ``info`` as the version being downloaded from byte 0 (sidecar first)."""
        size = self.ctx.size
        if size is not None and info.size is not None and info.size != size:
            check_size(size, info.size, url=self.ctx.url, what="remote size")
        if self.info is None or self.info.validators() != info.validators():
            # About to go segmented: say so in the first sidecar already. A sidecar without
            # ranges means "the file's length is the resume offset", which a preallocated file
            # is not; without a working lock another process may read it in between.
            segmented = self.offset == 0 and self.segmentable(info)
            self.record(info, RangeSet() if segmented else None)
        self.info = info
        self.unpinned = False
        # At offset 0 nothing is hashed yet: now that the size and the provider's checksums are
        # known, pick the hasher.
        self.use_provider_checksum(info)
        self.hasher.close()
        self.new_hasher(info.size)

    def reset(self) -> None:
        """Forget the partial's bytes and hash: the next bytes start a new version at 0."""
        self.hasher.close()
        self.partial.truncate(0)
        self.record(None)
        self.info = None
        self.unpinned = False
        self.segments = None  # whatever comes next starts from an empty file
        self.offset = self.resumed_from = 0
        self.hash_later()
        self.emit(EventKind.PROGRESS)

    def recovery(self, url: str | None) -> Recovery:
        """A retry budget for this transfer (``url``: the name in its errors; ``None``: the
        URL requested). Retries are ``RETRYING`` events, a cancel ends a backoff, and a new
        mirror unpins the validators."""

        def report(exc: ResumableError, wait: float) -> None:
            self.ctx.engine.slots.observe(self.ctx.host, exc)  # a 429/503 narrows the host
            self.emit(EventKind.RETRYING, error=exc, wait=wait)

        ctx = self.ctx
        return Recovery(
            ctx.settings.retry,
            ctx.locator,
            url=url,
            report=report,
            cancel=ctx.cancel,
            what=ctx.safe_url,
            failed_over=self.failed_over,
            idle=lambda: ctx.engine.slots.away(ctx.host, ctx.cancel),
        )

    def failed_over(self) -> None:
        """A mirror took over: another server's validators (ETag, Last-Modified) differ for
        the same bytes. The expected digest guards the splice: keep the size, drop the
        validators, and adopt the mirror's at its first answer."""
        if self.ctx.expected and self.info is not None:
            self.info = RemoteInfo(url=self.ctx.url, size=self.info.size)
            self.unpinned = True

    # -- reporting ---------------------------------------------------------------------------------

    def emit(
        self,
        kind: EventKind,
        *,
        done: int | None = None,
        total: int | None = None,
        error: BaseException | None = None,
        wait: float | None = None,
    ) -> None:
        """Report an event; a cancel raises :class:`Cancelled` at the next in-flight one."""
        ctx = self.ctx
        in_flight = (EventKind.STARTED, EventKind.PROGRESS, EventKind.RETRYING)
        if ctx.cancel is not None and ctx.cancel.is_set() and kind in in_flight:
            raise Cancelled("cancelled", url=ctx.url)  # never once the file is complete
        event = ProgressEvent(
            kind=kind,
            url=ctx.safe_url,
            path=ctx.dest,
            done=self.offset if done is None else done,
            total=total if total is not None else self.total(),
            error=error,
            wait=wait,
        )
        try:
            ctx.progress(event)
        except BaseException:
            self.callback_failed = True
            raise

    def start(self) -> None:
        """Emit ``STARTED`` once."""
        if not self.started:
            self.started = True
            self.emit(EventKind.STARTED)

    def result(self, status: Status, size: int, digests: Mapping[str, str]) -> DownloadResult:
        return DownloadResult(
            url=self.ctx.safe_url,
            path=self.ctx.dest,
            size=size,
            sha256=digests["sha256"],
            status=status,
            bytes_transferred=self.fetched,
            digests=dict(digests),
        )
