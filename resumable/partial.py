"""The ``.partial`` protocol: where unfinished bytes live and how they become the destination.

For a destination ``D``:

- ``D.partial`` holds the bytes fetched so far. Single stream: its length is the resume offset.
  Segmented: the file is preallocated and only the byte ranges listed in the sidecar count.
- ``D.partial.json`` (the sidecar, replaced atomically) says what those bytes are: format
  version, the source URL (credentials redacted), the object's validators, what the caller
  expected, and the token of the writer that owns the partial.
- ``D.partial.lock`` stops two processes from doing the same work. It is only an optimisation:
  on NFS/Lustre/GPFS a lock can "succeed" for everyone, so correctness rests on the owner token
  (a writer that sees another token in the sidecar stops) and on the inode check at promote.
- ``promote()`` fsyncs the data, checks ownership, ``os.replace``\\ s ``D.partial`` onto ``D``,
  fsyncs the directory and removes the sidecar. ``D`` therefore only ever holds a complete file,
  and a failed download never touches an existing ``D``.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._threads import Guarded
from .errors import LocalError, PartialTakenOver, identity, redact
from .ranges import RangeSet

__all__ = ["FORMAT_VERSION", "Partial", "Sidecar", "fsync_dir", "local_error"]

FORMAT_VERSION = 1
_HOLE_MARGIN = 1 << 20  # bytes before a hole not trusted (see Partial.written_prefix)
TMP_SUFFIX = ".tmp"  # sidecar temp files: D.partial.json.<owner token>.tmp
log = logging.getLogger("resumable")


@dataclass(frozen=True)
class Sidecar:
    """The contents of ``D.partial.json``."""

    url: str
    """The source URL, credentials redacted."""
    identity: str
    """What :func:`~resumable.errors.identity` says the URL names (resume matches on it)."""
    validators: Mapping[str, Any]
    expected: Mapping[str, Any]
    owner: str
    format: int = FORMAT_VERSION
    ranges: RangeSet | None = None
    """Segmented partials: the byte ranges written and synced. ``None``: a single stream."""

    def to_json(self) -> str:
        record: dict[str, Any] = {
            "format": self.format,
            "url": self.url,
            "identity": self.identity,
            "validators": dict(self.validators),
            "expected": dict(self.expected),
            "owner": self.owner,
        }
        if self.ranges is not None:
            record["ranges"] = self.ranges.to_json()
        return json.dumps(record, indent=1, sort_keys=True)


class Partial:
    """The files beside one destination, and the writer's handle on ``D.partial``."""

    def __init__(self, dest: Path) -> None:
        self.dest = dest
        self.data = dest.with_name(dest.name + ".partial")
        self._owner: str | None = None
        self._fd: int | None = None
        self._inode: tuple[int, int] | None = None

    # Made when first used: a small file on the direct path never needs them.
    @functools.cached_property
    def meta(self) -> Path:
        return self.dest.with_name(self.dest.name + ".partial.json")

    @functools.cached_property
    def lockfile(self) -> Path:
        return self.dest.with_name(self.dest.name + ".partial.lock")

    @property
    def owner(self) -> str:
        """This writer's random token, made when first needed: a small file that takes the
        direct path never uses it (and a token costs a ``getrandom`` call)."""
        if self._owner is None:
            self._owner = os.urandom(16).hex()
        return self._owner

    # -- locking --------------------------------------------------------------------------------

    @contextlib.contextmanager
    def locked(self, enabled: bool = True, *, blocking: bool = True) -> Iterator[bool]:
        """Hold ``D.partial.lock`` while downloading; yield whether to go on.

        Disabled, or on a filesystem without working locks, yields ``True`` without a lock: that
        only costs duplicate work, so a failure to lock is logged and ignored. With
        ``blocking=False`` a lock held by someone else yields ``False`` at once. The lock file is
        removed on release when no partial remains (``D`` is in place, or nothing was kept); a
        waiter then re-checks ``D`` before doing any work.
        """
        if not enabled:
            yield True
            return
        from filelock import FileLock, Timeout

        lock = FileLock(str(self.lockfile))
        try:
            lock.acquire(blocking=blocking)
        except Timeout:
            yield False
            return
        except OSError as exc:
            log.warning("could not lock %s (%s); continuing without a lock", self.lockfile, exc)
            yield True
            return
        try:
            yield True
        finally:
            if not self.data.exists():
                with contextlib.suppress(OSError):
                    os.unlink(self.lockfile)
            lock.release()

    # -- sidecar --------------------------------------------------------------------------------

    def read_sidecar(self) -> Sidecar | None:
        """The sidecar, or ``None`` if absent or unreadable (then the partial is not trusted).

        Raises:
            LocalError: the sidecar was written by a newer format; it is left alone rather than
                destroyed, since a newer ``resumable`` may be using it.
        """
        try:
            raw = json.loads(self.meta.read_text(encoding="utf-8"))
            version = int(raw["format"])
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring unreadable sidecar %s (%s); starting over", self.meta, exc)
            return None
        if version > FORMAT_VERSION:
            err = LocalError(
                f"{self.meta} was written by a newer resumable (format {version}, this one "
                f"reads {FORMAT_VERSION}); upgrade resumable or delete the .partial files",
                path=str(self.meta),
            )
            err.kept = "the partial and its sidecar were left as they are"
            raise err
        try:
            ranges = raw.get("ranges")
            return Sidecar(
                url=str(raw["url"]),
                identity=str(raw.get("identity") or raw["url"]),
                validators=dict(raw["validators"]),
                expected=dict(raw["expected"]),
                owner=str(raw["owner"]),
                format=version,
                ranges=None if ranges is None else RangeSet.from_json(ranges),
            )
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("ignoring malformed sidecar %s (%s); starting over", self.meta, exc)
            return None

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
        tmp = self.meta.with_name(f"{self.meta.name}.{self.owner}{TMP_SUFFIX}")
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(sidecar.to_json())
            os.replace(tmp, self.meta)
        except FileNotFoundError as exc:
            if self.data.parent.is_dir():  # our temp file was removed: see remove_stale_temps
                raise PartialTakenOver(
                    f"another writer took over {self.data} while this one wrote its sidecar",
                    path=str(self.data),
                ) from exc
            raise self._local_error(exc, "writing the sidecar") from exc
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise self._local_error(exc, "writing the sidecar") from exc

    def remove_stale_temps(self) -> None:
        """Remove sidecar temp files that a killed writer left (``D.partial.json.<token>.tmp``).

        Called when a partial is taken over, since only an interrupted writer leaves one. Without
        a working lock a live writer's temp file may go too; that writer then finds its sidecar
        write failing and stops as taken over, which it is.
        """
        prefix = self.meta.name + "."
        try:
            entries = list(os.scandir(self.meta.parent))
        except OSError:
            return
        for entry in entries:
            name = entry.name
            if name.startswith(prefix) and name.endswith(TMP_SUFFIX) and self.owner not in name:
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)

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
        first hole.

        A single stream's sidecar records no ranges: its bytes are the file's whole length.
        But a segmented writer racing it without a working lock (``locking=False``, or NFS)
        may have written pieces further on, or reserved the full size, through a descriptor
        opened before this partial was taken over: the file is then longer than what was
        written, with holes (or reserved, unwritten space, which ``SEEK_HOLE`` reports as a
        hole) in between. Trusting the whole length published a file with zero-filled pieces
        when no digest was given (a race of single-stream and segmented processes found it).
        Where the filesystem cannot say, the whole length is trusted, as before.

        A hole starts at a block boundary, and the block before it may be written only in part
        (its end then reads as zeros): the trusted prefix stops ``_HOLE_MARGIN`` before the
        hole, more than any filesystem's block.
        """
        if size == 0 or not hasattr(os, "SEEK_HOLE"):
            return size
        try:
            hole = os.lseek(self.fd, 0, os.SEEK_HOLE)
        except OSError:
            return size
        if hole >= size:
            return size
        trusted = max(0, hole - _HOLE_MARGIN)
        log.info("%s has a hole at byte %d of %d; resuming at %d", self.data, hole, size, trusted)
        return trusted

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
        current = os.fstat(self.fd).st_size
        needed = size - current
        if needed <= 0:
            return
        try:
            st = os.statvfs(self.data.parent)
        except OSError:
            st = None
        if st is not None and st.f_blocks and st.f_bavail * st.f_frsize < needed:
            raise LocalError(
                f"not enough disk space for {self.dest.name}: needs {needed} more bytes, "
                f"{st.f_bavail * st.f_frsize} free in {self.data.parent}",
                path=str(self.data),
            )
        try:
            os.posix_fallocate(self.fd, current, needed)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
                raise self._local_error(exc, "reserving space for the partial") from exc
            try:
                os.ftruncate(self.fd, size)  # filesystems without fallocate (some FUSE, NFS)
            except OSError as again:
                raise self._local_error(again, "reserving space for the partial") from again

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


class Flusher:
    """Flushes a growing file to disk in the background, so the sync before promote is short.

    ``kick()`` asks for an ``fdatasync`` on a helper thread (at most one at a time; kicks while
    one runs merge). The same writeback happens either way, but it overlaps the download instead
    of following it, and most of a single-stream partial is durable while it grows.
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._wanted = threading.Event()
        self._closing = False
        self.error: OSError | None = None  # why it stopped early (the final sync reports it)
        self._thread = Guarded(self._run, name="resumable-flush")
        self._thread.start()

    def kick(self) -> None:
        self._wanted.set()

    def _run(self) -> None:
        while True:
            self._wanted.wait()
            self._wanted.clear()
            if self._closing:
                return
            try:
                os.fdatasync(self._fd)
            except OSError as exc:
                self.error = exc
                log.debug("background flush of fd %d stopped: %s", self._fd, exc)
                return  # the final sync before promote reports problems

    def close(self) -> None:
        """Stop the thread (before the file descriptor is closed)."""
        self._closing = True
        self._wanted.set()
        self._thread.join()


def fsync_dir(path: Path) -> None:
    """fsync a directory so a rename in it survives a power cut (skipped where unsupported)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def local_error(exc: OSError, doing: str, path: Path) -> LocalError:
    """The typed error for a failed operation on a partial (a full disk says what to do)."""
    reason = os.strerror(exc.errno) if exc.errno else str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        reason = f"{reason} (free some space, then run again: the partial resumes)"
    err = LocalError(f"{doing} failed: {reason}", path=str(path))
    err.errno = exc.errno
    return err
