"""Batches of shards downloaded from a real nginx and extracted, recorded in the ledger."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from archives import dataset, tar_bytes, tar_member, zip_bytes
from servers import NginxServer

from resumable import (
    AutoExtract,
    EventKind,
    ExtractionError,
    Item,
    ProgressEvent,
    ResumableDownloader,
    UnsafeArchive,
    Untar,
    Unzip,
)
from resumable.testing import FaultySource, MemorySource

SA1B = {"*.jpg": "images", "*.json": "annotations"}


def extraction_rows(dest_dir: Path) -> dict[str, dict[str, object]]:
    with sqlite3.connect(dest_dir / ".resumable" / "ledger.sqlite") as db:
        rows = db.execute("SELECT path, record FROM extracted").fetchall()
    return {path: json.loads(record) for path, record in rows}


def tree(root: Path, pattern: str) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob(pattern) if p.is_file()}


@pytest.fixture
def d() -> ResumableDownloader:
    with ResumableDownloader(workers=4) as downloader:
        yield downloader  # type: ignore[misc]


def test_a_batch_of_shards_is_extracted_routed_and_a_rerun_fetches_nothing(
    nginx: NginxServer, unique_prefix: str, d: ResumableDownloader, tmp_path: Path
) -> None:
    expected: dict[str, bytes] = {}
    for i in range(6):
        expected.update(dataset(i))
        nginx.add(f"{unique_prefix}/sa_{i:06d}.tar", tar_bytes(dataset(i)))
    template = f"{nginx.url}/{unique_prefix}/sa_{{000000..000005}}.tar"
    process = Untar(route=SA1B, delete_archive=True)

    result = d.download_many(template, tmp_path, process=process)
    result.raise_for_errors()
    assert len(result.ok) == 6
    assert all(r.extracted is not None and r.extracted.status == "extracted" for r in result.ok)
    assert tree(tmp_path / "images", "*.jpg") == {
        k: v for k, v in expected.items() if k.endswith(".jpg")
    }
    assert tree(tmp_path / "annotations", "*.json") == {
        k: v for k, v in expected.items() if k.endswith(".json")
    }
    assert not list(tmp_path.glob("sa_*"))  # archives deleted, no staging left
    rows = extraction_rows(tmp_path)
    assert sorted(rows) == [f"sa_{i:06d}.tar" for i in range(6)]
    assert {row["state"] for row in rows.values()} == {"done"}
    assert all(row["archive_deleted"] for row in rows.values())

    requests = len(nginx.access_log_for(f"{unique_prefix}/sa_000000.tar", min_lines=1))
    again = d.download_many(template, tmp_path, process=process)
    assert [r.status for r in again.ok] == ["skipped"] * 6
    assert all(r.extracted is not None and r.extracted.status == "skipped" for r in again.ok)
    assert len(nginx.access_log_for(f"{unique_prefix}/sa_000000.tar")) == requests


def test_per_item_processors_and_plain_items_mix(
    nginx: NginxServer, unique_prefix: str, d: ResumableDownloader, tmp_path: Path
) -> None:
    tar_url = nginx.add(f"{unique_prefix}/a.tar", tar_bytes({"x/a.txt": b"A"}))
    zip_url = nginx.add(f"{unique_prefix}/b.zip", zip_bytes({"y/b.txt": b"B"}))
    plain_url = nginx.add(f"{unique_prefix}/c.tar", tar_bytes({"c.txt": b"C"}))
    items = [
        Item(tar_url, "raw/a.tar"),  # the batch's processor
        Item(zip_url, "raw/b.zip", process=Unzip(into="../zipped")),
        (plain_url, "raw/c.tar"),
    ]
    result = d.download_many(items, tmp_path, process=Untar())
    result.raise_for_errors()
    assert (tmp_path / "raw" / "a" / "x" / "a.txt").read_bytes() == b"A"
    assert (tmp_path / "zipped" / "y" / "b.txt").read_bytes() == b"B"
    assert (tmp_path / "raw" / "c" / "c.txt").read_bytes() == b"C"  # pairs get the batch's
    assert sorted(extraction_rows(tmp_path)) == ["raw/a.tar", "raw/b.zip", "raw/c.tar"]

    plain = d.download_many([(plain_url, "other/c.tar")], tmp_path)  # no processor
    assert plain.ok[0].extracted is None
    assert not (tmp_path / "other" / "c").exists()


def test_a_hostile_shard_fails_alone_and_its_download_is_not_repeated(
    nginx: NginxServer, unique_prefix: str, d: ResumableDownloader, tmp_path: Path
) -> None:
    nginx.add(f"{unique_prefix}/s0.tar", tar_bytes(dataset(0)))
    evil = tar_bytes([(tar_member("ok.jpg"), b"1"), (tar_member("../../evil.jpg"), b"2")])
    nginx.add(f"{unique_prefix}/s1.tar", evil)
    template = f"{nginx.url}/{unique_prefix}/s{{0..1}}.tar"

    result = d.download_many(template, tmp_path, process=Untar(route=SA1B))
    assert [r.path.name for r in result.ok] == ["s0.tar"]
    [(_, error)] = result.failed
    assert isinstance(error, UnsafeArchive)
    assert isinstance(error, ExtractionError)
    assert (tmp_path / "s1.tar").exists()  # the verified download is kept
    assert not (tmp_path.parent / "evil.jpg").exists()
    assert "ok.jpg" not in tree(tmp_path / "images", "*.jpg")
    assert extraction_rows(tmp_path)["s1.tar"]["state"] == "failed"

    requests = len(nginx.access_log_for(f"{unique_prefix}/s1.tar", min_lines=1))
    again = d.download_many(template, tmp_path, process=Untar(route=SA1B))
    assert isinstance(again.failed[0][1], UnsafeArchive)
    assert len(nginx.access_log_for(f"{unique_prefix}/s1.tar")) == requests  # ledger: no GET


def test_an_interrupted_extraction_in_a_batch_is_redone_without_downloading(
    nginx: NginxServer, unique_prefix: str, d: ResumableDownloader, tmp_path: Path
) -> None:
    for i in range(3):
        nginx.add(f"{unique_prefix}/t{i}.tar", tar_bytes(dataset(i, files=30)))
    template = f"{nginx.url}/{unique_prefix}/t{{0..2}}.tar"

    def fail_in_t1(event: ProgressEvent) -> None:
        extracting = event.kind is EventKind.EXTRACTING and event.path.name == "t1.tar"
        if extracting and event.members == 10:
            raise RuntimeError("stopped in the middle of t1.tar")

    first = d.download_many(template, tmp_path, process=Untar(), progress=fail_in_t1)
    assert [type(e) for _, e in first.failed] == [RuntimeError]
    assert not (tmp_path / "t1").exists()
    assert not (tmp_path / "t1.tar.extracting").exists()
    assert extraction_rows(tmp_path)["t1.tar"]["state"] == "extracting"

    again = d.download_many(template, tmp_path, process=Untar())
    again.raise_for_errors()
    by_name = {r.path.name: r for r in again.ok}
    assert by_name["t1.tar"].status == "skipped"  # the download was done already
    assert by_name["t1.tar"].extracted is not None
    assert by_name["t1.tar"].extracted.status == "extracted"
    assert by_name["t0.tar"].extracted is not None
    assert by_name["t0.tar"].extracted.status == "skipped"
    assert tree(tmp_path / "t1", "*") == dataset(1, files=30)


def test_sync_refetches_only_the_deleted_archives_that_changed(tmp_path: Path) -> None:
    memory = MemorySource({f"mem://b/s{i}.tar": tar_bytes({f"s{i}.txt": b"v1"}) for i in range(3)})
    source = FaultySource(memory)
    process = Untar(into="out", delete_archive=True)
    with ResumableDownloader(sources={"mem": source}) as d:  # type: ignore[dict-item]
        d.download_many("mem://b/", tmp_path, sync=True, process=process).raise_for_errors()
        assert not list(tmp_path.glob("s*.tar"))
        memory.put("mem://b/s1.tar", tar_bytes({"s1.txt": b"v2"}))
        opens = source.calls.count("open")
        again = d.download_many("mem://b/", tmp_path, sync=True, process=process)
    again.raise_for_errors()
    statuses = {
        r.path.name: (r.status, r.extracted.status if r.extracted else None) for r in again.ok
    }
    assert statuses == {
        "s0.tar": ("skipped", "skipped"),
        "s1.tar": ("downloaded", "extracted"),
        "s2.tar": ("skipped", "skipped"),
    }
    assert source.calls.count("open") == opens + 1  # only the changed archive was fetched
    assert (tmp_path / "out" / "s1.txt").read_bytes() == b"v2"
    assert again.deleted == []  # sync deleted nothing: the archives were gone on purpose


def test_auto_extract_over_a_mixed_batch(tmp_path: Path) -> None:
    memory = MemorySource(
        {
            "mem://d/images.tar.gz": tar_bytes({"img/1.png": b"png"}, "gz"),
            "mem://d/labels.zip": zip_bytes({"labels.csv": b"1,cat\n"}),
            "mem://d/meta.json.gz": __import__("gzip").compress(b'{"n": 1}'),
            "mem://d/README.txt": b"read me",
        }
    )
    with ResumableDownloader(sources={"mem": memory}) as d:
        result = d.download_many("mem://d/", tmp_path, process=AutoExtract())
    result.raise_for_errors()
    assert (tmp_path / "images" / "img" / "1.png").read_bytes() == b"png"
    assert (tmp_path / "labels" / "labels.csv").read_bytes() == b"1,cat\n"
    assert (tmp_path / "meta.json").read_bytes() == b'{"n": 1}'
    assert (tmp_path / "README.txt").read_bytes() == b"read me"
    assert sorted(extraction_rows(tmp_path)) == ["images.tar.gz", "labels.zip", "meta.json.gz"]
