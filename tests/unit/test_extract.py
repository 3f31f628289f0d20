"""Processors after a verified download: formats, routing, records, reruns, streaming, specs.

Archives are real (``tests/archives.py``) and go through a downloader with a ``MemorySource``
(or a ``FaultySource`` over one, whose ``calls`` prove what crossed the "network").
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pytest
from archives import compress, dataset, tar_bytes, zip_bytes

import resumable
from resumable import (
    AutoExtract,
    Decompress,
    EventKind,
    ExtractLimits,
    InvalidArgument,
    ProgressEvent,
    ResumableDownloader,
    RetryPolicy,
    TqdmProgress,
    Untar,
    Unzip,
)
from resumable.extract import from_spec
from resumable.testing import FaultySource, MemorySource

URL = "mem://bucket/sa_000000.tar"
SA1B = {"*.jpg": "images", "*.json": "annotations"}


def files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def downloader(source: object) -> ResumableDownloader:
    policy = RetryPolicy(backoff=0.01, jitter=0, sleep=lambda s: None)
    return ResumableDownloader(sources={"mem": source}, retry=policy)  # type: ignore[dict-item]


# -- formats -------------------------------------------------------------------------------------


@pytest.mark.parametrize("compression", ["", "gz", "bz2", "xz", "zst"])
def test_tar_formats_nested_folders_and_many_small_members(
    tmp_path: Path, compression: str
) -> None:
    pytest.importorskip("zstandard") if compression == "zst" else None
    members = dataset(0, files=150)
    name = "shard.tar" + (f".{compression}" if compression else "")
    data = tar_bytes(members, compression)
    with downloader(MemorySource({f"mem://b/{name}": data})) as d:
        r = d.download(f"mem://b/{name}", tmp_path / name, process=Untar())
    assert r.status == "downloaded"
    assert files(tmp_path / "shard") == members
    assert r.extracted is not None
    assert r.extracted.status == "extracted"
    assert r.extracted.targets == (tmp_path / "shard",)
    assert r.extracted.members == 300
    assert r.extracted.bytes == sum(len(v) for v in members.values())
    assert (tmp_path / name).read_bytes() == data  # the archive is kept by default
    assert not (tmp_path / f"{name}.extracting").exists()
    record = json.loads((tmp_path / f"{name}.extracted.json").read_text())
    assert record["state"] == "done"
    assert record["sha256"] == hashlib.sha256(data).hexdigest()


def test_zip_nested_folders_and_many_small_members(tmp_path: Path) -> None:
    members = dataset(1, files=300)
    data = zip_bytes({"top/": b"", **members})
    with downloader(MemorySource({"mem://b/set.zip": data})) as d:
        r = d.download("mem://b/set.zip", tmp_path / "set.zip", process=Unzip(into="out"))
    assert files(tmp_path / "out") == members
    assert (tmp_path / "out" / "top").is_dir()
    assert r.extracted is not None
    assert r.extracted.members == 601


@pytest.mark.parametrize("codec", ["gz", "bz2", "xz", "zst"])
def test_decompress_single_files(tmp_path: Path, codec: str) -> None:
    pytest.importorskip("zstandard") if codec == "zst" else None
    text = b"id,label\n" + b"".join(b"%d,%d\n" % (i, i % 7) for i in range(20000))
    with downloader(MemorySource({f"mem://b/t.csv.{codec}": compress(text, codec)})) as d:
        r = d.download(f"mem://b/t.csv.{codec}", tmp_path / f"t.csv.{codec}", process=Decompress())
        assert (tmp_path / "t.csv").read_bytes() == text
        assert r.extracted is not None
        assert r.extracted.targets == (tmp_path / "t.csv",)
        r2 = d.download(
            f"mem://b/t.csv.{codec}", tmp_path / f"t.csv.{codec}", process=Decompress("x/y.csv")
        )
    assert (tmp_path / "x" / "y.csv").read_bytes() == text
    assert r2.extracted is not None
    assert r2.extracted.bytes == len(text)


# -- routing -------------------------------------------------------------------------------------


def test_routing_sends_members_to_folders_by_pattern(tmp_path: Path) -> None:
    shards = {f"mem://b/sa_{i:06d}.tar": dataset(i) for i in range(3)}
    source = MemorySource({url: tar_bytes(m) for url, m in shards.items()})
    extra = {"readme.txt": b"skip me", "masks/m.json": b"{}"}
    source.put("mem://b/sa_000003.tar", tar_bytes({**dataset(3), **extra}))
    with downloader(source) as d:
        results = [
            d.download(url, tmp_path / "raw" / url.rsplit("/", 1)[1], process=Untar(route=SA1B))
            for url in sorted(source._objects)
        ]
    images = files(tmp_path / "raw" / "images")
    annotations = files(tmp_path / "raw" / "annotations")
    expected = {**dataset(0), **dataset(1), **dataset(2), **dataset(3)}
    assert images == {k: v for k, v in expected.items() if k.endswith(".jpg")}
    assert annotations == {
        **{k: v for k, v in expected.items() if k.endswith(".json")},
        "masks/m.json": b"{}",
    }
    last = results[-1].extracted
    assert last is not None
    assert last.unrouted == 1  # readme.txt matched no route: left out
    assert not list((tmp_path / "raw").glob("sa_*[0-9]"))  # no per-shard folder

    # A pattern with "/" matches whole paths; "*" catches what is left.
    route = [("masks/*", "masks"), ("*.txt", "docs"), ("*", "rest")]
    with downloader(source) as d:
        d.download("mem://b/sa_000003.tar", tmp_path / "r2" / "s.tar", process=Untar(route=route))
    assert files(tmp_path / "r2" / "masks") == {"masks/m.json": b"{}"}
    assert files(tmp_path / "r2" / "docs") == {"readme.txt": b"skip me"}
    assert files(tmp_path / "r2" / "rest") == dataset(3)


# -- records and reruns --------------------------------------------------------------------------


def test_a_rerun_skips_an_extracted_archive(tmp_path: Path) -> None:
    source = FaultySource(MemorySource({URL: tar_bytes(dataset(0))}))
    dest = tmp_path / "sa_000000.tar"
    with downloader(source) as d:
        first = d.download(URL, dest, process=Untar(route=SA1B))
        image = tmp_path / "images" / "sa_1.jpg"
        before = image.stat()
        second = d.download(URL, dest, process=Untar(route=SA1B))
    assert first.extracted is not None
    assert first.extracted.status == "extracted"
    assert second.status == "skipped"
    assert second.extracted is not None
    assert second.extracted.status == "skipped"
    after = image.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)  # untouched
    assert source.calls.count("open") == 1


def test_a_changed_processor_or_missing_output_extracts_again(tmp_path: Path) -> None:
    source = MemorySource({URL: tar_bytes(dataset(0))})
    dest = tmp_path / "sa_000000.tar"
    with downloader(source) as d:
        d.download(URL, dest, process=Untar(route=SA1B))
        r = d.download(URL, dest, process=Untar(route={"*.jpg": "imgs", "*.json": "annotations"}))
        assert r.extracted is not None
        assert r.extracted.status == "extracted"
        assert (tmp_path / "imgs" / "sa_1.jpg").exists()
        import shutil

        shutil.rmtree(tmp_path / "imgs")
        r = d.download(URL, dest, process=Untar(route={"*.jpg": "imgs", "*.json": "annotations"}))
    assert r.extracted is not None
    assert r.extracted.status == "extracted"
    assert (tmp_path / "imgs" / "sa_1.jpg").exists()


def test_a_changed_remote_is_downloaded_and_extracted_again(tmp_path: Path) -> None:
    source = MemorySource({URL: tar_bytes({"old.txt": b"v1", "both.txt": b"v1"})})
    dest = tmp_path / "sa_000000.tar"
    with downloader(source) as d:
        d.download(URL, dest, process=Untar())
        d.download(URL, dest, process=Untar(into="merged"))
        source.put(URL, tar_bytes({"new.txt": b"v2", "both.txt": b"v2"}))
        r = d.download(URL, dest, process=Untar())
        m = d.download(URL, dest, process=Untar(into="merged"))
    assert r.status == "downloaded"
    assert r.extracted is not None
    assert r.extracted.status == "extracted"
    # Its own folder is replaced whole: nothing of the old version is left.
    assert files(tmp_path / "sa_000000") == {"new.txt": b"v2", "both.txt": b"v2"}
    # A folder given with into= is merged into: members of the old version stay.
    assert m.extracted is not None
    assert m.extracted.status == "extracted"
    assert files(tmp_path / "merged") == {"old.txt": b"v1", "new.txt": b"v2", "both.txt": b"v2"}
    assert not list(tmp_path.glob(".*replaced"))


def test_a_folder_not_made_by_this_library_is_merged_never_replaced(tmp_path: Path) -> None:
    mine = tmp_path / "sa_000000"
    mine.mkdir()
    (mine / "notes.txt").write_text("the user's own file")
    with downloader(MemorySource({URL: tar_bytes({"a.txt": b"A"})})) as d:
        d.download(URL, tmp_path / "sa_000000.tar", process=Untar())
    assert files(mine) == {"notes.txt": b"the user's own file", "a.txt": b"A"}


def test_delete_archive_then_a_rerun_fetches_nothing(tmp_path: Path) -> None:
    data = tar_bytes(dataset(0))
    digest = hashlib.sha256(data).hexdigest()
    memory = MemorySource({URL: data})
    source = FaultySource(memory)
    dest = tmp_path / "sa_000000.tar"
    process = Untar(route=SA1B, delete_archive=True)
    with downloader(source) as d:
        r = d.download(URL, dest, sha256=digest, process=process)
        assert not dest.exists()
        assert r.extracted is not None
        assert r.extracted.archive_deleted
        calls = len(source.calls)
        again = d.download(URL, dest, sha256=digest, process=process)
        assert again.status == "skipped"
        assert again.sha256 == digest
        assert len(source.calls) == calls  # with a digest: not even a stat
        # Without a digest, one stat checks that the object did not change.
        again = d.download(URL, dest, process=process)
        assert again.status == "skipped"
        assert source.calls[calls:] == ["stat"]
        # The object changed: downloaded and extracted again, then deleted again.
        memory.put(URL, tar_bytes({"sa_9.jpg": b"new"}))
        changed = d.download(URL, dest, process=process)
    assert changed.status == "downloaded"
    assert changed.extracted is not None
    assert changed.extracted.status == "extracted"
    assert (tmp_path / "images" / "sa_9.jpg").read_bytes() == b"new"
    assert not dest.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "annotations",
        "images",
        "sa_000000.tar.extracted.json",
    ]


def test_an_interrupted_extraction_is_redone(tmp_path: Path) -> None:
    members = dataset(0, files=50)
    dest = tmp_path / "sa_000000.tar"
    calls = 0

    def stop_half_way(event: ProgressEvent) -> None:
        nonlocal calls
        if event.kind is EventKind.EXTRACTING:
            calls += 1
            if calls == 30:
                raise KeyboardInterrupt

    with downloader(MemorySource({URL: tar_bytes(members)})) as d:
        with pytest.raises(KeyboardInterrupt):
            d.download(URL, dest, process=Untar(), progress=stop_half_way)
        assert not (tmp_path / "sa_000000").exists()  # nothing promoted
        assert not (tmp_path / "sa_000000.tar.extracting").exists()
        record = json.loads((tmp_path / "sa_000000.tar.extracted.json").read_text())
        assert record["state"] == "extracting"
        r = d.download(URL, dest, process=Untar())
    assert r.status == "skipped"  # the archive itself was complete
    assert r.extracted is not None
    assert r.extracted.status == "extracted"
    assert files(tmp_path / "sa_000000") == members


def test_auto_extract_picks_by_name_and_leaves_other_files(tmp_path: Path) -> None:
    source = MemorySource(
        {
            "mem://b/a.tar.gz": tar_bytes({"x.txt": b"x"}, "gz"),
            "mem://b/b.zip": zip_bytes({"y.txt": b"y"}),
            "mem://b/c.json.xz": compress(b'{"c": 1}', "xz"),
            "mem://b/d.csv": b"plain,file\n",
        }
    )
    with downloader(source) as d:
        for name in ("a.tar.gz", "b.zip", "c.json.xz", "d.csv"):
            r = d.download(f"mem://b/{name}", tmp_path / name, process=AutoExtract())
    assert r.extracted is None  # d.csv: not an archive
    assert (tmp_path / "a" / "x.txt").read_bytes() == b"x"
    assert (tmp_path / "b" / "y.txt").read_bytes() == b"y"
    assert (tmp_path / "c.json").read_bytes() == b'{"c": 1}'
    assert not (tmp_path / "d.csv.extracted.json").exists()


# -- progress ------------------------------------------------------------------------------------


def test_extraction_progress_events_and_tqdm(tmp_path: Path) -> None:
    events: list[ProgressEvent] = []
    data = tar_bytes(dataset(0, files=40), "gz")
    with downloader(MemorySource({URL + ".gz": data})) as d:
        d.download(URL + ".gz", tmp_path / "s.tar.gz", process=Untar(), progress=events.append)
    kinds = [e.kind for e in events]
    assert kinds.index(EventKind.DONE) < kinds.index(EventKind.EXTRACTING)
    extracting = [e for e in events if e.kind is EventKind.EXTRACTING]
    assert [e.members for e in extracting] == list(range(1, 81))
    assert all(e.total == len(data) and 0 < e.done <= len(data) for e in extracting)
    final = events[-1]
    assert (final.kind, final.members, final.done) == (EventKind.EXTRACTED, 80, len(data))

    out = io.StringIO()
    with TqdmProgress(file=out, mininterval=0, style="bars") as bar:
        for event in events:
            bar(event)
    text = out.getvalue()
    assert "s.tar.gz (extract)" in text
    assert "80 members" in text


# -- specs and arguments -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("untar", Untar()),
        ("untar:route=*.jpg=images,*.json=annotations", Untar(route=SA1B)),
        (
            "untar:route=*.jpg=images:delete:stream",
            Untar(route={"*.jpg": "images"}, delete_archive=True, stream=True),
        ),
        ("unzip:into=data/train", Unzip("data/train")),
        ("decompress:max-bytes=50G", Decompress(limits=ExtractLimits(max_bytes=50 << 30))),
        (
            "auto:delete:max-ratio=none:max-members=10",
            AutoExtract(delete_archive=True, limits=ExtractLimits(max_ratio=None, max_members=10)),
        ),
    ],
)
def test_from_spec(spec: str, expected: object) -> None:
    built = from_spec(spec)
    assert built == expected
    assert from_spec(built.spec()) == built


@pytest.mark.parametrize(
    "spec",
    [
        "",
        "tar",
        "untar:route=images",
        "untar:bogus",
        "unzip:stream",
        "untar:max-bytes=lots",
        "decompress:route=*=x",
        "untar:into=a:route=*=b",
        "untar:max-ratio=0",
    ],
)
def test_bad_specs_are_invalid_arguments(spec: str) -> None:
    with pytest.raises(InvalidArgument):
        from_spec(spec)


def test_bad_process_arguments(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument):
        resumable.download("mem://b/x.tar", tmp_path / "x.tar", process="untar")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        Untar("out", route=SA1B)
    with pytest.raises(InvalidArgument):
        Untar(route={})
    with pytest.raises(InvalidArgument):
        ExtractLimits(max_bytes=-1)
    assert Untar(route=SA1B) == Untar(route=list(SA1B.items()))
    assert hash(Untar(route=SA1B)) == hash(Untar(route=list(SA1B.items())))


def test_zstd_without_the_package_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    zstandard = pytest.importorskip("zstandard")
    data = bytes(zstandard.ZstdCompressor().compress(tar_bytes({"a.txt": b"a"})))
    monkeypatch.setitem(__import__("sys").modules, "zstandard", None)  # import fails
    with (
        downloader(MemorySource({"mem://b/a.tar.zst": data})) as d,
        pytest.raises(resumable.ExtractionError, match=r"resumable\[zstd\]"),
    ):
        d.download("mem://b/a.tar.zst", tmp_path / "a.tar.zst", process=Untar())
    assert (tmp_path / "a.tar.zst").exists()
    assert not (tmp_path / "a").exists()


def test_a_corrupt_zstd_stream_is_typed(tmp_path: Path) -> None:
    pytest.importorskip("zstandard")
    bad = bytearray(compress(b"x" * 100_000, "zst"))
    bad[len(bad) // 2 :] = b"\x00" * (len(bad) - len(bad) // 2)
    with (
        downloader(MemorySource({"mem://b/x.zst": bytes(bad)})) as d,
        pytest.raises(resumable.CorruptArchive),
    ):
        d.download("mem://b/x.zst", tmp_path / "x.zst", process=Decompress())
