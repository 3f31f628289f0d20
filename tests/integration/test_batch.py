"""Batches: templates with missing shards, reruns, names that escape, cancel, sync, limits."""

from __future__ import annotations

import hashlib
import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from servers import Fault, FaultServer, NginxServer, make_data

import resumable
from resumable import Item, ResumableDownloader, RetryPolicy

KiB = 1 << 10
MiB = 1 << 20


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def d() -> Iterator[ResumableDownloader]:
    policy = RetryPolicy(attempts=2, backoff=0.01, jitter=0, sleep=lambda s: None)
    with ResumableDownloader(workers=4, retry=policy) as downloader:
        yield downloader


def shards(server: FaultServer, count: int, size: int = 64 * KiB) -> dict[str, bytes]:
    data = {f"shard-{i:06d}.tar": make_data(size, seed=i) for i in range(count)}
    for name, payload in data.items():
        server.add(name, payload)
    return data


def gets(server: FaultServer) -> list[object]:
    return [r for r in server.log if r.method == "GET"]


def test_a_template_with_missing_shards_downloads_the_rest(
    fault_server: FaultServer, d: ResumableDownloader, tmp_path: Path
) -> None:
    data = shards(fault_server, 10)
    for missing in ("shard-000003.tar", "shard-000007.tar"):
        fault_server.plan(missing, *[Fault.status(404)] * 3)
    template = fault_server.url + "/shard-{000000..000009}.tar"
    result = d.download_many(template, tmp_path)
    assert len(result.ok) == 8
    assert sorted(item.url.rsplit("/", 1)[-1] for item, _ in result.failed) == [
        "shard-000003.tar",
        "shard-000007.tar",
    ]
    assert all(isinstance(error, resumable.SourceNotFound) for _, error in result.failed)
    assert result.summary == "Done: 8 files downloaded, 2 errors"
    for r in result.ok:
        assert r.path.read_bytes() == data[r.path.name]
    with pytest.raises(resumable.BatchError, match="2 of 10 items failed"):
        result.raise_for_errors()


def test_a_rerun_skips_everything_without_a_request(
    fault_server: FaultServer, d: ResumableDownloader, tmp_path: Path
) -> None:
    shards(fault_server, 6)
    template = fault_server.url + "/shard-{000000..000005}.tar"
    d.download_many(template, tmp_path).raise_for_errors()
    before = len(fault_server.log)
    again = d.download_many(template, tmp_path)
    assert len(fault_server.log) == before  # the ledger answered: no HEAD, no GET
    assert [r.status for r in again.ok] == ["skipped"] * 6
    assert sum(r.bytes_transferred for r in again.ok) == 0
    assert again.summary == "Done: 0 files downloaded, 6 skipped, 0 errors"


def test_a_file_changed_on_disk_is_verified_again_not_trusted(
    fault_server: FaultServer, d: ResumableDownloader, tmp_path: Path
) -> None:
    data = shards(fault_server, 2)
    template = fault_server.url + "/shard-{000000..000001}.tar"
    d.download_many(template, tmp_path).raise_for_errors()
    (tmp_path / "shard-000001.tar").write_bytes(b"tampered")
    again = d.download_many(template, tmp_path)
    statuses = {r.path.name: r.status for r in again.ok}
    assert statuses == {"shard-000000.tar": "skipped", "shard-000001.tar": "downloaded"}
    assert (tmp_path / "shard-000001.tar").read_bytes() == data["shard-000001.tar"]


def test_per_item_checks_fail_only_their_item(
    fault_server: FaultServer, d: ResumableDownloader, tmp_path: Path
) -> None:
    data = shards(fault_server, 3)
    items = [
        Item(fault_server.url_for("shard-000000.tar"), sha256=sha(data["shard-000000.tar"])),
        Item(fault_server.url_for("shard-000001.tar"), sha256="0" * 64),
        Item(fault_server.url_for("shard-000002.tar"), dest="sub/dir/two.tar", size=64 * KiB),
    ]
    result = d.download_many(items, tmp_path)
    assert len(result.ok) == 2
    ((item, error),) = result.failed
    assert item == items[1]
    assert isinstance(error, resumable.ChecksumMismatch)
    assert (tmp_path / "sub/dir/two.tar").read_bytes() == data["shard-000002.tar"]
    assert not (tmp_path / "shard-000001.tar").exists()


