"""``ResumableDownloader.prefetch`` against a real nginx on loopback (and moto for a prefix).

nginx's ``/slow/`` location is throttled per connection (``limit_rate``), so downloads overlap a
slow consumer the way shards overlap training steps; its access log counts the GETs per file
(what a restart refetched, what an oversize item never fetched). The look-ahead is observed
from the progress events (an item's ``started`` event against what the loop has consumed), and
the disk budget by sampling the destination every 20 ms.
"""

from __future__ import annotations

import contextlib
import io
import os
import tarfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from servers import NginxServer, S3Store, make_data

from resumable import (
    Decompress,
    DownloadResult,
    EventKind,
    InvalidArgument,
    Item,
    ProgressEvent,
    ResumableDownloader,
    SourceNotFound,
    Untar,
    read_links,
)

KiB = 1 << 10
MiB = 1 << 20


def serve(server: NginxServer, count: int, size: int, stem: str = "s") -> dict[str, bytes]:
    data = {f"{stem}{i:02d}.bin": make_data(size + i, seed=i) for i in range(count)}
    for name, payload in data.items():
        server.add(name, payload)
    return data


def names_into(results: Iterable[DownloadResult], got: list[str]) -> None:
    """Consume ``results``, noting each file's name (up to an error the loop raises)."""
    for result in results:
        got.append(result.path.name)


def gets(server: NginxServer, name: str) -> int:
    return sum(e.method == "GET" for e in server.access_log_for(name))


@pytest.fixture
def throttled(make_nginx: Callable[..., NginxServer]) -> NginxServer:
    """A private nginx whose ``/slow/`` sends 2 MB/s per connection."""
    return make_nginx(limit_rate="2m")


class Starts:
    """A progress callback recording, for each item's ``started`` event, how many results the
    loop had received by then."""

    def __init__(self, names: list[str]) -> None:
        self.index = {name: i for i, name in enumerate(names)}
        self.received = 0
        self.lead: dict[str, int] = {}  # name -> its index minus the results received then
        self._lock = threading.Lock()

    def __call__(self, event: ProgressEvent) -> None:
        if event.kind is EventKind.STARTED:
            with self._lock:
                self.lead.setdefault(event.path.name, self.index[event.path.name] - self.received)


def test_results_come_in_input_order_and_the_look_ahead_never_passes_ahead(
    throttled: NginxServer, tmp_path: Path
) -> None:
    data = serve(throttled, 12, 100 * KiB)
    names = list(data)
    # Reversed sizes would finish out of order; the slow location makes every item take time.
    starts = Starts(names)
    order = []
    with ResumableDownloader(workers=8) as d:
        for result in d.prefetch(
            [throttled.slow_url(n) for n in names], tmp_path, ahead=3, progress=starts
        ):
            assert result.path.read_bytes() == data[result.path.name]
            order.append(result.path.name)
            with starts._lock:
                starts.received += 1
            time.sleep(0.15)  # "training": slower than a download, so the window fills
    assert order == names
    assert set(starts.lead) == set(names)
    # Item j is admitted once item j - ahead is handed to the loop (held): then items
    # j-2..j wait beyond it. The loop's counter moves just after the hand-over, so j leads the
    # counter by ahead - 1, or by ahead in that instant; never more.
    assert max(starts.lead.values()) <= 3
    assert sorted(starts.lead.values())[-5:] >= [2] * 5  # the window is used, to the full


def test_keep_false_deletes_each_file_when_the_next_is_requested(
    throttled: NginxServer, tmp_path: Path
) -> None:
    data = serve(throttled, 6, 64 * KiB)
    previous: Path | None = None
    with ResumableDownloader() as d:
        for result in d.prefetch(throttled.url + "/s{00..05}.bin", tmp_path, ahead=2, keep=False):
            assert result.path.read_bytes() == data[result.path.name]
            if previous is not None:
                assert not previous.exists()  # deleted when this one was asked for
            previous = result.path
    assert previous is not None
    assert not previous.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".resumable"]


def on_disk(folder: Path) -> int:
    """Bytes of downloaded data under ``folder``: files and partials (not the ledger, nor the
    sidecars of a few hundred bytes)."""
    total = 0
    for entry in os.scandir(folder):
        if entry.name.endswith((".bin", ".bin.partial")):
            with contextlib.suppress(FileNotFoundError):
                total += entry.stat().st_size
    return total


