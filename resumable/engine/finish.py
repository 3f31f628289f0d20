"""Phase: verify, promote, result.

Size and digests (the caller's, and a checksum the source vouched for) are checked before
``os.replace(D.partial, D)``; never a byte past the verified length is published. A mismatch
after a resume may come from bytes of an earlier call, so the file is fetched whole once
(:data:`REFETCH`) before the source is called wrong.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping

from ..errors import LocalError, VerificationError
from ..progress import EventKind
from ..verify import check_digests, check_size
from .result import DownloadResult, Status
from .state import State

__all__ = ["REFETCH", "Refetch", "check", "finish"]

log = logging.getLogger("resumable")


class Refetch(enum.Enum):
    """Verification failed after a resume: the partial was emptied; fetch the whole file."""

    REFETCH = "refetch"


REFETCH = Refetch.REFETCH


def check(state: State, digests: Mapping[str, str]) -> None:
    """Raise :class:`VerificationError` unless ``state.offset`` bytes with ``digests`` are the
    file the caller (and the source) described."""
    ctx = state.ctx
    check_size(ctx.size, state.offset, url=ctx.url)
    check_digests(ctx.expected, digests, url=ctx.url)
    check_digests(state.provider, digests, url=ctx.url, origin="the checksum the source reported")


def finish(state: State) -> DownloadResult | Refetch:
    """Verify the complete partial and publish it as ``dest``.

    Raises:
        VerificationError: the bytes are not the file (the partial is discarded).
        LocalError: the partial cannot be re-read, or renamed.
    """
    ctx = state.ctx
    try:
        digests = state.hasher.finish()
    except OSError as exc:  # re-reading the partial's prefix failed
        data = state.partial.data
        raise LocalError(f"re-hashing {data} failed: {exc}", path=str(data)) from exc
    try:
        check(state, digests)
    except VerificationError:
        if state.resumed_from:
            log.warning("%s failed verification after a resume; refetching", ctx.safe_url)
            state.reset()
            return REFETCH
        state.partial.discard()
        raise
    state.emit(EventKind.VERIFIED)
    _drop_tail(state)
    state.partial.promote(ctx.sync_dir)
    status: Status = "resumed" if state.resumed_from else "downloaded"
    state.emit(EventKind.DONE)
    return state.result(status, state.offset, digests)


def _drop_tail(state: State) -> None:
    """Never publish a byte past the verified length: a partial longer than it (preallocated
    by a racing writer without a working lock, or damaged) loses its tail first."""
    if state.partial_size() > state.offset:
        log.warning("%s is longer than the object; dropping its tail", state.partial.data)
        state.partial.truncate(state.offset)
