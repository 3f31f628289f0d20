"""Human-facing numbers (issue 18 item 5): one unit system (binary: KiB, MiB, GiB, as the
bars draw them) in the plan, a job's status line and the batch summary; a cancelled batch says
it was cancelled and how many files it kept resumable, not "N errors"."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from servers import NginxServer

import resumable
from resumable import BatchResult, Cancelled, JobStatus, Plan, SourceNotFound

GiB = 1 << 30
DECIMAL = re.compile(r"\b[kKMGT]B\b")


def test_plan_uses_binary_units() -> None:
    plan = Plan(
        files=3, present=1, to_fetch=2, total_bytes=3 * GiB, present_bytes=GiB, fetch_bytes=2 * GiB
    )
    text = str(plan)
    assert not DECIMAL.search(text), text
    assert text == "3 files, 3.0 GiB: 1 present (1.0 GiB), 2 to fetch (2.0 GiB), 0 invalid"


def test_job_status_uses_binary_units() -> None:
    status = JobStatus(
        queued=1,
        active=1,
        downloaded=2,
        resumed=0,
        skipped=0,
        failed=0,
        bytes_transferred=5 * (1 << 20),
        rate=1 << 20,
        eta=3.0,
        in_flight=(),
        errors=(),
        finished=False,
        cancelled=False,
    )
    text = str(status)
    assert not DECIMAL.search(text), text
    assert "5.0 MiB at 1.0 MiB/s" in text


def test_a_cancelled_batch_is_not_reported_as_errors() -> None:
    cancelled = [(f"https://h/f{i}", Cancelled("cancelled")) for i in range(4)]
    failed = [("https://h/gone", SourceNotFound("404"))]
    result = BatchResult(ok=[], failed=[*cancelled, *failed], cancelled=True)
    text = result.summary
    assert text.startswith("Cancelled: 0 files done"), text
    assert "4 in flight kept resumable" in text
    assert text.endswith(", 1 error")
    assert str(result) == text


def test_cli_plan_line_in_binary_units(tmp_path: Path) -> None:
    assert "GB" not in str(resumable.Plan())


def test_the_cli_prints_a_failure_once(
    nginx: NginxServer, unique_prefix: str, tmp_path: Path
) -> None:
    """Without a terminal the progress lines and the final list both reported each failure."""
    url = nginx.add(f"{unique_prefix}/ok.bin", b"x" * 5000)
    missing = nginx.url_for(f"{unique_prefix}/missing-file.bin")
    proc = subprocess.run(
        [sys.executable, "-m", "resumable", url, missing, "-d", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "missing-file.bin" in line]
    assert len(lines) == 1, proc.stderr
    assert f"failed: {missing}: " in proc.stderr
