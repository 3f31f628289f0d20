"""Which bytes of a partial the file really holds: holes are never trusted as data.

A partial's bytes are trusted by what its sidecar records (a single stream: the file's length;
segmented: the recorded ranges). A writer racing it without a working lock, or a reservation
never written, leaves holes that read back as zeros; publishing them would publish zero-filled
pieces when no digest was given. Where the filesystem reports holes (``SEEK_HOLE`` and
``SEEK_DATA``) these functions cut the trusted bytes down to what is really there; where it
cannot say, the record is trusted, as before.
"""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

from ..ranges import RangeSet

__all__ = ["HOLE_MARGIN", "recorded_ranges", "written_prefix"]

HOLE_MARGIN = 1 << 20  # bytes before a hole not trusted (see written_prefix)
log = logging.getLogger("resumable")


def written_prefix(fd: int, size: int, path: Path) -> int:
    """How much of a single-stream partial of ``size`` bytes, open at ``fd``, can be trusted:
    up to its first hole.

    A single stream's sidecar records no ranges: its bytes are the file's whole length.
    But a segmented writer racing it without a working lock (``locking=False``, or NFS)
    may have written pieces further on, or reserved the full size, through a descriptor
    opened before this partial was taken over: the file is then longer than what was
    written, with holes (or reserved, unwritten space, which ``SEEK_HOLE`` reports as a
    hole) in between. Trusting the whole length published a file with zero-filled pieces
    when no digest was given (a race of single-stream and segmented processes found it).

    A hole starts at a block boundary, and the block before it may be written only in part
    (its end then reads as zeros): the trusted prefix stops :data:`HOLE_MARGIN` before the
    hole, more than any filesystem's block.
    """
    if size == 0 or not hasattr(os, "SEEK_HOLE"):
        return size
    try:
        hole = os.lseek(fd, 0, os.SEEK_HOLE)
    except OSError:
        return size
    if hole >= size:
        return size
    trusted = max(0, hole - HOLE_MARGIN)
    log.info("%s has a hole at byte %d of %d; resuming at %d", path, hole, size, trusted)
    return trusted


def recorded_ranges(
    fd: int, ranges: RangeSet, size: int, on_disk: int, path: Path
) -> RangeSet | None:
    """The recorded ranges of a segmented partial (open at ``fd``, ``on_disk`` bytes long)
    that its file really holds, or ``None`` when the file is not one a segmented writer left.

    A segmented writer reserves the object's full size before it records any byte, so a
    file of another length does not go with its sidecar (and reserving a size the sidecar
    alone claims could ask the disk for an absurd amount). Recorded bytes are written and
    synced, so they are never in a hole: where the filesystem reports holes (``SEEK_DATA``;
    reserved but unwritten space counts as a hole), a range is trusted only where data is.
    """
    if len(ranges) and on_disk != size:
        return None
    if not hasattr(os, "SEEK_DATA") or not len(ranges):
        return ranges
    kept = RangeSet()
    for start, end in ranges:
        position = start
        while position < end:
            try:
                data = os.lseek(fd, position, os.SEEK_DATA)
                hole = os.lseek(fd, data, os.SEEK_HOLE)
            except OSError as exc:
                if exc.errno == errno.ENXIO:  # no data past ``position``
                    break
                return ranges  # the filesystem cannot say: trust the record, as before
            if data >= end:
                break
            kept.add(data, min(hole, end))
            position = hole
    if kept != ranges:
        log.warning("%s: some recorded ranges are holes on disk; not trusting them", path)
    return kept
