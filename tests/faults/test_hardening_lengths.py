"""Issue 15, lengths: every known length is a bound enforced before a byte is written, and the
retry budget is refilled only by meaningful progress.

The bounds: the caller's ``size``, the answer's Content-Length and Content-Range, the object's
size (from the answer, a sidecar or a store's stat), a segment's end. A body that runs past one
is never written past it: a server that sends more than it announced is a
:class:`~resumable.ProtocolMismatch` (retried from what is on disk), a body that proves the
object larger than the caller's ``size`` is a :class:`~resumable.SizeMismatch`.

Each test proves its fault happened from the server's request log (the bytes the server really
sent past the bound) and watches the partial's size on disk while the download runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from diskwatch import DiskWatch
from servers import Fault, FaultServer, NginxServer, Record, make_data

import resumable
from resumable import ResumableDownloader, RetryPolicy, Timeouts

KiB = 1 << 10
MiB = 1 << 20
PAST = 64 * KiB  # the server writes in 64 KiB chunks: a byte past a bound means a chunk past it


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def watch() -> Callable[[Path], DiskWatch]:
    return DiskWatch


def downloader(**kwargs: Any) -> ResumableDownloader:
    policy = RetryPolicy(attempts=3, backoff=0.01, jitter=0)
    options: dict[str, Any] = {"retry": policy, "timeouts": Timeouts(connect=5, stall=2.0)}
    return ResumableDownloader(**{**options, **kwargs})


def gets(server: FaultServer, name: str) -> list[Record]:
    return [r for r in server.requests_for(name) if r.method == "GET"]


def leftovers(dest: Path) -> list[str]:
    return sorted(p.name for p in dest.parent.iterdir() if p.name != dest.name)


# -- the findings -----------------------------------------------------------------------------


def test_an_endless_chunked_body_stops_at_the_callers_size(
    fault_server: FaultServer, tmp_path: Path, watch: Callable[[Path], DiskWatch]
) -> None:
    """Finding 4: ``size=1 MiB`` and a chunked body that goes on: ~45 MiB reached the partial."""
    data = make_data(MiB, seed=1)
    url = fault_server.add("f.bin", data)
    fault_server.plan("f.bin", Fault.overrun(48 * MiB, framing="chunked"))
    dest = tmp_path / "f.bin"
    with downloader() as d, watch(dest) as seen, pytest.raises(resumable.SizeMismatch) as caught:
        d.download(url, dest, size=MiB)
    (first,) = gets(fault_server, "f.bin")  # a permanent error: not asked again
    assert first.fault == "overrun"
    assert first.body_bytes_sent >= MiB + PAST  # it really ran on
    assert seen.peak <= MiB, f"{seen.peak} bytes on disk for a {MiB}-byte file"
    assert caught.value.expected == MiB
    assert caught.value.actual > MiB
    assert leftovers(dest) == []
    assert not dest.exists()


def test_a_206_running_past_its_content_range_is_cut_at_the_range(
    fault_server: FaultServer, tmp_path: Path, watch: Callable[[Path], DiskWatch]
) -> None:
    """Finding 4: a 206 whose body ran past its range wrote ~48 MiB before the reset."""
    data = make_data(4 * MiB, seed=2)
    url = fault_server.add("f.bin", data)
    fault_server.plan("f.bin", Fault.cut(after=MiB), Fault.overrun(48 * MiB, framing="close"))
    dest = tmp_path / "f.bin"
    with downloader(block_size=256 * KiB) as d, watch(dest) as seen:
        result = d.download(url, dest)
    assert dest.read_bytes() == data
    assert result.sha256 == sha(data)
    cut, overrun, *rest = gets(fault_server, "f.bin")
    assert cut.fault == "cut"
    assert overrun.fault == "overrun"
    assert overrun.status == 206
    assert overrun.content_range == f"bytes {MiB}-{4 * MiB - 1}/{4 * MiB}"
    assert overrun.body_bytes_sent >= 3 * MiB + PAST  # the range is 3 MiB: it ran on
    assert seen.peak <= 4 * MiB, f"{seen.peak} bytes on disk for a {4 * MiB}-byte file"
    # Retried from what was on disk: the next request starts at the end of the range.
    assert [r.range for r in rest] == [f"bytes={4 * MiB}-"]


@pytest.mark.parametrize("block", [256 * KiB, 4 * MiB], ids=["stream", "direct-first"])
def test_one_byte_then_a_stall_is_given_up_in_bounded_time(
    fault_server: FaultServer, tmp_path: Path, block: int
) -> None:
    """Finding 15: one byte per attempt counted as progress, so such a server was never
    given up on. Progress must be meaningful: the budget runs out like a silent server's."""
    data = make_data(2 * MiB, seed=3)
    url = fault_server.add("f.bin", data)
    fault_server.plan("f.bin", *[Fault.stall(after=1, seconds=30)] * 40)
    dest = tmp_path / "f.bin"
    began = time.monotonic()
    with (
        downloader(timeouts=Timeouts(connect=5, stall=0.5), block_size=block) as d,
        pytest.raises(resumable.RetriesExhausted) as caught,
    ):
        d.download(url, dest)
    elapsed = time.monotonic() - began
    stalls = [r for r in gets(fault_server, "f.bin") if r.fault == "stall"]
    assert 0 < len(stalls) <= 4, f"{len(stalls)} attempts"  # attempts=3
    assert all(r.body_bytes_sent == 1 for r in stalls)  # each attempt did move one byte
    assert isinstance(caught.value.__cause__, resumable.StallTimeout)
    assert isinstance(caught.value.__cause__, TimeoutError)
    assert elapsed < 3 * 0.5 + 8.0, f"took {elapsed:.1f} s"
    assert not dest.exists()


