"""Issue 15, items 6 and 14: an extraction succeeds only when the whole archive was read, and
no exception that is not a ``ResumableError`` leaves a public call.

Archives are real (``tests/archives.py``) and are served by a real nginx (or the fault server)
on loopback as complete objects that are themselves cut short or damaged: the download verifies,
and the extraction must refuse them (``CorruptArchive``), in every mode (``Untar(stream=True)``
while downloading, after the download, ``Decompress``, ``Unzip``, batches), leaving no ``done``
record and nothing published, and keeping the downloaded archive.
"""

from __future__ import annotations

import errno
import gzip
import io
import json
import logging
import os
import random
import socket
import sqlite3
import tarfile
import tempfile
from pathlib import Path

import pytest
from archives import compress, dataset, tar_bytes, tar_member, zip_bytes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from servers import FaultServer, NginxServer

import resumable
from resumable import (
    CorruptArchive,
    Decompress,
    InvalidArgument,
    ResumableDownloader,
    ResumableError,
    RetryPolicy,
    Timeouts,
    UnsafeArchive,
    Untar,
    Unzip,
)

CODECS = ["", "gz", "bz2", "xz", "zst"]


def quick() -> ResumableDownloader:
    policy = RetryPolicy(attempts=2, backoff=0.01, jitter=0, sleep=lambda s: None)
    return ResumableDownloader(retry=policy, timeouts=Timeouts(connect=5, stall=5))


def tar_name(codec: str) -> str:
    return "shard.tar" + (f".{codec}" if codec else "")


def assert_refused(archive: Path, data: bytes, target: Path, exc: BaseException) -> None:
    """The failed extraction published nothing, recorded no ``done``, and kept the download."""
    assert isinstance(exc, CorruptArchive), repr(exc)
    assert archive.read_bytes() == data, "the downloaded archive must be kept as downloaded"
    assert not os.path.lexists(target), f"{target} was published by a failed extraction"
    assert not os.path.lexists(archive.with_name(archive.name + ".extracting"))
    marker = archive.with_name(archive.name + ".extracted.json")
    if marker.exists():
        assert json.loads(marker.read_text())["state"] != "done"


def shard(seed: int, files: int = 12) -> dict[str, bytes]:
    """Small members and two incompressible ones of 160 KiB: compressed, the archive spans
    several blocks (zstd's are up to 128 KiB), so a cut can fall between two of them."""
    rng = random.Random(seed)
    bulk = {f"bulk/r{i}.bin": rng.randbytes(160 * 1024) for i in range(2)}
    return {**dataset(seed, files=files), **bulk}


def tar_end(raw: bytes) -> int:
    """Where an uncompressed tar's end-of-archive marker ends: the zeros after it are padding
    to a record (10 KiB), and a cut there loses nothing."""
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        tar.getmembers()
        return tar.offset + 2 * tarfile.BLOCKSIZE


