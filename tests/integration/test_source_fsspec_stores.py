"""The fsspec source through the public API, the same scenarios on every backend.

Backends (fixture ``store``): moto S3 (unversioned and versioned buckets), the GCS emulator,
Azurite, local files and fsspec's memory filesystem; each test gets a fresh bucket. Objects are
a few MiB read in 64 KiB blocks, so an interruption lands at a known offset and the whole
module stays fast.

The object stores' bodies are read on the event loop straight into the caller's buffer
(``readinto``); faults in those streams are made at the socket, by :class:`FaultyProxy`
between the client and the emulator: a connection cut mid-body, a body gone silent.
"""

from __future__ import annotations

import contextlib
import hashlib
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from servers import Store, make_data
from servers.ports import HOST

import resumable
from resumable.progress import EventKind, ProgressEvent
from resumable.sources.fsspec import FsspecSource

BLOCK = 64 * 1024
SIZE = 3 * (1 << 20) + 12345  # not a multiple of the block: the last read is short


class Interrupt(Exception):
    """Raised by a progress callback to stop a download (the partial stays resumable)."""


def stop_after(limit: int) -> Any:
    def callback(event: ProgressEvent) -> None:
        if event.kind is EventKind.PROGRESS and event.done >= limit:
            raise Interrupt(event.done)

    return callback


def downloader(store: Store, **kwargs: Any) -> resumable.ResumableDownloader:
    return resumable.ResumableDownloader(
        storage_options=store.storage_options(),
        block_size=BLOCK,
        retry=resumable.RetryPolicy(attempts=3, backoff=0.01, backoff_max=0.05),
        **kwargs,
    )


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_download_verified(store: Store, tmp_path: Path) -> None:
    data = make_data(SIZE, seed=1)
    url = store.put("data/shard-000000.tar", data)
    with downloader(store) as d:
        result = d.download(url, tmp_path / "shard.tar", sha256=sha256(data))
    assert result.status == "downloaded"
    assert result.sha256 == sha256(data)
    assert result.bytes_transferred == SIZE
    assert (tmp_path / "shard.tar").read_bytes() == data
    assert not list(tmp_path.glob("*.partial*"))


def test_empty_object(store: Store, tmp_path: Path) -> None:
    url = store.put("empty.bin", b"")
    with downloader(store) as d:
        result = d.download(url, tmp_path / "empty.bin", sha256=sha256(b""))
    assert result.size == 0
    assert (tmp_path / "empty.bin").read_bytes() == b""


def test_interrupted_download_resumes_with_the_rest(store: Store, tmp_path: Path) -> None:
    data = make_data(SIZE, seed=2)
    url = store.put("shard.tar", data)
    dest = tmp_path / "shard.tar"
    with downloader(store) as d:
        with pytest.raises(Interrupt):
            d.download(url, dest, sha256=sha256(data), progress=stop_after(1 << 20))
        kept = dest.with_name("shard.tar.partial").stat().st_size
        assert 1 << 20 <= kept < SIZE
        assert not dest.exists()
        result = d.download(url, dest, sha256=sha256(data))
    assert result.status == "resumed"
    assert result.bytes_transferred == SIZE - kept
    assert dest.read_bytes() == data


def test_overwrite_between_attempts_restarts_with_the_new_version(
    store: Store, tmp_path: Path
) -> None:
    old, new = make_data(SIZE, seed=3), make_data(SIZE, seed=4)  # same size: only validators tell
    url = store.put("shard.tar", old)
    dest = tmp_path / "shard.tar"
    with downloader(store) as d:
        with pytest.raises(Interrupt):
            d.download(url, dest, progress=stop_after(1 << 20))
        store.put("shard.tar", new)
        result = d.download(url, dest)
    assert dest.read_bytes() == new  # whole, never a splice of old and new
    assert result.sha256 == sha256(new)
    assert result.bytes_transferred == SIZE
    assert result.status == "downloaded"