def test_one_byte_then_a_stall_on_every_segment_is_given_up(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    """The same rule in the segmented engine's per-piece budget."""
    data = make_data(3 * MiB, seed=4)
    url = fault_server.add("f.bin", data)
    fault_server.plan("f.bin", None, *[Fault.stall(after=1, seconds=30)] * 40)  # type: ignore[arg-type]
    dest = tmp_path / "f.bin"
    began = time.monotonic()
    with (
        downloader(
            timeouts=Timeouts(connect=5, stall=0.5), block_size=256 * KiB, segment_threshold=MiB
        ) as d,
        pytest.raises(resumable.RetriesExhausted),
    ):
        d.download(url, dest, connections=3)
    elapsed = time.monotonic() - began
    log = gets(fault_server, "f.bin")
    assert any(r.range and not r.range.startswith("bytes=0-") for r in log)  # segmented
    assert 0 < len([r for r in log if r.fault == "stall"]) <= 12
    assert elapsed < 3 * 0.5 * 2 + 8.0, f"took {elapsed:.1f} s"


def test_meaningful_progress_per_attempt_still_refills_the_budget(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    """A link cut again and again, but moving real amounts each time, is never given up on
    (the healthy side of the rule above): 12 cuts with a budget of 2 attempts."""
    data = make_data(2 * MiB, seed=5)
    url = fault_server.add("f.bin", data)
    fault_server.plan("f.bin", *[Fault.cut(after=128 * KiB)] * 12)
    dest = tmp_path / "f.bin"
    policy = RetryPolicy(attempts=2, backoff=0.01, jitter=0)
    with downloader(retry=policy, block_size=256 * KiB) as d:
        d.download(url, dest)
    assert dest.read_bytes() == data
    assert len([r for r in gets(fault_server, "f.bin") if r.fault == "cut"]) == 12


# -- more of the family -----------------------------------------------------------------------


@pytest.mark.parametrize("framing", ["chunked", "close"])
def test_a_body_past_the_callers_size_on_the_stream_path(
    fault_server: FaultServer,
    tmp_path: Path,
    watch: Callable[[Path], DiskWatch],
    framing: str,
) -> None:
    """A file larger than one block (the ``.partial`` stream, not the direct path), a body
    without a length that goes on past ``size=``: SizeMismatch, never a byte past it."""
    data = make_data(3 * MiB, seed=6)
    url = fault_server.add("f.bin", data)
    fault_server.plan("f.bin", Fault.overrun(None, framing=framing))  # type: ignore[arg-type]
    dest = tmp_path / "f.bin"
    with (
        downloader(block_size=256 * KiB) as d,
        watch(dest) as seen,
        pytest.raises(resumable.SizeMismatch),
    ):
        d.download(url, dest, size=3 * MiB)
    (first,) = gets(fault_server, "f.bin")
    assert first.fault == "overrun"
    assert first.body_bytes_sent >= 3 * MiB + PAST
    assert seen.peak <= 3 * MiB
    assert not dest.exists()


def test_a_chunked_body_of_exactly_the_callers_size_is_accepted(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    """The bound is not off by one: a chunked body that ends at ``size`` is the file."""
    data = make_data(3 * MiB, seed=7)
    url = fault_server.add("f.bin", data)
    fault_server.plan("f.bin", Fault.overrun(0, framing="chunked"))
    dest = tmp_path / "f.bin"
    with downloader(block_size=256 * KiB) as d:
        d.download(url, dest, size=3 * MiB)
    assert dest.read_bytes() == data
    assert [r.fault for r in gets(fault_server, "f.bin")] == ["overrun"]


def test_a_content_length_that_contradicts_the_content_range(
    fault_server: FaultServer, tmp_path: Path, watch: Callable[[Path], DiskWatch]
) -> None:
    """A 206 whose Content-Length counts 16 MiB more than its Content-Range: the client reads
    by Content-Length, so only the Content-Range bounds it."""
    data = make_data(2 * MiB, seed=8)
    url = fault_server.add("f.bin", data)
    fault_server.plan(
        "f.bin", Fault.cut(after=512 * KiB), Fault.overrun(16 * MiB, framing="length")
    )
    dest = tmp_path / "f.bin"
    with downloader(block_size=256 * KiB) as d, watch(dest) as seen:
        d.download(url, dest)
    assert dest.read_bytes() == data
    overrun = next(r for r in gets(fault_server, "f.bin") if r.fault == "overrun")
    assert overrun.status == 206
    assert overrun.body_bytes_sent >= 1536 * KiB + PAST  # past its 1.5 MiB range
    assert seen.peak <= 2 * MiB


def test_segments_whose_bodies_run_past_their_ranges(
    fault_server: FaultServer, tmp_path: Path, watch: Callable[[Path], DiskWatch]
) -> None:
    """Segmented: every range answer runs 8 MiB past the range it announces (chunked). No
    piece writes past its end; the file is exact."""
    data = make_data(4 * MiB, seed=9)
    url = fault_server.add("f.bin", data)
    fault_server.plan("f.bin", None, *[Fault.overrun(8 * MiB, framing="chunked")] * 6)  # type: ignore[arg-type]
    dest = tmp_path / "f.bin"
    with (
        downloader(block_size=256 * KiB, segment_threshold=MiB) as d,
        watch(dest) as seen,
    ):
        result = d.download(url, dest, connections=3)
    assert dest.read_bytes() == data
    assert result.sha256 == sha(data)
    overruns = [r for r in gets(fault_server, "f.bin") if r.fault == "overrun"]
    assert overruns
    assert all(r.status == 206 for r in overruns)
    assert seen.peak <= 4 * MiB


def test_a_resume_whose_sidecar_size_disagrees_with_the_content_range(
    nginx: NginxServer, unique_prefix: str, tmp_path: Path, watch: Callable[[Path], DiskWatch]
) -> None:
    """nginx: a partial whose sidecar records another size than the object's (same ETag):
    the answer's Content-Range total disagrees, so the partial is not continued (no splice,
    nothing written past either size); the file starts over and is exact."""
    data = make_data(3 * MiB, seed=10)
    name = f"{unique_prefix}/f.bin"
    url = nginx.add(name, data)
    dest = tmp_path / "f.bin"
    with downloader(block_size=256 * KiB) as d:
        d.download(url, dest)
    # Turn the finished file back into a partial of 1 MiB whose sidecar says 2 MiB.
    partial = dest.with_name("f.bin.partial")
    dest.rename(partial)
    os.truncate(partial, MiB)
    sidecar = {
        "format": 1,
        "url": url,
        "identity": resumable.urls.identity(url),
        "validators": {"size": 2 * MiB, "etag": None, "last_modified": None, "version": None},
        "expected": {"size": None},
        "owner": "",
    }
    sidecar_path = dest.with_name("f.bin.partial.json")
    sidecar_path.write_text(json.dumps(sidecar))
    _pin_to_nginx(url, sidecar_path)
    with downloader(block_size=256 * KiB) as d, watch(dest) as seen:
        result = d.download(url, dest)
    assert dest.read_bytes() == data
    assert result.status == "downloaded"  # started over, not "resumed"
    assert seen.peak <= 3 * MiB
    log = nginx.access_log_for(name, min_lines=3)
    resume = log[-2]  # the resume nginx answered with the object's real total
    assert (resume.range, resume.status) == (f"bytes={MiB}-", 206)
    assert resume.content_range == f"bytes {MiB}-{3 * MiB - 1}/{3 * MiB}"
    assert log[-1].range is None
    assert log[-1].body_bytes_sent == 3 * MiB


def _pin_to_nginx(url: str, sidecar_path: Path) -> None:
    """Give the crafted sidecar nginx's real validators (so only the size disagrees)."""
    import urllib.request

    with urllib.request.urlopen(urllib.request.Request(url, method="HEAD")) as answer:
        etag, modified = answer.headers["ETag"], answer.headers["Last-Modified"]
    record = json.loads(sidecar_path.read_text())
    record["validators"].update(etag=etag, last_modified=modified)
    sidecar_path.write_text(json.dumps(record))


def test_s3_object_larger_than_the_callers_size(
    moto_s3: Any, tmp_path: Path, watch: Callable[[Path], DiskWatch]
) -> None:
    """S3 (moto): ``size=`` smaller than the object is refused before a byte is written."""
    from servers import S3Store

    store = S3Store(moto_s3)
    data = make_data(3 * MiB, seed=11)
    url = store.put("big.bin", data)
    dest = tmp_path / "big.bin"
    with (
        downloader(block_size=256 * KiB, storage_options=store.storage_options()) as d,
        watch(dest) as seen,
        pytest.raises(resumable.SizeMismatch) as caught,
    ):
        d.download(url, dest, size=2 * MiB)
    assert caught.value.expected == 2 * MiB
    assert caught.value.actual == 3 * MiB
    assert seen.peak == 0
    assert leftovers(dest) == []


def _interrupted_segmented(server: FaultServer, dest: Path) -> Path:
    """A segmented partial with recorded ranges (a range request got a 404); its path."""
    data = make_data(3 * MiB, seed=12)
    url = server.add("f.bin", data)
    server.plan("f.bin", None, Fault.status(404))  # type: ignore[arg-type]
    with (
        downloader(block_size=256 * KiB, segment_threshold=MiB) as d,
        pytest.raises(resumable.SourceNotFound),
    ):
        d.download(url, dest, connections=3)
    partial = dest.with_name(dest.name + ".partial")
    assert os.path.getsize(partial) == 3 * MiB  # preallocated
    assert json.loads(partial.with_name(dest.name + ".partial.json").read_text())["ranges"]
    return partial


def test_a_segmented_partial_longer_than_its_object_is_not_published_whole(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    """A segmented partial that grew past the object's size (a racing writer without a
    working lock, a damaged disk): the tail past the verified size was published with it."""
    dest = tmp_path / "f.bin"
    partial = _interrupted_segmented(fault_server, dest)
    with partial.open("ab") as f:
        f.write(b"tail" * 1000)
    with downloader(block_size=256 * KiB, segment_threshold=MiB) as d:
        result = d.download(fault_server.url_for("f.bin"), dest, connections=3)
    # A file longer than the reservation is not one a segmented writer left: its sidecar is not
    # trusted and the download starts over (Partial.recorded_ranges); either way, never the tail.
    assert result.status == "downloaded"
    assert dest.read_bytes() == fault_server.content("f.bin")  # not one byte more
    assert result.sha256 == sha(dest.read_bytes())


def test_recorded_ranges_past_the_object_end_are_bounded_by_its_size(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    """A sidecar whose ranges run past the object's size: they are cut to it (the hash
    frontier used to read past the end and fail with a raw RuntimeError)."""
    dest = tmp_path / "f.bin"
    partial = _interrupted_segmented(fault_server, dest)
    sidecar = partial.with_name("f.bin.partial.json")
    record = json.loads(sidecar.read_text())
    record["ranges"] = [*record["ranges"], [3 * MiB, 3 * MiB + 4000]]
    sidecar.write_text(json.dumps(record))
    with partial.open("ab") as f:
        f.write(b"tail" * 1000)
    with downloader(block_size=256 * KiB, segment_threshold=MiB) as d:
        result = d.download(fault_server.url_for("f.bin"), dest, connections=3)
    assert dest.read_bytes() == fault_server.content("f.bin")
    assert result.size == 3 * MiB


def test_a_chunked_body_shorter_than_the_callers_size(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    """The other side of the bound: a chunked body that ends before ``size=``. The retry's
    answer (416, ``bytes */3 MiB``) proves the object's size: a SizeMismatch at once, not a
    retry loop until the budget runs out."""
    data = make_data(3 * MiB, seed=13)
    url = fault_server.add("f.bin", data)
    fault_server.plan("f.bin", Fault.overrun(0, framing="chunked"))
    dest = tmp_path / "f.bin"
    with (
        downloader(block_size=256 * KiB) as d,
        pytest.raises(resumable.SizeMismatch) as caught,
    ):
        d.download(url, dest, size=4 * MiB)
    assert caught.value.expected == 4 * MiB
    assert caught.value.actual == 3 * MiB
    statuses = [r.status for r in gets(fault_server, "f.bin")]
    assert statuses == [200, 416]
    assert not dest.exists()


# -- the budget rule, without sockets ---------------------------------------------------------


def _stalled() -> resumable.StallTimeout:
    return resumable.StallTimeout("no data for 1s", url="http://example.org/f", seconds=1.0)


def test_the_budget_is_not_refilled_by_a_byte_per_attempt() -> None:
    budget = RetryPolicy(attempts=3, jitter=0).budget()
    budget, _ = budget.moved(_stalled(), 1)
    budget, _ = budget.moved(_stalled(), 1)
    with pytest.raises(resumable.RetriesExhausted) as caught:
        budget.moved(_stalled(), 1)
    assert caught.value.attempts == 3
    assert isinstance(caught.value.__cause__, TimeoutError)


def test_small_amounts_add_up_to_meaningful_progress() -> None:
    from resumable.retry import MEANINGFUL_PROGRESS

    budget = RetryPolicy(attempts=3, jitter=0).budget()
    budget, _ = budget.moved(_stalled(), MEANINGFUL_PROGRESS // 2)
    assert budget.failures == 1
    budget, _ = budget.moved(_stalled(), MEANINGFUL_PROGRESS // 2)
    assert (budget.failures, budget.progress) == (0, 0)  # refilled


def test_the_last_bytes_of_a_file_are_meaningful_however_few() -> None:
    budget = RetryPolicy(attempts=1, jitter=0).budget()
    budget, _ = budget.moved(_stalled(), 10, remaining=10)
    assert budget.failures == 0
    with pytest.raises(resumable.RetriesExhausted):
        budget.moved(_stalled(), 5, remaining=10)


def test_bytes_after_a_content_length_never_reach_a_file(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    """A 200 with an honest Content-Length followed by 64 KiB more on the kept-alive
    connection: the client reads by Content-Length, so the file is exact; the excess sits
    where the next answer should start, and the next file on that connection must not take
    it for its answer (or its bytes)."""
    first, second = make_data(MiB, seed=14), make_data(MiB, seed=15)
    url_a = fault_server.add("a.bin", first)
    url_b = fault_server.add("b.bin", second)
    fault_server.plan("a.bin", Fault.overrun(PAST, framing="excess"))
    with downloader(block_size=256 * KiB) as d:
        d.download(url_a, tmp_path / "a.bin")
        d.download(url_b, tmp_path / "b.bin")
    assert (tmp_path / "a.bin").read_bytes() == first
    assert (tmp_path / "b.bin").read_bytes() == second
    (a,) = gets(fault_server, "a.bin")
    assert a.body_bytes_sent == MiB + PAST  # the excess really went out
    (b,) = gets(fault_server, "b.bin")  # asked once: the excess was not read as its answer
    assert b.conn_id != a.conn_id  # the polluted connection was not reused


def test_a_batch_items_size_bounds_its_body(
    fault_server: FaultServer, tmp_path: Path, watch: Callable[[Path], DiskWatch]
) -> None:
    """A batch item's ``size`` (as a listing gives it) bounds an endless chunked body like
    ``size=`` does; the batch reports the item's SizeMismatch and goes on."""
    data = make_data(2 * MiB, seed=16)
    url = fault_server.add("f.bin", data)
    fault_server.plan("f.bin", Fault.overrun(None, framing="chunked"))
    other = fault_server.add("g.bin", data)
    with downloader(block_size=256 * KiB) as d, watch(tmp_path / "f.bin") as seen:
        result = d.download_many(
            [resumable.Item(url, size=2 * MiB), resumable.Item(other, size=2 * MiB)], tmp_path
        )
    assert [type(error) for _, error in result.failed] == [resumable.SizeMismatch]
    assert (tmp_path / "g.bin").read_bytes() == data
    assert not (tmp_path / "f.bin").exists()
    assert seen.peak <= 2 * MiB
    (first,) = gets(fault_server, "f.bin")
    assert first.body_bytes_sent >= 2 * MiB + PAST


class _EndlessBody:
    """A body whose source said ``size`` bytes, and that never ends."""

    def __init__(self, url: str, start: int, size: int) -> None:
        self.start = start
        self.info = resumable.RemoteInfo(url=url, size=size, etag='"v1"', accept_ranges=True)
        self.sent = 0

    def read(self, amount: int) -> bytes:
        self.sent += amount
        return b"x" * amount

    def close(self) -> None:
        pass


class _EndlessSource:
    """A third-party source (``sources=``) whose stat says 1 MiB and whose bodies never end."""

    def __init__(self) -> None:
        self.bodies: list[_EndlessBody] = []

    def stat(self, url: str) -> resumable.RemoteInfo:
        return resumable.RemoteInfo(url=url, size=MiB, etag='"v1"', accept_ranges=True)

    def open(
        self, url: str, start: int = 0, end: int | None = None, expect: Any = None
    ) -> _EndlessBody:
        self.bodies.append(_EndlessBody(url, start, MiB))
        return self.bodies[-1]

    def list(self, prefix: str) -> Any:
        raise NotImplementedError

    def close(self) -> None:
        pass


@pytest.mark.parametrize("block", [256 * KiB, 4 * MiB], ids=["stream", "direct"])
def test_a_sources_stated_size_bounds_a_body_that_never_ends(
    tmp_path: Path, watch: Callable[[Path], DiskWatch], block: int
) -> None:
    """Any source, not only HTTP: the size its answer states bounds its body (on the direct
    path too). A source that keeps sending past it makes no progress and is given up on."""
    source = _EndlessSource()
    dest = tmp_path / "f.bin"
    with (
        downloader(block_size=block, sources={"endless": source}) as d,
        watch(dest) as seen,
        pytest.raises(resumable.RetriesExhausted) as caught,
    ):
        d.download("endless://host/f.bin", dest)
    assert isinstance(caught.value.__cause__, resumable.ProtocolMismatch)
    assert "ran past" in str(caught.value)
    assert seen.peak <= MiB
    assert len(source.bodies) <= 4


@pytest.mark.parametrize("framing", ["chunked", "close"])
def test_over_https_a_206_past_its_range_and_a_chunked_body_past_size(
    tmp_path: Path, watch: Callable[[Path], DiskWatch], framing: str
) -> None:
    """HTTPS goes through urllib3 rather than ``http.client`` directly: the same bounds."""
    from servers import make_tls

    files = make_tls(tmp_path)
    data = make_data(2 * MiB, seed=17)
    with FaultServer(ssl_context=files.server_context) as server:
        url = server.add("f.bin", data)
        server.plan(
            "f.bin",
            Fault.cut(after=512 * KiB),
            Fault.overrun(8 * MiB, framing=framing),  # type: ignore[arg-type]
        )
        dest = tmp_path / "f.bin"
        with (
            downloader(block_size=256 * KiB, verify=str(files.ca_bundle)) as d,
            watch(dest) as seen,
        ):
            d.download(url, dest)  # cut, then a 206 past its range: retried from disk
            assert dest.read_bytes() == data
            dest.unlink()
            server.plan("f.bin", Fault.overrun(None, framing=framing))  # type: ignore[arg-type]
            with pytest.raises(resumable.SizeMismatch):
                d.download(url, dest, size=2 * MiB)  # an endless body past size=
        log = gets(server, "f.bin")
    assert seen.peak <= 2 * MiB
    overruns = [r for r in log if r.fault == "overrun"]
    assert [r.status for r in overruns] == [206, 200]
    assert overruns[0].body_bytes_sent >= 1536 * KiB + PAST
    assert overruns[1].body_bytes_sent >= 2 * MiB + PAST
