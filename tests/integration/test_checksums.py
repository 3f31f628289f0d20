"""Checksum files as first-class inputs: ``read_checksums`` and ``checksums=`` (issue 18, item 3).

The parser is checked against files written by the real coreutils tools (``sha256sum``,
``md5sum``, ``b2sum``, with ``--tag`` and in binary mode, names with spaces, parentheses and a
backslash), and by a property test that formats random names and digests in both formats and
reads them back. Batches run against nginx, whose access log shows which files were fetched.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from servers import FaultServer, NginxServer, make_data

import resumable
from resumable import InvalidArgument, read_checksums
from resumable.cli import EXIT_FAILED, EXIT_OK

KiB = 1 << 10
ALGORITHMS = {"md5": "md5sum", "sha1": "sha1sum", "sha256": "sha256sum", "sha512": "sha512sum"}
NAMES = ["plain.bin", "with space.bin", "paren (1).bin", "back\\slash.bin"]


def digest(algorithm: str, data: bytes) -> str:
    return hashlib.new(algorithm, data).hexdigest()


@pytest.fixture
def files(tmp_path: Path) -> dict[str, bytes]:
    folder = tmp_path / "files"
    folder.mkdir()
    contents = {name: make_data(1000 + i, seed=i) for i, name in enumerate(NAMES)}
    for name, data in contents.items():
        (folder / name).write_bytes(data)
    return contents


def coreutils(tool: str, *args: str, cwd: Path) -> str:
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed")
    return subprocess.run([tool, *args], cwd=cwd, capture_output=True, text=True, check=True).stdout


# -- the parser, against the real tools ---------------------------------------------------------


@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
@pytest.mark.parametrize("flags", [[], ["-b"], ["--tag"]], ids=["text", "binary", "bsd-tag"])
def test_files_written_by_coreutils(
    tmp_path: Path, files: dict[str, bytes], algorithm: str, flags: list[str]
) -> None:
    text = coreutils(ALGORITHMS[algorithm], *flags, *NAMES, cwd=tmp_path / "files")
    assert any(line.startswith("\\") for line in text.splitlines())  # the escaped name
    sums_file = tmp_path / f"{algorithm.upper()}SUMS"
    sums_file.write_text(text)
    expected = {name: f"{algorithm}:{digest(algorithm, data)}" for name, data in files.items()}
    assert read_checksums(sums_file) == expected  # a path (os.PathLike)
    assert read_checksums(str(sums_file)) == expected  # a path (str)
    assert read_checksums(text) == expected  # the text itself


def test_b2sums_is_blake2b_by_its_file_name(tmp_path: Path, files: dict[str, bytes]) -> None:
    """b2sum's untagged 128 hex digits look like SHA-512: the file name (or algorithm=) says."""
    text = coreutils("b2sum", *NAMES, cwd=tmp_path / "files")
    (tmp_path / "B2SUMS").write_text(text)
    expected = {name: f"blake2b:{digest('blake2b', data)}" for name, data in files.items()}
    assert read_checksums(tmp_path / "B2SUMS") == expected
    assert read_checksums(text, algorithm="blake2b") == expected
    assert all(v.startswith("sha512:") for v in read_checksums(text).values())
    tagged = coreutils("b2sum", "--tag", *NAMES, cwd=tmp_path / "files")
    assert read_checksums(tagged) == expected  # BLAKE2b (name) = hex


def test_relative_paths_as_find_writes_them(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "train").mkdir(parents=True)
    (tree / "train" / "a.tar").write_bytes(b"a")
    (tree / "b.tar").write_bytes(b"b")
    text = coreutils("sha256sum", "./train/a.tar", "./b.tar", cwd=tree)
    assert read_checksums(text) == {
        "train/a.tar": "sha256:" + digest("sha256", b"a"),
        "b.tar": "sha256:" + digest("sha256", b"b"),
    }


def test_comments_blank_lines_crlf_bom_and_openssl() -> None:
    md5 = digest("md5", b"x")
    sha = digest("sha256", b"y")
    text = (
        f"\ufeff# published 2026-01-01\r\n\r\n{md5}  x.bin\r\n"
        f"SHA2-256(y.bin)= {sha}\r\n   \n# end\n"
    )
    assert read_checksums(text) == {"x.bin": f"md5:{md5}", "y.bin": f"sha256:{sha}"}


