"""Claims: how processes that share a destination split a batch without talking to each other.

Several processes (the ranks on a node, nodes on a shared filesystem) may run the same batch into
the same ``dest_dir``. Before downloading an item, a process *claims* it: it creates
``dest_dir/.resumable/claims/<name>`` with ``O_CREAT | O_EXCL``, which exactly one creator wins on
a local filesystem, NFS (v3 and v4 both make exclusive create atomic on the server) and Lustre.
Nothing here relies on ``flock``/``lockf``, which on Lustre mounted with ``localflock`` (or an NFS
client without a lock daemon) succeed for everyone and protect nothing.

One file per item, named by a hash of the destination's relative path, holds the item's state
as a small JSON object:

- ``held``: a process is on it (``host``, ``pid``, a random ``token``). It stays alive by a
  *heartbeat*: a thread touches the file's mtime every ``lease / 4`` seconds. A claim whose mtime
  is older than the lease is *stale* (the process was killed, its node lost) and is taken over;
  on the claimant's own host, a claim whose pid is gone is stale at once.
- ``done``: the file is in place, verified, of this size, mtime and SHA-256. Another process
  that finds the destination still so reports it as skipped, reading nothing and asking nothing
  of the server (without it, each process would hash every file the others fetched).
- ``failed``: the item failed for good (a 404, a checksum mismatch after the re-fetch, retries
  exhausted): the error's type and text (already scrubbed of credentials by
  :mod:`resumable.errors`, and again here). Another process whose call was running when it was
  recorded reports the same failure instead of trying again; a later call tries again.

Taking over a file that exists (a stale claim, a ``done`` whose file changed, an old failure) is
serialised by a second exclusive file, ``<name>.taking``: whoever creates it re-checks, under it,
that the claim is still the one it judged stale, and replaces it with ``os.replace``; a process
that cannot create it backs off and looks again later. Without it, two takers could both decide
a claim was stale and each replace it. A ``.taking`` left by a taker killed in those few
microseconds is broken after a lease.

Every judgement of age compares an mtime the filesystem set with the filesystem's clock, measured
once per :class:`Claims` by touching a file (on NFS, mtimes are the server's).

Correctness never depends on a claim: two processes that both download an item (a process frozen
for longer than the lease, then resumed) are kept apart by the ``.partial`` protocol's owner token
and the verification before the rename. Claims only save the duplicate work.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .._threads import Guarded
from ..errors import InvalidArgument, LocalError
from ..urls import redact_text

__all__ = ["LEASE_ENV", "Claim", "Claims", "Record", "lease_from_env"]

log = logging.getLogger("resumable")

LEASE_ENV = "RESUMABLE_CLAIM_LEASE"
"""The environment variable that sets the lease, in seconds (default 15, at most 30)."""
DEFAULT_LEASE = 15.0
MAX_LEASE = 30.0


def lease_from_env() -> float:
    """The lease in seconds: ``RESUMABLE_CLAIM_LEASE`` if set, else 15.

    Raises:
        InvalidArgument: the value is not a number of seconds in (0, 30].
    """
    text = os.environ.get(LEASE_ENV, "").strip()
    if not text:
        return DEFAULT_LEASE
    try:
        lease = float(text)
    except ValueError:
        lease = -1.0
    if not 0 < lease <= MAX_LEASE:
        raise InvalidArgument(f"{LEASE_ENV} must be a number of seconds in (0, 30], got {text!r}")
    return lease


def host_id() -> str:
    """This host, as claims name it: the hostname and the PID namespace (two containers on one
    host with the same hostname do not see each other's PIDs, so neither may judge the other's
    claims by PID)."""
    try:
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        namespace = 0
    return f"{socket.gethostname()}/{namespace}"


@dataclass(frozen=True)
class Record:
    """What a claim file says, as read (``state`` is ``"held"``, ``"done"`` or ``"failed"``;
    ``"unknown"`` for a file being written or damaged)."""

    state: str
    mtime: float
    ino: int
    data: dict[str, object] = field(default_factory=dict)

    @property
    def token(self) -> object:
        return self.data.get("token")


@dataclass
class Claim:
    """An item this process holds: its file stays open (the heartbeat touches it through the
    descriptor, so a claim taken over in the meantime is never touched back to life)."""

    name: str
    path: Path
    fd: int
    size: int
    """Bytes written to the file (an outcome shorter than that truncates it)."""


class Claims:
    """The claims of one destination directory, held by this process (thread-safe).

    Args:
        folder: ``dest_dir/.resumable/claims`` (created).
        lease: seconds after its last heartbeat that a claim is stale.
    """

    def __init__(self, folder: Path, lease: float | None = None) -> None:
        self.folder = folder
        self.lease = lease_from_env() if lease is None else lease
        self.token = secrets.token_hex(8)
        self.host = host_id()
        self.pid = os.getpid()
        self._held: dict[str, Claim] = {}
        self._held_body = self._body("held")
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._beat: Guarded | None = None
        try:
            folder.mkdir(parents=True, exist_ok=True)
            probe = folder / f".clock-{self.token}"
            probe.touch()
            try:
                self.skew = probe.stat().st_mtime - time.time()
            finally:
                probe.unlink()
        except OSError as exc:
            raise LocalError(f"cannot use {folder} for claims: {exc}", path=str(folder)) from exc
        self.epoch = self.now()
        """When this process began (filesystem clock): failures recorded before it by more
        than a lease belong to an earlier call, and are tried again."""

    def now(self) -> float:
        """The filesystem's clock, as far as the mtimes it sets go."""
        return time.time() + self.skew

    @staticmethod
    def name_of(key: str) -> str:
        """The file name of the claim on ``key`` (a destination's relative path)."""
        return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:40]

    # -- taking ------------------------------------------------------------------------------------

    def acquire(self, name: str, *, ours: bool = False) -> Claim | Record | None:
        """Claim ``name``: a :class:`Claim` if this process now holds it, else the
        :class:`Record` standing in the way (``held`` by a live process, ``done``, or a
        ``failed`` of this call's time). ``ours=True``: also take over a ``done`` or ``failed``
        record (the caller found it unusable).

        ``None``: the claims cannot be written (a full or read-only disk; logged): go on
        without one. A claim only saves duplicate work, so the item's own outcome (and the
        ledger's error, on that same full disk) says what went wrong, not the claim."""
        try:
            return self._acquire(name, ours)
        except OSError as exc:
            log.warning("cannot claim %s, going on without a claim: %s", self.folder / name, exc)
            return None

    def _acquire(self, name: str, ours: bool) -> Claim | Record:
        path = self.folder / name
        for _ in range(8):  # a claim released between our create and our read: again
            claim = self._create(name, path)
            if claim is not None:
                return claim
            record = self.read(path)
            if record is None:
                continue
            if not self._takeable(record, ours):
                return record
            taken = self._take_over(name, path, record, ours)
            # None: another taker is at it, or the claim changed since we judged it.
            return taken if taken is not None else Record("held", record.mtime, record.ino)
        return Record("held", self.now(), 0)

    def _create(self, name: str, path: Path) -> Claim | None:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return None
        return self._hold(name, path, fd)

    def _hold(self, name: str, path: Path, fd: int) -> Claim:
        try:
            claim = Claim(name, path, fd, os.write(fd, self._held_body))
        except OSError:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(path)  # an empty claim would hold the item for a lease
            raise
        with self._lock:
            self._held[name] = claim
            if self._beat is None:
                self._beat = Guarded(
                    self._heartbeat, name="resumable-claims", on_error=_heartbeat_died
                )
                self._beat.start()
        return claim

    def _takeable(self, record: Record, ours: bool = False) -> bool:
        """A record in the way may be replaced: a stale claim, a failure from before this
        call (give the source another chance), or an outcome the caller cannot use."""
        if ours and record.state in ("done", "failed"):
            return True
        if record.state == "failed":
            return record.mtime < self.epoch - self.lease
        if record.state == "done":
            return False
        return self.stale(record)

    def stale(self, record: Record) -> bool:
        """A claim whose heartbeat stopped: older than the lease, or its process is gone."""
        if self.now() - record.mtime > self.lease:
            return True
        pid = record.data.get("pid")
        if record.data.get("host") != self.host or not isinstance(pid, int) or pid == self.pid:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except OSError:  # EPERM: it exists (another user's)
            return False
        return False

    def _take_over(self, name: str, path: Path, judged: Record, ours: bool) -> Claim | None:
        """Replace ``judged`` (still the file at ``path``) with our claim, under ``.taking``;
        ``None`` if another taker is at it or the claim changed since it was judged."""
        taking = path.with_name(name + ".taking")
        try:
            fd = os.open(taking, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            self._break_stale(taking)
            return None
        try:
            os.write(fd, self._body("taking"))
            now = self.read(path)
            if now is None or now.ino != judged.ino or not self._takeable(now, ours):
                return None  # taken, finished, released or touched since: judge it again
            tmp = path.with_name(f"{name}.{self.token}.new")
            new = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                claim = self._hold(name, path, new)
                os.replace(tmp, path)
            except BaseException:
                self._forget(name)
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
            log.debug("took over the claim %s (%s)", path, judged.data)
            return claim
        finally:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(taking)

    def _break_stale(self, taking: Path) -> None:
        """A ``.taking`` left by a taker that died holding it: moved aside after a lease."""
        try:
            if self.now() - taking.stat().st_mtime <= self.lease:
                return
            aside = taking.with_name(f"{taking.name}.{self.token}.broken")
            os.replace(taking, aside)
            os.unlink(aside)
        except OSError:
            pass

    # -- reading -----------------------------------------------------------------------------------

    def read(self, path: Path) -> Record | None:
        """The claim at ``path``; ``None`` if there is none. A file being written (empty) or
        not ours to parse is ``unknown``: busy while fresh, stale after a lease."""
        try:
            with open(path, "rb") as f:
                st = os.fstat(f.fileno())
                raw = f.read(65536)
        except FileNotFoundError:
            return None
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        if not isinstance(data, dict) or data.get("state") not in ("held", "done", "failed"):
            return Record("unknown", st.st_mtime, st.st_ino)
        return Record(str(data["state"]), st.st_mtime, st.st_ino, data)

    # -- ending ------------------------------------------------------------------------------------

    def finish(self, claim: Claim, state: str, **fields: object) -> None:
        """Turn our claim into its outcome (``done`` or ``failed``) for the other processes.

        Written in place through the claim's own descriptor: no other file, no rename (a
        third of a small file's cost otherwise). A claim taken over in the meantime is
        another inode by now, so the write lands on our orphaned one and the taker's word
        stands. A reader that catches the write half done sees no valid record: ``unknown``,
        busy while fresh, so it looks again a moment later."""
        if state == "failed":
            fields = {k: redact_text(v) if isinstance(v, str) else v for k, v in fields.items()}
        body = self._body(state, **fields)
        try:
            os.pwrite(claim.fd, body, 0)
            if len(body) < claim.size:  # (each system call is a GIL hand-over: few of them)
                os.ftruncate(claim.fd, len(body))
        except OSError as exc:  # others will do the item again: work lost, nothing wrong
            log.warning("cannot record the outcome of %s: %s", claim.path, exc)
        finally:
            self._close(claim)

    def release(self, claim: Claim) -> None:
        """Give ``claim`` up (cancelled, or a failure only this process has): removed if it is
        still ours, so another process takes the item at once."""
        try:
            if self._still_ours(claim):
                os.unlink(claim.path)
        except OSError as exc:
            log.debug("cannot release the claim %s: %s", claim.path, exc)
        finally:
            self._close(claim)

    def _still_ours(self, claim: Claim) -> bool:
        try:
            return os.stat(claim.path).st_ino == os.fstat(claim.fd).st_ino
        except FileNotFoundError:
            return False

    def _close(self, claim: Claim) -> None:
        self._forget(claim.name)
        with contextlib.suppress(OSError):
            os.close(claim.fd)

    def _forget(self, name: str) -> None:
        with self._lock:
            self._held.pop(name, None)

    def close(self) -> None:
        """Release every claim still held and stop the heartbeat."""
        with self._lock:
            held = list(self._held.values())
        for claim in held:
            self.release(claim)
        self._stop.set()
        if self._beat is not None and self._beat is not threading.current_thread():
            self._beat.join()

    # -- the heartbeat -----------------------------------------------------------------------------

    def _heartbeat(self) -> None:
        interval = self.lease / 4
        while not self._stop.wait(interval):
            with self._lock:
                held = list(self._held.values())
            for claim in held:
                try:
                    os.utime(claim.fd)
                except OSError as exc:  # closed meanwhile, or the filesystem went away
                    log.debug("heartbeat of %s failed: %s", claim.path, exc)

    def _body(self, state: str, **fields: object) -> bytes:
        record = {"state": state, "host": self.host, "pid": self.pid, "token": self.token}
        record.update(fields)
        return json.dumps(record, sort_keys=True).encode()


def _heartbeat_died(exc: BaseException) -> None:
    # The claims go stale and others take the items over: duplicate work, never wrong files.
    log.warning("the claims' heartbeat stopped (%s): other processes may take our items", exc)


# -- failures, as other processes see them --------------------------------------------------------

_NOT_FOR_OTHERS = ("Cancelled", "LocalError", "PartialTakenOver", "InternalError", "ExecutorError")


def for_others(exc: BaseException) -> bool:
    """Whether a failure is the item's for good, to be reported by every process: one of our
    errors about the source or the bytes, not one about this process (cancelled, its own disk,
    a bug, its progress callback)."""
    from .. import errors

    if not isinstance(exc, errors.ResumableError):
        return False
    return not any(cls.__name__ in _NOT_FOR_OTHERS for cls in type(exc).__mro__)


def failure_fields(exc: BaseException) -> dict[str, object]:
    """What a ``failed`` record holds: the error's type and its data (text and numbers; every
    text is scrubbed of credentials by :meth:`Claims.finish`)."""
    attrs = {
        key: value
        for key, value in vars(exc).items()
        if not key.startswith("_") and (value is None or isinstance(value, (str, int, float)))
    }
    return {"error": type(exc).__name__, "attrs": attrs}


def recorded_error(record: Record) -> Exception:
    """The error a ``failed`` record stands for: the same type, message and data, saying which
    process saw it. Only classes of :mod:`resumable.errors` are made (never unpickled: the file
    is on a shared filesystem)."""
    from .. import errors

    name = record.data.get("error")
    cls = getattr(errors, name, None) if name in errors.__all__ else None
    if not (isinstance(cls, type) and issubclass(cls, errors.ResumableError)):
        cls = errors.ResumableError
    attrs = record.data.get("attrs")
    attrs = attrs if isinstance(attrs, dict) else {}
    message = str(attrs.get("message", "failed in another process"))
    host, pid = record.data.get("host"), record.data.get("pid")
    message = f"{message} (recorded by process {pid} on {str(host).split('/')[0]})"
    error = cls.__new__(cls)
    errors.ResumableError.__init__(error, message)  # the message passes redact_text again
    for key, value in attrs.items():
        if key not in ("message", "args") and isinstance(key, str) and not key.startswith("_"):
            setattr(error, key, redact_text(value) if isinstance(value, str) else value)
    return error
