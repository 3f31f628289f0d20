"""Size and digest checks, and hashing that stays off the download's critical path.

Every download computes SHA-256 (``DownloadResult.sha256``) plus any digest the caller asked to
check (``checksum="md5:..."``), all in one pass over the bytes, in order. Hashing runs on its own
thread (:class:`BackgroundHasher`): ``hashlib`` releases the GIL for large buffers, so on a machine
with two cores the network/disk loop and the hash proceed in parallel and a verified download
costs about what an unverified one does.
"""

from __future__ import annotations

import os
import queue
import re
import threading
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ._threads import Guarded, put_while
from .errors import ChecksumMismatch, InvalidArgument, LocalError, SizeMismatch

__all__ = [
    "BackgroundHasher",
    "Digests",
    "InlineHasher",
    "check_digests",
    "check_size",
    "hash_file",
    "parse_expected",
    "pick_provider_checksum",
]

_HEX = re.compile(r"^[0-9a-fA-F]+$")
# Extendable-output functions have no fixed digest length; nobody publishes them as checksums.
_UNSUPPORTED = {"shake_128", "shake_256"}
BLOCK = 4 << 20
FileRef = str | os.PathLike[str] | int  # a path, or an open file descriptor


class _CRC:
    """crc32 (zlib) or crc32c (google-crc32c) with hashlib's update/hexdigest shape.

    Cloud stores report CRCs (GCS crc32c, S3 ChecksumCRC32/CRC32C); sources normalise them to
    8 lowercase hex digits of the big-endian value, which is what ``hexdigest`` returns.
    """

    def __init__(self, kind: str) -> None:
        self._value = 0
        if kind == "crc32":
            self._step: Callable[[Any, int], int] = zlib.crc32
        else:
            import google_crc32c

            self._step = lambda data, value: int(google_crc32c.extend(value, bytes(data)))

    def update(self, data: Any) -> None:
        self._value = self._step(data, self._value)

    def hexdigest(self) -> str:
        return f"{self._value & 0xFFFFFFFF:08x}"


def _crc32c_available() -> bool:
    try:
        import google_crc32c
    except ImportError:
        return False
    return bool(google_crc32c.implementation == "c")


# Provider checksums worth verifying, cheapest first: sha256 is computed anyway; hardware
# crc32c costs almost nothing; md5 and sha1 cost a second hash pass on the hash thread.
_PROVIDER_PREFERENCE = ("sha256", "crc32c", "crc32", "md5", "sha1")


def pick_provider_checksum(checksums: Mapping[str, str]) -> dict[str, str]:
    """The one provider checksum to verify (cheapest first), or ``{}`` if none is usable."""
    for kind in _PROVIDER_PREFERENCE:
        value = checksums.get(kind)
        if not value:
            continue
        if kind == "crc32c" and not _crc32c_available():
            continue
        return {kind: value.lower()}
    return {}


class Digests:
    """Several digests updated together (hashlib names, ``crc32``, ``crc32c``); SHA-256 always."""

    def __init__(self, algorithms: Iterable[str] = ()) -> None:
        import hashlib  # not at import (its OpenSSL load costs ~2 ms)

        names = dict.fromkeys(["sha256", *algorithms])
        self._hashes: dict[str, Any] = {
            name: _CRC(name) if name in ("crc32", "crc32c") else hashlib.new(name) for name in names
        }

    def update(self, data: Any) -> None:
        for h in self._hashes.values():
            h.update(data)

    def hexdigests(self) -> dict[str, str]:
        return {name: h.hexdigest() for name, h in self._hashes.items()}


