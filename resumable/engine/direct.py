"""Phase: files that fit in one answer, fetched without the ``.partial`` protocol.

Most files of a dataset are small; for them the protocol (a lock file, a partial, a sidecar,
three renames' worth of metadata writes) costs more than the bytes. The direct path receives
the whole answer into a :class:`~resumable.private.PrivateFile` (invisible until published),
verifies it and publishes it with one rename. It never takes the ``D.partial`` lock: nothing it
writes is visible to anyone else until it is complete.

Its outcomes (:func:`fetch`):

- a :class:`DownloadResult`: the file is published;
- a :class:`Larger` answer: the object is larger than one block (or goes segmented): the
  ``.partial`` protocol continues with the open answer;
- :data:`NEW_URL`: the URL was refused and a refreshed one or a mirror replaced it: the
  protocol starts afresh;
- a :class:`~resumable.errors.TransientError` is *raised* (the bytes received are kept in
  ``state.kept`` for the protocol to resume, ``state.direct_moved`` counts them): the protocol
  charges it to its retry budget.
"""

from __future__ import annotations

import enum
import mmap
import os
import threading
from dataclasses import dataclass

from ..bounds import bounded
from ..errors import ProtocolMismatch, TransientError, VerificationError
from ..locator import PERMANENT
from ..private import PrivateFile
from ..progress import EventKind
from ..sources import Body, RemoteInfo, read_into
from ..verify import check_size
from .existing import make_parent
from .finish import check
from .result import DownloadResult
from .resume import adopt_kept
from .state import State

__all__ = ["NEW_URL", "Larger", "NewURL", "fetch", "possible"]


@dataclass(frozen=True)
class Larger:
    """The object does not fit in one block: its open answer, from byte 0, to continue."""

    body: Body


class NewURL(enum.Enum):
    """The URL was replaced (refreshed or a mirror): the protocol starts afresh with it."""

    NEW_URL = "new-url"


NEW_URL = NewURL.NEW_URL


def possible(state: State) -> bool:
    """Worth trying: a complete file wanted (not streamed to an extractor), no partial to
    resume, and not known to be larger than one block."""
    ctx = state.ctx
    if ctx.request.streamed:  # a streaming reader needs D.partial
        return False
    if ctx.size is not None and ctx.size > ctx.settings.block_size:
        return False
    try:
        os.lstat(state.partial.data)
    except FileNotFoundError:
        return True
    except OSError:
        pass
    return False


def fetch(state: State) -> DownloadResult | Larger | NewURL:
    """Fetch the whole object into a private file and publish it, if it fits in one block.

    Raises:
        TransientError: the request or the body failed (bytes received are in ``state.kept``).
    """
    ctx = state.ctx
    # Created first: a folder that cannot be written fails before any request is sent.
    private = PrivateFile(ctx.dest, lambda: make_parent(ctx.dest))
    body: Body | None = None
    info: RemoteInfo | None = None
    try:
        state.target = target = ctx.locator.current()
        try:
            body = target.source.open(target.url)
        except PERMANENT as exc:
            state.recovery(ctx.url).refused(exc, target)
            return NEW_URL
        ctx.locator.succeeded(target)
        info = body.info
        size = info.size
        if (
            body.start != 0
            or size is None
            or size > ctx.settings.block_size
            or state.segmentable(info)
        ):
            answer, body = body, None  # handed over open
            return Larger(answer)
        _adopt(state, info)
        _receive(state, bounded(body, url=ctx.url, total=size, size=ctx.size), private, size)
        body.close()
        digests = state.hasher.finish()
        check(state, digests)
        state.emit(EventKind.VERIFIED)
        private.publish(ctx.sync_dir)
    except TransientError:
        if info is not None:  # the body broke (the open's own errors have no bytes)
            state.direct_moved = state.offset
            if state.offset > 0:
                state.kept = (private, info)  # becomes D.partial under the lock (adopt_kept)
            state.offset = 0  # what is on disk is decided again under the lock
            state.hash_later()
        raise
    except VerificationError:
        raise  # the bytes are wrong: nothing is kept
    except BaseException:
        # Ctrl-C, a cancel, a callback's exception: the bytes stay resumable, as a partial.
        if state.offset > 0 and info is not None:
            state.kept = (private, info)
            adopt_kept(state)
        raise
    finally:
        if body is not None:
            body.close()
        if state.kept is None:  # kept: discarded once it became D.partial
            private.discard()  # a no-op once published or adopted
    state.emit(EventKind.DONE)
    return state.result("downloaded", state.offset, digests)


def _adopt(state: State, info: RemoteInfo) -> None:
    size = state.ctx.size
    if size is not None and info.size is not None and info.size != size:
        check_size(size, info.size, url=state.ctx.url, what="remote size")
    state.info = info
    state.use_provider_checksum(info)
    state.hasher.close()
    state.hash_later()
    state.started = True
    state.emit(EventKind.STARTED)


def _receive(state: State, body: Body, private: PrivateFile, total: int) -> None:
    """Receive the whole body (at most one block) into this thread's reused buffer and write
    it with one ``pwrite``.

    One write per file rather than one per read (the first read is usually the few bytes that
    came with the headers): each write is a system call that hands the GIL to another thread.
    And one buffer per thread, filled with ``readinto``, rather than a new ``bytes`` per read
    (an allocation sized for a whole block, then shrunk, for every read of every file).
    Whatever stops the body (a cut, Ctrl-C, a callback's exception, a body running past
    ``total``: never read past it) still finds every received byte in ``private`` first, for
    :func:`~.resume.adopt_kept`.
    """
    ctx = state.ctx
    # One byte more than a block: the read that confirms the end always has room (``body``
    # is bounded at ``total``, at most a block: that read returns nothing, or raises).
    view = _buffer(ctx.settings.block_size + 1)
    received = 0
    try:
        while got := read_into(body, view[received:]):
            state.hasher.submit(view[received : received + got])  # inline: hashed at once
            received += got
            state.fetched += got
            ctx.engine.meter(got, ctx.cancel)
            state.emit(EventKind.PROGRESS, done=state.offset + received, total=total)
    finally:
        if received:
            try:
                private.write([view[:received]], state.offset)
            finally:  # a failed write (a full disk) keeps what it wrote: it is resumable
                state.offset = private.end
    if state.offset < total:
        raise ProtocolMismatch(f"the body ended at byte {state.offset} of {total}", url=ctx.url)


_local = threading.local()


def _buffer(size: int) -> memoryview:
    """This thread's receive buffer of ``size`` bytes (kept between files: a batch worker
    reuses one buffer for all its small files). Anonymous ``mmap`` memory, not a
    ``bytearray``: its pages cost memory only once touched, so 16 workers fetching 256 KiB
    files hold 16 x 256 KiB, not 16 x 4 MiB of zeros."""
    view: memoryview | None = getattr(_local, "view", None)
    if view is None or len(view) != size:
        view = _local.view = memoryview(mmap.mmap(-1, size))
    return view
