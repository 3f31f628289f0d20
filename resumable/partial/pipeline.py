"""A single stream's bytes, written in order on a helper thread (around the page cache where the
filesystem allows it) while the hasher reads the same buffers.

Why (1 GiB on these 2-core machines): a promoted file is durable, so every byte is synced
before the rename. Through the page cache and then ``fdatasync``, 1 GiB took 2.3-2.7 s
(``dd conv=fdatasync``), 1.7-2.0 s of it kernel CPU (the copy into the cache, then the
writeback); with ``O_DIRECT`` from aligned buffers 0.56-0.74 s and 0.08 s of CPU: the device
does the copy. In the download that CPU is what the hash and the network need (curl, which
never syncs, takes ~1.0 s). And a new ``bytes`` per read is an allocation, page faults and a
free per read; blocks reused with ``readinto`` cost none.

How:

- The reader :meth:`~Pipeline.take`\\ s a :class:`Block`, receives into ``block.view`` and
  :meth:`~Pipeline.put`\\ s it with the length received: it goes to the writer thread and to the
  hasher at once, and is reused once both are done with it. ``count`` blocks exist, so memory
  is bounded (``count * size``) and a slow disk or hash slows the reader instead of piling up.
- **Alignment.** ``O_DIRECT`` wants the buffer address, the file offset and the length aligned
  (:data:`ALIGN`, enough for every common device). Blocks are page-aligned ``mmap`` memory and
  a block's ``view`` starts at ``offset % ALIGN``, so buffer and file stay congruent. The
  unaligned head and tail of a block (a resume from an odd offset, the last block, a block
  written early on a slow link) go through the ordinary descriptor: under 4 KiB each, never
  overlapping a direct range.
- **Where it is refused** (tmpfs, some FUSE and network filesystems; or a first direct write
  that fails with ``EINVAL``) every block goes through the ordinary descriptor, as before.
  ``RESUMABLE_DIRECT_IO=0`` turns direct writes off: the file then stays in the page cache,
  which helps a reader that follows at once on a machine with memory to spare.
- **Errors.** A failed write stops the writing (later blocks are skipped, not written past a
  gap); :meth:`~Pipeline.take` and :meth:`~Pipeline.put` raise it, and :meth:`~Pipeline.close`
  waits for the queued blocks and says how far the file is written: the resume point.
"""

from __future__ import annotations

import errno
import logging
import mmap
import os
import queue
import threading
from collections.abc import Callable
from typing import Protocol

from .._threads import POLL, Guarded
from ..errors import LocalError
from .files import local_error
from .writer import Partial

__all__ = ["ALIGN", "Block", "Pipeline"]

log = logging.getLogger("resumable")

ALIGN = 4096


class Sharer(Protocol):
    """Who reads each block besides the writer (the hasher): ``submit(data, done)`` calls
    ``done`` once it no longer needs ``data``; ``alive()`` says whether it still will."""

    def submit(self, data: memoryview, done: Callable[[], None]) -> None: ...

    def alive(self) -> bool: ...


class Block:
    """One reusable buffer; ``view`` is where the reader puts the next bytes of the file."""

    __slots__ = ("memory", "start", "users", "view")

    def __init__(self, size: int) -> None:
        self.memory = memoryview(mmap.mmap(-1, size))  # page-aligned, as O_DIRECT wants
        self.start = 0
        self.users = 0
        self.view = self.memory


def direct_wanted() -> bool:
    """Whether direct writes are allowed (``RESUMABLE_DIRECT_IO=0`` says no)."""
    return os.environ.get("RESUMABLE_DIRECT_IO", "1").strip().lower() not in ("0", "false", "no")