def parse_expected(
    sha256: str | None = None, checksum: str | Iterable[str] | None = None
) -> dict[str, str]:
    """Validate expected digests and return ``{algorithm: lowercase hex}``.

    ``checksum`` is ``"<algorithm>:<hex>"`` (any hashlib algorithm) or several of them. Raises
    :class:`InvalidArgument` for anything malformed, before any network traffic.

    >>> parse_expected(checksum="MD5:D41D8CD98F00B204E9800998ECF8427E")
    {'md5': 'd41d8cd98f00b204e9800998ecf8427e'}
    """
    specs: list[tuple[str, str]] = []
    if sha256 is not None:
        specs.append(("sha256", sha256))
    if checksum is not None:
        if not isinstance(checksum, (str, Iterable)) or isinstance(checksum, (bytes, Mapping)):
            raise InvalidArgument(
                f"checksum must be '<algorithm>:<hex digest>' or a list of them, got {checksum!r}"
            )
        for item in [checksum] if isinstance(checksum, str) else checksum:
            algorithm, sep, value = str(item).partition(":")
            if not sep:
                raise InvalidArgument(
                    f"checksum {item!r} must look like '<algorithm>:<hex digest>', e.g. 'md5:...'"
                )
            specs.append((algorithm.strip().lower().replace("-", "_"), value))
    expected: dict[str, str] = {}
    for algorithm, value in specs:
        digest = _validate(algorithm, value)
        if expected.get(algorithm, digest) != digest:
            raise InvalidArgument(f"two different {algorithm} digests were given")
        expected[algorithm] = digest
    return expected


def _validate(algorithm: str, value: object) -> str:
    import hashlib  # not at import (its OpenSSL load costs ~2 ms)

    if algorithm in _UNSUPPORTED or algorithm not in hashlib.algorithms_available:
        raise InvalidArgument(
            f"unknown checksum algorithm {algorithm!r}; use one of hashlib's, e.g. sha256, md5"
        )
    length = hashlib.new(algorithm).digest_size * 2
    if not isinstance(value, str) or len(value.strip()) != length or not _HEX.match(value.strip()):
        raise InvalidArgument(f"{algorithm} must be {length} hex digits, got {value!r}")
    return value.strip().lower()


def check_size(expected: int | None, actual: int, *, url: str, what: str = "size") -> None:
    """Raise :class:`SizeMismatch` unless ``actual`` equals ``expected`` (when known)."""
    if expected is not None and actual != expected:
        raise SizeMismatch(url=url, expected=expected, actual=actual, what=what)


def check_digests(
    expected: Mapping[str, str],
    actual: Mapping[str, str],
    *,
    url: str,
    origin: str | None = None,
) -> None:
    """Raise :class:`ChecksumMismatch` for the first expected digest that differs."""
    for algorithm, digest in expected.items():
        if actual[algorithm] != digest:
            raise ChecksumMismatch(
                url=url,
                algorithm=algorithm,
                expected=digest,
                actual=actual[algorithm],
                origin=origin,
            )


@dataclass(frozen=True)
class _Lent:
    """A buffer the submitter reuses once ``done`` is called."""

    data: Any
    done: Callable[[], None]


class _Abandoned(Exception):
    """Internal: stop re-hashing a prefix nobody is waiting for."""


class InlineHasher:
    """Hashes on the caller's thread: for small files, where a thread costs more than it saves."""

    def __init__(self, digests: Digests) -> None:
        self._digests = digests

    def submit(self, data: Any, done: Callable[[], None] | None = None) -> None:
        """Hash ``data``; then call ``done`` (the buffer may be reused from then on)."""
        try:
            self._digests.update(data)
        finally:
            if done is not None:
                done()

    def alive(self) -> bool:
        """Always: the caller's thread does the hashing."""
        return True

    def submit_file(self, path: FileRef, length: int) -> None:
        read = hash_file(path, self._digests.update, limit=length)
        if read != length:
            raise OSError(f"{_name(path)} is shorter than the {length} bytes to re-hash")

    def finish(self) -> dict[str, str]:
        return self._digests.hexdigests()

    def close(self) -> None:
        """Nothing to stop."""


