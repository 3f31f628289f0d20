"""The writer's handle on ``D.partial``: claim, write, check ownership, promote.

``promote()`` fsyncs the data, checks ownership, ``os.replace``\\ s ``D.partial`` onto ``D``,
fsyncs the directory and removes the sidecar. ``D`` therefore only ever holds a complete file,
and a failed download never touches an existing ``D``. A writer that finds another owner's token
in the sidecar, or ``D.partial`` replaced under its descriptor, stops with
:class:`~resumable.errors.PartialTakenOver` rather than interleave bytes.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from ..errors import LocalError, PartialTakenOver
from ..ranges import RangeSet
from ..urls import identity, redact
from .files import fsync_dir, helper_path, local_error, reserve
from .holes import recorded_ranges, written_prefix
from .lock import hold_lock
from .sidecar import Sidecar, load_sidecar, remove_stale_temps, store_sidecar, temp_path

__all__ = ["Partial"]

log = logging.getLogger("resumable")


class Partial:
    """The files beside one destination, and the writer's handle on ``D.partial``."""

    def __init__(self, dest: Path) -> None:
        self.dest = dest
        self.data = helper_path(dest, ".partial")
        self._owner: str | None = None
        self._fd: int | None = None
        self._inode: tuple[int, int] | None = None

    # Made when first used: a small file on the direct path never needs them.
    @functools.cached_property
    def meta(self) -> Path:
        return helper_path(self.dest, ".partial.json")

    @functools.cached_property
    def lockfile(self) -> Path:
        return helper_path(self.dest, ".partial.lock")

    @property
    def owner(self) -> str:
        """This writer's random token, made when first needed: a small file that takes the
        direct path never uses it (and a token costs a ``getrandom`` call)."""
        if self._owner is None:
            self._owner = os.urandom(16).hex()
        return self._owner

    # -- locking --------------------------------------------------------------------------------

    @contextlib.contextmanager
    def locked(
        self, enabled: bool = True, *, blocking: bool = True, cancel: threading.Event | None = None
    ) -> Iterator[bool]:
        """Hold ``D.partial.lock`` while downloading; yield whether to go on (see
        :func:`~resumable.partial.lock.hold_lock`). Disabled: yields ``True`` without a lock."""
        if not enabled:
            yield True
            return
        with hold_lock(self.lockfile, self.data, blocking=blocking, cancel=cancel) as go_on:
            yield go_on

    # -- sidecar --------------------------------------------------------------------------------

    def read_sidecar(self) -> Sidecar | None:
        """The sidecar, or ``None`` if absent or not one a writer made (see
        :func:`~resumable.partial.sidecar.load_sidecar`, which raises for a newer format)."""
        return load_sidecar(self.meta)

    def write_sidecar(
        self,
        url: str,
        validators: Mapping[str, Any],
        expected: Mapping[str, Any],
        ranges: RangeSet | None = None,
    ) -> None:
        """Claim the partial for this writer and record what its bytes are (atomically)."""
        sidecar = Sidecar(
            url=redact(url),
            identity=identity(url),
            validators=validators,
            expected=expected,
            owner=self.owner,
            ranges=ranges,
        )
        tmp = temp_path(self.dest, self.owner)
        try:
            store_sidecar(sidecar, tmp, self.meta)
        except FileNotFoundError as exc:
            if self.data.parent.is_dir():  # our temp file was removed: see remove_stale_temps
                raise PartialTakenOver(
                    f"another writer took over {self.data} while this one wrote its sidecar",
                    path=str(self.data),
                ) from exc
            raise self._local_error(exc, "writing the sidecar") from exc
        except OSError as exc:
            raise self._local_error(exc, "writing the sidecar") from exc

    def remove_stale_temps(self) -> None:
        """Remove the sidecar temp files a killed writer left (see
        :func:`~resumable.partial.sidecar.remove_stale_temps`)."""
        remove_stale_temps(self.dest, self.owner)

    # -- data -----------------------------------------------------------------------------------

    def open(self) -> int:
        """Open (creating) ``D.partial`` for writing without truncating; return its size.

        ``O_NOFOLLOW``: a ``.partial`` that is a symlink is refused, never written through.
        """
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        existed = os.path.lexists(self.data)
        try:
            fd = os.open(self.data, flags, 0o644)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                err = LocalError(
                    f"{self.data} is a symlink; refusing to write through it (remove it)",
                    path=str(self.data),
                )
            else:
                err = self._local_error(exc, "opening the partial")
            # Not "partial kept": whatever is at that path is not ours and was not touched.
            err.kept = f"nothing was written; {self.data} was left as it is"
            raise err from exc
        st = os.fstat(fd)
        self._fd = fd
        self._inode = (st.st_dev, st.st_ino)
        if existed:  # an earlier writer was interrupted: it may have left a sidecar temp file
            self.remove_stale_temps()
        return st.st_size

    def written_prefix(self, size: int) -> int:
        """How much of a single-stream partial of ``size`` bytes can be trusted: up to its
        first hole (see :func:`~resumable.partial.holes.written_prefix`)."""
        return written_prefix(self.fd, size, self.data)

    def recorded_ranges(self, ranges: RangeSet, size: int, on_disk: int) -> RangeSet | None:
        """The recorded ranges the file really holds, or ``None`` when it is not one a
        segmented writer left (see :func:`~resumable.partial.holes.recorded_ranges`)."""
        return recorded_ranges(self.fd, ranges, size, on_disk, self.data)

    @property
    def fd(self) -> int:
        if self._fd is None:
            raise RuntimeError("the partial is not open")
        return self._fd

    def write(self, data: bytes | memoryview, offset: int) -> None:
        """Write all of ``data`` at ``offset`` (pwrite, so concurrent writers never interleave)."""
        view = memoryview(data)
        try:
            while view:
                written = os.pwrite(self.fd, view, offset)
                view = view[written:]
                offset += written
        except OSError as exc:
            raise self._local_error(exc, "writing the partial") from exc

    def open_direct(self) -> int | None:
        """A second descriptor on ``D.partial`` that writes around the page cache (``O_DIRECT``),
        or ``None`` where the platform or the filesystem does not take it (tmpfs, some FUSE and
        network filesystems refuse the flag). See :mod:`.pipeline` for why and how it is used.
        """
        direct = getattr(os, "O_DIRECT", 0)
        if not direct or self._inode is None:
            return None
        flags = os.O_WRONLY | direct | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(self.data, flags)
        except OSError as exc:
            log.debug("no direct writes to %s: %s", self.data, exc.strerror)
            return None
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != self._inode:  # replaced since we opened it: not ours
            os.close(fd)
            self._check_inode()  # raises PartialTakenOver
            return None
        return fd

    def read_into(self, buffer: bytearray | memoryview, offset: int) -> int:
        """Read back written bytes into ``buffer``; return how many (the hash frontier).

        Into a reused buffer rather than new ``bytes``: freeing large blocks makes glibc raise
        its mmap threshold, after which every socket read lands in fragmenting thread arenas
        (a 16-connection download then peaked at ~100 MiB instead of ~50).
        """
        try:
            return os.preadv(self.fd, [buffer], offset)
        except OSError as exc:
            raise self._local_error(exc, "reading the partial") from exc

    def sync(self) -> None:
        """Make written bytes durable before a checkpoint records them."""
        try:
            os.fdatasync(self.fd)
        except OSError as exc:
            raise self._local_error(exc, "flushing the partial") from exc

    def preallocate(self, size: int) -> None:
        """Reserve ``size`` bytes, failing up front with a clear error when they do not fit.

        ``posix_fallocate`` where the filesystem supports it (no fragmentation, no ENOSPC
        halfway); otherwise a sparse ``ftruncate``, after a free-space check.
        """
        reserve(self.fd, size, self.data, self.dest.name)

    def truncate(self, size: int = 0) -> None:
        """Drop the bytes past ``size`` (a restart, or a partial longer than the object)."""
        self.check_owner()
        try:
            os.ftruncate(self.fd, size)
        except OSError as exc:
            raise self._local_error(exc, "truncating the partial") from exc

    def check_owner(self) -> None:
        """Raise :class:`PartialTakenOver` if another writer's token is in the sidecar, or the
        sidecar is gone (another writer published or discarded the partial: our descriptor may
        now point into its finished file). Called only once this writer has written a sidecar.
        """
        sidecar = self.read_sidecar()
        if sidecar is None:
            raise PartialTakenOver(
                f"the sidecar of {self.data} disappeared: another writer published or removed "
                "the partial (its lock did not hold); stopped to avoid writing into its file",
                path=str(self.data),
            )
        if sidecar.owner != self.owner:
            raise PartialTakenOver(
                f"another writer took over {self.data} (its lock did not hold); stopped to "
                "avoid interleaving bytes",
                path=str(self.data),
            )
        self._check_inode()

    def _check_inode(self) -> None:
        """Raise :class:`PartialTakenOver` unless ``D.partial`` is still the file we opened.

        Another writer may have published it (renamed it onto ``D``) after we opened it: our
        descriptor then points into the published file, and truncating or writing through it
        would damage ``D``.
        """
        if self._inode is None:
            return
        try:
            st = os.stat(self.data, follow_symlinks=False)
        except FileNotFoundError as exc:
            raise PartialTakenOver(
                f"{self.data} disappeared: another writer published or removed it",
                path=str(self.data),
            ) from exc
        except OSError as exc:
            raise self._local_error(exc, "checking the partial") from exc
        if (st.st_dev, st.st_ino) != self._inode:
            raise PartialTakenOver(
                f"{self.data} was replaced by another writer; stopped writing to it",
                path=str(self.data),
            )

    def remove_orphan_sidecar(self) -> None:
        """Remove this writer's sidecar if its partial is gone (another writer published it
        between our last check and our sidecar write): a sidecar with no partial is clutter."""
        if os.path.lexists(self.data):
            return
        try:
            sidecar = self.read_sidecar()
        except LocalError:
            return
        if sidecar is not None and sidecar.owner == self.owner:
            with contextlib.suppress(OSError):
                os.unlink(self.meta)

    def promote(self, sync_dir: Callable[[Path], None] | None = None) -> None:
        """Make ``D`` the verified partial: fsync, check ownership, rename, fsync the directory.

        ``sync_dir`` replaces the directory fsync (a batch syncs each directory once at the end).
        """
        try:
            os.fsync(self.fd)
        except OSError as exc:
            raise self._local_error(exc, "flushing the partial") from exc
        self.check_owner()  # the token, and that D.partial is still the file we wrote
        try:
            os.replace(self.data, self.dest)
        except OSError as exc:
            raise self._local_error(exc, f"moving the partial onto {self.dest}") from exc
        (sync_dir or fsync_dir)(self.dest.parent)
        self.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.meta)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def discard(self) -> None:
        """Remove the partial and its sidecar (nothing worth resuming is in them)."""
        self.close()
        for path in (self.data, self.meta):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            except OSError as exc:  # e.g. EROFS, which Linux reports even for a missing file
                if os.path.lexists(path):
                    log.warning("could not remove %s: %s", path, exc.strerror)

    def _local_error(self, exc: OSError, doing: str) -> LocalError:
        return local_error(exc, doing, self.data)
