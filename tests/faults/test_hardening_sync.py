"""Hardening (issue 15, items 2, 3 and 8): what ``sync=True`` may delete, and what names an object.

- ``sync`` deletes only files this library wrote itself, proven by the ledger's record of that
  write (``written_size``/``written_mtime_ns``), and only while the file is still as written.
  A file that was merely checked ("skipped": it already matched), an old ledger's row (no such
  record), a file the user changed or replaced: never deleted.
- A delete needs the source to agree with itself that the object is gone: a metadata request
  (HEAD) and a read (GET) both answer "not found", and no listing of this run holds it. One
  probe's 404, a 403, a 5xx: never a delete.
- An object's identity keeps every query parameter except the signature parameters of the kind
  of signed URL it is (S3 SigV4/V2, GCS V4/V2, Azure SAS, CloudFront, Meta's CDN).

Everything runs against real servers on loopback: the fault server (HEAD-only faults, objects
that differ by query string), moto's S3 for prefix listings.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from archives import tar_bytes
from servers import Fault, FaultServer, make_data

import resumable
from resumable import Item, ResumableDownloader, RetryPolicy, Untar
from resumable.urls import identity

KiB = 1 << 10


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def d() -> Iterator[ResumableDownloader]:
    policy = RetryPolicy(attempts=2, backoff=0.01, jitter=0, sleep=lambda s: None)
    with ResumableDownloader(workers=2, retry=policy) as downloader:
        yield downloader


def serve(server: FaultServer, count: int, size: int = 20 * KiB) -> dict[str, bytes]:
    data = {f"f{i}.bin": make_data(size + i, seed=i) for i in range(count)}
    for name, payload in data.items():
        server.add(name, payload)
    return data


def requests(server: FaultServer, name: str) -> list[tuple[str, int]]:
    return [(r.method, r.status) for r in server.requests_for(name)]


def ledger_rows(dest: Path) -> dict[str, dict[str, Any]]:
    db = sqlite3.connect(dest / ".resumable" / "ledger.sqlite")
    db.row_factory = sqlite3.Row
    try:
        return {row["path"]: dict(row) for row in db.execute("SELECT * FROM items")}
    finally:
        db.close()


# -- item 2: sync deletes only what this library wrote ---------------------------------------------


@pytest.mark.parametrize("executor", [None, "threads"])
def test_sync_keeps_a_users_file_that_was_only_checked(
    fault_server: FaultServer, d: ResumableDownloader, tmp_path: Path, executor: str | None
) -> None:
    """Finding 2: the user's own copy of f1 matched and was "skipped"; when the source loses
    it, sync must keep it. f0, which this library wrote, goes."""
    data = serve(fault_server, 2)
    (tmp_path / "f1.bin").write_bytes(data["f1.bin"])  # the user's own copy, already complete
    template = fault_server.url + "/f{0..1}.bin"
    with ThreadPoolExecutor(2) if executor else contextlib.nullcontext() as pool:
        first = d.download_many(template, tmp_path, sync=True, executor=pool)
        first.raise_for_errors()
        assert {r.path.name: r.status for r in first.ok} == {
            "f0.bin": "downloaded",
            "f1.bin": "skipped",
        }
        fault_server.remove("f0.bin")
        fault_server.remove("f1.bin")
        again = d.download_many(template, tmp_path, sync=True, executor=pool)
    assert again.deleted == [tmp_path / "f0.bin"]
    assert (tmp_path / "f1.bin").read_bytes() == data["f1.bin"]
    assert sorted(type(e).__name__ for _, e in again.failed) == ["SourceNotFound"] * 2
    assert ("GET", 404) in requests(fault_server, "f1.bin")  # really gone at the source


def test_a_write_is_remembered_across_later_checks(
    fault_server: FaultServer, d: ResumableDownloader, tmp_path: Path
) -> None:
    """A file this library wrote stays provably its own through reruns that only skip it (the
    record of the write is carried, not replaced), so sync still deletes it when it is gone."""
    serve(fault_server, 1)
    template = fault_server.url + "/f{0..0}.bin"
    d.download_many(template, tmp_path, sync=True).raise_for_errors()
    written = ledger_rows(tmp_path)["f0.bin"]
    fault_server.replace("f0.bin", fault_server.content("f0.bin"))  # new ETag, same bytes
    fault_server.head_status("f0.bin", 403)  # and a HEAD that is refused: GET decides
    again = d.download_many(template, tmp_path, sync=True)
    again.raise_for_errors()
    fault_server.head_status("f0.bin", None)
    third = d.download_many(template, tmp_path, sync=True)  # skipped after one HEAD
    assert [r.status for r in third.ok] == ["skipped"]
    row = ledger_rows(tmp_path)["f0.bin"]
    st = os.stat(tmp_path / "f0.bin")
    assert (row["written_size"], row["written_mtime_ns"]) == (st.st_size, st.st_mtime_ns)
    assert written["written_size"] == row["written_size"]
    fault_server.remove("f0.bin")
    last = d.download_many(template, tmp_path, sync=True)
    assert last.deleted == [tmp_path / "f0.bin"]


def test_a_file_the_user_replaced_is_not_ours_even_after_a_check(
    fault_server: FaultServer, d: ResumableDownloader, tmp_path: Path
) -> None:
    """This library wrote f0 from one URL; the user replaced it with a same-named file of the
    right size, which a run with another URL for the object only checked ("skipped"). That
    file is the user's: when the object is gone, sync keeps it."""
    data = serve(fault_server, 1)
    url = fault_server.url_for("f0.bin")
    d.download_many([(url, "f0.bin")], tmp_path).raise_for_errors()
    target = tmp_path / "f0.bin"
    replacement = tmp_path / "replacement"
    replacement.write_bytes(b"u" * len(data["f0.bin"]))  # the user's file, same name and size
    os.replace(replacement, target)
    other_url = url + "?mirror=eu"  # another identity: the ledger row is not trusted
    checked = d.download_many([(other_url, "f0.bin")], tmp_path)
    assert [r.status for r in checked.ok] == ["skipped"]  # same size, no digest: only checked
    template = fault_server.url + "/f{0..0}.bin?mirror=eu"
    fault_server.remove("f0.bin")
    result = d.download_many(template, tmp_path, sync=True)
    assert result.deleted == []
    assert target.read_bytes() == b"u" * len(data["f0.bin"])