def cuts(size: int) -> list[int]:
    """Truncation points: spread over the file, and the last bytes (end markers, checksums)."""
    spread = [size * k // 9 for k in range(1, 9)]
    tail = [size - n for n in (1, 2, 4, 8, 512, 1024, 1536) if size - n > 0]
    return sorted(set(spread + tail))


# -- item 6: the finding ------------------------------------------------------------------------


def test_streamed_untar_refuses_a_truncated_tar_gz(nginx: NginxServer, tmp_path: Path) -> None:
    """The finding: ``Untar(stream=True)`` extracted 10 of 20 members and recorded ``done``.
    Failed before the fix: the download returned with ``extracted.status == 'extracted'``."""
    full = tar_bytes(dataset(6, files=20), "gz")
    cut = full[: len(full) // 2]
    url = nginx.add(f"h-extract/{tmp_path.name}/half.tar.gz", cut)
    archive = tmp_path / "half.tar.gz"
    with quick() as d, pytest.raises(CorruptArchive) as info:
        d.download(url, archive, process=Untar(stream=True))
    assert_refused(archive, cut, tmp_path / "half", info.value)
    assert "truncated" in str(info.value) or "end" in str(info.value)


# -- item 6: the family -------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "after"])
@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c or "plain")
def test_every_truncation_of_every_tar_is_refused(
    nginx: NginxServer, tmp_path: Path, codec: str, stream: bool
) -> None:
    """A sweep over truncation points: never success, always ``CorruptArchive``."""
    if codec == "zst":
        pytest.importorskip("zstandard")
    full = tar_bytes(shard(7), codec)
    for at in cuts(tar_end(full) if codec == "" else len(full)):
        cut = full[:at]
        name = f"h-extract/{tmp_path.name}/{at}/{tar_name(codec)}"
        url = nginx.add(name, cut)
        folder = tmp_path / str(at)
        archive = folder / tar_name(codec)
        with quick() as d, pytest.raises(CorruptArchive) as info:
            d.download(url, archive, process=Untar(stream=stream))
        assert_refused(archive, cut, folder / "shard", info.value)


@pytest.mark.parametrize("codec", ["gz", "bz2", "xz", "zst"])
def test_every_truncation_of_a_single_compressed_file_is_refused(
    nginx: NginxServer, tmp_path: Path, codec: str
) -> None:
    if codec == "zst":
        pytest.importorskip("zstandard")
    full = compress(os.urandom(20_000) + b"a" * 200_000, codec)
    for at in cuts(len(full)):
        cut = full[:at]
        url = nginx.add(f"h-extract/{tmp_path.name}/{at}/data.csv.{codec}", cut)
        archive = tmp_path / str(at) / f"data.csv.{codec}"
        with quick() as d, pytest.raises(CorruptArchive) as info:
            d.download(url, archive, process=Decompress())
        assert_refused(archive, cut, archive.with_name("data.csv"), info.value)


def test_every_truncation_of_a_zip_is_refused(nginx: NginxServer, tmp_path: Path) -> None:
    full = zip_bytes(dataset(8, files=8))
    for at in cuts(len(full)):
        cut = full[:at]
        url = nginx.add(f"h-extract/{tmp_path.name}/{at}/shard.zip", cut)
        archive = tmp_path / str(at) / "shard.zip"
        with quick() as d, pytest.raises(CorruptArchive) as info:
            d.download(url, archive, process=Unzip())
        assert_refused(archive, cut, archive.with_name("shard"), info.value)


def test_a_zip_with_a_damaged_member_is_corrupt_not_a_raw_zlib_error(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    """Deflate data overwritten in the middle: ``zlib.error`` escaped untyped before."""
    full = bytearray(zip_bytes({"a.bin": os.urandom(64) + b"z" * 50_000}))
    middle = 30 + len("a.bin") + 20  # inside the first member's compressed data
    full[middle : middle + 16] = b"\xff" * 16
    url = fault_server.add("damaged.zip", bytes(full))
    archive = tmp_path / "damaged.zip"
    with quick() as d, pytest.raises(CorruptArchive) as info:
        d.download(url, archive, process=Unzip())
    assert_refused(archive, bytes(full), tmp_path / "damaged", info.value)


def test_a_zip_without_its_central_directory_is_corrupt(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    full = zip_bytes(dataset(9, files=4))
    directory = full.rfind(b"PK\x01\x02", 0, full.find(b"PK\x05\x06"))
    first = full.find(b"PK\x01\x02")
    cut = full[:first]  # local entries only: no central directory, no end record
    assert 0 < first <= directory
    url = fault_server.add("nodir.zip", cut)
    archive = tmp_path / "nodir.zip"
    with quick() as d, pytest.raises(CorruptArchive) as info:
        d.download(url, archive, process=Unzip())
    assert_refused(archive, cut, tmp_path / "nodir", info.value)


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "after"])
def test_a_tar_without_its_end_blocks_is_corrupt(
    fault_server: FaultServer, tmp_path: Path, stream: bool
) -> None:
    """Every member complete, but no two zero blocks: Python's tarfile calls that success."""
    raw = tar_bytes(dataset(10, files=6))
    body = raw.rstrip(b"\0")
    body += b"\0" * (-len(body) % 512)
    url = fault_server.add("noend.tar", body)
    archive = tmp_path / "noend.tar"
    with quick() as d, pytest.raises(CorruptArchive, match="end-of-archive") as info:
        d.download(url, archive, process=Untar(stream=stream))
    assert_refused(archive, body, tmp_path / "noend", info.value)


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "after"])
def test_a_tar_header_with_a_bad_checksum_mid_archive_is_corrupt(
    fault_server: FaultServer, tmp_path: Path, stream: bool
) -> None:
    """tarfile ends the member list silently at a damaged header; that is not the end."""
    raw = bytearray(tar_bytes({"a.txt": b"a" * 600, "b.txt": b"b" * 10, "c.txt": b"c"}))
    second = 512 + 1024  # a.txt: one header block and two data blocks
    assert raw[second : second + 5] == b"b.txt"
    raw[second + 148 : second + 156] = b"0000000\0"  # its checksum field
    url = fault_server.add("badsum.tar", bytes(raw))
    archive = tmp_path / "badsum.tar"
    with quick() as d, pytest.raises(CorruptArchive) as info:
        d.download(url, archive, process=Untar(stream=stream))
    assert_refused(archive, bytes(raw), tmp_path / "badsum", info.value)


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "after"])
def test_gzip_with_trailing_garbage_is_corrupt(
    fault_server: FaultServer, tmp_path: Path, stream: bool
) -> None:
    data = tar_bytes(dataset(11, files=4), "gz") + b"this is not gzip"
    url = fault_server.add("garbage.tar.gz", data)
    archive = tmp_path / "garbage.tar.gz"
    with quick() as d, pytest.raises(CorruptArchive, match="after the end") as info:
        d.download(url, archive, process=Untar(stream=stream))
    assert_refused(archive, data, tmp_path / "garbage", info.value)


