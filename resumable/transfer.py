"""One file: check what is on disk, fetch what is missing, verify, promote.

:class:`Transfer` is the algorithm for one download, used once by one thread:

1. An existing destination that verifies (expected size/digests, else the remote size) is
   ``skipped`` with no bytes fetched.
2. Under the ``.partial`` lock, a partial whose sidecar names the same object (its identity)
   and a validator (or an expected digest) is resumed; anything else starts over. A segmented
   partial resumes from its recorded ranges.
3. Bytes are requested from that offset, pinned to the recorded version (``If-Range``). The
   answer decides: continue, restart from zero (a 200, a changed validator), or retry (a wrong
   ``Content-Range``). Two versions are never spliced. A large object whose source serves
   ranges goes to :class:`~resumable.segmented.SegmentedFetch` instead of one stream.
4. Bytes go to disk with ``pwrite`` and to the hash; transient failures are retried under the
   :class:`RetryPolicy`, each retry resuming from what is on disk.
5. Size and digests are checked before ``os.replace(D.partial, D)``.

:mod:`resumable.core` holds the configuration and the sources, and creates transfers. Neither
module imports requests, fsspec or tqdm.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import logging
import os
import stat
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from .bounds import bounded
from .cancel import watching
from .errors import (
    Cancelled,
    InvalidArgument,
    LocalError,
    PartialTakenOver,
    ProtocolMismatch,
    ResumableError,
    RetriesExhausted,
    SizeMismatch,
    TransientError,
    VerificationError,
    identity,
    redact,
)
from .locator import PERMANENT, Locator, Target
from .partial import Flusher, Partial, Sidecar
from .private import PrivateFile
from .progress import EventKind, ProgressCallback, ProgressEvent
from .ranges import RangeSet
from .retry import RetryBudget
from .segmented import SEGMENT_READ, Fallback, SegmentedFetch
from .sources import Body, RemoteInfo, Source
from .verify import (
    BackgroundHasher,
    Digests,
    InlineHasher,
    check_digests,
    check_size,
    hash_file,
    pick_provider_checksum,
)

if TYPE_CHECKING:
    from .core import ResumableDownloader
    from .extract import ExtractResult

__all__ = ["DownloadResult", "Transfer"]

log = logging.getLogger("resumable")

Status = Literal["downloaded", "resumed", "skipped"]
_SIDECAR_ROOM = 256 << 10  # bytes of a kept partial given back when its sidecar does not fit
FLUSH_EVERY = 64 << 20  # single stream: start writeback every 64 MiB (see partial.Flusher)


@dataclass(frozen=True, slots=True)
class DownloadResult:
    """What one download produced.

    Attributes:
        url: the source URL, credentials redacted.
        path: the destination, complete and verified.
        size: its size in bytes.
        sha256: its SHA-256, hex.
        status: ``"downloaded"``, ``"resumed"`` (bytes from an earlier interrupted call were
            kept) or ``"skipped"`` (the destination was already complete; nothing fetched).
        bytes_transferred: bytes fetched by this call.
        digests: every digest computed, ``{algorithm: hex}`` (SHA-256 and any requested).
        extracted: with ``process=``, what processing the archive produced
            (:class:`~resumable.extract.ExtractResult`); ``None`` without a processor.
    """

    url: str
    path: Path
    size: int
    sha256: str
    status: Status
    bytes_transferred: int
    digests: Mapping[str, str] = field(default_factory=dict, repr=False)
    extracted: ExtractResult | None = field(default=None, repr=False)


class _Restart(Exception):
    """Internal: the answer belongs to another version; start over at once (not a failure)."""


class Transfer:
    """The algorithm for one file (see the module docstring). Used once, by one thread."""

    def __init__(
        self,
        downloader: ResumableDownloader,
        source: Source,
        url: str,
        dest: Path,
        size: int | None,
        expected: dict[str, str],
        progress: ProgressCallback,
        connections: int = 1,
        *,
        cancel: threading.Event | None = None,
        refresh: bool = False,
        sync_dir: Callable[[Path], None] | None = None,
        direct: bool = True,
        locator: Locator | None = None,
    ) -> None:
        self.d = downloader
        self.direct = direct  # may take the direct path (a streaming reader needs D.partial)
        self.sync_dir = sync_dir  # replaces the directory fsync after a rename (batches)
        # The URL to request (refreshed, or a mirror); ``url`` stays the object's name.
        self.locator = locator or Locator([url], [source])
        self.target = Target(url, source, 0)  # the request in flight (set by each attempt)
        self.loose = False  # a mirror took over: adopt its validators at the next answer
        self.final = False  # the segment engine already tried every URL: nothing left
        self.connections = connections
        self.cancel = cancel
        self.refresh = refresh
        self.host = urlsplit(url).hostname or ""
        self.segments: RangeSet | None = None  # a segmented partial's recorded ranges
        self.segmentable = True  # until a server shows it cannot serve ranges
        self.source = source
        self.url = url
        self.safe_url = redact(url)
        self.dest = dest
        self.size = size
        self.expected = expected
        self.provider: dict[str, str] = {}  # a checksum the source vouches for, verified too
        self.progress = progress
        self.partial = Partial(dest)
        self.info: RemoteInfo | None = None  # the version being downloaded, once known
        self.offset = 0  # bytes of the partial that belong to that version
        self.resumed_from = 0  # bytes kept from an earlier call
        self.fetched = 0  # bytes fetched by this call
        self.high_water = 0  # furthest offset reached: retries count as progress only past it
        self.hasher: InlineHasher = InlineHasher(Digests())
        self.callback_failed = False
        self.started = False  # STARTED was emitted
        self.cleaned = False  # an error was reported and the partial tidied
        self.named = False  # the .partial protocol is in use (the direct path touches no partial)
        self.direct_moved = 0  # bytes the direct attempt received before it failed
        self.kept: tuple[PrivateFile, RemoteInfo] | None = None  # those bytes, to resume from
        self.adopted = False  # D.partial starts with them
        self.yielded = False  # another writer took the partial over (see _await_other_writer)

    # -- entry ----------------------------------------------------------------------------------

    def run(self) -> DownloadResult:
        present = self._dest_size()  # refuses a directory before anything is created
        direct = self._direct_possible()
        if not direct:
            self._make_parent()  # the direct path makes it only if its file cannot be created
        try:
            # A cancel shuts this download's connections: a read blocked on a silent server
            # returns at once (resumable.cancel).
            with watching(self.cancel), self._cleanup_on_error():
                if direct:
                    return self._direct_first(present)
                return self._under_lock(None)
        finally:
            self.hasher.close()
            self.partial.close()
            if self.kept is not None:
                self.kept[0].discard()

    def _make_parent(self) -> None:
        try:
            self.dest.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            # FileExistsError: a file stands where a directory of the path should be.
            reason = "Not a directory" if isinstance(exc, FileExistsError) else exc.strerror
            err = LocalError(
                f"cannot create {self.dest.parent}: {reason}", path=str(self.dest.parent)
            )
            err.kept = "nothing was fetched and nothing on disk was changed"
            raise err from exc

    @contextlib.contextmanager
    def _cleanup_on_error(self) -> Iterator[None]:
        """On an error, report it and keep only what is worth resuming (once, and inside the
        lock when one is held, so the lock file goes with an empty partial)."""
        try:
            yield
        except ResumableError as exc:
            if not self.cleaned:
                self.cleaned = True
                self._fail(exc)
            raise
        except BaseException:
            if not self.cleaned:
                self.cleaned = True
                self._tidy()  # a callback's exception or Ctrl-C
            raise

    def _under_lock(self, handoff: TransientError | None) -> DownloadResult:
        """The ``.partial`` protocol, under ``D.partial.lock``."""
        with self.partial.locked(self.d.locking, cancel=self.cancel), self._cleanup_on_error():
            self.named = True
            while True:
                skipped = None if self.refresh else self._skip_existing()
                if skipped is not None:
                    return skipped
                try:
                    with self.d.slots.hold(self.host, self.cancel):
                        self._adopt_kept()
                        return self._download(first_error=handoff)
                except PartialTakenOver as exc:
                    handoff = None
                    finished = self._await_other_writer(exc)
                    if finished is not None:
                        return finished

    def _adopt_kept(self) -> None:
        """Make the bytes a failed direct attempt received the start of ``D.partial``.

        ``link`` rather than ``rename``: it fails if ``D.partial`` exists (a writer without a
        working lock), where a rename would replace that writer's bytes. The sidecar then
        claims the partial, with the validators the bytes were received under, and
        :meth:`_open_partial` resumes it like any partial.
        """
        if self.kept is None:
            return
        private, info = self.kept
        self.kept = None
        try:
            if not self._resumable(info):
                return  # nothing pins the version: those bytes could not be continued
            try:
                os.link(private.path, self.partial.data)
            except OSError as exc:
                log.debug("not keeping the direct attempt's bytes for %s: %s", self.dest, exc)
                return
            self.adopted = self._claim_kept(info)
        finally:
            private.discard()

    def _claim_kept(self, info: RemoteInfo) -> bool:
        """Write the sidecar that makes the linked bytes a resumable ``D.partial``.

        After a full disk (the usual reason the direct attempt stopped) the sidecar itself may
        not fit: the partial's last bytes are given back (``_SIDECAR_ROOM``) and the write is
        tried once more. If it still fails, ``D.partial`` is removed: bytes without a sidecar
        are started over by the next run, and the error must not say they resume.
        """
        for attempt in range(2):
            try:
                self.partial.write_sidecar(self.url, info.validators(), self._expected_record())
                return True
            except PartialTakenOver:
                raise
            except LocalError as exc:
                full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
                try:
                    size = os.stat(self.partial.data).st_size
                except OSError:
                    break
                if attempt or not full or size <= _SIDECAR_ROOM:
                    break
                log.info("disk full: giving back the last bytes of %s for its sidecar", self.dest)
                with contextlib.suppress(OSError):
                    os.truncate(self.partial.data, size - _SIDECAR_ROOM)
        log.warning("could not write the sidecar of %s; its bytes are not kept", self.partial.data)
        with contextlib.suppress(OSError):
            os.unlink(self.partial.data)
        return False

    # -- an existing destination -----------------------------------------------------------------

    def _dest_size(self) -> int | None:
        """The size of ``dest`` (following a symlink), or ``None`` when there is none yet."""
        try:
            st = os.stat(self.dest)
        except (FileNotFoundError, NotADirectoryError):  # the folder is made (or refused) later
            return None
        except OSError as exc:
            raise LocalError(
                f"cannot read {self.dest}: {exc.strerror}", path=str(self.dest)
            ) from exc
        if stat.S_ISDIR(st.st_mode):
            raise InvalidArgument(
                f"dest {self.dest} is a directory; give the file's path",
                kept="nothing was fetched and nothing on disk was changed",
            )
        if not stat.S_ISREG(st.st_mode):  # a FIFO, socket or device is not ours to replace
            raise InvalidArgument(
                f"dest {self.dest} exists and is not a regular file (a FIFO, socket or "
                "device); give the path of a file",
                kept="nothing was fetched and nothing on disk was changed",
            )
        return st.st_size

    def probe(self, what: str) -> RemoteInfo | None:
        """The object's metadata, or ``None`` (logged with ``what``) when asking for it fails.

        A metadata request can disagree with the read (a HEAD answering 404, 403 or 500 while
        GET works): what it says may neither skip, fail nor delete anything, so ``None`` means
        "cannot tell" and the download's own read decides. A cancel still raises.
        """
        try:
            return self._stat()
        except Cancelled:
            raise
        except ResumableError as exc:
            log.info("%s: %s (%s)", self.safe_url, what, exc)
            return None

    def _skip_existing(
        self, present: int | Literal["look"] | None = "look"
    ) -> DownloadResult | None:
        """Return a ``skipped`` result if ``dest`` is already the complete file.

        ``present``: its size (or ``None``: absent) when :meth:`run` has just looked."""
        size = self._dest_size() if present == "look" else present
        if size is None:
            return None
        if self.size is not None and size != self.size:
            return None
        if not self.expected and self.size is None:
            remote = self.probe("cannot check the existing file; downloading")
            if remote is None:
                return None
            if remote.size is None or remote.size != size:
                log.info("%s exists but does not match the remote size; downloading", self.dest)
                return None
            self._use_provider_checksum(remote)
        wanted = {**self.expected, **self.provider}
        digests = Digests(wanted)
        try:
            hash_file(self.dest, digests.update)
        except OSError as exc:
            raise LocalError(
                f"cannot read {self.dest}: {exc.strerror}", path=str(self.dest)
            ) from exc
        actual = digests.hexdigests()
        if any(actual[a] != v for a, v in wanted.items()):
            log.info("%s exists but fails verification; downloading a fresh copy", self.dest)
            return None
        self._emit(EventKind.SKIPPED, done=size, total=size)
        return self._result("skipped", size, actual)

    def _stat(self) -> RemoteInfo:
        """``source.stat`` under the retry policy (a HEAD meets 503s like any request), on a
        refreshed URL or a mirror when the current one fails for good."""

        def retrying(exc: TransientError, wait: float) -> None:
            log.info("retrying %s in %.1fs after: %s", self.safe_url, wait, exc)
            self._emit(EventKind.RETRYING, error=exc, wait=wait)

        while True:
            target = self.locator.current()
            try:
                info = self.d.retry.call(
                    functools.partial(target.source.stat, target.url),
                    url=target.url,
                    on_retry=retrying,
                    wake=self.cancel,
                )
            except PERMANENT as exc:
                if self._recover(exc, target):
                    continue
                raise
            self.locator.succeeded(target)
            return info

    # -- the direct path: files that fit in one answer -------------------------------------------

    def _direct_possible(self) -> bool:
        """Worth trying: no partial to resume, and not known to be larger than one block."""
        if not self.direct:
            return False
        if self.size is not None and self.size > self.d.block_size:
            return False
        try:
            os.lstat(self.partial.data)
        except FileNotFoundError:
            return True
        except OSError:
            pass
        return False

    def _direct_first(self, present: int | None) -> DownloadResult:
        """Try :meth:`_direct`; hand what it cannot finish to the ``.partial`` protocol.

        Without the ``D.partial`` lock: the direct path writes nothing anyone else can see until
        it publishes. A larger object's answer is kept and continued under the lock if the lock
        is free at once (never waiting for a lock while holding a connection slot).
        """
        skipped = None if self.refresh else self._skip_existing(present)
        if skipped is not None:
            return skipped
        with self.d.slots.hold(self.host, self.cancel):
            outcome = self._direct()
            if isinstance(outcome, DownloadResult):
                return outcome
            if outcome is None or isinstance(outcome, TransientError):
                failed: TransientError | None = outcome
            else:
                with self.partial.locked(self.d.locking, blocking=False) as held:
                    if held:
                        with self._cleanup_on_error():
                            self.named = True
                            # A writer may have published D while this answer was coming.
                            skipped = None if self.refresh else self._skip_existing()
                            if skipped is not None:
                                outcome.close()
                                return skipped
                            try:
                                return self._download(first_body=outcome)
                            except PartialTakenOver as exc:
                                outcome.close()
                                finished = self._await_other_writer(exc)
                                if finished is not None:
                                    return finished
                            except BaseException:  # a callback's exception, Ctrl-C: no socket
                                outcome.close()  # left open (a no-op once the engine closed it)
                                raise
                outcome.close()  # someone else is on this file: wait for the lock, then re-check
                failed = None
        return self._under_lock(failed)

    def _direct(self) -> DownloadResult | Body | TransientError | None:
        """Fetch the whole object into a :class:`PrivateFile` if it fits in one block.

        Returns the result; or the open answer when the object is larger (the ``.partial``
        protocol continues with it); or the transient error of a failed attempt (the protocol
        retries, charging it to the budget); or ``None`` after a refused URL was replaced (a
        refreshed signature or a mirror: the protocol starts afresh with it).
        """
        # Created first: a folder that cannot be written fails before any request is sent.
        private = PrivateFile(self.dest, self._make_parent)
        body: Body | None = None
        try:
            self.target = target = self.locator.current()
            try:
                body = target.source.open(target.url)
            except TransientError as exc:
                return exc
            except PERMANENT as exc:
                if self._recover(exc, target):
                    return None
                raise
            self.locator.succeeded(target)
            info = body.info
            size = info.size
            if (
                body.start != 0
                or size is None
                or size > self.d.block_size
                or self._segmentable(info)
            ):
                answer, body = body, None  # handed over open
                return answer
            self._adopt_direct(info)
            self._receive(bounded(body, url=self.url, total=size, size=self.size), private, size)
            body.close()
            digests = self.hasher.finish()
            self._check(digests)
            self._emit(EventKind.VERIFIED)
            private.publish(self.sync_dir)
        except TransientError as exc:  # the body broke: the open's own errors returned above
            self.direct_moved = self.offset
            if self.offset > 0:
                self.kept = (private, info)  # becomes D.partial under the lock (_adopt_kept)
            self.offset = 0  # what is on disk is decided again under the lock
            self._hash_later()
            return exc
        except VerificationError:
            raise  # the bytes are wrong: nothing is kept
        except BaseException:
            # Ctrl-C, a cancel, a callback's exception: the bytes stay resumable, as a partial.
            if self.offset > 0:
                self.kept = (private, info)
                self._adopt_kept()
            raise
        finally:
            if body is not None:
                body.close()
            if self.kept is None:  # kept: discarded once it became D.partial
                private.discard()  # a no-op once published or adopted
        self._emit(EventKind.DONE)
        return self._result("downloaded", self.offset, digests)

    def _adopt_direct(self, info: RemoteInfo) -> None:
        if self.size is not None and info.size is not None and info.size != self.size:
            check_size(self.size, info.size, url=self.url, what="remote size")
        self.info = info
        self._use_provider_checksum(info)
        self.hasher.close()
        self.hasher = InlineHasher(Digests([*self.expected, *self.provider]))
        self.started = True
        self._emit(EventKind.STARTED)

    def _receive(self, body: Body, private: PrivateFile, total: int) -> None:
        """Receive the whole body (at most one block) and write it with one ``pwritev``.

        One write per file rather than one per read (the first read is usually the few bytes
        that came with the headers): each write is a system call that hands the GIL to
        another thread. Whatever stops the body (a cut, Ctrl-C, a callback's exception, a body
        running past ``total``: never read past it) still finds every received byte in
        ``private`` first, for :meth:`_adopt_kept`.
        """
        pending: list[bytes] = []
        received = self.offset
        try:
            while chunk := body.read(self.d.block_size):
                pending.append(chunk)
                self.hasher.submit(chunk)
                received += len(chunk)
                self.fetched += len(chunk)
                self.d._meter(len(chunk), self.cancel)
                self._emit(EventKind.PROGRESS, done=received, total=total)
        finally:
            if pending:
                try:
                    private.write(pending, self.offset)
                finally:  # a failed write (a full disk) keeps what it wrote: it is resumable
                    self.offset = private.end
        if self.offset < total:
            raise ProtocolMismatch(f"the body ended at byte {self.offset} of {total}", url=self.url)

    def _await_other_writer(self, taken: PartialTakenOver) -> DownloadResult | None:
        """Another process took the partial over: its lock did not hold (NFS, Lustre, or
        ``locking=False``). Stop writing and let it finish, then report the file it published
        (``skipped``). If it goes quiet instead (it died), return ``None``: this call takes the
        partial over again and resumes it.

        Quiet means nothing changed (destination, partial, sidecar) for a stall timeout plus the
        longest backoff, the longest a live writer can be silent.
        """
        log.warning("%s; waiting for the other writer to finish", taken)
        self.yielded = True  # the partial is the other writer's now: never tidy it away
        self.hasher.close()
        self.partial.close()
        stopped, self.partial = self.partial, Partial(self.dest)  # a new token for a take-over
        self.info, self.segments = None, None
        quiet = self.d.timeouts.stall + self.d.retry.backoff_max
        wake = self.cancel or threading.Event()
        last: object = None
        checked: object = None  # the destination as last verified (each check may HEAD)
        since = time.monotonic()
        while True:
            state = tuple(_stamp(p) for p in (self.dest, self.partial.data, self.partial.meta))
            if state[0] is not None and state[1] is None and state[0] != checked:
                checked = state[0]
                published = self._skip_existing()
                if published is not None:
                    stopped.remove_orphan_sidecar()
                    return published
            if state != last:
                last, since = state, time.monotonic()
            elif time.monotonic() - since > quiet:
                log.warning("the other writer of %s went quiet; taking over", self.partial.data)
                self.yielded = False
                return None
            if wake.wait(0.05):
                raise Cancelled("cancelled", url=self.url)

    # -- the download ---------------------------------------------------------------------------

    def _download(
        self, first_body: Body | None = None, first_error: TransientError | None = None
    ) -> DownloadResult:
        self._open_partial()
        if self.adopted:  # this call's own bytes: "downloaded", not "resumed"
            self.adopted = False
            self.resumed_from = 0
        budget = self.d.retry.budget().resuming(self.offset)  # bytes on disk: not a dead host
        if first_body is not None and (self.offset or self.segments is not None):
            first_body.close()  # a partial appeared meanwhile (a racer that died): resume it
            first_body = None
        if not self.started:
            self.started = True
            self._emit(EventKind.STARTED)
        if first_error is not None:  # the direct attempt failed: it counts against the budget
            budget = self._retry_after(budget, first_error, moved=self.direct_moved)
        if self.segments is not None:
            try:
                self._run_segmented(None)
                return self._finish()
            except Fallback as fallback:
                self._fall_back(fallback)
        while True:
            before = self.high_water
            try:
                self._attempt(first_body)
                break
            except _Restart:
                continue
            except Fallback as fallback:
                self._fall_back(fallback)
                continue
            except TransientError as exc:
                budget = self._retry_after(budget, exc, moved=self.high_water - before)
            except PERMANENT as exc:  # refused for good: a refreshed URL or a mirror may do
                if self.final or not self._recover(exc, self.target):
                    raise
                budget = self.d.retry.budget()
            finally:
                first_body = None
        return self._finish()

    def _retry_after(self, budget: RetryBudget, exc: TransientError, *, moved: int) -> RetryBudget:
        """Count a failed attempt that moved ``moved`` new bytes and wait out its backoff;
        return the budget left (only meaningful progress refills it: see ``RetryBudget.moved``).

        When the budget is spent (a dead host), a refreshed URL or a mirror starts over with a
        fresh budget at once; without one, :class:`RetriesExhausted` is raised.
        """
        total = self._total()
        remaining = None if total is None else total - (self.high_water - max(moved, 0))
        try:
            budget, wait = budget.moved(exc, moved, remaining=remaining, url=self.url)
        except RetriesExhausted as gave_up:
            if not self._recover(gave_up, self.target):
                raise
            return self.d.retry.budget()
        log.info("retrying %s in %.1fs after: %s", self.safe_url, wait, exc)
        self._emit(EventKind.RETRYING, error=exc, wait=wait)
        self.d.retry.wait(wait, self.cancel)
        if self.cancel is not None and self.cancel.is_set():
            raise Cancelled("cancelled", url=self.url)  # woken from the back-off
        return budget

    def _recover(self, exc: ResumableError, target: Target) -> bool:
        """Replace the URL that failed with ``exc`` (refresh hook, then mirrors), if possible."""
        mirror = self.locator.mirror
        if not self.locator.recover(exc, target):
            return False
        if self.locator.mirror != mirror and self.expected and self.info is not None:
            # Another server's validators (ETag, Last-Modified) differ for the same bytes. The
            # expected digest guards the splice: keep the size, drop the validators, and adopt
            # the mirror's at its first answer.
            self.info = RemoteInfo(url=self.url, size=self.info.size)
            self.loose = True
        self._emit(EventKind.RETRYING, error=exc, wait=0.0)
        return True

    def _open_partial(self) -> None:
        """Take over ``D.partial``: resume it if its sidecar proves what it holds, else empty it."""
        on_disk = self.partial.open()
        sidecar = self.partial.read_sidecar()
        info = None
        if sidecar is not None and on_disk > 0 and sidecar.identity == identity(self.url):
            recorded = RemoteInfo(url=self.url, **_known(sidecar.validators))
            agree = all(sidecar.expected.get(a, v) == v for a, v in self.expected.items())
            if agree and self._resumable(recorded):
                info = recorded
        ranges = None  # a segmented partial's recorded ranges that its file really holds
        if info is not None and sidecar is not None and sidecar.ranges is not None:
            ranges = self.partial.recorded_ranges(sidecar.ranges, info.size or 0, on_disk)
            if ranges is None:  # not the file a segmented writer left beside this sidecar
                info = None
        if info is None:
            if on_disk:  # claim the bytes before dropping them (truncate checks the owner)
                self.partial.write_sidecar(self.url, {}, self._expected_record())
                log.info("%s cannot be resumed safely; starting over", self.partial.data)
                self.partial.truncate(0)
            on_disk = 0
        elif ranges is not None:
            # A segmented partial: only the recorded ranges count, whatever the file's length.
            self.segments = ranges
            on_disk = ranges.total
            self.partial.write_sidecar(
                self.url, info.validators(), self._expected_record(), ranges=ranges
            )
        else:
            on_disk = self.partial.written_prefix(on_disk)
            self.partial.write_sidecar(self.url, info.validators(), self._expected_record())
        self.info = info
        self.offset = self.resumed_from = self.high_water = on_disk
        if info is not None:
            self._use_provider_checksum(info)
            self._new_hasher(info.size)
        else:
            self._hash_later()
        if on_disk and self.segments is None:
            log.info("resuming %s at byte %d", self.safe_url, on_disk)
            self.hasher.submit_file(self.partial.fd, on_disk)  # by descriptor: see hash_file

    def _resumable(self, info: RemoteInfo | None) -> bool:
        """Bytes of ``info``'s version may be continued: a validator pins the version, or an
        expected digest will catch a splice (and trigger one whole refetch)."""
        return bool(self.expected) or (info is not None and info.has_validator)

    def _attempt(self, body: Body | None = None) -> None:
        """One request: stream from ``self.offset`` to the end of the object, or raise.

        ``body``: an answer already received for byte 0 (handed over by the direct path, whose
        request ``self.target`` still names).
        """
        target = self.target
        if body is None:
            if self.offset and not self._resumable(self.info):
                log.info("%s has no validator to resume against; restarting", self.safe_url)
                self._reset()
            expect = self.info if self.offset else None
            self.target = target = self.locator.current()
            body = target.source.open(target.url, start=self.offset, expect=expect)
        try:
            self._accept(body)
            self.locator.succeeded(target)
            if self.offset == 0 and self._segmentable(body.info):
                self._run_segmented(body)  # the open answer serves the first piece
            else:
                self._stream(body)
        finally:
            body.close()

    def _accept(self, body: Body) -> None:
        """Decide how the answer relates to the partial; restart when it is another version."""
        info = body.info
        if body.start == self.offset and self.offset == 0:
            self._adopt(info)
            return
        if body.start == 0:
            # A 200 to a ranged request: the object changed (If-Range) or ranges are ignored.
            changed = self._changed(info)
            why = "the object changed" if changed else "the server ignored Range"
            log.info("%s: %s; restarting from byte 0", self.safe_url, why)
            self._reset()
            if changed:
                self.high_water = 0  # a new version: its bytes are progress again
            self._adopt(info)
            return
        if body.start != self.offset:
            raise ProtocolMismatch(
                f"asked for bytes from {self.offset}, the answer starts at {body.start}",
                url=self.url,
            )
        if self.size is not None and info.size is not None and info.size != self.size:
            self.partial.discard()  # the object is not the one the caller described
            check_size(self.size, info.size, url=self.url, what="remote size")
        if info.size is not None and info.size < self.offset:
            log.info("%s: the partial is longer than the object; restarting", self.safe_url)
            self._reset()
            raise _Restart
        if self._changed(info):
            # A server that ignores If-Range (S3-like) answered 206 for a new version.
            log.info("%s: the object changed; restarting from byte 0", self.safe_url)
            self._reset()
            self.high_water = 0
            raise _Restart
        if self.loose and info.has_validator:  # a mirror's first answer: pin to its version
            self.loose = False
            self.info = replace(info, size=info.size if info.size is not None else self._total())
            self.partial.write_sidecar(self.url, self.info.validators(), self._expected_record())

    def _changed(self, info: RemoteInfo) -> bool:
        """Whether ``info`` is provably not the version the partial holds."""
        return self.info is not None and self.info.differs_from(info)

    def _adopt(self, info: RemoteInfo) -> None:
        """Record ``info`` as the version being downloaded (sidecar first, then data)."""
        if self.size is not None and info.size is not None and info.size != self.size:
            check_size(self.size, info.size, url=self.url, what="remote size")
        if self.info is None or self.info.validators() != info.validators():
            # About to go segmented: say so in the first sidecar already. A sidecar without
            # ranges means "the file's length is the resume offset", which a preallocated file
            # is not; without a working lock another process may read it in between.
            segmented = self.offset == 0 and self._segmentable(info)
            self.partial.write_sidecar(
                self.url,
                info.validators(),
                self._expected_record(),
                ranges=RangeSet() if segmented else None,
            )
        self.info = info
        self.loose = False
        # At offset 0 nothing is hashed yet: now that the size and the provider's checksums are
        # known, pick the hasher (inline for one-block files: no thread to start).
        self._use_provider_checksum(info)
        self.hasher.close()
        self._new_hasher(info.size)

    def _reset(self) -> None:
        """Forget the partial's bytes and hash: the next bytes start a new version at 0."""
        self.hasher.close()
        self.partial.truncate(0)
        self.partial.write_sidecar(self.url, {}, self._expected_record())
        self.info = None
        self.loose = False
        self.segments = None  # whatever comes next starts from an empty file
        self.offset = self.resumed_from = 0
        self._hash_later()
        self._emit(EventKind.PROGRESS)

    def _stream(self, body: Body) -> None:
        """Stream the body to disk and the hash; large files are flushed as they grow.

        Never past a known length (:func:`~resumable.bounds.bounded`): a body that proves the
        object larger than the caller's ``size`` discards the partial (those bytes are not the
        object asked for) and raises :class:`SizeMismatch`.
        """
        total = self._total()
        known = self.info.size if self.info is not None else None
        body = bounded(body, url=self.url, total=known, size=self.size)
        flusher = Flusher(self.partial.fd) if total is None or total >= FLUSH_EVERY else None
        try:
            self._stream_into(body, self.partial, self.hasher, total, flusher, self.offset)
        except SizeMismatch:
            self.partial.discard()
            raise
        finally:
            if flusher is not None:
                flusher.close()

    def _stream_into(
        self,
        body: Body,
        partial: Partial,
        hasher: InlineHasher,
        total: int | None,
        flusher: Flusher | None,
        flushed: int,
    ) -> None:
        block = self.d.block_size
        writes = 0
        while chunk := body.read(block):
            if writes % 64 == 0:  # before the first write too: the partial may be gone already
                partial.check_owner()
            partial.write(chunk, self.offset)
            hasher.submit(chunk)
            self.offset += len(chunk)
            self.fetched += len(chunk)
            self.high_water = max(self.high_water, self.offset)
            self.d._meter(len(chunk), self.cancel)
            if flusher is not None and self.offset - flushed >= FLUSH_EVERY:
                flusher.kick()
                flushed = self.offset
            writes += 1
            self._emit(EventKind.PROGRESS, total=total)
        if total is not None and self.offset < total:
            raise ProtocolMismatch(f"the body ended at byte {self.offset} of {total}", url=self.url)

    # -- segmented --------------------------------------------------------------------------------

    def _segmentable(self, info: RemoteInfo) -> bool:
        """Large enough, ranges served, a validator to pin every piece to, more than one
        connection allowed, not ruled out. Without a validator (no strong ETag, no
        Last-Modified, no version) pieces could come from two versions: one stream instead."""
        return (
            self.segmentable
            and self.connections > 1
            and info.accept_ranges
            and info.has_validator
            and info.size is not None
            and info.size >= self.d.segment_threshold
        )

    def _run_segmented(self, first_body: Body | None) -> None:
        """Fetch the missing ranges over several connections; the frontier hashes in order."""
        info = self.info
        assert info is not None
        assert info.size is not None
        self.hasher.close()  # the engine's frontier hashes instead
        digests = Digests([*self.expected, *self.provider])
        written = self.segments if self.segments is not None else RangeSet()
        self._record_ranges(written)
        engine = SegmentedFetch(
            source=self.source,
            url=self.url,
            locator=self.locator,
            info=info,
            partial=self.partial,
            written=written,
            digests=digests,
            connections=self.connections,
            block=min(self.d.block_size, SEGMENT_READ),
            policy=self.d.retry,
            stall=self.d.timeouts.stall,
            record=self._record_ranges,
            emit=self._segment_event,
            first_body=first_body,
            meter=lambda amount: self.d._meter(amount, self.cancel),
            extra_slot=lambda: self.d.slots.try_take(self.host),
        )
        try:
            engine.run()
        except PERMANENT:
            # Its connections refreshed or failed over already (and its ranges are not a
            # prefix a single stream could continue): the error is final.
            self.final = True
            raise
        finally:
            self.fetched += engine.fetched
        self.hasher = InlineHasher(digests)  # finish() returns what the frontier computed
        self.offset = info.size

    def _record_ranges(self, ranges: RangeSet) -> None:
        self.partial.check_owner()
        assert self.info is not None
        self.partial.write_sidecar(
            self.url, self.info.validators(), self._expected_record(), ranges=ranges
        )

    def _segment_event(
        self, kind: str, done: int, error: BaseException | None = None, wait: float | None = None
    ) -> None:
        self.offset = done
        self._emit(EventKind(kind), done=done, error=error, wait=wait)

    def _fall_back(self, fallback: Fallback) -> None:
        """Segments are impossible (no ranges) or the object changed: one stream from 0."""
        log.info("%s: %s; downloading as one stream from byte 0", self.safe_url, fallback.reason)
        self.segmentable = False
        self.segments = None
        self._reset()
        if fallback.changed:
            self.high_water = 0

    def _total(self) -> int | None:
        if self.info is not None and self.info.size is not None:
            return self.info.size
        return self.size

    # -- verify and publish -----------------------------------------------------------------------

    def _finish(self) -> DownloadResult:
        try:
            digests = self.hasher.finish()
        except OSError as exc:  # re-reading the partial's prefix failed
            raise LocalError(
                f"re-hashing {self.partial.data} failed: {exc}", path=str(self.partial.data)
            ) from exc
        try:
            self._check(digests)
        except VerificationError:
            if self.resumed_from:
                # The mismatch may come from bytes of an earlier call: fetch the whole file
                # once before calling the source wrong.
                log.warning("%s failed verification after a resume; refetching", self.safe_url)
                self._reset()
                return self._download_again()
            self.partial.discard()
            raise
        self._emit(EventKind.VERIFIED)
        self._drop_tail()
        self.partial.promote(self.sync_dir)
        status: Status = "resumed" if self.resumed_from else "downloaded"
        self._emit(EventKind.DONE)
        return self._result(status, self.offset, digests)

    def _drop_tail(self) -> None:
        """Never publish a byte past the verified length: a partial longer than it (preallocated
        by a racing writer without a working lock, or damaged) loses its tail first."""
        if self._partial_size() > self.offset:
            log.warning("%s is longer than the object; dropping its tail", self.partial.data)
            self.partial.truncate(self.offset)

    def _check(self, digests: Mapping[str, str]) -> None:
        check_size(self.size, self.offset, url=self.url)
        check_digests(self.expected, digests, url=self.url)
        check_digests(
            self.provider, digests, url=self.url, origin="the checksum the source reported"
        )

    def _download_again(self) -> DownloadResult:
        self.hasher.close()
        self.partial.close()
        return self._download()

    def _result(self, status: Status, size: int, digests: Mapping[str, str]) -> DownloadResult:
        return DownloadResult(
            url=self.safe_url,
            path=self.dest,
            size=size,
            sha256=digests["sha256"],
            status=status,
            bytes_transferred=self.fetched,
            digests=dict(digests),
        )

    # -- helpers --------------------------------------------------------------------------------

    def _use_provider_checksum(self, info: RemoteInfo) -> None:
        """Verify a checksum the source reported, unless the caller gave a SHA-256 already."""
        self.provider = {} if "sha256" in self.expected else pick_provider_checksum(info.checksums)

    def _hash_later(self) -> None:
        """A placeholder until ``_adopt`` knows the size (it replaces it before any byte)."""
        self.hasher = InlineHasher(Digests([*self.expected, *self.provider]))

    def _new_hasher(self, size: int | None) -> None:
        digests = Digests([*self.expected, *self.provider])
        small = size is not None and size <= self.d.block_size
        self.hasher = InlineHasher(digests) if small else BackgroundHasher(digests)

    def _expected_record(self) -> dict[str, Any]:
        return {"size": self.size, **self.expected}

    def _tidy(self) -> None:
        if self.named and self._partial_size() == 0 and not self.yielded:
            self.partial.discard()  # an empty partial and its sidecar are only clutter

    def _fail(self, exc: ResumableError) -> None:
        self._tidy()
        if exc.kept is None:
            exc.kept = self._kept()
        if not self.callback_failed:
            self._emit(EventKind.FAILED, error=exc)

    def _kept(self) -> str:
        """What is on disk, in words: "resumable" only when the same call, run again, would
        resume it (what :meth:`_open_partial` will decide from the sidecar)."""
        parts = []
        have = self._partial_size()
        sidecar = self._kept_sidecar() if have else None
        if sidecar is not None and sidecar.ranges is not None:
            have = sidecar.ranges.total  # preallocated: only the recorded ranges count
            if not have:
                return f"a preallocated partial with no recorded bytes is at {self.partial.data}"
        total = self._total()
        of = f" of {total}" if total is not None else ""
        if have and sidecar is not None:
            parts.append(
                f"partial kept at {self.partial.data} ({have}{of} bytes), resumable by "
                "running the same download again"
            )
        elif have:
            parts.append(
                f"nothing resumable was kept ({self.partial.data} holds {have}{of} bytes that "
                "nothing pins to a version: the next run starts over)"
            )
        else:
            parts.append("nothing was kept")
        if self.dest.exists():
            parts.append(f"the existing {self.dest} was not modified")
        return "; ".join(parts)

    def _kept_sidecar(self) -> Sidecar | None:
        """The partial's sidecar if a rerun of this call would resume from it, else ``None``."""
        try:
            sidecar = self.partial.read_sidecar()
        except LocalError:  # a newer format's: not this version's to resume
            return None
        if sidecar is None or sidecar.identity != identity(self.url):
            return None
        recorded = RemoteInfo(url=self.url, **_known(sidecar.validators))
        agree = all(sidecar.expected.get(a, v) == v for a, v in self.expected.items())
        return sidecar if agree and self._resumable(recorded) else None

    def _partial_size(self) -> int:
        try:
            return os.stat(self.partial.data).st_size
        except OSError:
            return 0

    def _emit(
        self,
        kind: EventKind,
        *,
        done: int | None = None,
        total: int | None = None,
        error: BaseException | None = None,
        wait: float | None = None,
    ) -> None:
        in_flight = (EventKind.STARTED, EventKind.PROGRESS, EventKind.RETRYING)
        if self.cancel is not None and self.cancel.is_set() and kind in in_flight:
            raise Cancelled("cancelled", url=self.url)  # never once the file is complete
        event = ProgressEvent(
            kind=kind,
            url=self.safe_url,
            path=self.dest,
            done=self.offset if done is None else done,
            total=total if total is not None else self._total(),
            error=error,
            wait=wait,
        )
        try:
            self.progress(event)
        except BaseException:
            self.callback_failed = True
            raise


def _known(validators: Mapping[str, Any]) -> dict[str, Any]:
    """RemoteInfo fields from a sidecar's validators (tolerating older or partial records)."""
    keys = ("size", "etag", "last_modified", "version")
    known: dict[str, Any] = {k: validators.get(k) for k in keys}
    checksums = validators.get("checksums")
    known["checksums"] = dict(checksums) if isinstance(checksums, Mapping) else {}
    return known


def _stamp(path: Path) -> tuple[int, int, int] | None:
    """What changes when a writer works on ``path``: inode, size, modification time."""
    try:
        st = os.stat(path, follow_symlinks=False)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)