def test_a_symlink_the_user_put_in_place_of_our_file_is_kept(
    fault_server: FaultServer, d: ResumableDownloader, tmp_path: Path
) -> None:
    """The user moved the file this library wrote elsewhere and left a symbolic link to it:
    the link has the file's size and mtime through ``stat``, but it is not what was written."""
    serve(fault_server, 1)
    template = fault_server.url + "/f{0..0}.bin"
    d.download_many(template, tmp_path, sync=True).raise_for_errors()
    target = tmp_path / "f0.bin"
    kept = tmp_path / "elsewhere" / "f0.bin"
    kept.parent.mkdir()
    os.replace(target, kept)  # same inode: same size and mtime
    target.symlink_to(kept)
    fault_server.remove("f0.bin")
    result = d.download_many(template, tmp_path, sync=True)
    assert result.deleted == []
    assert target.is_symlink()
    assert kept.exists()


def test_an_old_ledger_row_never_leads_to_a_delete(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    """A ledger written before the record of writes existed cannot prove who made a file: a
    ``done`` row with a matching size and mtime is not enough to delete it."""
    data = serve(fault_server, 1)
    target = tmp_path / "f0.bin"
    target.write_bytes(data["f0.bin"])  # whoever wrote it, the old ledger says "done"
    st = target.stat()
    template = fault_server.url + "/f{0..0}.bin"
    (tmp_path / ".resumable").mkdir()
    db = sqlite3.connect(tmp_path / ".resumable" / "ledger.sqlite")
    db.execute(
        "CREATE TABLE items (path TEXT PRIMARY KEY, identity TEXT NOT NULL, origin TEXT, "
        "state TEXT NOT NULL, size INTEGER, mtime_ns INTEGER, sha256 TEXT, etag TEXT, "
        "version TEXT, error TEXT, updated REAL NOT NULL)"  # the first ledgers' columns
    )
    db.execute(
        "INSERT INTO items VALUES (?, ?, ?, 'done', ?, ?, ?, ?, NULL, NULL, 0)",
        (
            "f0.bin",
            identity(fault_server.url_for("f0.bin")),
            identity(template),
            st.st_size,
            st.st_mtime_ns,
            "0" * 64,
            fault_server.etag("f0.bin"),
        ),
    )
    db.commit()
    db.close()
    fault_server.remove("f0.bin")
    policy = RetryPolicy(attempts=2, backoff=0.01, jitter=0, sleep=lambda s: None)
    with ResumableDownloader(retry=policy) as d:
        result = d.download_many(template, tmp_path, sync=True)
    assert result.deleted == []
    assert target.read_bytes() == data["f0.bin"]
    assert [type(e) for _, e in result.failed] == [resumable.SourceNotFound]


def test_sync_keeps_a_users_archive_and_its_extracted_files(
    fault_server: FaultServer, d: ResumableDownloader, tmp_path: Path
) -> None:
    """The processor path records the same way: an archive the user had (checked, extracted)
    is not deleted when the source loses it, and extracted files are never deleted by sync."""
    archive = tar_bytes({"a.txt": b"alpha", "b.txt": b"beta"})
    fault_server.add("s0.tar", archive)
    (tmp_path / "s0.tar").write_bytes(archive)  # the user's own copy
    template = fault_server.url + "/s{0..0}.tar"
    process = Untar(into="out")
    first = d.download_many(template, tmp_path, sync=True, process=process)
    first.raise_for_errors()
    assert [r.status for r in first.ok] == ["skipped"]
    fault_server.remove("s0.tar")
    again = d.download_many(template, tmp_path, sync=True, process=process)
    assert again.deleted == []
    assert (tmp_path / "s0.tar").read_bytes() == archive
    assert (tmp_path / "out" / "a.txt").read_bytes() == b"alpha"


# -- item 3: a disagreement between probe and read never deletes -----------------------------------


@pytest.mark.parametrize("code", [404, 410, 403, 500])
def test_a_head_that_disagrees_with_get_never_deletes(
    fault_server: FaultServer, d: ResumableDownloader, tmp_path: Path, code: int
) -> None:
    """Finding 3: HEAD says 404 (or 410, 403, 500) while GET serves the object. The sync
    rerun fetches the file again (the read decides) and deletes nothing."""
    data = serve(fault_server, 2)
    template = fault_server.url + "/f{0..1}.bin"
    d.download_many(template, tmp_path, sync=True).raise_for_errors()
    fault_server.head_status("f1.bin", code)
    again = d.download_many(template, tmp_path, sync=True)
    assert again.deleted == []
    assert again.failed == []
    assert (tmp_path / "f1.bin").read_bytes() == data["f1.bin"]
    seen = requests(fault_server, "f1.bin")
    assert ("HEAD", code) in seen  # the fault really happened
    assert seen[-1] in (("GET", 200), ("GET", 206))  # and a read settled it (403: a ranged GET)


def test_an_extracted_archive_whose_head_fails_is_fetched_not_failed(
    fault_server: FaultServer, d: ResumableDownloader, tmp_path: Path
) -> None:
    """A single download with ``Untar(delete_archive=True)``: the rerun asks whether the
    deleted archive changed; a HEAD answering 404 while GET works must not fail the call."""
    archive = tar_bytes({"a.txt": b"alpha"})
    url = fault_server.add("s.tar", archive)
    process = Untar(into="out", delete_archive=True)
    d.download(url, tmp_path / "s.tar", process=process)
    fault_server.head_status("s.tar", 404)
    again = d.download(url, tmp_path / "s.tar", process=process)
    assert again.status == "downloaded"
    assert (tmp_path / "out" / "a.txt").read_bytes() == b"alpha"
    assert ("HEAD", 404) in requests(fault_server, "s.tar")


def test_a_single_download_over_an_old_file_when_head_says_404(
    fault_server: FaultServer, d: ResumableDownloader, tmp_path: Path
) -> None:
    """``download()`` over an existing older file checks it with a HEAD first; a HEAD that
    answers 404 while GET serves the object does not decide: the GET does."""
    data = make_data(50 * KiB, seed=4)
    url = fault_server.add("f.bin", data)
    dest = tmp_path / "f.bin"
    dest.write_bytes(b"an older version")
    fault_server.head_status("f.bin", 404)
    result = d.download(url, dest)
    assert result.status == "downloaded"
    assert dest.read_bytes() == data
    assert requests(fault_server, "f.bin") == [("HEAD", 404), ("GET", 200)]


def test_a_get_404_that_head_contradicts_never_deletes(
    fault_server: FaultServer, d: ResumableDownloader, tmp_path: Path
) -> None:
    """The other way round: the object changed, its GET answers 404 once, HEAD still serves it.
    The source disagrees with itself: the file this library wrote is kept."""
    data = serve(fault_server, 2)
    template = fault_server.url + "/f{0..1}.bin"
    d.download_many(template, tmp_path, sync=True).raise_for_errors()
    fault_server.replace("f1.bin", make_data(len(data["f1.bin"]), seed=77))  # new ETag: refetch
    fault_server.plan("f1.bin", Fault.status(404))
    again = d.download_many(template, tmp_path, sync=True)
    assert again.deleted == []
    assert (tmp_path / "f1.bin").read_bytes() == data["f1.bin"]
    assert [type(e) for _, e in again.failed] == [resumable.SourceNotFound]
    seen = requests(fault_server, "f1.bin")
    assert ("GET", 404) in seen
    assert seen.count(("HEAD", 200)) >= 2


def test_sync_deletes_only_when_head_and_get_agree(
    fault_server: FaultServer, d: ResumableDownloader, tmp_path: Path
) -> None:
    """The positive case: an object gone for HEAD and GET alike, which this library wrote and
    nobody touched since, is deleted; the server log shows both probes said 404."""
    serve(fault_server, 2)
    template = fault_server.url + "/f{0..1}.bin"
    d.download_many(template, tmp_path, sync=True).raise_for_errors()
    fault_server.remove("f1.bin")
    again = d.download_many(template, tmp_path, sync=True)
    assert again.deleted == [tmp_path / "f1.bin"]
    seen = requests(fault_server, "f1.bin")
    assert ("HEAD", 404) in seen
    assert ("GET", 404) in seen


def test_sync_prunes_an_s3_prefix_only_for_objects_really_gone(
    s3_store: Any, tmp_path: Path
) -> None:
    """moto's S3: an object deleted from the prefix is pruned (the listing no longer has it,
    and HEAD and GET agree); an object the user put beside the mirror is never touched."""
    names = ["a.bin", "sub/b.bin", "c.bin"]
    for i, name in enumerate(names):
        s3_store.put(f"ds/{name}", make_data(10 * KiB + i, seed=i))
    (tmp_path / "mine.bin").write_bytes(b"mine")
    with ResumableDownloader(workers=2, storage_options=s3_store.storage_options()) as d:
        d.download_many(s3_store.url("ds/"), tmp_path, sync=True).raise_for_errors()
        s3_store.delete("ds/sub/b.bin")
        again = d.download_many(s3_store.url("ds/"), tmp_path, sync=True)
    again.raise_for_errors()
    assert again.deleted == [tmp_path / "sub" / "b.bin"]
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.bin")) == [
        "a.bin",
        "c.bin",
        "mine.bin",
    ]


