"""The ``.partial`` protocol: where unfinished bytes live and how they become the destination.

For a destination ``D``:

- ``D.partial`` holds the bytes fetched so far. Single stream: its length is the resume offset.
  Segmented: the file is preallocated and only the byte ranges listed in the sidecar count
  (:mod:`.holes`: bytes in a hole are never trusted).
- ``D.partial.json`` (the sidecar, replaced atomically; :mod:`.sidecar`) says what those bytes
  are: format version, the source URL (credentials redacted), the object's validators, what the
  caller expected, and the token of the writer that owns the partial.
- ``D.partial.lock`` (:mod:`.lock`) stops two processes from doing the same work. It is only an
  optimisation: on NFS/Lustre/GPFS a lock can "succeed" for everyone, so correctness rests on
  the owner token (a writer that sees another token in the sidecar stops) and on the inode
  check at promote.
- :class:`Partial` (:mod:`.writer`) is the writer's handle: it claims, writes, checks ownership
  and promotes; :class:`Flusher` (:mod:`.writeback`) overlaps the writeback with the download;
  :class:`Pipeline` (:mod:`.pipeline`) writes a single stream in order on a helper thread,
  around the page cache where it can.
- :mod:`.files` holds the small local-file utilities (helper names, directory fsync, space
  reservation, typed local errors) that other writers of local files share.

This package's modules import only the bottom layers (errors, urls, ranges, _threads) and each
other, in one direction: pipeline → writer → lock, holes, sidecar → files.
"""

from __future__ import annotations

from .files import fsync_dir, helper_path, local_error
from .pipeline import Pipeline
from .sidecar import FORMAT_VERSION, FutureFormat, Sidecar, parse_sidecar
from .writeback import Flusher
from .writer import Partial

__all__ = [
    "FORMAT_VERSION",
    "Flusher",
    "FutureFormat",
    "Partial",
    "Pipeline",
    "Sidecar",
    "fsync_dir",
    "helper_path",
    "local_error",
    "parse_sidecar",
]
