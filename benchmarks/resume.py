"""Resume after kill -9 at 50%: bytes the server sends to finish, against bytes missing.

    python benchmarks/resume.py                      # 1 GiB, both modes, 5 rounds, references
    python benchmarks/resume.py --size 32 --rounds 1 --seconds 1

For each mode (one stream; 8 connections, segmented), each round:

1. a child process starts ``resumable.download(url, dest, sha256=...)`` of a ``--size`` MiB file
   from nginx's throttled ``/slow/`` location (the rate is chosen so that half the file takes
   ``--seconds``), and is killed with SIGKILL as soon as what it has *kept* reaches half the
   file: the partial's length for one stream, the ranges recorded in the sidecar
   ``D.partial.json`` for a segmented partial;
2. ``kept`` is read from disk after the kill, ``missing = size - kept``;
3. the download is resumed in this process (same URL, same options) and must end ``resumed``
   with the right SHA-256;
4. nginx's access log says what the server sent. A probe request on a new connection before the
   child starts and another after the kill split the log by nginx's connection serial number:
   bytes sent to the killed child, and bytes sent for the resume (``resumed``).

Reported: ``resumed / missing`` (the bytes fetched twice on resume), the checkpoint (a segmented
partial records ranges every ``size/128`` bytes, at least 256 KiB; one stream keeps every byte
it wrote), and ``lost`` = bytes sent to the child but not kept (the work since the last
checkpoint and what sat in socket buffers). Target: ``resumed <= 1.01 x missing + one
checkpoint``, i.e. ratio <= 1.01 + checkpoint / missing.

References, measured the same way when installed: ``curl -s -C - -o`` for one stream (kept: the
file's length) and ``aria2c -x8 -s8 -k1M --auto-save-interval=1 -c`` for 8 connections (kept:
the pieces and blocks its control file ``D.aria2`` records; saving it every second is aria2c's
most frequent, the default is 60 s).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from common import DATA, MiB, make_file, parse, record, remove
from servers import NginxServer, nginx_available

import resumable

CHILD = """
import sys, resumable
url, dest, digest, connections = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
d = resumable.ResumableDownloader(connections=connections, segment_threshold=1 << 20)
d.download(url, dest, sha256=digest)
"""

MODES = {"single": 1, "segmented": 8}
ARIA2_BLOCK = 16 * 1024  # aria2's block inside a piece (DEFAULT_BLOCK_LENGTH)


@dataclass(frozen=True)
class Round:
    size: int
    kept: int
    killed_sent: int
    resumed: int

    @property
    def missing(self) -> int:
        return self.size - self.kept

    @property
    def ratio(self) -> float:
        return self.resumed / self.missing

    @property
    def lost(self) -> int:
        return self.killed_sent - self.kept


def checkpoint_bytes(size: int, connections: int) -> int:
    """What a kill can lose beyond the socket buffers (resumable/segmented.py's interval)."""
    return 0 if connections == 1 else max(MiB // 4, min(64 * MiB, size // 128))


# -- what each tool keeps on disk ------------------------------------------------------------


def kept_ours(dest: Path, connections: int) -> int:
    """Bytes a resume of ``dest`` will trust: the partial's length, or the sidecar's ranges."""
    data = dest.with_name(dest.name + ".partial")
    if connections == 1:
        try:
            return data.stat().st_size
        except FileNotFoundError:
            return 0
    try:
        sidecar = json.loads(dest.with_name(dest.name + ".partial.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return 0
    return sum(end - start for start, end in sidecar.get("ranges") or [])


def kept_curl(dest: Path) -> int:
    try:
        return dest.stat().st_size
    except FileNotFoundError:
        return 0


def kept_aria2c(dest: Path) -> int:
    """Bytes recorded in aria2c's control file (format: aria2's technical notes, version 1)."""
    try:
        raw = dest.with_name(dest.name + ".aria2").read_bytes()
    except FileNotFoundError:
        return 0
    try:
        version, _ext, hash_len = struct.unpack_from(">HII", raw, 0)
        if version != 1:
            raise SystemExit(f"aria2c control file version {version}: only 1 is read")
        pos = 10 + hash_len
        piece, total, _upload, bits_len = struct.unpack_from(">IQQI", raw, pos)
        pos += 24
        bitfield = raw[pos : pos + bits_len]
        pos += bits_len
        kept = 0
        for index in range(-(-total // piece)):
            if bitfield[index // 8] & (0x80 >> (index % 8)):
                kept += min(piece, total - index * piece)
        (in_flight,) = struct.unpack_from(">I", raw, pos)
        pos += 4
        for _ in range(in_flight):
            _index, length, blocks_len = struct.unpack_from(">III", raw, pos)
            pos += 12
            blocks = raw[pos : pos + blocks_len]
            pos += blocks_len
            done = sum(bin(b).count("1") for b in blocks)
            kept += min(length, done * ARIA2_BLOCK)
        return kept
    except struct.error:
        return 0  # caught mid-write (aria2c writes a temporary file and renames it)


# -- nginx's view --------------------------------------------------------------------------------


class Ledger:
    """Bytes nginx sent for one file, split by connection serial numbers taken with probes."""

    def __init__(self, nginx: NginxServer, name: str) -> None:
        self.nginx = nginx
        self.name = name
        nginx.add("probe.txt", b"probe")

    def probe(self) -> int:
        """A request on a fresh connection; every later connection has a larger serial."""
        before = len(self.nginx.access_log_for("probe.txt"))
        request = urllib.request.Request(
            self.nginx.url_for("probe.txt"), headers={"Connection": "close"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()
        entries = self.nginx.access_log_for("probe.txt", min_lines=before + 1)
        return entries[-1].connection

    def sent(self, after: int, before: int | None = None, settle: float = 1.0) -> int:
        """Body bytes sent on connections ``after < serial < before``, once the log is still.

        nginx logs a request when its connection ends; a throttled connection whose client
        died is noticed at its next timed write, so the sum is read until it stops changing.
        """
        last, still_since, deadline = -1, time.monotonic(), time.monotonic() + 30
        while True:
            total = sum(
                e.body_bytes_sent
                for e in self.nginx.access_log_for(self.name)
                if e.connection > after and (before is None or e.connection < before)
            )
            now = time.monotonic()
            if total != last:
                last, still_since = total, now
            elif now - still_since >= settle or now > deadline:
                return total
            time.sleep(0.05)


def kill_at(
    proc: subprocess.Popen[bytes], kept: Callable[[], int], threshold: int, name: str
) -> None:
    """SIGKILL ``proc`` once ``kept()`` reaches ``threshold`` (fail if it finishes first)."""
    deadline = time.monotonic() + 600
    while kept() < threshold:
        if proc.poll() is not None:
            raise SystemExit(f"{name} ended (rc {proc.returncode}) before it could be killed")
        if time.monotonic() > deadline:
            proc.kill()
            raise SystemExit(f"{name} did not reach the kill point in 10 minutes")
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


# -- the tools ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tool:
    name: str
    start: Callable[[str, Path], subprocess.Popen[bytes]]
    kept: Callable[[Path], int]
    resume: Callable[[str, Path], None]


def ours(connections: int, digest: str) -> Tool:
    def start(url: str, dest: Path) -> subprocess.Popen[bytes]:
        argv = [sys.executable, "-c", CHILD, url, str(dest), digest, str(connections)]
        return subprocess.Popen(argv)

    def resume(url: str, dest: Path) -> None:
        with resumable.ResumableDownloader(connections=connections, segment_threshold=MiB) as d:
            r = d.download(url, dest, sha256=digest)
        if r.status != "resumed":
            raise SystemExit(f"resumable: the second call ended {r.status!r}, not 'resumed'")

    name = "resumable, one stream" if connections == 1 else f"resumable, {connections} connections"
    return Tool(name, start, lambda dest: kept_ours(dest, connections), resume)


def curl() -> Tool:
    def start(url: str, dest: Path) -> subprocess.Popen[bytes]:
        return subprocess.Popen(["curl", "-s", "-o", str(dest), url])

    def resume(url: str, dest: Path) -> None:
        subprocess.run(["curl", "-s", "-C", "-", "-o", str(dest), url], check=True)

    return Tool("curl -C -", start, kept_curl, resume)


def aria2c(connections: int) -> Tool:
    def argv(url: str, dest: Path) -> list[str]:
        return [
            "aria2c",
            "-q",
            f"-x{connections}",
            f"-s{connections}",
            "-k1M",
            "-c",
            "--auto-save-interval=1",
            "--auto-file-renaming=false",
            "-d",
            str(dest.parent),
            "-o",
            dest.name,
            url,
        ]

    def start(url: str, dest: Path) -> subprocess.Popen[bytes]:
        return subprocess.Popen(argv(url, dest))

    def resume(url: str, dest: Path) -> None:
        subprocess.run(argv(url, dest), check=True)

    return Tool(f"aria2c -x{connections} -c", start, kept_aria2c, resume)


def one_round(
    tool: Tool, ledger: Ledger, url: str, dest: Path, size: int, digest: str, kill_at_: float
) -> Round:
    remove(dest)
    os.sync()  # untimed: no tool pays for writeback left by another
    first = ledger.probe()
    proc = tool.start(url, dest)
    kill_at(proc, lambda: tool.kept(dest), int(size * kill_at_), tool.name)
    if dest.exists() and dest.stat().st_size == size and tool.kept(dest) >= size:
        raise SystemExit(f"{tool.name} finished before the kill: lower --seconds' rate")
    kept = tool.kept(dest)
    second = ledger.probe()
    tool.resume(url, dest)
    resumed = ledger.sent(second)
    killed_sent = ledger.sent(first, second, settle=0.0)
    if file_sha256(dest) != digest:
        raise SystemExit(f"{tool.name}: the resumed file has the wrong SHA-256")
    remove(dest)
    return Round(size, kept, killed_sent, resumed)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(8 * MiB):
            digest.update(block)
    return digest.hexdigest()


# -- main ----------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--size", type=int, default=1024, help="MiB")
    parser.add_argument("--seconds", type=float, default=4.0, help="time to reach the kill")
    parser.add_argument("--kill-at", type=float, default=0.5, help="fraction kept at the kill")
    parser.add_argument("--modes", default="single,segmented", help="single, segmented or both")
    parser.add_argument("--no-reference", action="store_true", help="skip curl and aria2c")
    args = parse(parser, size=32, seconds=1.0)
    modes = args.modes.split(",")
    if not modes or any(mode not in MODES for mode in modes):
        parser.error(f"--modes: a comma-separated list of {', '.join(MODES)}")
    if not nginx_available():
        print("needs nginx (run .ci/install-system-deps)", file=sys.stderr)
        return 2

    size = args.size * MiB
    name = "big.bin" if args.size == 1024 else f"m{args.size}.bin"
    root = DATA / "www"
    digest = make_file(root / name, size)
    out = DATA / "out"
    out.mkdir(parents=True, exist_ok=True)
    dest = out / "resume.bin"

    for mode in modes:
        connections = MODES[mode]
        tools = [ours(connections, digest)]
        reference = None
        if not args.no_reference:
            if connections == 1 and shutil.which("curl"):
                reference = curl()
            elif connections > 1 and shutil.which("aria2c"):
                reference = aria2c(connections)
        if reference is not None:
            tools.append(reference)
        # each connection at a rate that brings the kept bytes to the kill point in --seconds
        rate = max(1, int(size * args.kill_at / args.seconds / connections))
        results: dict[str, list[Round]] = {tool.name: [] for tool in tools}
        with NginxServer(root, limit_rate=str(rate)) as nginx:
            ledger = Ledger(nginx, name)
            url = nginx.slow_url(name)
            for round_ in range(args.rounds):
                for tool in tools if round_ % 2 == 0 else list(reversed(tools)):
                    got = one_round(tool, ledger, url, dest, size, digest, args.kill_at)
                    results[tool.name].append(got)
        report(mode, args.size, connections, rate, results, tools[0].name, reference)
    return 0


def report(
    mode: str,
    size_mib: int,
    connections: int,
    rate: int,
    results: dict[str, list[Round]],
    ours_name: str,
    reference: Tool | None,
) -> None:
    size = size_mib * MiB
    checkpoint = checkpoint_bytes(size, connections)
    print(
        f"\n{size_mib} MiB, {mode} ({connections} connection{'s' if connections > 1 else ''}), "
        f"nginx limit_rate {rate / 1e6:.1f} MB/s per connection, kill -9 at 50% kept"
    )
    print(
        f"{'tool':<30} {'resumed/missing':>15} {'lost MiB':>9} {'sent/size':>9}  "
        f"runs (resumed/missing)"
    )
    for name, rounds in results.items():
        ratios = [r.ratio for r in rounds]
        lost = statistics.median(r.lost for r in rounds) / MiB
        total = statistics.median((r.killed_sent + r.resumed) / size for r in rounds)
        runs = " ".join(f"{x:.4f}" for x in ratios)
        print(f"{name:<30} {statistics.median(ratios):>15.4f} {lost:>9.1f} {total:>9.3f}  {runs}")
    rounds = results[ours_name]
    ratio = statistics.median(r.ratio for r in rounds)
    target = 1.01 + checkpoint / statistics.median(r.missing for r in rounds)
    print(
        f"\nresumable resumed/missing median {ratio:.4f}; target <= 1.01 + one checkpoint "
        f"({checkpoint / MiB:.2f} MiB) = {target:.4f}"
    )
    ref_ratio = None
    if reference is not None:
        ref_ratio = statistics.median(r.ratio for r in results[reference.name])
    record(
        f"resume after kill -9 at 50%, {size_mib} MiB {mode}: re-fetched / missing",
        ratio,
        ref_ratio,
        target=target,
        target_text=f"<= 1.01 + 1 checkpoint ({checkpoint / MiB:.2f} MiB) = {target:.3f}",
        on="value",
        unit="x",
        ours_name=ours_name,
        reference_name=reference.name if reference else None,
        checkpoint=checkpoint,
        lost_median=statistics.median(r.lost for r in rounds),
        runs=[r.ratio for r in rounds],
    )


if __name__ == "__main__":
    sys.exit(main())
