"""One file, start to finish: the driver that moves one :class:`~.state.State` between phases.

1. :mod:`.existing`: a destination that verifies (expected size/digests, else the remote size)
   is ``skipped`` with no bytes fetched.
2. :mod:`.direct`: a file that fits in one answer is received privately and published,
   without the ``.partial`` protocol; a larger one's open answer is handed on.
3. Under the ``.partial`` lock, :mod:`.resume` resumes a partial whose sidecar names the same
   object and pins its version (or empties it); :mod:`.stream` fetches what is missing (one
   stream, or :mod:`.parallel` for a large object whose source serves ranges), every failure
   going through the one retry loop (:mod:`.recover`).
4. :mod:`.finish` checks size and digests before ``os.replace(D.partial, D)``.
5. :mod:`.takeover`: when another process took the partial over (its lock did not hold), wait
   for it to publish, or take it back if it went quiet.

Each phase returns an outcome and the driver turns it into the next phase; nothing here is a
flag. :class:`Transfer` is the handle :meth:`Engine.prepare` returns (``run``, ``info``,
``probe``, ``stat``). Neither module imports requests, fsspec or tqdm.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ..cancel import watching
from ..errors import Cancelled, PartialTakenOver, ResumableError, TransientError
from ..locator import Locator, Target
from ..partial import Partial
from ..progress import ProgressCallback
from ..sources import Body, RemoteInfo, Source
from ..urls import redact
from . import direct, existing, finish, resume, stream, takeover
from .failure import guard
from .result import DownloadResult
from .state import Context, State

if TYPE_CHECKING:
    from .request import DownloadRequest
    from .state import Services

__all__ = ["Transfer"]

log = logging.getLogger("resumable")


class Transfer:
    """The algorithm for one file (see the module docstring). Used once, by one thread."""

    def __init__(
        self,
        engine: Services,
        request: DownloadRequest,
        source: Source,
        progress: ProgressCallback,
        connections: int = 1,
        *,
        split: bool = False,
        cancel: threading.Event | None = None,
        sync_dir: Callable[[Path], None] | None = None,
        locator: Locator | None = None,
    ) -> None:
        url = request.url
        locator = locator or Locator([url], [source])
        self.ctx = Context(
            engine=engine,
            request=request,
            locator=locator,
            source=source,
            progress=progress,
            connections=connections,
            split=split,
            cancel=cancel,
            sync_dir=sync_dir,
            safe_url=redact(url),
            host=urlsplit(url).hostname or "",
        )
        self.state = State(self.ctx, Partial(request.dest), Target(url, source, 0))

    # -- the handle -------------------------------------------------------------------------------

    @property
    def dest(self) -> Path:
        return self.ctx.dest

    @property
    def connections(self) -> int:
        return self.ctx.connections

    @property
    def info(self) -> RemoteInfo | None:
        """The version being downloaded (after :meth:`run`: the version fetched), if known."""
        return self.state.info

    def stat(self) -> RemoteInfo:
        """``source.stat`` under the retry policy (a HEAD meets 503s like any request), on a
        refreshed URL or a mirror when the current one fails for good."""
        recovery = self.state.recovery(None)
        return recovery.locate(lambda target: target.source.stat(target.url))

    def probe(self, what: str) -> RemoteInfo | None:
        """The object's metadata, or ``None`` (logged with ``what``) when asking for it fails.

        A metadata request can disagree with the read (a HEAD answering 404, 403 or 500 while
        GET works): what it says may neither skip, fail nor delete anything, so ``None`` means
        "cannot tell" and the download's own read decides. A cancel still raises.
        """
        try:
            return self.stat()
        except Cancelled:
            raise
        except ResumableError as exc:
            log.info("%s: %s (%s)", self.ctx.safe_url, what, exc)
            return None

    # -- the driver ---------------------------------------------------------------------------

    def run(self) -> DownloadResult:
        """Download: a complete, verified ``dest`` (or ``skipped``), or a typed error."""
        state = self.state
        present = existing.dest_size(self.dest)  # refuses a directory before anything is made
        first_direct = direct.possible(state)
        if not first_direct:
            existing.make_parent(self.dest)  # the direct path makes it only when it must
        try:
            # A cancel shuts this download's connections: a read blocked on a silent server
            # returns at once (resumable.cancel).
            with watching(self.ctx.cancel), guard(state, holding_partial=False):
                if first_direct:
                    return self._direct_first(present)
                return self._under_lock(None)
        finally:
            state.hasher.close()
            state.partial.close()
            if state.kept is not None:
                state.kept[0].discard()

    def _skip(self, present: int | None) -> DownloadResult | None:
        """The ``skipped`` result when ``dest`` (``present`` bytes) is already the file."""
        if self.ctx.request.refresh:  # the caller knows it changed: fetch whatever is there
            return None
        return existing.check(self.state, present, self.probe)

    def _skip_now(self) -> DownloadResult | None:
        """:meth:`_skip` of ``dest`` as it is now (a writer may have published it)."""
        if self.ctx.request.refresh:
            return None
        return existing.look(self.state, self.probe)

    def _direct_first(self, present: int | None) -> DownloadResult:
        """Try the direct path; hand what it cannot finish to the ``.partial`` protocol.

        Without the ``D.partial`` lock: the direct path writes nothing anyone else can see
        until it publishes. A larger object's answer is kept and continued under the lock if
        the lock is free at once (never waiting for a lock while holding a connection slot).
        """
        ctx, state = self.ctx, self.state
        skipped = self._skip(present)
        if skipped is not None:
            return skipped
        handoff: TransientError | None = None
        with ctx.engine.slots.hold(ctx.host, ctx.cancel):
            try:
                outcome = direct.fetch(state)
            except TransientError as exc:  # charged to the protocol's retry budget
                ctx.engine.slots.observe(ctx.host, exc)  # now, while the answer is fresh
                handoff = exc
            else:
                if isinstance(outcome, DownloadResult):
                    return outcome
                if isinstance(outcome, direct.Larger):
                    finished = self._continue_if_free(outcome.body)
                    if finished is not None:
                        return finished
        return self._under_lock(handoff)  # without the slot: the lock may take a while

    def _continue_if_free(self, body: Body) -> DownloadResult | None:
        """Continue the direct path's open answer under the lock, if it is free at once;
        ``None`` (the answer closed) when someone else is on this file: wait for the lock."""
        ctx, state = self.ctx, self.state
        try:
            with state.partial.locked(ctx.settings.locking, blocking=False) as held:
                if not held:
                    return None
                with guard(state, holding_partial=True):
                    # A writer may have published D while this answer was coming.
                    skipped = self._skip_now()
                    if skipped is not None:
                        return skipped
                    try:
                        return self._fetch(adopted=False, first_body=body)
                    except PartialTakenOver as exc:
                        body.close()
                        return takeover.await_other_writer(state, exc, self.probe)
        finally:
            body.close()  # a no-op once the fetch closed it; never a socket left open

    def _under_lock(self, handoff: TransientError | None) -> DownloadResult:
        """The ``.partial`` protocol, under ``D.partial.lock``; ``handoff``: the direct path's
        failure, charged to the budget."""
        ctx, state = self.ctx, self.state
        with (
            state.partial.locked(ctx.settings.locking, cancel=ctx.cancel),
            guard(state, holding_partial=True),
        ):
            while True:
                skipped = self._skip_now()
                if skipped is not None:
                    return skipped
                try:
                    with ctx.engine.slots.hold(ctx.host, ctx.cancel):
                        adopted = resume.adopt_kept(state)
                        return self._fetch(adopted=adopted, first_error=handoff)
                except PartialTakenOver as exc:
                    handoff = None
                    finished = takeover.await_other_writer(state, exc, self.probe)
                    if finished is not None:
                        return finished

    def _fetch(
        self,
        *,
        adopted: bool,
        first_body: Body | None = None,
        first_error: TransientError | None = None,
    ) -> DownloadResult:
        """Resume or empty the partial, fetch what it misses, verify and publish; once more,
        whole, when a resumed file fails verification.

        ``adopted``: the partial starts with this call's own bytes (the direct path's), so
        they count as "downloaded", not "resumed".
        """
        state = self.state
        while True:
            resume.open_partial(state)
            if adopted:
                state.resumed_from = 0
            stream.fetch(state, first_body, first_error)
            outcome = finish.finish(state)
            if isinstance(outcome, DownloadResult):
                return outcome
            state.hasher.close()  # REFETCH: the partial was emptied; start it again
            state.partial.close()
            adopted, first_body, first_error = False, None, None
