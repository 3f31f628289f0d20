"""kill -9 in the middle of a download: the next call resumes and fetches only the rest."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from servers import make_data

import resumable

MiB = 1 << 20
SIZE = 24 * MiB

DOWNLOADER = """
import sys, resumable
resumable.download(sys.argv[1], sys.argv[2], sha256=sys.argv[3])
"""


@pytest.mark.slow
def test_sigkill_mid_download_then_resume(make_nginx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    nginx = make_nginx(limit_rate="6m")  # slow enough to kill mid-body reliably
    data = make_data(SIZE, seed=11)
    digest = hashlib.sha256(data).hexdigest()
    nginx.add("big.bin", data)
    url = nginx.slow_url("big.bin")
    dest = tmp_path / "big.bin"
    partial = tmp_path / "big.bin.partial"

    proc = subprocess.Popen([sys.executable, "-c", DOWNLOADER, url, str(dest), digest])
    try:
        deadline = time.monotonic() + 20
        while not (partial.exists() and partial.stat().st_size >= 6 * MiB):
            assert proc.poll() is None, "the downloader ended before it could be killed"
            assert time.monotonic() < deadline, "the download never got going"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL

    kept = partial.stat().st_size
    assert 6 * MiB <= kept < SIZE
    assert not dest.exists()
    sidecar = json.loads((tmp_path / "big.bin.partial.json").read_text())
    assert sidecar["validators"]["size"] == SIZE

    r = resumable.download(url, dest, sha256=digest)
    assert r.status == "resumed"
    assert r.bytes_transferred == SIZE - kept  # only the remainder crossed the network
    assert r.sha256 == digest
    last = nginx.access_log_for("big.bin")[-1]
    assert last.range == f"bytes={kept}-"
    assert last.body_bytes_sent == SIZE - kept
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.bin"]