def test_sync_prunes_nothing_of_an_s3_origin_whose_listing_failed(
    s3_store: Any, tmp_path: Path
) -> None:
    """A template of two prefixes (one origin): when listing one of them fails (a bucket that
    does not exist), nothing of the origin is pruned, although an object really went away."""
    for i, name in enumerate(["a.bin", "b.bin"]):
        s3_store.put(f"ds/{name}", make_data(10 * KiB + i, seed=i))
    template = f"s3://{{{s3_store.bucket},no-such-bucket-{s3_store.bucket[-8:]}}}/ds/"
    with ResumableDownloader(workers=2, storage_options=s3_store.storage_options()) as d:
        first = d.download_many(template, tmp_path, sync=True)
        assert sorted(r.path.name for r in first.ok) == ["a.bin", "b.bin"]
        assert [type(e) for _, e in first.failed] == [resumable.SourceNotFound]
        s3_store.delete("ds/b.bin")
        again = d.download_many(template, tmp_path, sync=True)
    assert again.deleted == []
    assert sorted(p.name for p in tmp_path.glob("*.bin")) == ["a.bin", "b.bin"]
    assert [type(e) for _, e in again.failed] == [resumable.SourceNotFound]


def test_a_listed_object_that_answers_404_is_kept(tmp_path: Path) -> None:
    """The listing of this run names the object, then its HEAD and GET say 404 (a store that
    disagrees with itself, or a listing racing a delete): no delete until a listing agrees.
    The library's own test double (``FaultySource``) plays the store."""
    from resumable.testing import FaultySource, MemorySource

    memory = MemorySource({"mem://b/dir/f0.bin": b"0" * 1000, "mem://b/dir/f1.bin": b"1" * 9})
    store = FaultySource(memory)
    with ResumableDownloader(workers=1, sources={"mem": store}) as d:  # type: ignore[dict-item]
        d.download_many("mem://b/dir/", tmp_path, sync=True).raise_for_errors()
        gone = resumable.SourceNotFound("no such object", url="mem://b/dir/f0.bin")
        store.fail_stat(gone).fail_open(gone)  # f0's (listed first): its HEAD, then its GET
        again = d.download_many("mem://b/dir/", tmp_path, sync=True)
        assert again.deleted == []
        assert (tmp_path / "f0.bin").read_bytes() == b"0" * 1000
        assert [type(e) for _, e in again.failed] == [resumable.SourceNotFound]
        memory.delete("mem://b/dir/f0.bin")  # now the listing agrees
        last = d.download_many("mem://b/dir/", tmp_path, sync=True)
    assert last.deleted == [tmp_path / "f0.bin"]


