"""The command line end to end: ``python -m resumable`` against real loopback servers.

Each download test runs the real command in a subprocess (stdout and stderr are pipes, so
progress takes its no-TTY form) and checks the exit code, the output and the files on disk.
Usage errors run ``main()`` in-process: they must fail before any traffic, so no server is
involved and the checks stay fast.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from servers import FaultServer, NginxServer, make_data

import resumable
from resumable.cli import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    main,
    parse_size,
)

KiB, MiB = 1 << 10, 1 << 20


def run(
    *args: str | os.PathLike[str], stdin: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "resumable", *map(str, args)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def in_process(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(args), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def serve_shards(nginx: NginxServer, prefix: str, count: int, size: int) -> dict[str, bytes]:
    shards = {f"shard-{i:03d}.tar": make_data(size, seed=100 + i) for i in range(count)}
    for name, data in shards.items():
        nginx.add(f"{prefix}/{name}", data)
    return shards


def test_template_downloads_then_skips(nginx: NginxServer, unique_prefix: str, tmp_path: Path):
    shards = serve_shards(nginx, unique_prefix, 3, 300 * KiB)
    template = f"{nginx.url}/{unique_prefix}/shard-{{000..002}}.tar"

    first = run(template, "-d", tmp_path, "-j", "2")
    assert first.returncode == EXIT_OK, first.stderr
    assert "Done: 3 files downloaded, 0 errors" in first.stdout
    assert f"into {tmp_path.resolve()}" in first.stdout
    for name, data in shards.items():
        assert (tmp_path / name).read_bytes() == data
    # Not a terminal: no carriage-return bars, a last progress line instead.
    assert "\r" not in first.stderr
    assert "3/3 files" in first.stderr

    again = run(template, "-d", tmp_path)
    assert again.returncode == EXIT_OK, again.stderr
    assert "Done: 0 files downloaded, 3 skipped, 0 errors" in again.stdout
    assert "0 B fetched" in again.stdout


def test_some_items_failed_exits_1(nginx: NginxServer, unique_prefix: str, tmp_path: Path):
    serve_shards(nginx, unique_prefix, 2, 100 * KiB)
    template = f"{nginx.url}/{unique_prefix}/shard-{{000..002}}.tar"  # shard-002 is missing

    proc = run(template, "-d", tmp_path, "-q")
    assert proc.returncode == EXIT_FAILED
    assert proc.stdout == ""  # --quiet: no summary
    assert f"failed: {nginx.url}/{unique_prefix}/shard-002.tar: HTTP 404" in proc.stderr
    assert sorted(p.name for p in tmp_path.glob("shard-*")) == ["shard-000.tar", "shard-001.tar"]


def test_dry_run_prints_the_plan_and_fetches_nothing(
    nginx: NginxServer, unique_prefix: str, tmp_path: Path
):
    serve_shards(nginx, unique_prefix, 4, 250_000)
    template = f"{nginx.url}/{unique_prefix}/shard-{{000..003}}.tar"
    assert run(f"{nginx.url}/{unique_prefix}/shard-000.tar", "-d", tmp_path).returncode == 0

    proc = run(template, "-d", tmp_path, "--dry-run")
    assert proc.returncode == EXIT_OK, proc.stderr
    assert proc.stdout.strip() == (
        "plan: 4 files, 976.6 KiB: 1 present (244.1 KiB), 3 to fetch (732.4 KiB), 0 invalid"
    )
    assert sorted(p.name for p in tmp_path.glob("shard-*")) == ["shard-000.tar"]
    gets = [
        e
        for i in range(4)
        for e in nginx.access_log_for(f"{unique_prefix}/shard-{i:03d}.tar")
        if e.method == "GET"
    ]
    assert [e.path for e in gets] == [f"/{unique_prefix}/shard-000.tar"]  # the plan only asked


def test_links_file_with_header_workers_and_connections(
    nginx: NginxServer, unique_prefix: str, tmp_path: Path
):
    shards = serve_shards(nginx, unique_prefix, 3, 200 * KiB)
    links = tmp_path / "sa1b_links.txt"
    lines = ["file_name\tcdn_link"] + [
        f"sa_{i}.tar\t{nginx.url}/{unique_prefix}/{name}?sig=abc" for i, name in enumerate(shards)
    ]
    links.write_text("\n".join(lines) + "\n")

    proc = run("-i", links, "-j", "2", "-x", "2", "-d", tmp_path / "raw")
    assert proc.returncode == EXIT_OK, proc.stderr
    for i, data in enumerate(shards.values()):
        assert (tmp_path / "raw" / f"sa_{i}.tar").read_bytes() == data


def test_object_list_under_a_base_url(nginx: NginxServer, unique_prefix: str, tmp_path: Path):
    shards = serve_shards(nginx, unique_prefix, 2, 100 * KiB)
    objects = tmp_path / "objects.json"
    objects.write_text(json.dumps(list(shards)))

    proc = run("-i", objects, f"{nginx.url}/{unique_prefix}", "-d", tmp_path / "lpr")
    assert proc.returncode == EXIT_OK, proc.stderr
    for name, data in shards.items():
        assert (tmp_path / "lpr" / name).read_bytes() == data

    names = json.dumps(list(shards))  # the same list on standard input
    proc = run("-i", "-", f"{nginx.url}/{unique_prefix}", "-d", tmp_path / "stdin", stdin=names)
    assert proc.returncode == EXIT_OK, proc.stderr
    assert sorted(p.name for p in (tmp_path / "stdin").glob("shard-*")) == sorted(shards)


def test_sha256_and_out_name(fault_server: FaultServer, tmp_path: Path):
    data = make_data(600 * KiB, seed=3)
    url = fault_server.add("one.iso", data)

    good = run(
        url, "--sha256", sha(data), "-o", "ubuntu.iso", "-d", tmp_path, "--rate-limit", "50M"
    )
    assert good.returncode == EXIT_OK, good.stderr
    assert (tmp_path / "ubuntu.iso").read_bytes() == data

    bad = run(url, "--sha256", "0" * 64, "-d", tmp_path / "bad")
    assert bad.returncode == EXIT_FAILED
    assert "failed:" in bad.stderr
    assert "sha256" in bad.stderr.lower()
    assert not (tmp_path / "bad" / "one.iso").exists()


def test_a_checksum_file_verifies_every_shard_of_a_template(
    nginx: NginxServer, unique_prefix: str, tmp_path: Path
):
    shards = serve_shards(nginx, unique_prefix, 3, 150 * KiB)
    sums = tmp_path / "SHA256SUMS"
    lines = [f"{sha(data)}  {name}" for name, data in shards.items()]
    lines[1] = f"{'0' * 64} *shard-001.tar"  # a wrong digest, in sha256sum's binary form
    sums.write_text("# published digests\n" + "\n".join(lines) + "\n")
    template = f"{nginx.url}/{unique_prefix}/shard-{{000..002}}.tar"

    proc = run(template, "--sha256", sums, "-d", tmp_path / "data")
    assert proc.returncode == EXIT_FAILED
    assert "Done: 2 files downloaded, 1 error" in proc.stdout
    assert f"failed: {nginx.url}/{unique_prefix}/shard-001.tar: " in proc.stderr
    actual = sha(shards["shard-001.tar"])
    assert f"sha256 mismatch: expected {'0' * 64}, got {actual}" in proc.stderr
    assert not (tmp_path / "data" / "shard-001.tar").exists()
    assert (tmp_path / "data" / "shard-002.tar").read_bytes() == shards["shard-002.tar"]

    bsd = tmp_path / "bsd.sums"  # BSD style, matched to a links file's names
    bsd.write_text("".join(f"SHA256 ({n}) = {sha(d)}\n" for n, d in shards.items()))
    links = tmp_path / "links.txt"
    links.write_text(f"shard-000.tar {nginx.url}/{unique_prefix}/shard-000.tar?sig=1\n")
    proc = run("-i", links, "--sha256", bsd, "-d", tmp_path / "links")
    assert proc.returncode == EXIT_OK, proc.stderr
    assert (tmp_path / "links" / "shard-000.tar").read_bytes() == shards["shard-000.tar"]


def test_an_absolute_out_path_without_dir_is_read_as_curl_reads_it(
    fault_server: FaultServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    data = make_data(300 * KiB, seed=4)
    url = fault_server.add("abs.bin", data)
    monkeypatch.chdir(tmp_path)  # the working directory must stay empty
    target = tmp_path / "elsewhere" / "file.bin"
    target.parent.mkdir()
    done = run(url, "-o", target)
    assert done.returncode == EXIT_OK, done.stderr
    assert target.read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere"]
    assert str(target.parent) in done.stdout  # the summary says where the file went
    # With --dir given, -o stays relative to it: an absolute one is a clear error.
    both = run(url, "-o", target, "-d", tmp_path / "d")
    assert both.returncode == EXIT_FAILED
    assert "absolute" in both.stderr


def test_connect_retries_bounds_the_attempts_at_a_refused_port(tmp_path: Path):
    import socket

    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/x"
    one = run(url, "-d", tmp_path, "--connect-retries", "1")
    assert one.returncode == EXIT_FAILED
    assert "gave up after 1 attempt without progress" in one.stderr
    assert "refused" in one.stderr.lower()
    # (Another directory: within a lease, a failure recorded in the same one is reported as
    # recorded, not tried again; see docs/multi-process.md.)
    two = run(url, "-d", tmp_path / "two", "--connect-retries", "2", "--retries", "5")
    assert "gave up after 2 attempts" in two.stderr
    assert [p.name for p in (tmp_path / "two").iterdir()] == [".resumable"]  # nothing kept
    assert run(url, "--connect-retries", "0").returncode == EXIT_USAGE


def test_checksum_file_usage_errors(tmp_path: Path):
    sums = tmp_path / "SHA256SUMS"
    sums.write_text(f"{'a' * 64}  shard-000.tar\n")
    cases = [
        (("https://h/shard-{000..001}.tar", "--sha256", str(sums)), "'shard-001.tar' is not in"),
        (("https://h/d/", "--sha256", str(sums)), "a prefix's objects are only known"),
        (("https://h/shard-{000..000}.tar", "--sync", "--sha256", str(sums)), "use one or the"),
        (("https://h/a.tar", "--sha256", str(tmp_path / "nope")), "64 hex digits or a sha256sum"),
    ]
    for args, message in cases:
        code, _, err = in_process(*args)
        assert (code, message in err) == (EXIT_USAGE, True), (args, err)
    sums.write_text("not a checksum line\n")
    code, _, err = in_process("https://h/a.tar", "--sha256", str(sums))
    assert code == EXIT_USAGE
    assert f"{sums}, line 1: expected" in err


def test_sync_deletes_what_it_downloaded_and_is_gone(tmp_path: Path):
    source = tmp_path / "bucket" / "dataset"
    source.mkdir(parents=True)
    for name in ("a.bin", "b.bin", "c.bin"):
        (source / name).write_bytes(name.encode() * 1000)
    dest = tmp_path / "mirror"
    (dest).mkdir()
    (dest / "mine.txt").write_text("not downloaded by resumable")
    prefix = source.as_uri() + "/"

    assert run("--sync", prefix, "-d", dest).returncode == EXIT_OK
    (source / "b.bin").unlink()
    proc = run("--sync", prefix, "-d", dest)
    assert proc.returncode == EXIT_OK, proc.stderr
    assert "1 deleted by sync" in proc.stdout
    assert sorted(p.name for p in dest.iterdir() if p.is_file()) == ["a.bin", "c.bin", "mine.txt"]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_exits_130_and_the_rerun_resumes(
    make_nginx, tmp_path: Path, signum: signal.Signals
):
    server = make_nginx(limit_rate="2m")
    data = make_data(6 * MiB, seed=9)  # more than one block: kept in a .partial
    server.add("slow.bin", data)
    url = server.slow_url("slow.bin")  # nginx's /slow/ location: 2 MB/s per connection
    proc = subprocess.Popen(
        [sys.executable, "-m", "resumable", url, "-d", str(tmp_path), "-x", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    partial = tmp_path / "slow.bin.partial"
    deadline = time.monotonic() + 20
    while (
        time.monotonic() < deadline
        and proc.poll() is None
        and (not partial.exists() or partial.stat().st_size < 256 * KiB)
    ):
        time.sleep(0.05)
    proc.send_signal(signum)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == EXIT_INTERRUPTED, err
    assert "interrupted" in err
    assert "run again to resume" in err
    kept = partial.stat().st_size
    assert 0 < kept < len(data)
    assert not (tmp_path / "slow.bin").exists()

    again = run(url, "-d", tmp_path, "-x", "1")
    assert again.returncode == EXIT_OK, again.stderr
    assert "1 resumed" in again.stdout
    assert (tmp_path / "slow.bin").read_bytes() == data


def test_help_shows_examples_from_the_seeds(capsys: pytest.CaptureFixture[str]):
    code, _, _ = in_process("--help")
    out = capsys.readouterr().out  # argparse prints help to sys.stdout
    assert code == EXIT_OK
    for text in (
        "aria2c -i sa1b_links.txt",
        "ais start download",
        "--object-list",
        "{000000..000140}",
    ):
        assert text in out
    assert "resumable -i sa1b_links.txt -j 4 -x 16 -d ./raw" in out
    assert "exit codes: 0 all files complete, 1 some items failed, 2 usage error" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "nothing to download"),
        (("example.org/a.tar",), "not a URL"),
        (("nosuchscheme://h/a.tar",), "no source for URL scheme 'nosuchscheme'"),
        (("-d", "x", "demo"), "the demo runs with 'demo' as the first argument"),
        (("https://h/shard-{1..}.tar",), "shard-{1..}"),
        (("https://h/a.tar", "--sha256", "abc"), "64 hex digits"),
        (("https://h/{a,b}.tar", "-o", "x.tar"), "a single URL"),
        (("https://h/a.tar", "--rate-limit", "fast"), "not a size"),
        (("https://h/a.tar", "-j", "0"), "must be at least 1"),
        (("https://h/a.tar", "-H", "no-colon"), "a header is 'Name: value'"),
        (("--bogus",), "unrecognized arguments"),
        (("-i", "/nonexistent/links.txt"), "cannot read /nonexistent/links.txt"),
        (("https://h/a.tar", "--extract", "unrar"), "unknown extraction kind 'unrar'"),
    ],
)
def test_usage_errors_exit_2_before_any_traffic(
    args: tuple[str, ...], message: str, capsys: pytest.CaptureFixture[str]
):
    code, out, err = in_process(*args)
    err += capsys.readouterr().err  # argparse writes its own errors to sys.stderr
    assert code == EXIT_USAGE
    assert message in err
    assert out == ""


def test_a_destination_that_is_a_file(tmp_path: Path):
    (tmp_path / "file").write_text("x")
    proc = run("https://127.0.0.1:9/a.tar", "-d", tmp_path / "file")
    assert proc.returncode == EXIT_USAGE
    assert "exists and is not a directory" in proc.stderr
    (tmp_path / "ro").mkdir(mode=0o500)
    if os.geteuid() != 0:  # root may write anywhere
        proc = run("https://127.0.0.1:9/a.tar", "-d", tmp_path / "ro" / "sub")
        assert proc.returncode == EXIT_FAILED
        assert "cannot create" in proc.stderr


def test_malformed_links_file_and_object_list_are_usage_errors(tmp_path: Path):
    links = tmp_path / "links.txt"
    links.write_text("https://h/a.tar\nthree fields here\n")
    code, _, err = in_process("-i", str(links))
    assert code == EXIT_USAGE
    assert f"{links}, line 2" in err

    objects = tmp_path / "objects.json"
    objects.write_text('["a.tar"]')
    code, _, err = in_process("-i", str(objects))
    assert code == EXIT_USAGE
    assert "give exactly one base URL" in err


def test_parse_size():
    assert parse_size("50M") == 50 * MiB
    assert parse_size("50MiB/s") == 50 * MiB
    assert parse_size("50MB") == 50_000_000
    assert parse_size("1.5G") == 3 * 512 * MiB
    assert parse_size("123") == 123
    for bad in ("", "M", "-5M", "5X", "0"):
        with pytest.raises(ValueError, match="size"):
            parse_size(bad)


def test_the_console_script_is_installed():
    script = Path(sys.executable).parent / "resumable"
    proc = subprocess.run(
        [str(script), "--version"], capture_output=True, text=True, timeout=30, check=False
    )
    assert proc.returncode == EXIT_OK
    assert proc.stdout.strip() == f"resumable {resumable.__version__}"


def test_extract_routes_the_members_of_each_shard(
    nginx: NginxServer, unique_prefix: str, tmp_path: Path
):
    """``--extract`` (the SA-1B scripts' download-then-untar), routed, then a rerun skips."""
    import tarfile

    for i in range(2):
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            for name, data in ((f"img{i}.jpg", b"jpeg" * 100), (f"ann{i}.json", b"{}")):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        nginx.add(f"{unique_prefix}/sa_{i:06d}.tar", buffer.getvalue())
    template = f"{nginx.url}/{unique_prefix}/sa_{{000000..000001}}.tar"
    spec = "untar:route=*.jpg=images,*.json=annotations:delete"
    first = run(template, "-d", tmp_path, "--extract", spec, "--progress", "none")
    assert first.returncode == EXIT_OK, first.stderr
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == ["img0.jpg", "img1.jpg"]
    assert sorted(p.name for p in (tmp_path / "annotations").iterdir()) == [
        "ann0.json",
        "ann1.json",
    ]
    assert not list(tmp_path.glob("sa_*.tar"))  # deleted once extracted
    again = run(template, "-d", tmp_path, "--extract", spec, "--progress", "none")
    assert again.returncode == EXIT_OK, again.stderr
    gets = [e for e in nginx.access_log_lines() if unique_prefix in e.path and e.method == "GET"]
    assert len(gets) == 2  # the rerun trusted the ledger: nothing fetched again
