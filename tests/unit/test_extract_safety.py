"""Hostile archives are refused with typed errors, and nothing is written outside (or at all).

Every archive here is real (built by ``tests/archives.py``), downloaded through a downloader
(a ``MemorySource``) and verified before the processor sees it, as in production.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest
from archives import (
    MiB,
    compress,
    tar_bytes,
    tar_member,
    zip_bytes,
    zip_link,
    zip_named,
    zip_special,
)

import resumable
from resumable import (
    ArchiveTooLarge,
    CorruptArchive,
    Decompress,
    ExtractionError,
    ExtractLimits,
    ResumableDownloader,
    UnsafeArchive,
    Untar,
    Unzip,
)
from resumable.testing import MemorySource


def fetch(tmp_path: Path, name: str, data: bytes, process: object) -> resumable.DownloadResult:
    source = MemorySource({f"mem://b/{name}": data})
    with ResumableDownloader(sources={"mem": source}) as d:
        return d.download(f"mem://b/{name}", tmp_path / "work" / name, process=process)  # type: ignore[arg-type]


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def assert_nothing_promoted(tmp_path: Path, name: str) -> None:
    """Only the archive and its (failed) record remain; the outside folder is untouched."""
    assert tree(tmp_path / "work") == {name, f"{name}.extracted.json"}
    assert tree(tmp_path / "outside") == set()
    record = (tmp_path / "work" / f"{name}.extracted.json").read_text()
    assert '"state": "failed"' in record


@pytest.fixture(autouse=True)
def outside(tmp_path: Path) -> Path:
    (tmp_path / "outside").mkdir()
    return tmp_path / "outside"


HOSTILE_TARS = {
    "traversal": [(tar_member("../outside/evil.txt"), b"pwned")],
    "nested-traversal": [(tar_member("ok/../../outside/evil.txt"), b"pwned")],
    "absolute": [(tar_member("/tmp/resumable-test-absolute-evil.txt"), b"pwned")],
    "symlink-escape": [
        tar_member("link", tarfile.SYMTYPE, "../outside"),
        (tar_member("link/evil.txt"), b"pwned"),
    ],
    "symlink-absolute": [tar_member("link", tarfile.SYMTYPE, "/etc")],
    "symlink-upward-inside": [  # points up but stays inside: refused all the same (stricter)
        tar_member("a/", tarfile.DIRTYPE),
        tar_member("a/link", tarfile.SYMTYPE, "../b"),
    ],
    "hardlink-outside": [tar_member("hard", tarfile.LNKTYPE, "../outside/secret")],
    "hardlink-absolute": [tar_member("hard", tarfile.LNKTYPE, "/etc/passwd")],
    "char-device": [tar_member("dev", tarfile.CHRTYPE)],
    "block-device": [tar_member("dev", tarfile.BLKTYPE)],
    "fifo": [tar_member("fifo", tarfile.FIFOTYPE)],
}


@pytest.mark.parametrize("case", sorted(HOSTILE_TARS))
@pytest.mark.parametrize("compression", ["", "gz"])
def test_hostile_tar_is_refused_and_nothing_is_written(
    tmp_path: Path, case: str, compression: str
) -> None:
    # A good member first: it must not be promoted either.
    members = [(tar_member("good.txt"), b"fine"), *HOSTILE_TARS[case]]
    name = f"{case}.tar" + (f".{compression}" if compression else "")
    with pytest.raises(UnsafeArchive) as info:
        fetch(tmp_path, name, tar_bytes(members, compression), Untar())
    assert isinstance(info.value, ExtractionError)
    assert isinstance(info.value, ValueError)
    assert info.value.member is not None
    assert info.value.path == str(tmp_path / "work" / name)
    assert_nothing_promoted(tmp_path, name)
    assert not Path("/tmp/resumable-test-absolute-evil.txt").exists()


def test_hostile_routed_tar_leaves_the_shared_folders_untouched(tmp_path: Path) -> None:
    images = tmp_path / "work" / "images"
    images.mkdir(parents=True)
    (images / "earlier.jpg").write_bytes(b"from another shard")
    members = [(tar_member("a.jpg"), b"img"), (tar_member("../outside/b.jpg"), b"evil")]
    with pytest.raises(UnsafeArchive):
        fetch(tmp_path, "s.tar", tar_bytes(members), Untar(route={"*.jpg": "images"}))
    assert tree(images) == {"earlier.jpg"}
    assert tree(tmp_path / "outside") == set()


HOSTILE_ZIPS = {
    "traversal": [zip_named("../outside/evil.txt")],
    "nested-traversal": [zip_named("a/../../outside/evil.txt")],
    "absolute": [zip_named("/tmp/resumable-test-absolute-evil.txt")],
    "windows-absolute": [zip_named("C:\\evil.txt")],
    "backslash-traversal": [zip_named("..\\outside\\evil.txt")],
    "symlink-escape": [zip_link("link", "../outside")],
    "symlink-absolute": [zip_link("link", "/etc/passwd")],
    "special-file": [zip_special("dev")],
}


@pytest.mark.parametrize("case", sorted(HOSTILE_ZIPS))
def test_hostile_zip_is_refused_and_nothing_is_written(tmp_path: Path, case: str) -> None:
    members = [zip_named("good.txt", b"fine"), *HOSTILE_ZIPS[case]]
    with pytest.raises(UnsafeArchive) as info:
        fetch(tmp_path, f"{case}.zip", zip_bytes(members), Unzip())
    assert info.value.member is not None
    assert_nothing_promoted(tmp_path, f"{case}.zip")
    assert not Path("/tmp/resumable-test-absolute-evil.txt").exists()


def test_a_zip_cannot_write_through_a_symlink_it_made(tmp_path: Path) -> None:
    members = [zip_link("dir", "sub"), zip_named("sub/x", b"1"), zip_named("dir/y", b"2")]
    with pytest.raises(UnsafeArchive):
        fetch(tmp_path, "through.zip", zip_bytes(members), Unzip())
    assert_nothing_promoted(tmp_path, "through.zip")


def test_links_that_point_downwards_are_kept(tmp_path: Path) -> None:
    members = [
        (tar_member("data/real.txt"), b"content"),
        tar_member("latest", tarfile.SYMTYPE, "data/real.txt"),
        tar_member("copy.txt", tarfile.LNKTYPE, "data/real.txt"),
    ]
    r = fetch(tmp_path, "links.tar", tar_bytes(members), Untar())
    out = tmp_path / "work" / "links"
    assert (out / "latest").is_symlink()
    assert (out / "latest").read_bytes() == b"content"
    assert (out / "copy.txt").read_bytes() == b"content"
    assert r.extracted is not None
    assert r.extracted.members == 3

    zipped = [zip_named("data/real.txt", b"zipped"), zip_link("latest", "data/real.txt")]
    fetch(tmp_path, "zlinks.zip", zip_bytes(zipped), Unzip())
    zout = tmp_path / "work" / "zlinks"
    assert (zout / "latest").is_symlink()
    assert (zout / "latest").read_bytes() == b"zipped"


# -- bombs ---------------------------------------------------------------------------------------

ZEROS = bytes(80 * MiB)  # well past ratio_floor (64 MiB): the default limits apply


@pytest.fixture(scope="module")
def gz_zeros() -> bytes:
    return compress(ZEROS, "gz")


def test_a_tar_bomb_is_refused_by_the_default_limits_before_writing(tmp_path: Path) -> None:
    # The header declares 80 MiB from an ~80 KiB archive: refused before a byte is written.
    bomb = tar_bytes({"zeros.bin": ZEROS}, "gz")
    assert len(bomb) < MiB
    with pytest.raises(ArchiveTooLarge) as info:
        fetch(tmp_path, "bomb.tar.gz", bomb, Untar())
    assert info.value.limit == "max_ratio"
    assert info.value.actual > 200
    assert_nothing_promoted(tmp_path, "bomb.tar.gz")


def test_a_zip_bomb_is_refused(tmp_path: Path) -> None:
    # A lower ratio_floor keeps the test small; the tar and gzip bombs use the defaults.
    bomb = zip_bytes({f"z{i}.bin": ZEROS[: 4 * MiB] for i in range(2)})
    limits = ExtractLimits(ratio_floor=MiB)
    with pytest.raises(ArchiveTooLarge) as info:
        fetch(tmp_path, "bomb.zip", bomb, Unzip(limits=limits))
    assert info.value.limit == "max_ratio"
    assert_nothing_promoted(tmp_path, "bomb.zip")


def test_a_gzip_bomb_stops_once_past_the_limit(tmp_path: Path, gz_zeros: bytes) -> None:
    with pytest.raises(ArchiveTooLarge) as info:
        fetch(tmp_path, "zeros.bin.gz", gz_zeros, Decompress())
    assert info.value.limit == "max_ratio"
    assert info.value.actual <= 80 * MiB / len(gz_zeros)
    assert_nothing_promoted(tmp_path, "zeros.bin.gz")


def test_max_bytes_and_max_members(tmp_path: Path) -> None:
    members = {f"f{i}.txt": b"x" * 100 for i in range(10)}
    limits = ExtractLimits(max_bytes=500)
    with pytest.raises(ArchiveTooLarge) as info:
        fetch(tmp_path, "many.tar", tar_bytes(members), Untar(limits=limits))
    assert (info.value.limit, info.value.expected) == ("max_bytes", 500)
    with pytest.raises(ArchiveTooLarge) as info:
        fetch(tmp_path, "many.zip", zip_bytes(members), Unzip(limits=ExtractLimits(max_members=3)))
    assert info.value.limit == "max_members"
    # Raised limits let the same archives through.
    r = fetch(tmp_path, "many.tar", tar_bytes(members), Untar(limits=ExtractLimits(max_bytes=1000)))
    assert r.extracted is not None
    assert r.extracted.members == 10


# -- corrupt -------------------------------------------------------------------------------------


def test_corrupt_archives_are_typed(tmp_path: Path) -> None:
    with pytest.raises(CorruptArchive):
        fetch(tmp_path, "not.tar", b"this is not a tar archive at all" * 40, Untar())
    truncated = tar_bytes({"a.bin": bytes(range(256)) * 400}, "gz")[:-200]
    with pytest.raises(CorruptArchive):
        fetch(tmp_path, "cut.tar.gz", truncated, Untar())
    good = bytearray(zip_bytes({"a.txt": b"hello world " * 100}))
    good[40] ^= 0xFF  # inside the deflated data: a CRC or inflate error
    with pytest.raises(CorruptArchive):
        fetch(tmp_path, "bad.zip", bytes(good), Unzip())
    with pytest.raises(CorruptArchive):
        fetch(tmp_path, "plain.gz", b"not compressed", Decompress())
    for name in ("not.tar", "cut.tar.gz", "bad.zip", "plain.gz"):
        assert (tmp_path / "work" / name).exists()  # the verified download is kept
        assert not (tmp_path / "work" / f"{name}.extracting").exists()
