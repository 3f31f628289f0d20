"""The main job: `python -m resumable demo` on its embedded loopback server."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

from resumable.demo import run_demo


def test_demo_interrupts_resumes_retries_and_verifies(tmp_path: Path) -> None:
    out = io.StringIO()
    # 5 MiB: larger than one block (4 MiB), so the interrupted shard keeps a resumable partial
    # (smaller files take the direct path, which keeps nothing: see test_direct.py).
    results = run_demo(tmp_path, shards=6, shard_mib=5, workers=3, out=out)
    text = out.getvalue()
    statuses = {r.path.name: r.status for r in results}
    assert statuses["shard-000003.tar"] == "resumed"
    assert sum(s == "downloaded" for s in statuses.values()) == 5
    resumed = next(r for r in results if r.status == "resumed")
    assert 0 < resumed.bytes_transferred < resumed.size
    assert "Server cut 1 connection(s) midway" in text
    assert "6 of 6 skipped, 0 bytes fetched" in text
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"shard-{i:06d}.tar" for i in range(6)]


def test_demo_command_line_with_its_defaults() -> None:
    """Exactly the README's main command (the defaults: 8 shards of 16 MiB)."""
    proc = subprocess.run(
        [sys.executable, "-m", "resumable", "demo"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "every file matches its SHA-256" in proc.stdout


def test_usage_errors_exit_2() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "resumable", "demo", "--shards", "0"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "must be positive" in proc.stderr
