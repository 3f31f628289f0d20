"""``Job.as_completed`` and ``with d.start(...) as job`` against a real nginx on loopback.

nginx serves ``/`` at full speed and ``/slow/`` throttled per connection (``limit_rate``), so one
batch holds a file that takes seconds next to files that take milliseconds; its access log says
what was really sent (a resume is a ``Range`` GET answered 206 from the partial's offset).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
from servers import NginxServer, make_data

from resumable import DownloadResult, InvalidArgument, ResumableDownloader, SourceNotFound

KiB = 1 << 10
MiB = 1 << 20


def names_into(results: Iterable[DownloadResult], got: list[str]) -> None:
    """Consume ``results``, noting each file's name (up to an error the loop raises)."""
    for result in results:
        got.append(result.path.name)


def serve(server: NginxServer, sizes: dict[str, int]) -> dict[str, bytes]:
    data = {name: make_data(size, seed=i) for i, (name, size) in enumerate(sizes.items())}
    for name, payload in data.items():
        server.add(name, payload)
    return data


@pytest.fixture
def throttled(make_nginx: Callable[..., NginxServer]) -> NginxServer:
    """A private nginx whose ``/slow/`` sends 1 MB/s per connection."""
    return make_nginx(limit_rate="1m")


def test_a_fast_file_is_yielded_long_before_the_slowest_and_complete_when_yielded(
    throttled: NginxServer, tmp_path: Path
) -> None:
    data = serve(throttled, {"slow.bin": 3 * MiB, "fast1.bin": 200 * KiB, "fast2.bin": 300 * KiB})
    items = [throttled.slow_url("slow.bin"), throttled.url_for("fast1.bin")]
    items.append(throttled.url_for("fast2.bin"))
    seen: dict[str, float] = {}
    with ResumableDownloader(workers=3) as d:
        started = time.monotonic()
        with d.start(items, tmp_path) as job:
            for result in job.as_completed():
                seen[result.path.name] = time.monotonic() - started
                # In place, complete and verified at the moment it is yielded.
                assert result.path.read_bytes() == data[result.path.name]
                assert result.sha256 == hashlib.sha256(data[result.path.name]).hexdigest()
    assert list(seen)[-1] == "slow.bin"
    assert set(seen) == set(data)
    # 3 MiB at 1 MB/s is ~3 s; the fast files take milliseconds.
    assert seen["slow.bin"] > 2.0
    assert max(seen["fast1.bin"], seen["fast2.bin"]) < 1.0 < seen["slow.bin"] - 1.0
    assert job.done()
    assert not job.result().failed


def test_items_already_complete_are_yielded_and_after_the_end_everything_is(
    throttled: NginxServer, tmp_path: Path
) -> None:
    data = serve(throttled, {f"f{i}.bin": 50 * KiB + i for i in range(4)})
    template = throttled.url + "/f{0..3}.bin"
    with ResumableDownloader(workers=2) as d:
        d.download_many(template, tmp_path).raise_for_errors()
        before = len(throttled.access_log_lines())
        job = d.start(template, tmp_path)
        job.wait(timeout=30)
        # Called after the job ended: every result, and again on a second call.
        first = [(r.path.name, r.status) for r in job.as_completed()]
        second = [(r.path.name, r.status) for r in job.as_completed(errors="skip")]
    assert sorted(first) == sorted((name, "skipped") for name in data)
    assert sorted(second) == sorted(first)
    assert len(throttled.access_log_lines()) == before  # skipped by the ledger: no request


def test_errors_raise_raises_after_what_completed_before_and_the_block_cancels(
    throttled: NginxServer, tmp_path: Path
) -> None:
    serve(throttled, {"a.bin": 100 * KiB, "later.bin": 4 * MiB})
    items = [throttled.url_for("a.bin"), throttled.url_for("missing.bin")]
    items.append(throttled.slow_url("later.bin"))
    got: list[str] = []
    with ResumableDownloader(workers=1) as d:  # one worker: the items settle in input order
        with pytest.raises(SourceNotFound), d.start(items, tmp_path) as job:
            names_into(job.as_completed(errors="raise"), got)
        left = time.monotonic()
    assert got == ["a.bin"]
    assert job.done()
    assert job.result().cancelled
    assert time.monotonic() - left < 1.0
    # The slow file had started (one worker, after the 404): its partial is kept.
    assert not (tmp_path / "later.bin").exists()