def test_a_malformed_line_names_its_number_not_the_whole_file() -> None:
    good = f"{digest('sha256', b'a')}  a.bin"
    secret_elsewhere = f"{digest('sha256', b'b')}  private-name.bin"
    text = "\n".join(["# header", good, "this is not a checksum line", secret_elsewhere])
    with pytest.raises(InvalidArgument, match=r"line 3\b") as info:
        read_checksums(text)
    assert "private-name" not in str(info.value)
    assert "this is not a checksum line" in str(info.value)


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("abc  a.bin\n", "matches no known algorithm"),  # 3 hex digits
        (f"SHA256 (a.bin) = {'0' * 40}\n", "unknown algorithm 'SHA256' of 40"),
        (f"WHIRLPOOL (a.bin) = {'0' * 128}\n", "unknown algorithm"),
        ("# only comments\n\n", "lists no files"),
        (f"{'0' * 64}  a.bin\n{'1' * 64}  ./a.bin\n", r"listed twice .*lines 1 and 2"),
    ],
)
def test_bad_files(text: str, names: str) -> None:
    with pytest.raises(InvalidArgument, match=names):
        read_checksums(text)


def test_a_path_that_does_not_exist_is_named(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="does not exist"):
        read_checksums(str(tmp_path / "SHA256SUMS"))
    with pytest.raises(InvalidArgument, match="does not exist"):
        read_checksums(tmp_path)  # a directory
    with pytest.raises(InvalidArgument, match="path or text"):
        read_checksums(b"abc")  # type: ignore[arg-type]
    (tmp_path / "latin1").write_bytes(b"\xff\xfe  x\n")
    with pytest.raises(InvalidArgument, match="not UTF-8"):
        read_checksums(tmp_path / "latin1")


# -- the property: what GNU and BSD tools write reads back ----------------------------------------

_NAME_CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00/")
# Any name but "." and ".." (not files) and "./x" (listed as "x"): spaces, "*", "#", "(", ")",
# backslashes, newlines and carriage returns (escaped as GNU escapes them) included.
_names = st.text(_NAME_CHARS, min_size=1, max_size=30).filter(lambda n: n not in (".", ".."))
_entries = st.dictionaries(
    _names,
    st.tuples(st.sampled_from(["md5", "sha1", "sha256", "sha512"]), st.binary(min_size=1)),
    min_size=1,
    max_size=8,
)


def gnu_line(name: str, hexdigest: str, binary: bool) -> str:
    """As coreutils writes it: a name with a backslash or newline is escaped, line prefixed."""
    escaped = escape(name)
    prefix = "\\" if escaped != name else ""
    return f"{prefix}{hexdigest} {'*' if binary else ' '}{escaped}"


def bsd_line(name: str, algorithm: str, hexdigest: str) -> str:
    escaped = escape(name)
    prefix = "\\" if escaped != name else ""
    return f"{prefix}{algorithm.upper()} ({escaped}) = {hexdigest}"


def escape(name: str) -> str:
    return name.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(entries=_entries, style=st.sampled_from(["gnu", "gnu-binary", "bsd", "mixed"]))
def test_round_trip(entries: dict[str, tuple[str, bytes]], style: str) -> None:
    lines = []
    expected = {}
    for i, (name, (algorithm, data)) in enumerate(sorted(entries.items())):
        hexdigest = digest(algorithm, data)
        expected[name] = f"{algorithm}:{hexdigest}"
        use_bsd = style == "bsd" or (style == "mixed" and i % 2)
        if use_bsd:
            lines.append(bsd_line(name, algorithm, hexdigest))
        else:
            lines.append(gnu_line(name, hexdigest, binary=style == "gnu-binary"))
    assert read_checksums("\n".join(lines) + "\n") == expected


# -- batches -------------------------------------------------------------------------------------


def serve(nginx: NginxServer, prefix: str, names: list[str]) -> dict[str, bytes]:
    contents = {name: make_data(20 * KiB + i, seed=300 + i) for i, name in enumerate(names)}
    for name, data in contents.items():
        nginx.add(f"{prefix}/{name}", data)
    return contents


def gets(nginx: NginxServer, prefix: str, name: str) -> int:
    return sum(1 for e in nginx.access_log_lines() if e.path == f"/{prefix}/{name}")


