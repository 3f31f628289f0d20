"""Expected digests are validated before any traffic; hashing is one ordered pass."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from resumable import ChecksumMismatch, InvalidArgument, SizeMismatch
from resumable.verify import (
    BackgroundHasher,
    Digests,
    InlineHasher,
    check_digests,
    check_size,
    hash_file,
    parse_expected,
)

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
EMPTY_MD5 = hashlib.md5(b"").hexdigest()


def test_parse_expected_accepts_sha256_and_any_hashlib_checksum() -> None:
    blake = hashlib.blake2b(b"").hexdigest()
    got = parse_expected(
        EMPTY_SHA256.upper(), ["MD5:" + EMPTY_MD5, f"blake2b:{blake}", f"sha1:{'0' * 40}"]
    )
    assert got == {"sha256": EMPTY_SHA256, "md5": EMPTY_MD5, "blake2b": blake, "sha1": "0" * 40}


@pytest.mark.parametrize(
    ("sha256", "checksum"),
    [
        ("abc", None),  # too short
        ("g" * 64, None),  # not hex
        (EMPTY_SHA256 + "0", None),  # too long
        (None, "md5"),  # no colon
        (None, "nosuchalgo:00"),
        (None, "shake_128:00"),
        (None, "md5:" + EMPTY_SHA256),  # a sha256 given as md5
        (EMPTY_SHA256, "sha256:" + "0" * 64),  # two different sha256
        (12345, None),
    ],
)
def test_parse_expected_rejects_malformed_digests(sha256: object, checksum: object) -> None:
    with pytest.raises(InvalidArgument):
        parse_expected(sha256, checksum)  # type: ignore[arg-type]


def test_digests_always_include_sha256_and_update_together() -> None:
    digests = Digests(["md5"])
    digests.update(b"abc")
    assert digests.hexdigests() == {
        "sha256": hashlib.sha256(b"abc").hexdigest(),
        "md5": hashlib.md5(b"abc").hexdigest(),
    }


def test_background_hasher_hashes_in_submission_order_including_a_file_prefix(
    tmp_path: Path,
) -> None:
    prefix = os.urandom(5 << 20)
    (tmp_path / "p").write_bytes(prefix + b"garbage past the prefix")
    blocks = [os.urandom(n) for n in (1, 4096, 3 << 20, 17)]
    hasher = BackgroundHasher(Digests(["md5"]), depth=2)
    hasher.submit_file(tmp_path / "p", len(prefix))
    for block in blocks:
        hasher.submit(block)
    whole = prefix + b"".join(blocks)
    assert hasher.finish() == {
        "sha256": hashlib.sha256(whole).hexdigest(),
        "md5": hashlib.md5(whole).hexdigest(),
    }


def test_a_prefix_shorter_than_claimed_is_an_error_not_a_wrong_digest(tmp_path: Path) -> None:
    (tmp_path / "p").write_bytes(b"short")
    with pytest.raises(OSError, match="shorter"):
        InlineHasher(Digests()).submit_file(tmp_path / "p", 10)
    background = BackgroundHasher(Digests())
    background.submit_file(tmp_path / "p", 10)  # queued: the error surfaces at finish()
    with pytest.raises(OSError, match="shorter"):
        background.finish()


def test_closing_a_background_hasher_stops_its_thread() -> None:
    hasher = BackgroundHasher(Digests())
    hasher.submit(b"x" * 100)
    hasher.close()
    hasher.close()
    assert not hasher._thread.is_alive()


def test_hash_file_reads_a_limited_prefix(tmp_path: Path) -> None:
    data = os.urandom(9 << 20)
    (tmp_path / "f").write_bytes(data)
    seen: list[bytes] = []
    assert hash_file(tmp_path / "f", seen.append, limit=5 << 20) == 5 << 20
    assert b"".join(seen) == data[: 5 << 20]


def test_checks_raise_typed_errors_with_expected_and_actual() -> None:
    check_size(None, 5, url="u")
    check_size(5, 5, url="u")
    with pytest.raises(SizeMismatch) as size:
        check_size(5, 4, url="u")
    assert (size.value.expected, size.value.actual) == (5, 4)
    check_digests({"md5": "a"}, {"md5": "a", "sha256": "b"}, url="u")
    with pytest.raises(ChecksumMismatch) as digest:
        check_digests({"md5": "a"}, {"md5": "c", "sha256": "b"}, url="u")
    assert digest.value.algorithm == "md5"


def test_closing_abandons_a_long_prefix_rehash_promptly(tmp_path: Path) -> None:
    big = tmp_path / "big"
    with open(big, "wb") as f:
        f.truncate(2 << 30)  # 2 GiB sparse: ~1.5 s of hashing if it were not abandoned
    hasher = BackgroundHasher(Digests(["md5"]))
    hasher.submit_file(big, 2 << 30)
    read: list[int] = []
    original = hasher._digests.update

    def counting(block: object) -> None:
        read.append(1)
        original(block)

    hasher._digests.update = counting  # type: ignore[method-assign]
    hasher.close()
    assert not hasher._thread.is_alive()
    assert len(read) < 100  # far fewer than the 512 blocks of 4 MiB in the file


def test_a_partial_is_rehashed_through_its_descriptor_even_once_renamed(tmp_path: Path) -> None:
    """Without a working lock another process may publish (rename) the partial while this one
    resumes it: the re-hash reads the file this process writes, not whatever has the name."""
    data = b"0123456789" * 1000
    path = tmp_path / "f.bin.partial"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDWR)
    try:
        os.replace(path, tmp_path / "f.bin")
        path.write_bytes(b"another file under the old name")
        seen: list[bytes] = []
        assert hash_file(fd, seen.append, limit=len(data)) == len(data)
        assert b"".join(seen) == data
        assert os.lseek(fd, 0, os.SEEK_CUR) == 0  # read with pread: the offset is untouched
    finally:
        os.close(fd)
