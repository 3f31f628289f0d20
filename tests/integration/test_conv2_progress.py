"""Human-facing numbers (issue 18 item 5): one unit system (binary: KiB, MiB, GiB, as the
bars draw them) in the plan, a job's status line and the batch summary; a cancelled batch says
it was cancelled and how many files it kept resumable, not "N errors"."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
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


def test_a_50_file_batch_draws_a_bounded_set_of_outputs_in_a_notebook(
    nginx: NginxServer, unique_prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each tqdm bar is one display output of the cell, kept in the .ipynb: a batch must reuse
    its per-file bars (one overall bar plus at most ``max_bars``), not make one per file."""
    from integration.test_notebook import require_jupyter

    require_jupyter()
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    import nbformat
    from nbclient import NotebookClient

    for i in range(50):
        nginx.add(f"{unique_prefix}/s{i:02d}.bin", bytes([i]) * (20_000 + i))
    template = f"{nginx.url}/{unique_prefix}/s{{00..49}}.bin"
    code = f"""
import resumable
with resumable.ResumableDownloader(workers=4) as d:
    r = d.download_many({template!r}, {str(tmp_path)!r}, progress=True)
print("result:", r.summary)
"""
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell(code))
    NotebookClient(nb, timeout=120, kernel_name="python3", store_widget_state=True).execute()
    outputs = nb.cells[0].outputs
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "result: Done: 50 files downloaded, 0 errors" in text
    displays = [o for o in outputs if o.output_type == "display_data"]
    assert 2 <= len(displays) <= 10, len(displays)
    assert len(list(tmp_path.glob("s*.bin"))) == 50


def test_a_cancelled_job_status_says_cancelled_not_failed() -> None:
    stopped = tuple((f"https://h/f{i}", Cancelled("cancelled")) for i in range(4))
    status = JobStatus(
        queued=7, active=0, downloaded=3, resumed=0, skipped=0, failed=4,
        bytes_transferred=0, rate=0.0, eta=None, in_flight=(), errors=stopped,
        finished=True, cancelled=True,
    )  # fmt: skip
    text = str(status)
    assert text.startswith("cancelled: 3 done (0 skipped), 4 in flight kept resumable, ")
    assert "7 not started" in text
    assert "failed" not in text


def test_a_cancelled_job_says_when_inputs_were_never_read(
    nginx: NginxServer, unique_prefix: str, tmp_path: Path
) -> None:
    """A cancelled job stops reading its inputs: "N not started" cannot count a template's
    or generator's rest, and the status line says so rather than understating it."""
    for i in range(3):
        nginx.add(f"{unique_prefix}/f{i}.bin", bytes([i]) * 300_000)
    read: list[int] = []

    def endless():  # a generator that is never exhausted
        i = 0
        while True:
            read.append(i)
            yield nginx.slow_url(f"{unique_prefix}/f{i % 3}.bin") + f"?n={i}", f"n{i}.bin"
            i += 1

    with resumable.ResumableDownloader(workers=2) as d:
        job = d.start(endless(), tmp_path)
        deadline = time.monotonic() + 30
        while job.status().active < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        job.cancel()
        job.wait(timeout=30)
        status = job.status()
    assert status.cancelled
    assert not status.inputs_read
    assert "not started (and the inputs not yet read)" in str(status), str(status)
    assert len(read) < 1000  # the feeder stopped reading: the inputs were never exhausted

    with resumable.ResumableDownloader(workers=2) as d:
        job = d.start([nginx.url_for(f"{unique_prefix}/f0.bin")], tmp_path / "all")
        job.wait(timeout=30)
    done = job.status()
    assert done.inputs_read
    assert "not yet read" not in str(done)