def test_download_many_verifies_each_item_by_name(
    nginx: NginxServer, unique_prefix: str, tmp_path: Path
) -> None:
    """A listed item is verified (md5 here: any algorithm), a wrong digest fails that item
    only, and an unlisted item is downloaded without a digest to check."""
    contents = serve(nginx, unique_prefix, ["a.bin", "b.bin", "c.bin"])
    sums = tmp_path / "MD5SUMS"
    sums.write_text(
        f"{digest('md5', contents['a.bin'])}  ./a.bin\n{digest('md5', b'something else')} *b.bin\n"
    )
    template = f"{nginx.url}/{unique_prefix}/{{a,b,c}}.bin"
    with resumable.ResumableDownloader(workers=2) as d:
        result = d.download_many(template, tmp_path / "out", checksums=sums)
    assert sorted(r.path.name for r in result.ok) == ["a.bin", "c.bin"]
    ok = {r.path.name: r for r in result.ok}
    assert ok["a.bin"].digests["md5"] == digest("md5", contents["a.bin"])
    [(_, error)] = result.failed
    assert isinstance(error, resumable.ChecksumMismatch)
    assert "md5 mismatch" in str(error)
    assert not (tmp_path / "out" / "b.bin").exists()
    assert (tmp_path / "out" / "c.bin").read_bytes() == contents["c.bin"]


def test_nested_destinations_match_relative_paths_then_base_names(
    nginx: NginxServer, unique_prefix: str, tmp_path: Path
) -> None:
    contents = serve(nginx, unique_prefix, ["x.bin", "y.bin"])
    x_url, y_url = (f"{nginx.url}/{unique_prefix}/{n}" for n in ("x.bin", "y.bin"))
    sums = {
        "./train/x.bin": "sha256:" + digest("sha256", contents["x.bin"]),
        "y.bin": "sha1:" + digest("sha1", b"not y"),  # listed flat, downloaded to val/y.bin
    }
    result = resumable.ResumableDownloader().download_many(
        [(x_url, "train/x.bin"), (y_url, "val/y.bin")], tmp_path, checksums=sums
    )
    [ok] = result.ok
    assert ok.path == tmp_path / "train" / "x.bin"
    [(_, error)] = result.failed
    assert isinstance(error, resumable.ChecksumMismatch)
    assert "sha1" in str(error)


def test_a_conflict_with_the_items_own_digest_fails_before_its_request(
    nginx: NginxServer, unique_prefix: str, tmp_path: Path
) -> None:
    contents = serve(nginx, unique_prefix, ["k.bin"])
    url = f"{nginx.url}/{unique_prefix}/k.bin"
    item = resumable.Item(url, sha256=digest("sha256", contents["k.bin"]))
    listed = {"k.bin": "sha256:" + digest("sha256", b"another")}
    result = resumable.ResumableDownloader().download_many([item], tmp_path, checksums=listed)
    [(_, error)] = result.failed
    assert isinstance(error, InvalidArgument)
    assert "contradicts" in str(error)
    assert gets(nginx, unique_prefix, "k.bin") == 0
    # The same digest twice is no conflict.
    same = {"k.bin": "SHA256:" + digest("sha256", contents["k.bin"]).upper()}
    assert resumable.ResumableDownloader().download_many([item], tmp_path, checksums=same).ok


@pytest.mark.parametrize(
    ("checksums", "names"),
    [
        ({"a.bin": "md5:xyz"}, r"checksums\['a.bin'\]"),
        ({"a.bin": "0" * 33}, "no known length"),
        ({}, "empty mapping"),
        (42, "must be a checksum file"),
        ("no-such-SHA256SUMS", "does not exist"),
    ],
)
def test_bad_checksums_fail_before_any_traffic(
    fault_server: FaultServer, tmp_path: Path, checksums: object, names: str
) -> None:
    url = fault_server.add("a.bin", b"a" * 100)
    d = resumable.ResumableDownloader()
    with pytest.raises(InvalidArgument, match=names):
        d.download_many([url], tmp_path, checksums=checksums)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match=names):
        d.start([url], tmp_path, checksums=checksums)  # type: ignore[arg-type]
    assert fault_server.log == []