def test_names_that_escape_dest_dir_fail_alone_and_write_nothing_outside(
    fault_server: FaultServer, d: ResumableDownloader, tmp_path: Path
) -> None:
    shards(fault_server, 1)
    url = fault_server.url_for("shard-000000.tar")
    dest = tmp_path / "dest"
    outside = tmp_path / "outside"
    outside.mkdir()
    dest.mkdir()
    (dest / "link").symlink_to(outside, target_is_directory=True)
    (dest / "fine").mkdir()
    (dest / "fine" / "file-link.tar").symlink_to(outside / "victim.tar")
    items = [
        (url, "../escape.tar"),
        (url, "/etc/escape.tar"),
        (url, "a/../../escape.tar"),
        Item(url, dest="link/escape.tar"),
        Item(url, dest="link/deeper/escape.tar"),
        (url, ".resumable/ledger.sqlite"),
        (url, "fine/file-link.tar"),  # a file symlink pointing outside
        (url, "fine/ok.tar"),
    ]
    result = d.download_many(items, dest)
    assert [r.path.relative_to(dest).as_posix() for r in result.ok] == ["fine/ok.tar"]
    assert len(result.failed) == 7
    assert all(isinstance(e, resumable.InvalidArgument) for _, e in result.failed)
    assert list(outside.iterdir()) == []
    assert not (tmp_path / "escape.tar").exists()


def test_inputs_are_consumed_lazily(fault_server: FaultServer, tmp_path: Path) -> None:
    shards(fault_server, 1)
    url = fault_server.url_for("shard-000000.tar")
    pulled = itertools.count()

    def endless() -> Iterator[tuple[str, str]]:
        for i in range(100_000):
            next(pulled)
            yield (url, f"copy-{i}.tar")

    with ResumableDownloader(workers=2) as d:
        job = d.start(endless(), tmp_path)
        deadline = time.monotonic() + 10
        while job.status().downloaded < 20 and time.monotonic() < deadline:
            time.sleep(0.01)
        job.cancel()
        result = job.wait(timeout=10)
    taken = next(pulled)
    assert result.cancelled
    assert 20 <= taken < 20 + 200  # only a queue's worth ahead of the workers, not 100k


