"""The fsspec source through the public API, the same scenarios on every backend.

Backends (fixture ``store``): moto S3 (unversioned and versioned buckets), the GCS emulator,
Azurite, local files and fsspec's memory filesystem; each test gets a fresh bucket. Objects are
a few MiB read in 64 KiB blocks, so an interruption lands at a known offset and the whole
module stays fast.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from servers import Store, make_data

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


# -- helpers ---------------------------------------------------------------------------------


def resumable_config(store: Store) -> Any:
    from resumable.sources import SourceConfig

    return SourceConfig(storage_options=store.storage_options())


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
