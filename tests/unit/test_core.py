"""The download algorithm on the in-memory doubles of resumable.testing: no sockets."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

import resumable
from resumable import ConnectionFailed, ProgressEvent, ResumableDownloader, RetryPolicy, ServerBusy
from resumable.testing import FaultySource, MemorySource

MiB = 1 << 20
URL = "mem://bucket/shard-000000.tar"
DATA = bytes(range(256)) * (12 * MiB // 256)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def store() -> MemorySource:
    return MemorySource({URL: DATA})


@pytest.fixture
def faulty(store: MemorySource) -> FaultySource:
    return FaultySource(store)


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def d(faulty: FaultySource, sleeps: list[float]) -> Iterator[ResumableDownloader]:
    policy = RetryPolicy(attempts=3, backoff=0.5, jitter=0, sleep=sleeps.append)
    with ResumableDownloader(retry=policy, block_size=MiB, sources={"mem": faulty}) as downloader:
        yield downloader


class Stop(Exception):
    """Raised from a progress callback to interrupt a download."""


def interrupt_at(limit: int):  # type: ignore[no-untyped-def]
    def callback(event: ProgressEvent) -> None:
        if event.done >= limit:
            raise Stop

    return callback


def test_cut_bodies_resume_exactly_where_they_stopped(
    d: ResumableDownloader, faulty: FaultySource, tmp_path: Path
) -> None:
    faulty.cut_body(3 * MiB + 5, 2 * MiB)
    r = d.download(URL, tmp_path / "f", sha256=sha(DATA))
    assert faulty.calls == ["open", "open", "open"]
    assert (r.status, r.bytes_transferred) == ("downloaded", len(DATA))
    assert (tmp_path / "f").read_bytes() == DATA


def test_stat_for_an_existing_file_is_retried_too(
    d: ResumableDownloader, faulty: FaultySource, sleeps: list[float], tmp_path: Path
) -> None:
    (tmp_path / "f").write_bytes(DATA)
    faulty.fail_stat(ServerBusy(status=503, retry_after=4), ConnectionFailed("reset"))
    r = d.download(URL, tmp_path / "f")
    assert faulty.calls == ["stat", "stat", "stat"]
    assert sleeps == [4, 1.0]
    assert (r.status, r.bytes_transferred) == ("skipped", 0)


def test_failures_without_progress_exhaust_the_budget(
    d: ResumableDownloader, faulty: FaultySource, sleeps: list[float], tmp_path: Path
) -> None:
    faulty.fail_open(*[ConnectionFailed("refused")] * 5)
    with pytest.raises(resumable.RetriesExhausted) as info:
        d.download(URL, tmp_path / "f")
    assert info.value.attempts == 3
    assert faulty.calls == ["open"] * 3
    assert sleeps == [0.5, 1.0]
    assert list(tmp_path.iterdir()) == []


def test_a_callback_exception_propagates_unchanged_and_keeps_the_partial(
    d: ResumableDownloader, tmp_path: Path
) -> None:
    with pytest.raises(Stop):
        d.download(URL, tmp_path / "f", progress=interrupt_at(5 * MiB))
    assert (tmp_path / "f.partial").stat().st_size == 5 * MiB
    assert (tmp_path / "f.partial.json").exists()
    r = d.download(URL, tmp_path / "f", sha256=sha(DATA))
    assert (r.status, r.bytes_transferred) == ("resumed", len(DATA) - 5 * MiB)


def test_a_new_version_between_calls_restarts_the_file(
    d: ResumableDownloader, store: MemorySource, tmp_path: Path
) -> None:
    with pytest.raises(Stop):
        d.download(URL, tmp_path / "f", progress=interrupt_at(4 * MiB))
    new = DATA[::-1]
    store.put(URL, new)
    r = d.download(URL, tmp_path / "f")
    assert (r.status, r.bytes_transferred) == ("downloaded", len(new))
    assert (tmp_path / "f").read_bytes() == new


def test_a_corrupted_partial_is_caught_and_refetched_whole_once(
    d: ResumableDownloader, faulty: FaultySource, tmp_path: Path
) -> None:
    with pytest.raises(Stop):
        d.download(URL, tmp_path / "f", progress=interrupt_at(6 * MiB))
    partial = tmp_path / "f.partial"
    damaged = bytearray(partial.read_bytes())
    damaged[12345] ^= 0xFF  # bit rot, or another tool wrote here
    partial.write_bytes(bytes(damaged))
    faulty.calls.clear()
    r = d.download(URL, tmp_path / "f", sha256=sha(DATA))
    assert faulty.calls == ["open", "open"]  # the resume, then one whole refetch
    assert r.status == "downloaded"
    assert r.bytes_transferred == (len(DATA) - 6 * MiB) + len(DATA)
    assert (tmp_path / "f").read_bytes() == DATA


def test_a_mismatch_on_a_whole_fetch_is_final_and_keeps_nothing(
    d: ResumableDownloader, faulty: FaultySource, tmp_path: Path
) -> None:
    with pytest.raises(resumable.ChecksumMismatch) as info:
        d.download(URL, tmp_path / "f", sha256="1" * 64)
    assert faulty.calls == ["open"]
    assert info.value.actual == sha(DATA)
    assert "nothing was kept" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_a_partial_for_another_url_is_not_resumed(
    d: ResumableDownloader, store: MemorySource, tmp_path: Path
) -> None:
    other = "mem://bucket/other.tar"
    store.put(other, DATA[: 8 * MiB])
    with pytest.raises(Stop):
        d.download(other, tmp_path / "f", progress=interrupt_at(3 * MiB))
    r = d.download(URL, tmp_path / "f")
    assert (r.status, r.bytes_transferred) == ("downloaded", len(DATA))
    assert (tmp_path / "f").read_bytes() == DATA


def test_a_server_ignoring_ranges_restarts_cleanly(tmp_path: Path) -> None:
    store = MemorySource({URL: DATA}, ranges=False)
    faulty = FaultySource(store).cut_body(5 * MiB)
    with ResumableDownloader(sources={"mem": faulty}, retry=RetryPolicy(sleep=lambda s: None)) as d:
        r = d.download(URL, tmp_path / "f", sha256=sha(DATA))
    assert r.bytes_transferred == 5 * MiB + len(DATA)
    assert (tmp_path / "f").read_bytes() == DATA


def test_retrying_events_carry_the_error_and_the_wait(
    d: ResumableDownloader, faulty: FaultySource, tmp_path: Path
) -> None:
    faulty.fail_open(ServerBusy(status=429, retry_after=2))
    events: list[ProgressEvent] = []
    d.download(URL, tmp_path / "f", progress=events.append)
    retrying = [e for e in events if e.kind is resumable.EventKind.RETRYING]
    assert len(retrying) == 1
    assert isinstance(retrying[0].error, ServerBusy)
    assert retrying[0].wait == 2


def test_memory_source_lists_by_prefix(store: MemorySource) -> None:
    store.put("mem://bucket/dir/a", b"a")
    store.put("mem://bucket/dir/b", b"bb")
    assert [(u, i.size) for u, i in store.list("mem://bucket/dir/")] == [
        ("mem://bucket/dir/a", 1),
        ("mem://bucket/dir/b", 2),
    ]


def test_a_provider_checksum_is_verified_when_no_sha256_is_given(tmp_path: Path) -> None:
    class LyingStore(MemorySource):
        """Reports an md5 that does not match the bytes it serves (a corrupted object)."""

        def _get(self, url: str):  # type: ignore[no-untyped-def]
            data, info = super()._get(url)
            return data, dataclasses.replace(info, checksums={"md5": "0" * 32})

    store = LyingStore({URL: DATA})
    with ResumableDownloader(sources={"mem": store}) as d:
        with pytest.raises(resumable.ChecksumMismatch) as info:
            d.download(URL, tmp_path / "f")
        assert info.value.algorithm == "md5"
        assert "the checksum the source reported" in str(info.value)
        assert list(tmp_path.iterdir()) == []
        # A caller's own SHA-256 takes precedence: the provider's md5 is not consulted.
        r = d.download(URL, tmp_path / "f", sha256=sha(DATA))
        assert set(r.digests) == {"sha256"}


def test_a_correct_provider_checksum_is_computed_and_survives_a_resume(
    d: ResumableDownloader, tmp_path: Path
) -> None:
    with pytest.raises(Stop):
        d.download(URL, tmp_path / "f", progress=interrupt_at(5 * MiB))
    r = d.download(URL, tmp_path / "f")
    assert r.status == "resumed"
    assert r.digests["md5"] == hashlib.md5(DATA).hexdigest()


def test_crc32_digests_match_zlib() -> None:
    import zlib

    from resumable.verify import Digests

    digests = Digests(["crc32"])
    digests.update(b"hello ")
    digests.update(b"world")
    assert digests.hexdigests()["crc32"] == f"{zlib.crc32(b'hello world'):08x}"