def test_cancel_is_prompt_and_partials_resume(
    make_nginx,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    nginx: NginxServer = make_nginx(limit_rate="2m")
    data = {f"big-{i}.bin": make_data(8 * MiB, seed=i) for i in range(3)}
    for name, payload in data.items():
        nginx.add(name, payload)
    urls = [nginx.slow_url(name) for name in data]
    with ResumableDownloader(workers=3) as d:
        job = d.start(urls, tmp_path)
        deadline = time.monotonic() + 10
        while sum(f.done for f in job.status().in_flight) < 3 * MiB:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        status = job.status()
        assert status.active == 3
        assert "running" in str(status)
        began = time.monotonic()
        job.cancel()
        result = job.wait(timeout=10)
        assert time.monotonic() - began < 3  # prompt
        assert result.cancelled
        assert all(isinstance(e, resumable.Cancelled) for _, e in result.failed)
        assert all((tmp_path / (name + ".partial")).exists() for name in data)
        again = d.download_many(urls, tmp_path)
    assert sorted(r.status for r in again.ok) == ["resumed"] * 3
    for name, payload in data.items():
        assert (tmp_path / name).read_bytes() == payload


BATCH = """
import sys, resumable
d = resumable.ResumableDownloader(workers=3)
print(d.download_many(sys.argv[1:-1], sys.argv[-1]).summary, flush=True)
"""


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill-9"])
def test_a_batch_process_stopped_then_rerun(
    make_nginx,
    tmp_path: Path,
    sig: signal.Signals,  # type: ignore[no-untyped-def]
) -> None:
    nginx: NginxServer = make_nginx(limit_rate="2m")
    data = {f"part-{i}.bin": make_data(6 * MiB, seed=10 + i) for i in range(4)}
    for name, payload in data.items():
        nginx.add(name, payload)
    urls = [nginx.slow_url(name) for name in data]
    proc = subprocess.Popen(
        [sys.executable, "-c", BATCH, *urls, str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 15
    while sum(p.stat().st_size for p in tmp_path.glob("*.partial")) < 4 * MiB:
        assert proc.poll() is None
        assert time.monotonic() < deadline
        time.sleep(0.02)
    began = time.monotonic()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=15)
    if sig == signal.SIGINT:
        assert time.monotonic() - began < 5  # Ctrl-C stops promptly
        assert "KeyboardInterrupt" in err
    assert not any((tmp_path / name).exists() for name in data)
    with ResumableDownloader(workers=4) as d:
        result = d.download_many(urls, tmp_path)
    result.raise_for_errors()
    assert "resumed" in {r.status for r in result.ok}
    for name, payload in data.items():
        assert (tmp_path / name).read_bytes() == payload


def test_sync_deletes_only_what_this_library_made_and_the_source_lost(
    fault_server: FaultServer, d: ResumableDownloader, tmp_path: Path
) -> None:
    data = shards(fault_server, 5)
    template = fault_server.url + "/shard-{000000..000004}.tar"
    d.download_many(template, tmp_path, sync=True).raise_for_errors()
    (tmp_path / "notes.txt").write_text("mine")  # never downloaded by resumable
    (tmp_path / "shard-000004.tar").write_bytes(b"edited locally")
    fault_server.remove("shard-000003.tar")  # gone at the source
    fault_server.remove("shard-000004.tar")
    new = make_data(64 * KiB, seed=99)  # same size, new content: a changed remote
    fault_server.replace("shard-000001.tar", new)
    result = d.download_many(template, tmp_path, sync=True)
    assert [p.name for p in result.deleted] == ["shard-000003.tar"]
    assert not (tmp_path / "shard-000003.tar").exists()
    assert (tmp_path / "shard-000004.tar").read_bytes() == b"edited locally"
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert (tmp_path / "shard-000001.tar").read_bytes() == new
    statuses = {r.path.name: r.status for r in result.ok}
    assert statuses["shard-000001.tar"] == "downloaded"
    assert statuses["shard-000000.tar"] == statuses["shard-000002.tar"] == "skipped"
    assert (tmp_path / "shard-000000.tar").read_bytes() == data["shard-000000.tar"]


def test_rate_limit_holds_within_ten_percent(fault_server: FaultServer, tmp_path: Path) -> None:
    rate = 4_000_000
    files = {f"r{i}.bin": make_data(2 * MiB, seed=i) for i in range(3)}
    for name, payload in files.items():
        fault_server.add(name, payload)
    with ResumableDownloader(workers=3, rate_limit=rate) as d:
        bucket = d.engine.buckets[0]
        began = time.monotonic()
        d.download_many([fault_server.url_for(n) for n in files], tmp_path).raise_for_errors()
        elapsed = time.monotonic() - began
    expected = (6 * MiB - bucket.capacity) / rate  # the bucket starts full
    assert expected * 0.9 <= elapsed <= expected * 1.1 + 0.3, (elapsed, expected)


def test_status_counts_bytes_and_errors(
    fault_server: FaultServer, d: ResumableDownloader, tmp_path: Path
) -> None:
    shards(fault_server, 4, size=256 * KiB)
    fault_server.plan("shard-000002.tar", *[Fault.status(404)] * 3)
    job = d.start(fault_server.url + "/shard-{000000..000003}.tar", tmp_path)
    result = job.wait(timeout=20)
    status = job.status()
    assert status.finished
    assert (status.downloaded, status.failed, status.active, status.queued) == (3, 1, 0, 0)
    assert status.bytes_transferred == 3 * 256 * KiB
    assert isinstance(status.errors[0][1], resumable.SourceNotFound)
    assert "finished: 3 done" in str(status)
    assert str(result) == "Done: 3 files downloaded, 1 error"


def test_plan_counts_present_and_missing_bytes(
    fault_server: FaultServer, d: ResumableDownloader, tmp_path: Path
) -> None:
    shards(fault_server, 4, size=100 * KiB)
    template = fault_server.url + "/shard-{000000..000003}.tar"
    d.download_many(fault_server.url + "/shard-{000000..000001}.tar", tmp_path)
    plan = d.plan(template, tmp_path)
    assert (plan.files, plan.present, plan.to_fetch) == (4, 2, 2)
    assert (plan.present_bytes, plan.fetch_bytes) == (200 * KiB, 200 * KiB)
    assert not (tmp_path / "shard-000002.tar").exists()  # a dry run


def test_progress_callbacks_are_serialised_and_a_failing_one_fails_its_item(
    fault_server: FaultServer, d: ResumableDownloader, tmp_path: Path
) -> None:
    shards(fault_server, 6)
    active = []
    peak = []

    def callback(event: resumable.ProgressEvent) -> None:
        active.append(1)
        peak.append(len(active))
        time.sleep(0.001)
        active.pop()
        if event.path.name == "shard-000004.tar":
            raise RuntimeError("callback bug")

    result = d.download_many(
        fault_server.url + "/shard-{000000..000005}.tar", tmp_path, progress=callback
    )
    assert max(peak) == 1
    ((_item, error),) = result.failed
    assert isinstance(error, RuntimeError)
    assert len(result.ok) == 5


def test_bad_batch_arguments(d: ResumableDownloader, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(resumable.InvalidArgument):
        d.download_many(["https://h/f"], tmp_path / "file")
    result = d.download_many([42, "nosuch://h/f", "https://h/"], tmp_path)  # type: ignore[list-item]
    assert len(result.failed) == 3
    assert all(isinstance(e, resumable.InvalidArgument) for _, e in result.failed)
    with pytest.raises(resumable.InvalidArgument, match=r"concurrent\.futures\.Executor"):
        d.download_many([], tmp_path, executor=object())  # type: ignore[arg-type]
    assert os.listdir(tmp_path) == ["file", ".resumable"] or set(os.listdir(tmp_path)) == {
        "file",
        ".resumable",
    }


def test_an_sa1b_links_file_and_an_object_list_feed_download_many(
    fault_server: FaultServer, d: ResumableDownloader, tmp_path: Path
) -> None:
    data = shards(fault_server, 3)
    links = tmp_path / "segment_anything_links.txt"
    links.write_text(
        "file_name\tcdn_link\n"
        + "".join(f"{name}\t{fault_server.url_for(name)}\n" for name in sorted(data)[:2])
    )
    first = d.download_many(resumable.read_links(links), tmp_path / "sa1b")
    first.raise_for_errors()
    assert sorted(p.name for p in (tmp_path / "sa1b").glob("shard-*")) == sorted(data)[:2]
    listed = d.download_many(
        resumable.read_object_list(sorted(data), fault_server.url), tmp_path / "objects"
    )
    listed.raise_for_errors()
    for name, payload in data.items():
        assert (tmp_path / "objects" / name).read_bytes() == payload


def test_sync_never_prunes_a_plain_url_list(
    fault_server: FaultServer, d: ResumableDownloader, tmp_path: Path
) -> None:
    shards(fault_server, 2)
    urls = [fault_server.url_for("shard-000000.tar"), fault_server.url_for("shard-000001.tar")]
    d.download_many(urls, tmp_path, sync=True).raise_for_errors()
    fault_server.remove("shard-000001.tar")
    result = d.download_many(urls, tmp_path, sync=True)
    assert result.deleted == []
    assert (tmp_path / "shard-000001.tar").exists()
    assert isinstance(result.failed[0][1], resumable.SourceNotFound)


def test_a_listing_that_fails_half_way_prunes_nothing(tmp_path: Path) -> None:
    from resumable.testing import MemorySource

    class Flaky(MemorySource):
        broken = False

        def list(self, prefix: str):  # type: ignore[no-untyped-def]
            for n, pair in enumerate(super().list(prefix)):
                if self.broken and n == 1:
                    raise resumable.ConnectionFailed("listing cut", url=prefix)
                yield pair

    store = Flaky({f"mem://b/dir/f{i}.bin": bytes([i]) * 1000 for i in range(3)})
    policy = RetryPolicy(attempts=2, backoff=0.01, jitter=0)
    with ResumableDownloader(sources={"mem": store}, retry=policy) as d:
        d.download_many("mem://b/dir/", tmp_path, sync=True).raise_for_errors()
        store.broken = True  # every listing breaks after its first entry, however often retried
        result = d.download_many("mem://b/dir/", tmp_path, sync=True)
    assert result.deleted == []
    assert sorted(p.name for p in tmp_path.glob("f*.bin")) == ["f0.bin", "f1.bin", "f2.bin"]
    [(_, error)] = result.failed
    assert isinstance(error, resumable.RetriesExhausted)
    assert isinstance(error.__cause__, resumable.ConnectionFailed)


def test_a_listing_cut_half_way_is_listed_again_without_duplicates(tmp_path: Path) -> None:
    from resumable.testing import FaultySource, MemorySource

    objects = {f"mem://b/dir/f{i}.bin": bytes([i]) * 1000 for i in range(5)}
    store = FaultySource(MemorySource(objects))
    store.cut_list(3, resumable.ConnectionFailed("listing cut", url="mem://b/dir/"))
    store.cut_list(0, resumable.ServerBusy(url="mem://b/dir/", status=503))
    policy = RetryPolicy(attempts=3, backoff=0.01, jitter=0)
    with ResumableDownloader(sources={"mem": store}, retry=policy) as d:
        result = d.download_many("mem://b/dir/", tmp_path)
    result.raise_for_errors()
    assert store.calls.count("list") == 3  # cut after 3 entries, then a 503, then whole
    assert sorted(r.path.name for r in result.ok) == [f"f{i}.bin" for i in range(5)]
    assert store.calls.count("open") == 5  # every object fetched once: no duplicates


def test_an_s3_prefix_keeps_relative_paths(s3_store: Any, tmp_path: Path) -> None:
    """A bucket prefix (moto's S3 server) lands under dest_dir with its sub-folders kept."""
    names = ["train/a.tar", "train/sub/b.tar", "train/sub/deeper/c.tar", "val/d.tar"]
    data = {name: make_data(100 * KiB + i, seed=i) for i, name in enumerate(names)}
    for name, payload in data.items():
        s3_store.put(f"ds/{name}", payload)
    s3_store.put("other/e.tar", b"not under the prefix")
    options = s3_store.storage_options()
    with ResumableDownloader(workers=4, storage_options=options) as d:
        result = d.download_many(s3_store.url("ds/"), tmp_path)
    result.raise_for_errors()
    got = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.tar"))
    assert got == sorted(names)
    for name, payload in data.items():
        assert (tmp_path / name).read_bytes() == payload
    with ResumableDownloader(workers=4, storage_options=options) as d:  # a rerun fetches nothing
        again = d.download_many(s3_store.url("ds/"), tmp_path)
    assert [r.status for r in again.ok] == ["skipped"] * len(names)


def test_two_items_for_one_destination_fail_the_second(
    fault_server: FaultServer, d: ResumableDownloader, tmp_path: Path
) -> None:
    fault_server.add("a/x.tar", b"a" * 1000)
    fault_server.add("b/x.tar", b"b" * 1000)
    result = d.download_many(fault_server.url + "/{a,b}/x.tar", tmp_path)
    assert len(result.ok) == 1
    ((_item, error),) = result.failed
    assert isinstance(error, resumable.InvalidArgument)
    assert "already used" in str(error)


def test_a_same_size_change_on_disk_is_fetched_again(
    fault_server: FaultServer, d: ResumableDownloader, tmp_path: Path
) -> None:
    data = shards(fault_server, 1)
    url = fault_server.url_for("shard-000000.tar")
    d.download_many([url], tmp_path).raise_for_errors()
    target = tmp_path / "shard-000000.tar"
    target.write_bytes(b"\0" * len(data["shard-000000.tar"]))  # same size, other bytes
    result = d.download_many([url], tmp_path)
    assert [r.status for r in result.ok] == ["downloaded"]
    assert target.read_bytes() == data["shard-000000.tar"]


def test_sync_compares_last_modified_when_a_server_sends_no_etag(
    simple_http: Any, unique_prefix: str, tmp_path: Path
) -> None:
    """``python -m http.server`` sends Last-Modified but no ETag: a sync rerun re-fetches
    only what changed (HEADs for the rest), not every file."""

    def gets_of(name: str) -> int:
        text = simple_http.log_path.read_text()
        return text.count(f'"GET /{unique_prefix}/{name} ')

    for i in range(3):
        simple_http.add(f"{unique_prefix}/s{i}.bin", make_data(50 * KiB, seed=i))
    template = f"{simple_http.url}/{unique_prefix}/s{{0..2}}.bin"
    with ResumableDownloader(workers=2) as d:
        d.download_many(template, tmp_path, sync=True).raise_for_errors()
        assert [gets_of(f"s{i}.bin") for i in range(3)] == [1, 1, 1]
        changed = make_data(50 * KiB, seed=99)
        simple_http.add(f"{unique_prefix}/s1.bin", changed)  # new bytes, new mtime
        again = d.download_many(template, tmp_path, sync=True)
    again.raise_for_errors()
    assert [gets_of(f"s{i}.bin") for i in range(3)] == [1, 2, 1]
    assert (tmp_path / "s1.bin").read_bytes() == changed
    assert sorted(r.status for r in again.ok) == ["downloaded", "skipped", "skipped"]