class Pipeline:
    """Write the bytes ``put`` from ``offset`` on, in order; lend each block to ``share``."""

    def __init__(
        self,
        partial: Partial,
        offset: int,
        *,
        size: int,
        share: Sharer,
        count: int = 4,
        direct: bool = True,
    ) -> None:
        self.written = offset  # the file holds every byte before this
        self.error: BaseException | None = None
        self._partial = partial
        self._next = offset
        self._size = size
        self._share = share
        self._count = count
        self._made = 0
        self._free: queue.SimpleQueue[Block] = queue.SimpleQueue()
        self._queue: queue.SimpleQueue[tuple[Block, int, int] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._direct = partial.open_direct() if direct and direct_wanted() else None
        self.direct_writes = 0  # that succeeded (an EINVAL before the first means "not here")
        self._thread = Guarded(self._run, name="resumable-write", on_error=self._died)
        self._thread.start()

    @property
    def direct(self) -> bool:
        """Whether blocks are written around the page cache."""
        return self._direct is not None

    # -- the reader's side -------------------------------------------------------------------

    def take(self) -> Block:
        """A free block whose ``view`` continues the file; waits for one to come back."""
        self.check()
        block = self._next_free()
        block.start = self._next % ALIGN if self._direct is not None else 0
        block.view = block.memory[block.start :]
        return block

    def put(self, block: Block, length: int) -> None:
        """Queue the first ``length`` bytes of ``block.view``: the next bytes of the file."""
        if not length:
            self._free.put(block)
            return
        self.check()
        offset, self._next = self._next, self._next + length
        block.users = 2
        self._queue.put((block, offset, length))
        try:
            self._share.submit(block.view[:length], lambda: self._release(block))
        except BaseException:
            self._release(block)
            raise

    def close(self) -> int:
        """Wait for every queued block to be written, stop the thread; return how far the
        file is written (the error, if any, stays in ``error``: see :meth:`check`)."""
        self._queue.put(None)
        self._thread.join()
        if self._direct is not None:
            os.close(self._direct)
            self._direct = None
        return self.written

    def check(self) -> None:
        """Raise the writing's error, if it failed."""
        if self.error is not None:
            raise self.error

    def _next_free(self) -> Block:
        try:
            return self._free.get_nowait()
        except queue.Empty:
            pass
        if self._made < self._count:
            self._made += 1
            return Block(self._size)
        while True:
            try:
                return self._free.get(timeout=POLL)
            except queue.Empty:
                self.check()
                if not self._share.alive():  # its blocks will never come back
                    raise LocalError("hashing the download failed (its thread stopped)") from None
                if not self._thread.is_alive():  # pragma: no cover - it only stops at close
                    raise LocalError("writing the download stopped") from None

    def _release(self, block: Block) -> None:
        with self._lock:
            block.users -= 1
            last = block.users == 0
        if last:
            self._free.put(block)

    # -- the writer thread -------------------------------------------------------------------

    def _died(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc

    def _run(self) -> None:
        while (job := self._queue.get()) is not None:
            block, offset, length = job
            try:
                if self.error is None:
                    self._write(block, offset, length)
                    self.written = offset + length
            except BaseException as exc:
                if self.error is None:
                    self.error = exc
            finally:
                self._release(block)

    def _write(self, block: Block, offset: int, length: int) -> None:
        memory, start = block.memory, block.start
        end = start + length
        head = -(-start // ALIGN) * ALIGN  # where the aligned middle begins and ends
        tail = end // ALIGN * ALIGN
        if self._direct is None or head >= tail:
            self._partial.write(memory[start:end], offset)
            return
        if head > start:
            self._partial.write(memory[start:head], offset)
        self._write_direct(memory[head:tail], offset + head - start)
        if end > tail:
            self._partial.write(memory[tail:end], offset + tail - start)

    def _write_direct(self, view: memoryview, offset: int) -> None:
        fd = self._direct
        while view and fd is not None:
            try:
                written = os.pwrite(fd, view, offset)
            except OSError as exc:
                if exc.errno != errno.EINVAL or self.direct_writes:
                    raise local_error(exc, "writing the partial", self._partial.data) from exc
                log.debug("direct writes refused for %s: %s", self._partial.data, exc.strerror)
                os.close(fd)
                self._direct = fd = None
                break
            self.direct_writes += 1
            view, offset = view[written:], offset + written
            if written % ALIGN:  # a short write left the rest unaligned
                break
        if view:
            self._partial.write(view, offset)