def test_errors_skip_yields_every_success_and_leaves_failures_in_the_result(
    throttled: NginxServer, tmp_path: Path
) -> None:
    serve(throttled, {"a.bin": 10 * KiB, "b.bin": 20 * KiB})
    items = [throttled.url_for(n) for n in ("a.bin", "missing.bin", "b.bin", "gone.bin")]
    with ResumableDownloader(workers=2) as d, d.start(items, tmp_path) as job:
        got = sorted(r.path.name for r in job.as_completed(errors="skip"))
    assert got == ["a.bin", "b.bin"]
    failed = job.result().failed
    assert sorted(type(e).__name__ for _, e in failed) == ["SourceNotFound"] * 2
    assert not job.result().cancelled


def test_leaving_the_block_early_cancels_promptly_and_the_partial_resumes(
    throttled: NginxServer, tmp_path: Path
) -> None:
    data = serve(throttled, {"quick.bin": 10 * KiB, "big.bin": 3 * MiB})
    items = [throttled.url_for("quick.bin"), throttled.slow_url("big.bin")]
    with ResumableDownloader(workers=2) as d:
        with d.start(items, tmp_path) as job:
            for result in job.as_completed():
                assert result.path.name == "quick.bin"
                time.sleep(1.0)  # big.bin is under way at 1 MB/s
                left = time.monotonic()
                break
        stopped_after = time.monotonic() - left
        assert stopped_after < 1.0
        assert job.done()
        assert job.result().cancelled
        partial = tmp_path / "big.bin.partial"
        kept = partial.stat().st_size
        assert 0 < kept < len(data["big.bin"])
        assert not (tmp_path / "big.bin").exists()
        # A rerun resumes from the partial: a Range GET answered 206 for the rest only.
        again = d.download_many([throttled.slow_url("big.bin")], tmp_path)
    assert [r.status for r in again.ok] == ["resumed"]
    assert (tmp_path / "big.bin").read_bytes() == data["big.bin"]
    last = throttled.access_log_for("big.bin")[-1]
    assert last.status == 206
    assert last.range is not None
    assert last.body_bytes_sent <= len(data["big.bin"]) - kept


def test_an_exception_in_the_block_cancels_and_is_not_swallowed(
    throttled: NginxServer, tmp_path: Path
) -> None:
    serve(throttled, {"big.bin": 8 * MiB})
    marks: list[float] = []

    def body(d: ResumableDownloader) -> None:
        with d.start([throttled.slow_url("big.bin")], tmp_path):
            time.sleep(0.5)
            marks.append(time.monotonic())
            raise KeyboardInterrupt  # as Ctrl-C in the loop's body would

    with ResumableDownloader() as d, pytest.raises(KeyboardInterrupt):
        body(d)
    left = marks[0]
    assert time.monotonic() - left < 1.0
    assert (tmp_path / "big.bin.partial").stat().st_size > 0


def test_a_normal_end_of_the_block_waits_for_the_job(
    throttled: NginxServer, tmp_path: Path
) -> None:
    serve(throttled, {"x.bin": 1 * MiB})
    with ResumableDownloader() as d, d.start([throttled.slow_url("x.bin")], tmp_path) as job:
        pass  # nothing consumed: leaving normally waits, as a ThreadPoolExecutor does
    assert job.done()
    assert not job.result().cancelled
    assert [r.status for r in job.result().ok] == ["downloaded"]


def test_an_invalid_errors_value_is_an_invalid_argument(tmp_path: Path) -> None:
    with ResumableDownloader() as d, d.start([], tmp_path) as job:
        with pytest.raises(InvalidArgument, match="errors"):
            job.as_completed(errors="ignore")
        assert list(job.as_completed()) == []
