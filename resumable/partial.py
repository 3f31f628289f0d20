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
import hashlib
import json
import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard

from ._threads import Guarded
from .errors import Cancelled, LocalError, PartialTakenOver
from .ranges import RangeSet
from .urls import identity, redact

__all__ = [
    "FORMAT_VERSION",
    "FutureFormat",
    "Partial",
    "Sidecar",
    "fsync_dir",
    "local_error",
    "parse_sidecar",
]

FORMAT_VERSION = 1
MAX_SIDECAR = 16 << 20  # bytes: a sidecar is a few KiB (its ranges are merged as they grow)
MAX_OFFSET = (1 << 63) - 1  # the largest size a file can have (off_t)
_HOLE_MARGIN = 1 << 20  # bytes before a hole not trusted (see Partial.written_prefix)
TMP_SUFFIX = ".tmp"  # sidecar temp files: D.partial.json.<owner token>.tmp
log = logging.getLogger("resumable")


@dataclass(frozen=True)
class Sidecar:
    """The contents of ``D.partial.json``."""

    url: str
    """The source URL, credentials redacted."""
    identity: str
    """What :func:`~resumable.urls.identity` says the URL names (resume matches on it)."""
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


def helper_path(dest: Path, suffix: str, lead: str = "") -> Path:
    """The path of a file the library keeps beside ``dest``: ``<lead><name><suffix>``, or,
    when that name is longer than the filesystem takes, ``<lead><stem>~<hash><suffix>``.

    Any name the filesystem accepts must work, but ``NAME.partial.json`` is 13 bytes longer
    than ``NAME``: a legal name of 243-255 bytes had no room for its helpers. The shortened
    form keeps as much of the name as fits (cut on a character boundary, for people reading
    the directory) and a 64-bit hash of the whole name (so two long names that share their
    start never share a helper), and it still ends in ``suffix``. Names that fit are
    unchanged, so partials written before this rule still resume.
    """
    name = dest.name
    plain = lead + name + suffix
    length = len(plain.encode("utf-8", "surrogateescape"))
    if length <= _SAFE_NAME_MAX:
        return dest.with_name(plain)
    limit = _name_max(dest.parent)
    if length <= limit:
        return dest.with_name(plain)
    digest = hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    tail = f"~{digest}{suffix}"
    room = limit - len((lead + tail).encode("utf-8", "surrogateescape"))
    stem = name.encode("utf-8", "surrogateescape")[: max(room, 0)]
    return dest.with_name(lead + stem.decode("utf-8", "ignore") + tail)


_SAFE_NAME_MAX = 143  # no common filesystem takes fewer bytes (eCryptfs); longer names ask
_name_maxes: dict[str, int] = {}


def _name_max(folder: Path) -> int:
    """The longest file name in bytes that ``folder`` takes (asked once per folder)."""
    key = str(folder)
    known = _name_maxes.get(key)
    if known is not None:
        return known
    try:
        limit = int(os.pathconf(key, "PC_NAME_MAX"))
    except (OSError, ValueError):  # not there yet, or the system cannot say: not remembered
        return 255
    if len(_name_maxes) < 4096:
        _name_maxes[key] = limit
    return limit


class FutureFormat(Exception):
    """A sidecar of a newer format than this one reads (see :meth:`Partial.read_sidecar`)."""

    def __init__(self, version: int) -> None:
        super().__init__(version)
        self.version = version


def parse_sidecar(text: bytes) -> Sidecar:
    """The one parse boundary of ``D.partial.json``: a typed :class:`Sidecar` or ``ValueError``.

    A sidecar is untrusted input (another program, a crash, a hostile user may have written
    it), so every field is checked for its type and bounds here, once, and nothing past this
    point sees a raw JSON value: sizes are integers (not bools, floats, ``Infinity`` or
    ``1e30``) from 0 to the largest file offset, texts are strings, ``ranges`` is the sorted,
    disjoint list a writer records, within the recorded size. A size no file can have would
    otherwise be reserved on disk, and a range past the object's end would be trusted.

    Raises:
        FutureFormat: a valid sidecar format newer than :data:`FORMAT_VERSION`.
        ValueError: anything else that is not a sidecar a writer of this format made.
    """
    if len(text) > MAX_SIDECAR:
        raise ValueError(f"larger than {MAX_SIDECAR} bytes")
    try:
        raw = json.loads(text.decode("utf-8"), parse_constant=_no_constant)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    if not isinstance(raw, dict):
        raise ValueError("not a JSON object")
    version = raw.get("format")
    if not _is_int(version) or version < 1:
        raise ValueError(f"format {version!r} is not a format number")
    if version > FORMAT_VERSION:
        raise FutureFormat(version)
    url = _text(raw.get("url"), "url")
    validators = _validators(raw.get("validators"))
    ranges = raw.get("ranges")
    size = validators.get("size")
    if ranges is not None and size is None:
        raise ValueError("ranges without the object's size")
    return Sidecar(
        url=url,
        identity=_text(raw.get("identity") or url, "identity"),
        validators=validators,
        expected=_expected(raw.get("expected")),
        owner=_text(raw.get("owner"), "owner"),
        format=version,
        ranges=None if ranges is None else RangeSet.from_json(ranges, size),
    )


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _size(value: object, what: str) -> int | None:
    """A byte count: ``None`` or an integer no larger than the largest file offset."""
    if value is None:
        return None
    if not _is_int(value) or not 0 <= value <= MAX_OFFSET:
        raise ValueError(f"{what} {value!r} is not a size")
    return value