def test_start_and_a_rerun_skip_by_the_ledger(
    nginx: NginxServer, unique_prefix: str, tmp_path: Path
) -> None:
    contents = serve(nginx, unique_prefix, ["s.bin"])
    url = f"{nginx.url}/{unique_prefix}/s.bin"
    sums = f"{digest('sha256', contents['s.bin'])}  s.bin\n"
    d = resumable.ResumableDownloader()
    first = d.start([url], tmp_path, checksums=sums).wait()
    assert [r.status for r in first.ok] == ["downloaded"]
    again = d.download_many([url], tmp_path, checksums=sums)
    assert [r.status for r in again.ok] == ["skipped"]
    assert gets(nginx, unique_prefix, "s.bin") == 1


# -- the command line ---------------------------------------------------------------------------


def run_cli(*args: str | os.PathLike[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "resumable", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_checksums_file_any_algorithm(
    nginx: NginxServer, unique_prefix: str, tmp_path: Path
) -> None:
    contents = serve(nginx, unique_prefix, ["p.bin", "q.bin"])
    sums = tmp_path / "SHA512SUMS"
    sums.write_text(
        "".join(f"{digest('sha512', data)}  {name}\n" for name, data in contents.items())
    )
    template = f"{nginx.url}/{unique_prefix}/{{p,q}}.bin"
    good = run_cli(template, "--checksums", sums, "-d", tmp_path / "good", "-q")
    assert good.returncode == EXIT_OK, good.stderr
    sums.write_text(f"{digest('sha512', b'wrong')}  q.bin\n")
    bad = run_cli(template, "--checksums", sums, "-d", tmp_path / "bad", "-q")
    assert bad.returncode == EXIT_FAILED
    assert "sha512 mismatch" in bad.stderr
    assert (tmp_path / "bad" / "p.bin").read_bytes() == contents["p.bin"]


def test_cli_checksums_usage_errors(tmp_path: Path) -> None:
    from resumable.cli import EXIT_USAGE, main

    (tmp_path / "SUMS").write_text("garbage\n")
    assert main(["https://h/a.bin", "--checksums", str(tmp_path / "SUMS")]) == EXIT_USAGE
    assert main(["https://h/a.bin", "--checksums", str(tmp_path / "none")]) == EXIT_USAGE


def test_checksums_travel_with_a_fanned_out_batch(
    nginx: NginxServer, unique_prefix: str, tmp_path: Path
) -> None:
    """With ``executor=``, the digests are attached before the items leave this process."""
    from concurrent.futures import ThreadPoolExecutor

    contents = serve(nginx, unique_prefix, ["f0.bin", "f1.bin"])
    sums = {
        "f0.bin": "sha1:" + digest("sha1", contents["f0.bin"]),
        "f1.bin": "sha1:" + digest("sha1", b"not f1"),
    }
    template = f"{nginx.url}/{unique_prefix}/f{{0..1}}.bin"
    with ThreadPoolExecutor(2) as pool, resumable.ResumableDownloader(workers=2) as d:
        result = d.download_many(template, tmp_path, executor=pool, checksums=sums)
    assert [r.path.name for r in result.ok] == ["f0.bin"]
    [(_, error)] = result.failed
    assert isinstance(error, resumable.ChecksumMismatch)
    assert not (tmp_path / "f1.bin").exists()


def test_matching_rules_of_the_table() -> None:
    from resumable.batch.checksums import ChecksumTable

    a, b, c = ("sha256:" + digest("sha256", x) for x in (b"a", b"b", b"c"))
    table = ChecksumTable({"./train/x.tar": a, "val/x.tar": b, "y.tar": c, "deep/er/z.tar": a})
    assert table.lookup("train/x.tar") == a  # as listed
    assert table.lookup("data/train/x.tar") == a  # the listed path is its tail
    assert table.lookup("test/x.tar") is None  # another folder: another file, not verified
    assert table.lookup("sub/y.tar") == c  # listed flat
    assert table.lookup("z.tar") == a  # listed deeper, one candidate
    with pytest.raises(InvalidArgument, match=r"train/x\.tar, val/x\.tar"):
        table.lookup("x.tar")  # two candidates, two digests: no guess
    with pytest.raises(InvalidArgument, match="twice with different digests"):
        ChecksumTable({"a.tar": a, "./a.tar": b})