def test_overwrite_under_the_old_sha256_publishes_nothing(store: Store, tmp_path: Path) -> None:
    old, new = make_data(SIZE, seed=5), make_data(SIZE, seed=6)
    url = store.put("shard.tar", old)
    dest = tmp_path / "shard.tar"
    with downloader(store) as d:
        with pytest.raises(Interrupt):
            d.download(url, dest, sha256=sha256(old), progress=stop_after(1 << 20))
        store.put("shard.tar", new)
        with pytest.raises(resumable.ChecksumMismatch) as caught:
            d.download(url, dest, sha256=sha256(old))
    assert caught.value.algorithm == "sha256"
    assert caught.value.actual == sha256(new)
    assert not dest.exists()
    assert not dest.with_name("shard.tar.partial").exists()


def test_an_overwrite_during_the_download_yields_one_version_whole(
    store: Store, tmp_path: Path
) -> None:
    """Pinned stores finish the version they started; unpinnable ones notice and restart."""
    old, new = make_data(SIZE, seed=12), make_data(SIZE, seed=13)
    url = store.put("shard.tar", old)
    overwritten: list[str] = []

    def overwrite_once(event: ProgressEvent) -> None:
        if event.kind is EventKind.PROGRESS and event.done >= 1 << 20 and not overwritten:
            overwritten.append(store.put("shard.tar", new))

    with downloader(store) as d:
        result = d.download(url, tmp_path / "shard.tar", progress=overwrite_once)
    assert overwritten
    content = (tmp_path / "shard.tar").read_bytes()
    assert content in (old, new)
    assert result.sha256 == sha256(content)


def test_a_provider_checksum_catches_corrupted_bytes(
    checksummed_store: Store, tmp_path: Path, fsspec_source: Any
) -> None:
    """Bytes altered on the way, under the store's real metadata: its checksum catches them."""
    store = checksummed_store
    data = make_data(SIZE, seed=14)
    url = store.put("shard.tar", data)
    corrupting = CorruptingSource(fsspec_source(store.storage_options()))
    with (
        downloader(store, sources={store.scheme: corrupting}) as d,
        pytest.raises(resumable.ChecksumMismatch) as caught,
    ):
        d.download(url, tmp_path / "shard.tar")
    assert caught.value.algorithm in store.checksum_kinds
    assert not (tmp_path / "shard.tar").exists()


class CorruptingSource:
    """Wraps a real source; every body it opens has its first byte flipped."""

    def __init__(self, inner: FsspecSource) -> None:
        self.inner = inner

    def stat(self, url: str) -> Any:
        return self.inner.stat(url)

    def open(self, url: str, start: int = 0, end: int | None = None, expect: Any = None) -> Any:
        return CorruptBody(self.inner.open(url, start, end, expect))

    def list(self, prefix: str) -> Any:
        return self.inner.list(prefix)

    def close(self) -> None:
        self.inner.close()


class CorruptBody:
    def __init__(self, body: Any) -> None:
        self.body, self.start, self.info = body, body.start, body.info
        self.first = True

    def read(self, amount: int) -> bytes:
        data: bytes = self.body.read(amount)
        if data and self.first:
            self.first = False
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        return data

    def close(self) -> None:
        self.body.close()


def test_missing_object_is_source_not_found(store: Store, tmp_path: Path) -> None:
    store.put("present.bin", b"x")
    with downloader(store) as d, pytest.raises(resumable.SourceNotFound) as caught:
        d.download(store.url("absent.bin"), tmp_path / "absent.bin")
    assert isinstance(caught.value, FileNotFoundError)
    assert not (tmp_path / "absent.bin").exists()
    assert not list(tmp_path.glob("absent.bin.partial*"))


def test_stat_reports_size_validators_and_provider_checksums(
    store: Store, fsspec_source: Any
) -> None:
    data = make_data(100_000, seed=7)
    url = store.put("object.bin", data)
    source = fsspec_source(store.storage_options())
    info = source.stat(url)
    assert info.size == len(data)
    assert info.accept_ranges
    assert info.has_validator
    assert set(info.checksums) == store.checksum_kinds
    assert info.checksums == expected_checksums(data, store.checksum_kinds)
    if store.versioned:
        assert info.version
    store.put("object.bin", make_data(100_000, seed=8))
    assert source.stat(url).differs_from(info)