# -- item 8: what names an object ------------------------------------------------------------------


def test_a_query_parameter_names_another_object(
    fault_server: FaultServer, d: ResumableDownloader, tmp_path: Path
) -> None:
    """Finding 8: ``?file=x&sp=train`` then ``?file=x&sp=test`` to the same destination. The
    second is another object: the ledger row of the first must not skip it."""
    train = fault_server.add_variant("get", "file=x&sp=train", make_data(30 * KiB, seed=1))
    test_data = make_data(31 * KiB, seed=2)
    test = fault_server.add_variant("get", "file=x&sp=test", test_data)
    d.download_many([(train, "x.bin")], tmp_path).raise_for_errors()
    before = len(fault_server.log)
    result = d.download_many([(test, "x.bin")], tmp_path)
    result.raise_for_errors()
    assert len(fault_server.log) > before  # asked the server, not the ledger alone
    assert [r.status for r in result.ok] == ["downloaded"]
    assert (tmp_path / "x.bin").read_bytes() == test_data


def test_two_objects_of_the_same_size_are_not_confused(
    fault_server: FaultServer, d: ResumableDownloader, tmp_path: Path
) -> None:
    """The same, with objects of equal size: a size check cannot tell them apart, and the
    ledger knows the file holds the other object's bytes, so it is downloaded again. With the
    new object's digest, a check by hashing decides instead."""
    train_data, test_data = make_data(30 * KiB, seed=1), make_data(30 * KiB, seed=2)
    train = fault_server.add_variant("get", "file=x&sp=train", train_data)
    test = fault_server.add_variant("get", "file=x&sp=test", test_data)
    d.download_many([(train, "x.bin")], tmp_path).raise_for_errors()
    result = d.download_many([(test, "x.bin")], tmp_path)
    assert [r.status for r in result.ok] == ["downloaded"]
    assert (tmp_path / "x.bin").read_bytes() == test_data
    back = d.download_many([Item(train, "x.bin", sha256=sha(train_data))], tmp_path)
    assert [r.status for r in back.ok] == ["downloaded"]  # hashed: not train's bytes
    assert (tmp_path / "x.bin").read_bytes() == train_data
    same = d.download_many([Item(test, "x.bin", sha256=sha(train_data))], tmp_path)
    assert [r.status for r in same.ok] == ["skipped"]  # the digest vouches for the bytes