class BackgroundHasher(InlineHasher):
    """Feeds data to :class:`Digests` on a helper thread, in the order it was submitted.

    ``submit`` blocks when ``depth`` items are queued, which bounds memory and slows the download
    to the speed of the hash rather than letting buffers pile up; never forever: once the thread
    failed (the prefix could not be re-read) or died, ``submit`` raises its error at once
    instead of waiting for room or downloading the rest of a file whose digest is lost. The
    submitter must not modify a buffer after submitting it (pass ``bytes``). ``submit_file``
    queues the re-hash of a partial's existing prefix, so a resumed download starts fetching at
    once while the prefix is re-read.
    """

    _STOP = object()

    def __init__(self, digests: Digests, *, depth: int = 4) -> None:
        super().__init__(digests)
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._abandoned = threading.Event()
        self._thread = Guarded(self._run, name="resumable-hash", on_error=self._died)
        self._thread.start()

    def _died(self, exc: BaseException) -> None:
        if self._error is None:
            self._error = exc

    def _run(self) -> None:
        while (item := self._queue.get()) is not self._STOP:
            if self._error is not None or self._abandoned.is_set():
                continue
            try:
                if isinstance(item, tuple):
                    self._hash_prefix(*item)
                elif isinstance(item, _Lent):
                    self._digests.update(item.data)
                else:
                    self._digests.update(item)
            except _Abandoned:
                pass
            except BaseException as exc:
                self._error = exc
            finally:
                if isinstance(item, _Lent):
                    item.done()  # hashed, skipped or failed: the buffer is the owner's again

    def _hash_prefix(self, path: FileRef, length: int) -> None:
        """Re-hash a prefix, giving up between blocks once abandoned (Ctrl-C stays prompt)."""

        def consume(block: bytes) -> None:
            if self._abandoned.is_set():
                raise _Abandoned
            self._digests.update(block)

        if hash_file(path, consume, limit=length) != length:
            raise OSError(f"{_name(path)} is shorter than the {length} bytes to re-hash")

    def submit(self, data: Any, done: Callable[[], None] | None = None) -> None:
        """Queue ``data``. With ``done``, ``data`` is a lent buffer: ``done`` is called once the
        thread no longer needs it (after hashing it, or skipping it after a failure)."""
        self._put(data if done is None else _Lent(data, done))

    def submit_file(self, path: FileRef, length: int) -> None:
        self._put((path, length))

    def _put(self, item: object) -> None:
        """Queue ``item``; raise the thread's error rather than feed (or wait on) a hash that
        failed: a :class:`LocalError` (the hashing is local work: re-reading the partial)."""
        if self._error is None and put_while(self._queue, item, self._thread.is_alive):
            return
        error = self._error
        why = f"{type(error).__name__}: {error}" if error is not None else "its thread stopped"
        raise LocalError(f"hashing the download failed ({why})") from error

    def alive(self) -> bool:
        """Whether the thread still runs (a lent buffer not given back yet will be)."""
        return self._thread.is_alive()

    def finish(self) -> dict[str, str]:
        """Wait for everything submitted to be hashed and return the hex digests."""
        self._stop()
        if self._error is not None:
            raise self._error
        return self._digests.hexdigests()

    def close(self) -> None:
        """Stop the thread without waiting for pending work (the digest is no longer wanted)."""
        self._abandoned.set()
        self._stop()

    def _stop(self) -> None:
        if put_while(self._queue, self._STOP, self._thread.is_alive):
            self._thread.join()  # alive, hashing what is queued, then it ends


def hash_file(
    path: FileRef,
    consume: Callable[[bytes], object],
    *,
    limit: int | None = None,
) -> int:
    """Read ``path`` (its first ``limit`` bytes) in large blocks, passing each to ``consume``.

    Returns the number of bytes read. Used to re-hash the prefix of a partial on resume (hashlib
    state cannot be saved) and to verify an existing destination before skipping it.

    ``path`` may be an open file descriptor: it is read with ``pread`` from offset 0 and left
    open. A partial is re-hashed through the descriptor being written, never by name, since
    without a working lock another process may rename or replace the file meanwhile.
    """
    done = 0
    if isinstance(path, int):
        while limit is None or done < limit:
            block = os.pread(path, BLOCK if limit is None else min(BLOCK, limit - done), done)
            if not block:
                break
            consume(block)
            done += len(block)
        return done
    with open(path, "rb", buffering=0) as f:
        while limit is None or done < limit:
            want = BLOCK if limit is None else min(BLOCK, limit - done)
            block = f.read(want)
            if not block:
                break
            consume(block)
            done += len(block)
    return done


def _name(path: FileRef) -> str:
    return f"file descriptor {path}" if isinstance(path, int) else os.fspath(path)