def test_open_pins_a_range_and_restarts_a_changed_object(store: Store, fsspec_source: Any) -> None:
    data = make_data(200_000, seed=9)
    url = store.put("object.bin", data)
    source = fsspec_source(store.storage_options())
    info = source.stat(url)
    with source.open(url, 1000, 5000, expect=info) as body:
        assert body.start == 1000
        assert read_all(body) == data[1000:5000]
    new = make_data(200_000, seed=10)
    store.put("object.bin", new)
    with source.open(url, 1000, 5000, expect=info) as body:
        assert body.start == 0  # another version: sent whole, from byte 0
        assert body.info.differs_from(info)
        assert read_all(body) == new


def test_open_past_the_end_is_empty(store: Store, fsspec_source: Any) -> None:
    url = store.put("object.bin", b"0123456789")
    source = fsspec_source(store.storage_options())
    info = source.stat(url)
    with source.open(url, 10, expect=info) as body:
        assert body.start == 10
        assert body.read(BLOCK) == b""


def test_list_prefix_recursively(store: Store, fsspec_source: Any) -> None:
    names = ["data/a.bin", "data/sub/b.bin", "data/sub/deeper/c.bin"]
    for i, name in enumerate(names):
        store.put(name, make_data(1000 + i, seed=i))
    store.put("elsewhere/d.bin", b"d")
    source = fsspec_source(store.storage_options())
    prefix = store.url("data/")
    listed = dict(source.list(prefix))
    assert sorted(listed) == sorted(store.url(n) for n in names)
    for i, name in enumerate(names):
        info = listed[store.url(name)]
        assert info.size == 1000 + i
        assert info.has_validator


def test_segmented_download_over_ranges(store: Store, tmp_path: Path) -> None:
    data = make_data(SIZE, seed=11)
    url = store.put("big.bin", data)
    with downloader(store, connections=3, segment_threshold=1 << 20) as d:
        result = d.download(url, tmp_path / "big.bin", sha256=sha256(data))
    assert (tmp_path / "big.bin").read_bytes() == data
    assert result.bytes_transferred == SIZE


def test_readinto_fills_the_callers_buffer(store: Store, fsspec_source: Any) -> None:
    """The engine's path: ``readinto`` a reused buffer; the same bytes as ``read``."""
    data = make_data(SIZE, seed=14)
    url = store.put("object.bin", data)
    source = fsspec_source(store.storage_options())
    info = source.stat(url)
    buffer = memoryview(bytearray(1 << 20))
    parts = []
    with source.open(url, 1000, SIZE - 7, expect=info) as body:
        while got := body.readinto(buffer):
            parts.append(bytes(buffer[:got]))
        assert body.readinto(buffer) == 0
    assert b"".join(parts) == data[1000 : SIZE - 7]


# -- faults in a cloud store's stream, at the socket -------------------------------------------


class FaultyProxy:
    """Forwards connections on a loopback port to ``upstream``; the first connection whose
    answers pass ``after`` bytes stops there: cut (closed), or held silent (``hold``) until the
    client gives up. ``on_fault`` runs right after. Later connections pass untouched."""

    def __init__(
        self, upstream: int, after: int, *, hold: bool = False, on_fault: Callable[[], Any] = print
    ) -> None:
        self.upstream, self.after, self.hold, self.on_fault = upstream, after, hold, on_fault
        self.faults = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._listener = socket.create_server((HOST, 0))
        self.port = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._stop.set()
        for sock in [self._listener, *self._sockets]:
            with contextlib.suppress(OSError):
                sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection((HOST, self.upstream))
            self._sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, True), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, answers: bool) -> None:
        moved = 0
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                if answers and moved + len(data) > self.after:
                    with self._lock:
                        fault, self.faults = self.faults == 0, self.faults + 1
                    if fault:
                        dst.sendall(data[: self.after - moved])
                        self.on_fault()
                        if self.hold:
                            self._stop.wait()
                        break
                dst.sendall(data)
                moved += len(data)
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


@contextlib.contextmanager
def through(store: Store, after: int, **kwargs: Any) -> Iterator[dict[str, Any]]:
    """The store's storage options pointed at a :class:`FaultyProxy` in front of it."""
    port = store.server.port  # type: ignore[attr-defined]
    proxy = FaultyProxy(port, after, **kwargs)
    try:
        yield {
            protocol: {
                k: v.replace(f":{port}", f":{proxy.port}") if isinstance(v, str) else v
                for k, v in options.items()
            }
            for protocol, options in store.storage_options().items()
        }
    finally:
        proxy.close()