def test_a_resigned_url_still_skips_by_the_ledger(
    fault_server: FaultServer, d: ResumableDownloader, tmp_path: Path
) -> None:
    """The other half of the rule: the same object signed again (an S3 presigned URL with a new
    date and signature) is the same identity, so the rerun skips it with no request."""
    fault_server.add("k.bin", make_data(10 * KiB, seed=3))
    base = fault_server.url_for("k.bin") + "?versionId=7&X-Amz-Algorithm=AWS4-HMAC-SHA256"
    first = f"{base}&X-Amz-Date=20260101T000000Z&X-Amz-Expires=60&X-Amz-Signature=aa11"
    second = f"{base}&X-Amz-Date=20260102T000000Z&X-Amz-Expires=60&X-Amz-Signature=bb22"
    d.download_many([Item(first, "k.bin")], tmp_path).raise_for_errors()
    before = len(fault_server.log)
    again = d.download_many([Item(second, "k.bin")], tmp_path)
    assert [r.status for r in again.ok] == ["skipped"]
    assert len(fault_server.log) == before


AWS_V4 = (
    "https://bucket.s3.us-east-1.amazonaws.com/data/shard.tar?versionId=v3"
    "&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA%2F20260101%2Fus-east-1%2Fs3"
    "%2Faws4_request&X-Amz-Date=20260101T000000Z&X-Amz-Expires=3600"
    "&X-Amz-SignedHeaders=host&X-Amz-Security-Token=tok&X-Amz-Signature=abcdef&x-id=GetObject"
)
GCS_V4 = (
    "https://storage.googleapis.com/bucket/shard.tar?generation=17"
    "&X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Credential=sa%40p.iam.gserviceaccount.com"
    "%2F20260101%2Fauto%2Fstorage%2Fgoog4_request&X-Goog-Date=20260101T000000Z"
    "&X-Goog-Expires=600&X-Goog-SignedHeaders=host&X-Goog-Signature=0123"
)
AZURE_SAS = (
    "https://acct.blob.core.windows.net/c/shard.tar?snapshot=2026-01-01T00%3A00%3A00Z"
    "&sv=2022-11-02&ss=b&srt=o&sp=r&se=2026-01-02T00%3A00%3A00Z&st=2026-01-01T00%3A00%3A00Z"
    "&spr=https&sig=c2lnbmF0dXJl"
)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (AWS_V4, "https://bucket.s3.us-east-1.amazonaws.com/data/shard.tar?versionId=v3"),
        (
            "https://b.s3.amazonaws.com/k?AWSAccessKeyId=AKIA&Expires=1700000000&Signature=x%2Fy",
            "https://b.s3.amazonaws.com/k",
        ),
        (GCS_V4, "https://storage.googleapis.com/bucket/shard.tar?generation=17"),
        (
            "https://storage.googleapis.com/b/k?GoogleAccessId=sa&Expires=1700000000&Signature=s",
            "https://storage.googleapis.com/b/k",
        ),
        (
            AZURE_SAS,
            "https://acct.blob.core.windows.net/c/shard.tar?snapshot=2026-01-01T00%3A00%3A00Z",
        ),
        (
            "https://d111.cloudfront.net/v.tar?Expires=1700000000&Signature=abc&Key-Pair-Id=K2",
            "https://d111.cloudfront.net/v.tar",
        ),
        (
            "https://d111.cloudfront.net/v.tar?Policy=eyJ9&Signature=abc&Key-Pair-Id=K2",
            "https://d111.cloudfront.net/v.tar",
        ),
        (  # SA-1B's links (Meta's CDN): signature and expiry dropped, the rest kept
            "https://scontent.xx.fbcdn.net/m1/sa_000000.tar?ccb=10-5&oh=00_Af&oe=65F0&_nc_sid=0f",
            "https://scontent.xx.fbcdn.net/m1/sa_000000.tar?ccb=10-5",
        ),
        (  # CDN token authentication (Bunny, KeyCDN) and Akamai's token
            "https://z.b-cdn.net/f.tar?token=HS256-abc&expires=1700000000&v=2",
            "https://z.b-cdn.net/f.tar?v=2",
        ),
        (
            "https://a.akamaized.net/f.tar?__token__=exp%3D1~hmac%3Dff&p=1",
            "https://a.akamaized.net/f.tar?p=1",
        ),
        # Ordinary query strings: every parameter names the object.
        ("https://h/get?file=x&sp=train", "https://h/get?file=x&sp=train"),
        ("https://h/get?file=x&sp=test&st=2", "https://h/get?file=x&sp=test&st=2"),
        ("https://h/d?expires=never&policy=a", "https://h/d?expires=never&policy=REDACTED"),
        ("https://h/x.bin?oe=1&v=2", "https://h/x.bin?oe=1&v=2"),
        # A lone signature-like name without its kind's set is not a signed URL...
        ("https://h/f?X-Amz-Date=1&part=2", "https://h/f?X-Amz-Date=1&part=2"),
        # ... and a secret is never kept, only its name (its value is redacted).
        ("https://h/f?token=s3cret&part=2", "https://h/f?token=REDACTED&part=2"),
        ("https://u:pw@h/f?sig=abc", "https://h/f?sig=REDACTED"),
    ],
)
def test_identity_drops_only_the_signature_of_its_kind_of_url(url: str, expected: str) -> None:
    assert identity(url) == expected


def test_identity_of_a_re_signed_url_is_stable() -> None:
    resigned = AWS_V4.replace("X-Amz-Date=20260101T000000Z", "X-Amz-Date=20260102T000000Z")
    resigned = resigned.replace("X-Amz-Signature=abcdef", "X-Amz-Signature=987654")
    assert identity(resigned) == identity(AWS_V4)
    assert identity(AZURE_SAS.replace("sig=c2lnbmF0dXJl", "sig=b3RoZXI%3D")) == identity(AZURE_SAS)
    assert identity(AWS_V4.replace("versionId=v3", "versionId=v4")) != identity(AWS_V4)
