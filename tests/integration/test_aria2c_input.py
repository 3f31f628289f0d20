"""aria2c's input-file format for ``-i`` and aria2c's option spellings (issue 18, item 4).

The list is the kind the SA-1B helper scripts write for ``aria2c -i``: a URI line (with TAB-
separated mirrors), then indented ``out=``, ``dir=``, ``checksum=`` lines and tuning options.
Downloads run the real command against nginx, whose access log shows what was fetched.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from servers import NginxServer, make_data

from resumable import InvalidArgument, Item
from resumable.batch.aria2c_input import is_aria2c_input, read_aria2c_input
from resumable.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, _downloader_options, build_parser, main

KiB, MiB = 1 << 10, 1 << 20


def run(*args: str | os.PathLike[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "resumable", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def in_process(*args: str) -> tuple[int, str]:
    err = io.StringIO()
    code = main(list(args), stdout=io.StringIO(), stderr=err)
    return code, err.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def shards(nginx: NginxServer, unique_prefix: str) -> dict[str, bytes]:
    contents = {f"sa_{i:06d}.tar": make_data(200 * KiB + i, seed=700 + i) for i in range(3)}
    for name, data in contents.items():
        nginx.add(f"{unique_prefix}/{name}", data)
    nginx.add(f"{unique_prefix}-mirror/sa_000001.tar", contents["sa_000001.tar"])
    return contents


def sa1b_list(nginx: NginxServer, prefix: str, shards: dict[str, bytes]) -> str:
    base = f"{nginx.url}/{prefix}"
    return (
        "# aria2c -i sa1b.aria2 -x 16 -s 16 -j 4 -d ./raw\n"
        f"{base}/sa_000000.tar?_nc_ht=scontent&oh=00_AbC\n"
        "  out=sa_000000.tar\n"
        "  dir=images\n"
        f"  checksum=sha-256={sha256(shards['sa_000000.tar'])}\n"
        "  split=16\n"
        "  max-connection-per-server=16\n"
        # the first URI is gone (404): the mirror on the same line serves the file
        f"{base}/missing/sa_000001.tar\t{nginx.url}/{prefix}-mirror/sa_000001.tar\n"
        "\tout=sa_000001.tar\n"
        "\n"
        f"{base}/sa_000002.tar\n"
        f"  checksum=md5={hashlib.md5(shards['sa_000002.tar']).hexdigest()}\n"
    )


def test_an_sa1b_aria2c_list_downloads_verified(
    nginx: NginxServer, unique_prefix: str, shards: dict[str, bytes], tmp_path: Path
) -> None:
    listing = tmp_path / "sa1b.aria2"
    listing.write_text(sa1b_list(nginx, unique_prefix, shards))
    proc = run("-i", listing, "-x", "16", "-s", "16", "-j", "4", "-d", tmp_path / "raw", "-c")
    assert proc.returncode == EXIT_OK, proc.stderr
    assert "Done: 3 files downloaded, 0 errors" in proc.stdout
    raw = tmp_path / "raw"
    assert (raw / "images" / "sa_000000.tar").read_bytes() == shards["sa_000000.tar"]
    assert (raw / "sa_000001.tar").read_bytes() == shards["sa_000001.tar"]
    assert (raw / "sa_000002.tar").read_bytes() == shards["sa_000002.tar"]
    log = nginx.access_log_lines(min_lines=4)
    missing = [e for e in log if e.path == f"/{unique_prefix}/missing/sa_000001.tar"]
    mirror = [e for e in log if e.path == f"/{unique_prefix}-mirror/sa_000001.tar"]
    assert missing
    assert {e.status for e in missing} == {404}
    assert mirror
    assert {e.status for e in mirror} <= {200, 206}
    assert "split" not in proc.stderr  # tuning options are ignored quietly

    again = run("-i", listing, "-d", raw)  # a rerun: everything skipped, nothing fetched
    assert again.returncode == EXIT_OK, again.stderr
    assert "0 files downloaded, 3 skipped" in again.stdout


def test_a_wrong_aria2c_checksum_fails_that_file(
    nginx: NginxServer, unique_prefix: str, shards: dict[str, bytes], tmp_path: Path
) -> None:
    url = f"{nginx.url}/{unique_prefix}/sa_000002.tar"
    listing = tmp_path / "list.aria2"
    listing.write_text(
        f"{url}\n  checksum=sha-512={'ab' * 64}\n  header=Authorization: Bearer x\n"
        f"{nginx.url}/{unique_prefix}/sa_000000.tar\n  out=zero.tar\n"
    )
    proc = run("-i", listing, "-d", tmp_path / "out")
    assert proc.returncode == EXIT_FAILED
    assert "sha512 mismatch" in proc.stderr
    assert "aria2c option header= is not supported and is ignored" in proc.stderr
    assert "Bearer" not in proc.stderr
    assert not (tmp_path / "out" / "sa_000002.tar").exists()
    assert (tmp_path / "out" / "zero.tar").read_bytes() == shards["sa_000000.tar"]


def test_the_parser() -> None:
    lines = [
        "\ufeffhttps://h/a.tar\thttps://m/a.tar\thttps://n/a.tar",
        "  out=renamed.tar",
        "  dir=sub/dir",
        "  checksum=SHA-1=" + "A" * 40,
        "# a comment",
        "https://h/b%20c.tar",
        "  dir=d",
        "s3://bucket/key.bin",
    ]
    assert is_aria2c_input(lines)
    items = read_aria2c_input(lines, "list")
    assert items == [
        Item(
            "https://h/a.tar",
            dest="sub/dir/renamed.tar",
            checksum="sha1:" + "a" * 40,
            mirrors=("https://m/a.tar", "https://n/a.tar"),
        ),
        Item("https://h/b%20c.tar", dest="d/b c.tar"),
        Item("s3://bucket/key.bin"),
    ]


@pytest.mark.parametrize(
    "lines",
    [
        ["https://h/a.tar", "https://h/b.tar"],  # a plain URL list: same in both formats
        ["sa_000000.tar\thttps://h/sa_000000.tar"],  # SA-1B's links format
        ["file_name\tcdn_link", "a.tar\thttps://h/a.tar"],
    ],
)
def test_other_lists_are_not_aria2c(lines: list[str]) -> None:
    assert not is_aria2c_input(lines)


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("  out=a.tar\nhttps://h/a.tar\n", "line 1: an option line before any URI"),
        ("https://h/a.tar\n  checksum=adler32=0a1b2c3d\n", "line 2: .*adler32 cannot be verified"),
        ("https://h/a.tar\n  checksum=sha-256=abc\n", "line 2: .*sha256 must be 64 hex digits"),
        ("https://h/a.tar\n  checksum=sha256\n", "line 2: .*TYPE=HEX"),
        ("https://h/a.tar\n  dir=/etc\n", "line 2: dir=/etc is absolute"),
        ("https://h/a.tar\n  out=\n", "line 2: out= is empty"),
        ("https://h/a.tar\n  out=x\nnot a uri\n", "line 3: expected URIs"),
        ("https://h/a.tar\n  dir=../up\n", "escape"),
        ("https://h/\n  dir=x\n", "no file name; add an out= line"),
    ],
)
def test_bad_lists_are_usage_errors_before_any_traffic(
    tmp_path: Path, text: str, names: str
) -> None:
    listing = tmp_path / "list.aria2"
    listing.write_text(text)
    code, err = in_process("-i", str(listing), "-d", str(tmp_path / "out"))
    if "escape" in names:  # a destination that climbs out fails that item, like any batch item
        assert code == EXIT_FAILED, err
    else:
        assert code == EXIT_USAGE, err
    assert __import__("re").search(names, err), err
    assert not (tmp_path / "out" / "a.tar").exists()


def test_aria2c_spellings_on_one_file(
    nginx: NginxServer, unique_prefix: str, shards: dict[str, bytes], tmp_path: Path
) -> None:
    url = f"{nginx.url}/{unique_prefix}/sa_000001.tar"
    digest = sha256(shards["sa_000001.tar"])
    proc = run(
        url,
        "--continue=true",
        "-s",
        "4",
        "--max-tries",
        "3",
        f"--checksum=sha-256={digest}",
        "--max-overall-download-limit=0",
        "-d",
        tmp_path,
        "-o",
        "one.tar",
    )
    assert proc.returncode == EXIT_OK, proc.stderr
    assert (tmp_path / "one.tar").read_bytes() == shards["sa_000001.tar"]
    bad = run(url, f"--checksum=sha-256={'0' * 64}", "-d", tmp_path / "bad")
    assert bad.returncode == EXIT_FAILED
    assert "sha256 mismatch" in bad.stderr


def test_aria2c_spellings_map_to_the_options() -> None:
    args = build_parser().parse_args(
        ["https://h/a", "-x", "16", "-s", "4", "--max-tries", "5", "--max-overall-download-limit",
         "200K", "--max-concurrent-downloads", "3", "-c"]
    )  # fmt: skip
    options = _downloader_options(args)
    assert options["connections"] == 4  # aria2c: -s pieces, at most -x per server
    assert options["retry"].attempts == 5
    assert options["rate_limit"] == 200 * KiB
    assert options["workers"] == 3
    unlimited = build_parser().parse_args(["https://h/a", "--max-overall-download-limit=0"])
    assert _downloader_options(unlimited)["rate_limit"] is None


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["https://h/a.tar", "--max-tries", "0"], "unlimited"),
        (["https://h/a.tar", "--checksum=adler32=0a1b2c3d"], "adler32 cannot be verified"),
        (["https://h/a.tar", "--checksum=sha-256=zz"], "64 hex digits"),
        (["https://h/{a,b}.tar", f"--checksum=sha-256={'0' * 64}"], "apply to a single URL"),
        (
            ["https://h/a.tar", f"--sha256={'1' * 64}", f"--checksum=sha-256={'0' * 64}"],
            "contradicts",
        ),
    ],
)
def test_aria2c_spelling_usage_errors(
    args: list[str], names: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = in_process(*args)
    err += capsys.readouterr().err  # argparse's own errors go to sys.stderr
    assert code == EXIT_USAGE
    assert names in err, err


def test_read_aria2c_input_errors_are_typed() -> None:
    with pytest.raises(InvalidArgument, match="lists no URIs"):
        read_aria2c_input(["# nothing"], "x")


def test_aria2c_itself_reads_the_list_the_same_way(
    nginx: NginxServer, unique_prefix: str, shards: dict[str, bytes], tmp_path: Path
) -> None:
    """The list is real aria2c syntax: aria2c puts every file where resumable does."""
    import shutil

    if shutil.which("aria2c") is None:
        pytest.skip("aria2c is not installed")
    listing = tmp_path / "sa1b.aria2"
    listing.write_text(sa1b_list(nginx, unique_prefix, shards))
    theirs, ours = tmp_path / "aria2c", tmp_path / "ours"
    theirs.mkdir()
    aria = subprocess.run(
        ["aria2c", "-i", str(listing), "-q", "--max-tries=2", "--retry-wait=1",
         "--auto-file-renaming=false", "--allow-overwrite=true"],
        cwd=theirs, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert aria.returncode == 0, aria.stdout + aria.stderr
    proc = run("-i", listing, "-d", ours)
    assert proc.returncode == EXIT_OK, proc.stderr

    def tree(root: Path) -> dict[str, bytes]:
        return {
            str(p.relative_to(root)): p.read_bytes()
            for p in root.rglob("*")
            if p.is_file() and ".resumable" not in p.parts and not p.name.endswith(".aria2")
        }

    assert tree(theirs) == tree(ours)
    assert len(tree(ours)) == 3