def proxied(options: dict[str, Any]) -> resumable.ResumableDownloader:
    return resumable.ResumableDownloader(
        storage_options=options,
        retry=resumable.RetryPolicy(attempts=3, backoff=0.01, backoff_max=0.05),
    )


def test_a_cut_mid_stream_hands_over_what_arrived_then_fails(
    checksummed_store: Store, fsspec_source: Any
) -> None:
    store = checksummed_store
    data = make_data(SIZE, seed=15)
    url = store.put("object.bin", data)
    with through(store, after=1 << 20) as options:
        source = fsspec_source(options)
        info = source.stat(url)
        parts: list[bytes] = []
        with (
            source.open(url, 0, expect=info) as body,
            pytest.raises(resumable.ConnectionFailed),
        ):
            drain(body, parts)
    received = b"".join(parts)
    assert 0 < len(received) < 1 << 20
    assert received == data[: len(received)]


def test_a_download_cut_mid_stream_resumes_where_the_cut_was(
    checksummed_store: Store, tmp_path: Path
) -> None:
    store = checksummed_store
    data = make_data(SIZE, seed=16)
    url = store.put("object.bin", data)
    with through(store, after=1 << 20) as options, proxied(options) as d:
        result = d.download(url, tmp_path / "object.bin")
    assert result.sha256 == sha256(data)
    assert result.bytes_transferred == SIZE  # nothing fetched twice


def test_a_cut_then_an_overwrite_restarts_with_the_new_version_whole(
    checksummed_store: Store, tmp_path: Path
) -> None:
    """The resume meets another ETag (generation): never two versions spliced."""
    store = checksummed_store
    old, new = make_data(SIZE, seed=17), make_data(SIZE, seed=18)
    url = store.put("object.bin", old)
    overwrite = lambda: store.put("object.bin", new)  # noqa: E731
    with through(store, after=1 << 20, on_fault=overwrite) as options, proxied(options) as d:
        result = d.download(url, tmp_path / "object.bin")
    assert (tmp_path / "object.bin").read_bytes() == new
    assert result.sha256 == sha256(new)
    assert result.bytes_transferred > SIZE  # the old version's first bytes were thrown away


def test_a_body_gone_silent_is_a_stall_timeout(
    checksummed_store: Store, fsspec_source: Any
) -> None:
    store = checksummed_store
    url = store.put("object.bin", make_data(SIZE, seed=19))
    with through(store, after=1 << 20, hold=True) as options:
        source = FsspecSource(
            resumable_config(store, options, timeouts=resumable.Timeouts(connect=5, stall=0.5))
        )
        try:
            info = source.stat(url)
            with (
                source.open(url, 0, expect=info) as body,
                pytest.raises(resumable.StallTimeout),
            ):
                drain(body, [])
        finally:
            source.close()


# -- helpers ---------------------------------------------------------------------------------


def resumable_config(store: Store, options: Any = None, **kwargs: Any) -> Any:
    from resumable.sources import SourceConfig

    return SourceConfig(storage_options=options or store.storage_options(), **kwargs)


def drain(body: Any, parts: list[bytes]) -> None:
    """``readinto`` a 4 MiB buffer (the engine's block) to the end, into ``parts``."""
    buffer = memoryview(bytearray(4 << 20))
    while got := body.readinto(buffer):
        parts.append(bytes(buffer[:got]))


def read_all(body: Any) -> bytes:
    parts = []
    while chunk := body.read(BLOCK):
        parts.append(chunk)
    return b"".join(parts)


def expected_checksums(data: bytes, kinds: frozenset[str]) -> dict[str, str]:
    import zlib

    values = {"md5": hashlib.md5(data).hexdigest(), "crc32": f"{zlib.crc32(data):08x}"}
    if "crc32c" in kinds:
        import google_crc32c

        values["crc32c"] = f"{google_crc32c.value(data):08x}"
    return {k: v for k, v in values.items() if k in kinds}