def test_the_disk_budget_is_never_exceeded_sampled_every_20_ms(
    make_nginx: Callable[..., NginxServer], tmp_path: Path
) -> None:
    throttled = make_nginx(limit_rate="1m")
    size = 512 * KiB
    data = serve(throttled, 10, size)
    budget = 3 * size + 100  # three items at once (sizes are size + i, i < 10)
    samples: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.02):
            samples.append(on_disk(tmp_path))

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    got = []
    try:
        with ResumableDownloader(workers=8) as d:
            for result in d.prefetch(
                [throttled.slow_url(n) for n in data],
                tmp_path,
                ahead=8,  # the budget, not the count, is what holds the window back
                keep=False,
                max_bytes=budget,
            ):
                got.append(result.path.name)
                time.sleep(0.1)
    finally:
        stop.set()
        watcher.join()
    assert got == list(data)
    assert len(samples) > 40  # over 1 s of consuming, sampled every 20 ms
    assert max(samples) <= budget
    assert max(samples) > 2 * size  # and the budget was used (two items or more at once)
    # HEADs only: a size is learned before the GET, and each file is fetched once.
    assert all(gets(throttled, name) == 1 for name in data)


def test_a_restarted_loop_yields_complete_files_without_refetching_and_resumes_partials(
    throttled: NginxServer, tmp_path: Path
) -> None:
    data = serve(throttled, 6, 6 * MiB)  # more than loopback's socket buffers hold
    # The first at full speed, the others throttled: they are under way when it is yielded.
    urls = [throttled.url_for("s00.bin")] + [throttled.slow_url(n) for n in list(data)[1:]]
    with ResumableDownloader(workers=6) as d:
        loop = d.prefetch(urls, tmp_path, ahead=5)
        first = next(loop)
        time.sleep(0.2)  # none of the others is complete (6 MiB at 2 MB/s)
        left = time.monotonic()
        loop.close()  # as a `break` or a crash would
        assert time.monotonic() - left < 1.0
        partials = {n for n in data if (tmp_path / f"{n}.partial").exists()}
        assert first.path.name == "s00.bin"
        assert partials
        sent = {n: sum(e.body_bytes_sent for e in throttled.access_log_for(n)) for n in data}
        again = list(d.prefetch(urls, tmp_path, ahead=5))
    assert [r.path.name for r in again] == list(data)
    statuses = {r.path.name: r.status for r in again}
    assert statuses["s00.bin"] == "skipped"
    assert all(statuses[n] == "resumed" for n in partials)
    for name, payload in data.items():
        assert (tmp_path / name).read_bytes() == payload
    assert gets(throttled, "s00.bin") == 1  # complete: yielded without a refetch
    for name in partials:  # resumed: the rest only, with a Range GET
        last = throttled.access_log_for(name)[-1]
        assert last.status == 206
        assert last.range is not None
        total = sent[name] + last.body_bytes_sent
        assert total <= len(data[name]) + 64 * KiB


def test_an_item_larger_than_the_budget_is_invalid_before_any_get(
    throttled: NginxServer, tmp_path: Path
) -> None:
    small = serve(throttled, 2, 10 * KiB, stem="small")
    big = serve(throttled, 1, 200 * KiB, stem="big")
    urls = [throttled.url_for(n) for n in ("small00.bin", "big00.bin", "small01.bin")]
    with ResumableDownloader() as d:
        got = []
        with pytest.raises(InvalidArgument, match="max_bytes") as raised:
            names_into(d.prefetch(urls, tmp_path / "raise", max_bytes=100 * KiB), got)
        assert got == ["small00.bin"]  # what came before it, then its error at its place
        assert "nothing was fetched" in str(raised.value)
        skipped = d.prefetch(urls, tmp_path / "skip", max_bytes=100 * KiB, errors="skip")
        assert [r.path.name for r in skipped] == list(small)
    assert gets(throttled, "big00.bin") == 0  # HEADs only
    assert len(big) == 1


def test_errors_raise_and_skip_for_a_missing_file(throttled: NginxServer, tmp_path: Path) -> None:
    serve(throttled, 3, 4 * KiB)
    urls = [throttled.url_for(n) for n in ("s00.bin", "nope.bin", "s01.bin", "s02.bin")]
    with ResumableDownloader() as d:
        got = []
        with pytest.raises(SourceNotFound):
            names_into(d.prefetch(urls, tmp_path), got)
        assert got == ["s00.bin"]
        skipped = [r.path.name for r in d.prefetch(urls, tmp_path, errors="skip")]
    assert skipped == ["s00.bin", "s01.bin", "s02.bin"]


def test_links_items_and_pairs_mixed_with_an_executor(
    throttled: NginxServer, tmp_path: Path
) -> None:
    data = serve(throttled, 4, 8 * KiB)
    links = tmp_path / "links.tsv"
    links.write_text(
        f"a.bin\t{throttled.url_for('s00.bin')}\nb.bin\t{throttled.url_for('s01.bin')}\n"
    )
    items: list[object] = [*read_links(links)]
    items.append(Item(throttled.url_for("s02.bin"), dest="sub/c.bin", size=len(data["s02.bin"])))
    items.append((throttled.url_for("s03.bin"), "d.bin"))
    with ResumableDownloader(workers=2) as d, ThreadPoolExecutor(2) as pool:
        got = [r.path for r in d.prefetch(items, tmp_path / "out", executor=pool, max_bytes=MiB)]
    assert [p.relative_to(tmp_path / "out").as_posix() for p in got] == [
        "a.bin",
        "b.bin",
        "sub/c.bin",
        "d.bin",
    ]
    assert got[2].read_bytes() == data["s02.bin"]