@pytest.mark.parametrize("codec", ["bz2", "xz", "zst"])
def test_trailing_garbage_after_any_compressed_file_is_corrupt(
    fault_server: FaultServer, tmp_path: Path, codec: str
) -> None:
    """bz2 and lzma readers of the standard library silently ignore trailing garbage."""
    if codec == "zst":
        pytest.importorskip("zstandard")
    data = compress(b"rows\n" * 1000, codec) + b"GARBAGE!"
    url = fault_server.add(f"t.csv.{codec}", data)
    archive = tmp_path / f"t.csv.{codec}"
    with quick() as d, pytest.raises(CorruptArchive) as info:
        d.download(url, archive, process=Decompress())
    assert_refused(archive, data, tmp_path / "t.csv", info.value)


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "after"])
def test_concatenated_gzip_members_and_nul_padding_are_legal(
    fault_server: FaultServer, tmp_path: Path, stream: bool
) -> None:
    """``cat a.gz b.gz`` is one valid gzip file (RFC 1952), and NUL padding after the last
    member is what ``gzip -d`` accepts; neither may be refused."""
    raw = tar_bytes(dataset(12, files=6))
    half = len(raw) // 2
    data = gzip.compress(raw[:half]) + gzip.compress(raw[half:]) + b"\0" * 700
    url = fault_server.add("two.tar.gz", data)
    with quick() as d:
        r = d.download(url, tmp_path / "two.tar.gz", process=Untar(stream=stream))
    assert r.extracted is not None
    assert r.extracted.status == "extracted"
    assert r.extracted.streamed is stream
    got = {str(p.relative_to(tmp_path / "two")) for p in (tmp_path / "two").rglob("*.json")}
    assert len(got) == 6


