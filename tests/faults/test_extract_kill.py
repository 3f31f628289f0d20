"""kill -9 in the middle of an extraction (and of a streamed download): the rerun extracts
again, and nothing before that looks complete."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from archives import dataset, tar_bytes

import resumable
from resumable import Untar

SA1B = {"*.jpg": "images", "*.json": "annotations"}

# Each member's progress event sleeps a little, so the extraction lasts long enough to be
# killed in the middle (the sleep is in the user's callback, not in the library).
EXTRACTOR = """
import sys, time, resumable
from resumable import EventKind, Untar
def slow(event):
    if event.kind is EventKind.EXTRACTING:
        time.sleep(0.003)
route = {"*.jpg": "images", "*.json": "annotations"}
resumable.download(sys.argv[1], sys.argv[2], process=Untar(route=route), progress=slow)
"""


def staged(folder: Path) -> int:
    return sum(1 for p in folder.rglob("*") if p.is_file()) if folder.exists() else 0


def run_until(args: list[str], ready: object, timeout: float = 20) -> None:
    proc = subprocess.Popen([sys.executable, "-c", *args])
    try:
        deadline = time.monotonic() + timeout
        while not ready():  # type: ignore[operator]
            assert proc.poll() is None, "the process ended before it could be killed"
            assert time.monotonic() < deadline, "never reached the point to kill at"
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL


def test_sigkill_during_extraction_then_rerun(tmp_path: Path) -> None:
    members = dataset(0, files=400)  # 800 small members
    source = tmp_path / "src" / "sa_000000.tar"
    source.parent.mkdir()
    source.write_bytes(tar_bytes(members))
    url = source.as_uri()
    work = tmp_path / "work"
    archive = work / "sa_000000.tar"
    staging = work / "sa_000000.tar.extracting"

    run_until([EXTRACTOR, url, str(archive)], lambda: staged(staging) >= 200)

    killed_at = staged(staging)
    assert 200 <= killed_at < len(members)  # really in the middle
    assert not (work / "images").exists()  # nothing promoted
    assert not (work / "annotations").exists()
    record = json.loads((work / "sa_000000.tar.extracted.json").read_text())
    assert record["state"] == "extracting"

    r = resumable.download(url, archive, process=Untar(route=SA1B))
    assert r.status == "skipped"  # the archive was complete: only the extraction is redone
    assert r.extracted is not None
    assert r.extracted.status == "extracted"
    assert r.extracted.members == len(members)
    got = {
        str(p.relative_to(work / "images")): p.read_bytes()
        for p in (work / "images").rglob("*.jpg")
    }
    assert got == {k: v for k, v in members.items() if k.endswith(".jpg")}
    assert not staging.exists()
    assert json.loads((work / "sa_000000.tar.extracted.json").read_text())["state"] == "done"


STREAMER = """
import sys, resumable
from resumable import Untar
resumable.download(sys.argv[1], sys.argv[2], process=Untar(stream=True))
"""


@pytest.mark.slow
def test_sigkill_during_a_streamed_download_then_rerun(make_nginx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    nginx = make_nginx(limit_rate="2m")
    rng = __import__("random").Random(5)
    members = {f"part/{i}.bin": rng.randbytes(100_000) for i in range(40)}  # ~4 MB
    nginx.add("live.tar", tar_bytes(members))
    url = nginx.slow_url("live.tar")
    archive = tmp_path / "live.tar"
    staging = tmp_path / "live.tar.extracting"

    run_until([STREAMER, url, str(archive)], lambda: staged(staging) >= 5)

    assert (tmp_path / "live.tar.partial").exists()  # killed mid-download, mid-extraction
    assert not (tmp_path / "live").exists()
    r = resumable.download(url, archive, process=Untar(stream=True))
    assert r.status == "resumed"
    assert r.extracted is not None
    assert r.extracted.streamed
    got = {
        str(p.relative_to(tmp_path / "live")): p.read_bytes()
        for p in (tmp_path / "live").rglob("*.bin")
    }
    assert got == members
    assert not staging.exists()