def tar_of(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


def test_a_processor_has_extracted_each_shard_when_it_is_yielded(
    throttled: NginxServer, tmp_path: Path
) -> None:
    for i in range(3):
        throttled.add(f"shard{i}.tar", tar_of({f"shard{i}/x.txt": b"x" * (i + 1)}))
    template = throttled.url + "/shard{0..2}.tar"
    with ResumableDownloader() as d:
        for i, result in enumerate(
            d.prefetch(template, tmp_path, process=Untar(into="out"), keep=False)
        ):
            assert result.extracted is not None
            assert (tmp_path / "out" / f"shard{i}" / "x.txt").read_bytes() == b"x" * (i + 1)
    assert not any(tmp_path.glob("*.tar"))  # keep=False: the archives went
    assert len(list((tmp_path / "out").rglob("x.txt"))) == 3  # extracted folders stay


def test_keep_false_also_deletes_a_decompressed_output(
    throttled: NginxServer, tmp_path: Path
) -> None:
    import gzip

    throttled.add("one.txt.gz", gzip.compress(b"1" * 1000))
    throttled.add("two.txt.gz", gzip.compress(b"2" * 1000))
    urls = [throttled.url_for("one.txt.gz"), throttled.url_for("two.txt.gz")]
    with ResumableDownloader() as d:
        loop = d.prefetch(urls, tmp_path, process=Decompress(), keep=False)
        first = next(loop)
        assert (tmp_path / "one.txt").read_bytes() == b"1" * 1000
        next(loop)
        assert not (tmp_path / "one.txt").exists()
        assert not first.path.exists()
        assert (tmp_path / "two.txt").exists()
        assert list(loop) == []
    assert not (tmp_path / "two.txt").exists()


def test_closing_the_loop_cancels_promptly_and_keeps_the_partials(
    throttled: NginxServer, tmp_path: Path
) -> None:
    serve(throttled, 3, 4 * MiB)
    urls = [throttled.url_for("s00.bin"), throttled.slow_url("s01.bin")]
    urls.append(throttled.slow_url("s02.bin"))
    with ResumableDownloader() as d:
        for _ in d.prefetch(urls, tmp_path, ahead=1):
            time.sleep(0.3)
            left = time.monotonic()
            break
    assert time.monotonic() - left < 1.0
    assert sorted(p.name for p in tmp_path.glob("*.bin.partial")) == ["s01.bin.partial"]
    assert not (tmp_path / "s02.bin.partial").exists()  # beyond the window: never started


def test_a_bucket_prefix_uses_the_listed_sizes_for_the_budget(
    s3_store: S3Store, tmp_path: Path
) -> None:
    data = {f"train/{i}.bin": make_data(30 * KiB + i, seed=i) for i in range(5)}
    for name, payload in data.items():
        s3_store.put(name, payload)
    with ResumableDownloader(storage_options=s3_store.storage_options()) as d:
        got = [
            r.path.name
            for r in d.prefetch(s3_store.url("train/"), tmp_path, ahead=2, max_bytes=64 * KiB)
        ]
    assert got == [f"{i}.bin" for i in range(5)]
    for name, payload in data.items():
        assert (tmp_path / name.split("/")[1]).read_bytes() == payload


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"ahead": -1}, "ahead"),
        ({"ahead": 1.5}, "ahead"),
        ({"keep": "no"}, "keep"),
        ({"max_bytes": 0}, "max_bytes"),
        ({"errors": "ignore"}, "errors"),
        ({"sync": True}, "sync"),
    ],
)
def test_invalid_arguments_are_refused_at_the_call(
    tmp_path: Path, options: dict[str, object], match: str
) -> None:
    with ResumableDownloader() as d, pytest.raises(InvalidArgument, match=match):
        d.prefetch(["http://127.0.0.1:9/x.bin"], tmp_path, **options)  # type: ignore[arg-type]


def test_a_lazy_input_is_read_only_as_far_as_the_window(
    tmp_path: Path, throttled: NginxServer
) -> None:
    data = serve(throttled, 3, KiB)
    pulled: list[int] = []

    def endless() -> Iterator[str]:
        i = 0
        while True:
            pulled.append(i)
            yield throttled.url_for(list(data)[i] if i < 3 else f"x{i}.bin")
            i += 1

    with ResumableDownloader() as d:
        loop = d.prefetch(endless(), tmp_path, ahead=2, errors="skip")
        assert next(loop).path.name == "s00.bin"
        time.sleep(0.3)
        loop.close()
    assert len(pulled) <= 1 + 2 + 2  # the held one, `ahead` waiting, one more at the gate