def test_data_after_the_tar_end_marker_is_corrupt(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    """Two archives concatenated: GNU tar and Python read only the first; refuse instead."""
    data = tar_bytes({"a.txt": b"a"}) + tar_bytes({"b.txt": b"b"})
    url = fault_server.add("twice.tar", data)
    archive = tmp_path / "twice.tar"
    with quick() as d, pytest.raises(CorruptArchive, match="after the end-of-archive") as info:
        d.download(url, archive, process=Untar())
    assert_refused(archive, data, tmp_path / "twice", info.value)


def test_a_truncated_streamed_archive_in_a_batch_is_recorded_failed(
    nginx: NginxServer, tmp_path: Path
) -> None:
    """Batches record extraction in the ledger: a truncated tar.zst must not become ``done``."""
    pytest.importorskip("zstandard")
    full = tar_bytes(shard(13, files=10), "zst")
    cut = full[: len(full) - 70_000]  # inside the last frame's blocks
    base = nginx.add(f"h-extract/{tmp_path.name}/b/s.tar.zst", cut).rsplit("/", 1)[0]
    dest = tmp_path / "out"
    with quick() as d:
        result = d.download_many([base + "/s.tar.zst"], dest, process=Untar(stream=True))
    assert len(result.failed) == 1
    assert isinstance(result.failed[0][1], CorruptArchive), result.failed
    assert (dest / "s.tar.zst").read_bytes() == cut
    assert not (dest / "s").exists()
    with sqlite3.connect(dest / ".resumable" / "ledger.sqlite") as db:
        rows = db.execute("SELECT record FROM extracted").fetchall()
    assert rows
    assert all(json.loads(r[0])["state"] != "done" for r in rows)


# -- item 14: errors outside the tree -----------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_ftp_to_a_closed_port_is_a_typed_connection_error(tmp_path: Path) -> None:
    """The finding: a raw ``ConnectionRefusedError`` from the fsspec filesystem constructor."""
    port = closed_port()
    with quick() as d, pytest.raises(ResumableError) as info:
        d.download(f"ftp://127.0.0.1:{port}/x.bin", tmp_path / "x.bin")
    chain = []
    error: BaseException | None = info.value
    while error is not None:
        chain.append(error)
        error = error.__cause__
    assert any(isinstance(e, resumable.ConnectionFailed) for e in chain), chain
    assert not (tmp_path / "x.bin").exists()


def test_a_nul_byte_in_dest_is_invalid_before_any_request(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    url = fault_server.add("f.bin", b"x" * 100)
    with quick() as d, pytest.raises(InvalidArgument, match="NUL"):
        d.download(url, str(tmp_path / "a\0b.bin"))
    assert fault_server.log == []


def test_a_symlink_loop_under_dest_dir_is_invalid(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    """The finding: a raw ``RuntimeError`` from ``Path.resolve`` (a failed item, and ``plan``)."""
    url = fault_server.add("f.bin", b"x" * 100)
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    with quick() as d:
        result = d.download_many([(url, "loop/f.bin")], tmp_path)
        plan = d.plan([(url, "loop/f.bin")], tmp_path)
    assert len(result.failed) == 1
    assert isinstance(result.failed[0][1], InvalidArgument), result.failed
    assert "symbolic link" in str(result.failed[0][1])
    assert [type(e) for _, e in plan.failed] == [InvalidArgument]
    assert fault_server.log == []


def test_a_symlink_loop_in_a_tar_is_unsafe_not_a_disk_error(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    """The finding: ``LocalError('File exists')``, which the docs reserve for the disk."""
    data = tar_bytes(
        [
            tar_member("a", tarfile.SYMTYPE, "b"),
            tar_member("b", tarfile.SYMTYPE, "a"),
            (tar_member("a/x.txt"), b"through the loop"),
        ]
    )
    url = fault_server.add("loop.tar", data)
    with quick() as d, pytest.raises(UnsafeArchive, match="symlink"):
        d.download(url, tmp_path / "loop.tar", process=Untar())
    assert not (tmp_path / "loop").exists()


# -- item 14: the family ------------------------------------------------------------------------


def test_a_dest_that_is_a_fifo_is_refused_without_blocking(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    url = fault_server.add("f.bin", b"x" * 100)
    fifo = tmp_path / "f.bin"
    os.mkfifo(fifo)
    with quick() as d, pytest.raises(InvalidArgument, match="not a regular file"):
        d.download(url, fifo)
    assert fault_server.log == []


def test_an_over_long_item_name_fails_that_item_only(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    """A 300-byte name: the worker thread died on the raw ``OSError`` and the item was lost."""
    url = fault_server.add("f.bin", b"x" * 100)
    with quick() as d:
        result = d.download_many([(url, "n" * 300), (url, "ok.bin")], tmp_path)
    assert len(result.ok) == 1
    assert len(result.failed) == 1
    assert isinstance(result.failed[0][1], InvalidArgument)
    assert "too long" in str(result.failed[0][1])


def test_a_symlink_loop_in_an_items_dest_folder_is_invalid(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    url = fault_server.add("f.bin", b"x" * 100)
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "b").symlink_to("c")
    (tmp_path / "a" / "c").symlink_to("b")
    with quick() as d:
        result = d.download_many([resumable.Item(url, "a/b/deep/f.bin")], tmp_path)
    assert [type(e) for _, e in result.failed] == [InvalidArgument], result.failed
    assert fault_server.log == []


def test_an_unexpected_error_leaves_download_typed_with_its_cause(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The last-resort guard: a bug below becomes a typed error, logged, cause kept."""
    from resumable.testing import MemorySource

    def bug(*args: object, **kwargs: object) -> None:
        raise KeyError("a bug in a source")

    broken = MemorySource({"mem://b/x.bin": b"x"})
    broken.stat = broken.open = bug  # type: ignore[assignment, method-assign]
    d = ResumableDownloader(sources={"mem": broken})
    with caplog.at_level(logging.ERROR, "resumable"), pytest.raises(ResumableError) as info:
        d.download("mem://b/x.bin", tmp_path / "x.bin")
    assert isinstance(info.value.__cause__, KeyError)
    assert "KeyError" in str(info.value)
    assert any("KeyError" in r.getMessage() or r.exc_info for r in caplog.records)


def test_a_progress_callbacks_own_exception_still_propagates_unchanged(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    """docs/progress.md: an exception raised by the callback propagates to the caller."""
    url = fault_server.add("f.bin", b"x" * 100_000)

    class Mine(Exception):
        pass

    def progress(event: resumable.ProgressEvent) -> None:
        raise Mine("from the callback")

    with quick() as d, pytest.raises(Mine):
        d.download(url, tmp_path / "f.bin", progress=progress)


def test_enospc_like_errors_while_extracting_stay_local_errors() -> None:
    """The split the docs make: a disk failure while extracting is a LocalError."""
    from resumable.extract._tar import member_error

    full = member_error(OSError(errno.ENOSPC, "No space left on device"), "a.tar", "m")
    assert type(full) is resumable.LocalError
    shape = member_error(OSError(errno.EEXIST, "File exists"), "a.tar", "m")
    assert isinstance(shape, CorruptArchive)


@pytest.mark.parametrize(
    "bad",
    [
        ("URL", 5),
        ("URL", "dest-as-int"),
        ("URL", b"bytes"),
        "http://[::1/malformed.bin",
        "item-with-int-url",
    ],
    ids=["int-dest", "str-dest-ok-control", "bytes-dest", "malformed-url", "int-url"],
)
def test_a_batch_item_of_a_wrong_type_fails_alone(
    fault_server: FaultServer, tmp_path: Path, bad: object
) -> None:
    """A raw ``TypeError`` from one item stopped the feeder: the rest of the batch was lost."""
    url = fault_server.add("f.bin", b"x" * 100)
    other = fault_server.add("g.bin", b"y" * 100)
    if bad == "item-with-int-url":
        bad = resumable.Item(5)  # type: ignore[arg-type]
    elif isinstance(bad, tuple):
        bad = (url, bad[1])
    with quick() as d:
        result = d.download_many([bad, other], tmp_path)
    assert (tmp_path / "g.bin").read_bytes() == b"y" * 100, "the other item must still run"
    if bad == (url, "dest-as-int"):
        assert not result.failed  # the control: a str dest is fine
        return
    assert [type(e) for _, e in result.failed] == [InvalidArgument], result.failed


def test_the_cli_types_an_unexpected_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CLI is an entry point too: a bug is reported as a typed error, exit code 1."""
    from resumable import cli

    def bug(*args: object) -> int:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(cli, "run_download", bug)
    code = cli.main(["http://127.0.0.1:9/x.bin"])
    assert code == cli.EXIT_FAILED
    err = capsys.readouterr().err
    assert "unexpected ZeroDivisionError: a bug" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "after"])
def test_a_tar_zst_cut_in_its_last_block_is_corrupt(
    fault_server: FaultServer, tmp_path: Path, stream: bool
) -> None:
    """The members end one zstd block, the end-of-archive zeros are the next: cut that block
    and ``zstandard``'s reader hands over every member whole, then stops without an error."""
    zstandard = pytest.importorskip("zstandard")
    raw = tar_bytes(dataset(14, files=6))
    end = tar_end(raw) - 2 * tarfile.BLOCKSIZE  # where the members end
    packer = zstandard.ZstdCompressor().compressobj()
    head = packer.compress(raw[:end]) + packer.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
    full = head + packer.compress(raw[end:]) + packer.flush()
    cut = full[: len(head) + (len(full) - len(head)) // 2]
    url = fault_server.add("lastblock.tar.zst", cut)
    archive = tmp_path / "lastblock.tar.zst"
    with quick() as d, pytest.raises(CorruptArchive, match="zstd data is truncated") as info:
        d.download(url, archive, process=Untar(stream=stream))
    assert_refused(archive, cut, tmp_path / "lastblock", info.value)


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "after"])
def test_a_plain_tar_whose_first_name_looks_like_bzip2_is_still_a_tar(
    fault_server: FaultServer, tmp_path: Path, stream: bool
) -> None:
    """The compression is sniffed from the first bytes; a tar's first bytes are a name."""
    data = tar_bytes({"BZh91AY&SY.txt": b"not bzip2", "b.txt": b"b"})
    url = fault_server.add("named.tar", data)
    with quick() as d:
        r = d.download(url, tmp_path / "named.tar", process=Untar(stream=stream))
    assert r.extracted is not None
    assert (tmp_path / "named" / "BZh91AY&SY.txt").read_bytes() == b"not bzip2"


WRONG_TYPES = {
    "retry='x'": lambda: ResumableDownloader(retry="x"),  # type: ignore[arg-type]
    "timeouts=5": lambda: ResumableDownloader(timeouts=5),  # type: ignore[arg-type]
    "sources={5: ...}": lambda: ResumableDownloader(sources={5: None}),  # type: ignore[dict-item]
    "rate_limit='1M'": lambda: ResumableDownloader(rate_limit="1M"),  # type: ignore[arg-type]
    "max_per_host='2'": lambda: ResumableDownloader(max_per_host="2"),  # type: ignore[arg-type]
    "RetryPolicy(attempts='3')": lambda: RetryPolicy(attempts="3"),  # type: ignore[arg-type]
    "Timeouts(stall='3')": lambda: Timeouts(stall="3"),  # type: ignore[arg-type]
    "Timeouts(stall=nan)": lambda: Timeouts(stall=float("nan")),
    "Untar(5)": lambda: Untar(5),  # type: ignore[arg-type]
    "Untar('a\\0b')": lambda: Untar("a\0b"),
    "Untar(route={'*': 'a\\0b'})": lambda: Untar(route={"*": "a\0b"}),
    "Untar(stream='yes')": lambda: Untar(stream="yes"),  # type: ignore[arg-type]
    "Unzip(delete_archive='yes')": lambda: Unzip(delete_archive="yes"),  # type: ignore[arg-type]
    "ExtractLimits(max_bytes='5')": lambda: resumable.ExtractLimits(max_bytes="5"),  # type: ignore[arg-type]
    "ExtractLimits(ratio_floor='x')": lambda: resumable.ExtractLimits(ratio_floor="x"),  # type: ignore[arg-type]
    "ExtractLimits(max_ratio=nan)": lambda: resumable.ExtractLimits(max_ratio=float("nan")),
}


@pytest.mark.parametrize("make", list(WRONG_TYPES.values()), ids=list(WRONG_TYPES))
def test_a_setting_of_the_wrong_type_is_invalid_at_construction(make: object) -> None:
    """A raw ``TypeError`` from the first comparison, or a setting accepted and failing later
    inside a download: both were possible before."""
    with pytest.raises(InvalidArgument):
        make()  # type: ignore[operator]


# -- a fuzz pass: damaged archives end as a typed extraction error or a correct extraction -----

FUZZ_SOURCES = {
    "tar": lambda: tar_bytes(shard(15, files=4)),
    "tar.gz": lambda: tar_bytes(shard(15, files=4), "gz"),
    "tar.bz2": lambda: tar_bytes(shard(15, files=4), "bz2"),
    "tar.xz": lambda: tar_bytes(shard(15, files=4), "xz"),
    "tar.zst": lambda: tar_bytes(shard(15, files=4), "zst"),
    "zip": lambda: zip_bytes(shard(15, files=4)),
    "csv.gz": lambda: compress(b"a,b\n" * 5000, "gz"),
    "csv.xz": lambda: compress(b"a,b\n" * 5000, "xz"),
}
_FUZZ_CACHE: dict[str, bytes] = {}


def fuzz_archive(kind: str) -> bytes:
    if kind not in _FUZZ_CACHE:
        _FUZZ_CACHE[kind] = FUZZ_SOURCES[kind]()
    return _FUZZ_CACHE[kind]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(sorted(FUZZ_SOURCES)),
    cut=st.floats(0.0, 1.0),
    flips=st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(0, 255)), max_size=4),
    tail=st.binary(max_size=8),
    stream=st.booleans(),
)
def test_a_damaged_archive_is_a_typed_error_or_a_correct_extraction(
    kind: str, cut: float, flips: list[tuple[float, int]], tail: bytes, stream: bool
) -> None:
    """Random cuts, overwritten bytes and appended bytes: never a raw exception, never an
    ``InternalError`` (an untranslated one), never a ``done`` record after an error."""
    pytest.importorskip("zstandard")
    from resumable.testing import MemorySource

    original = fuzz_archive(kind)
    data = bytearray(original[: max(1, int(len(original) * cut))])
    for where, value in flips:
        data[min(len(data) - 1, int(len(data) * where))] = value
    data += tail
    name = f"fuzz.{kind}"
    processor = (
        Unzip() if kind == "zip" else Untar(stream=stream) if "tar" in kind else Decompress()
    )
    with tempfile.TemporaryDirectory() as folder:
        archive = Path(folder) / name
        d = ResumableDownloader(sources={"mem": MemorySource({f"mem://b/{name}": bytes(data)})})
        try:
            d.download(f"mem://b/{name}", archive, process=processor)
        except (resumable.ExtractionError, resumable.LocalError):
            marker = archive.with_name(name + ".extracted.json")
            assert json.loads(marker.read_text())["state"] != "done"
            assert not archive.with_name(name + ".extracting").exists()


CONFLICTS = {
    "tar: a file, then a member below it": lambda: tar_bytes({"a": b"file", "a/b": b"x"}),
    "tar: a folder, then a file of its name": lambda: tar_bytes({"a/": b"", "a": b"file"}),
    "zip: a folder, then a file of its name": lambda: zip_bytes({"a/": b"", "a": b"file"}),
}


@pytest.mark.parametrize("make", list(CONFLICTS.values()), ids=list(CONFLICTS))
def test_members_of_incompatible_kinds_are_corrupt_not_a_disk_error(
    fault_server: FaultServer, tmp_path: Path, make: object
) -> None:
    """The archive's shape, not the disk: ``CorruptArchive`` (it was ``LocalError``)."""
    data = make()  # type: ignore[operator]
    name = "conflict.zip" if data[:2] == b"PK" else "conflict.tar"
    url = fault_server.add(name, data)
    processor = Unzip() if name.endswith(".zip") else Untar()
    with quick() as d, pytest.raises(CorruptArchive, match="conflicting members") as info:
        d.download(url, tmp_path / name, process=processor)
    assert_refused(tmp_path / name, data, tmp_path / "conflict", info.value)


@pytest.mark.parametrize("codec", ["gz", "bz2", "xz", "zst"])
def test_concatenated_streams_are_one_file(
    fault_server: FaultServer, tmp_path: Path, codec: str
) -> None:
    """``pigz``/``pbzip2``/``xz -T``/``zstd -T`` write several streams; xz allows NUL stream
    padding between them (a multiple of 4 bytes), gzip readers accept it too."""
    if codec == "zst":
        pytest.importorskip("zstandard")
    padding = b"" if codec in ("bz2", "zst") else b"\0" * 8
    data = compress(b"first,\n" * 3000, codec) + padding + compress(b"second\n" * 3000, codec)
    url = fault_server.add(f"two.csv.{codec}", data)
    with quick() as d:
        d.download(url, tmp_path / f"two.csv.{codec}", process=Decompress())
    assert (tmp_path / "two.csv").read_bytes() == b"first,\n" * 3000 + b"second\n" * 3000


def test_a_fifo_at_a_batch_items_destination_fails_that_item(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    """A batch replaced the FIFO with the file; a single download refuses it: the same rule."""
    url = fault_server.add("f.bin", b"x" * 100)
    os.mkfifo(tmp_path / "f.bin")
    with quick() as d:
        result = d.download_many([url], tmp_path)
    assert [type(e) for _, e in result.failed] == [InvalidArgument], result.failed
    assert "not a regular file" in str(result.failed[0][1])
    assert (tmp_path / "f.bin").is_fifo()
    assert [r.method for r in fault_server.log if r.method == "GET"] == []


def test_an_unexpected_error_quoting_a_secret_is_typed_without_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The README: credentials never reach a message, a traceback or a log record; so the
    original is not chained when its text quotes one."""
    import traceback

    from resumable.testing import MemorySource

    def bug(*args: object, **kwargs: object) -> None:
        raise RuntimeError("GET https://h/x.bin?X-Amz-Signature=SECRET123 failed")

    broken = MemorySource({"mem://b/x.bin": b"x"})
    broken.stat = broken.open = bug  # type: ignore[assignment, method-assign]
    d = ResumableDownloader(sources={"mem": broken})
    with (
        caplog.at_level(logging.DEBUG, "resumable"),
        pytest.raises(resumable.InternalError) as info,
    ):
        d.download("mem://b/x.bin", tmp_path / "x.bin")
    shown = "".join(traceback.format_exception(info.value))
    assert "SECRET123" not in shown
    assert "X-Amz-Signature=REDACTED" in str(info.value)
    assert all("SECRET123" not in r.getMessage() for r in caplog.records)


PUBLIC_FUNCTIONS = {
    "register(5, ...)": lambda: resumable.register(5, object),  # type: ignore[arg-type]
    "register('zz', 5)": lambda: resumable.register("zz", 5),  # type: ignore[arg-type]
    "read_links(5)": lambda: list(resumable.read_links(5)),  # type: ignore[arg-type]
}


@pytest.mark.parametrize("call", list(PUBLIC_FUNCTIONS.values()), ids=list(PUBLIC_FUNCTIONS))
def test_other_public_functions_refuse_wrong_types_typed(call: object) -> None:
    with pytest.raises(InvalidArgument):
        call()  # type: ignore[operator]


def test_a_registered_source_that_cannot_be_imported_is_invalid(tmp_path: Path) -> None:
    """It raised a raw ``ModuleNotFoundError`` on first use."""
    resumable.register("hxbroken", "no_such_module_anywhere:Source")
    with quick() as d, pytest.raises(InvalidArgument, match="cannot be loaded"):
        d.download("hxbroken://b/x.bin", tmp_path / "x.bin")


class Dribble(io.RawIOBase):
    """A reader that returns a few bytes at a time, as a file still being downloaded does."""

    def __init__(self, data: bytes, step: int = 7) -> None:
        super().__init__()
        self.data, self.pos, self.step = data, 0, step

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self.step, len(self.data) - self.pos)
        buffer[:n] = self.data[self.pos : self.pos + n]
        self.pos += n
        return n


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c or "plain")
def test_the_decoder_reads_a_dribbling_source_whole_and_refuses_it_cut(codec: str) -> None:
    """The reader every processor uses, fed a few bytes at a time: the exact bytes when the
    input is whole; ``CorruptArchive`` when the compressed input is cut anywhere."""
    from resumable.extract._codec import decoded

    if codec == "zst":
        pytest.importorskip("zstandard")
    raw = tar_bytes(shard(16, files=2))
    data = tar_bytes(shard(16, files=2), codec)
    stream, _ = decoded(Dribble(data, step=997), "x")
    assert stream.read() == raw
    if codec:
        for at in (len(data) // 3, len(data) - 1):
            with pytest.raises(CorruptArchive):
                decoded(Dribble(data[:at], step=997), "x")[0].read()


def test_a_ca_bundle_that_does_not_exist_is_invalid_at_construction(tmp_path: Path) -> None:
    """It was accepted, and failed only inside the first HTTPS request."""
    with pytest.raises(InvalidArgument, match="no CA bundle"):
        ResumableDownloader(verify=tmp_path / "missing-ca.pem")