def _text(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{what} is not a string")
    return value


def _texts(value: object, what: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ValueError(f"{what} is not an object of strings")
    return dict(value)


def _validators(value: object) -> dict[str, Any]:
    """The recorded validators: only the known fields, each of its type (absent ones stay
    absent: ``{}`` is what a writer records before the first answer)."""
    if not isinstance(value, dict):
        raise ValueError("validators is not an object")
    checked: dict[str, Any] = {}
    for key in ("etag", "last_modified", "version"):
        if key in value:
            item = value[key]
            checked[key] = None if item is None else _text(item, key)
    if "size" in value:
        checked["size"] = _size(value["size"], "size")
    if "checksums" in value:
        checked["checksums"] = _texts(value["checksums"], "checksums")
    return checked


def _expected(value: object) -> dict[str, Any]:
    """What the caller expected: ``size`` and ``{algorithm: hex}`` digests."""
    if not isinstance(value, dict):
        raise ValueError("expected is not an object")
    digests = {k: v for k, v in value.items() if k != "size"}
    return {"size": _size(value.get("size"), "expected size"), **_texts(digests, "expected")}


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
        """Hold ``D.partial.lock`` while downloading; yield whether to go on.

        Disabled, or on a filesystem without working locks, yields ``True`` without a lock: that
        only costs duplicate work, so a failure to lock is logged and ignored. With
        ``blocking=False`` a lock held by someone else yields ``False`` at once. The lock file is
        removed on release when no partial remains (``D`` is in place, or nothing was kept); a
        waiter then re-checks ``D`` before doing any work. Setting ``cancel`` ends a wait for
        the lock with :class:`~resumable.errors.Cancelled`.
        """
        if not enabled:
            yield True
            return
        from filelock import FileLock, Timeout

        lock = FileLock(str(self.lockfile))
        try:
            _acquire(lock, blocking, cancel)
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
        """The sidecar, or ``None`` if absent or not one a writer made (the partial is then
        not trusted: the download starts that file over). See :func:`parse_sidecar`.

        Raises:
            LocalError: the sidecar was written by a newer format; it is left alone rather than
                destroyed, since a newer ``resumable`` may be using it.
        """
        try:
            with open(self.meta, "rb") as f:
                text = f.read(MAX_SIDECAR + 1)
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("ignoring unreadable sidecar %s (%s); starting over", self.meta, exc)
            return None
        try:
            return parse_sidecar(text)
        except FutureFormat as future:
            err = LocalError(
                f"{self.meta} was written by a newer resumable (format {future.version}, this "
                f"one reads {FORMAT_VERSION}); upgrade resumable or delete the .partial files",
                path=str(self.meta),
            )
            err.kept = "the partial and its sidecar were left as they are"
            raise err from None
        except ValueError as exc:
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
        tmp = self._temp_name()
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

    def _temp_name(self) -> Path:
        """``D.partial.json.<owner>.tmp``, by the rule of every helper name (see
        :func:`helper_path`)."""
        return helper_path(self.dest, f".partial.json.{self.owner}{TMP_SUFFIX}")

    def _temp_prefix(self) -> str:
        """What every writer's temp file name starts with (tokens all have one length, so a
        shortened name is cut at the same place for all of them)."""
        return self._temp_name().name[: -len(self.owner + TMP_SUFFIX)]

    def remove_stale_temps(self) -> None:
        """Remove sidecar temp files that a killed writer left (``D.partial.json.<token>.tmp``).

        Called when a partial is taken over, since only an interrupted writer leaves one. Without
        a working lock a live writer's temp file may go too; that writer then finds its sidecar
        write failing and stops as taken over, which it is.
        """
        prefix = self._temp_prefix()
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

    def recorded_ranges(self, ranges: RangeSet, size: int, on_disk: int) -> RangeSet | None:
        """The recorded ranges of a segmented partial that its file really holds, or ``None``
        when the file is not one a segmented writer left.

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
                    data = os.lseek(self.fd, position, os.SEEK_DATA)
                    hole = os.lseek(self.fd, data, os.SEEK_HOLE)
                except OSError as exc:
                    if exc.errno == errno.ENXIO:  # no data past ``position``
                        break
                    return ranges  # the filesystem cannot say: trust the record, as before
                if data >= end:
                    break
                kept.add(data, min(hole, end))
                position = hole
        if kept != ranges:
            log.warning("%s: some recorded ranges are holes on disk; not trusting them", self.data)
        return kept

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


def _acquire(lock: Any, blocking: bool, cancel: threading.Event | None) -> None:
    """``lock.acquire(blocking=...)``, in short waits that give up when ``cancel`` is set (the
    lock's holder may be another process downloading the same file for a long time)."""
    if not blocking or cancel is None:
        lock.acquire(blocking=blocking)
        return
    from filelock import Timeout

    while True:
        if cancel.is_set():
            raise Cancelled(f"cancelled while waiting for {lock.lock_file}")
        try:
            lock.acquire(timeout=0.1)
            return
        except Timeout:
            continue


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
        # Not "the partial resumes": whether it does is for ``kept`` to say (nothing may be
        # kept, or nothing that could be resumed).
        reason = f"{reason} (free some space, then run again)"
    err = LocalError(f"{doing} failed: {reason}", path=str(path))
    err.errno = exc.errno
    return err
