"""kill -9 at random moments, then resume: always the right SHA-256, little fetched twice.

A few rounds run in the normal suite; ``nox -s torture`` runs many
(``RESUMABLE_TORTURE_ROUNDS``). Bytes are counted on the server (nginx's access log), so
everything sent to the killed process counts, including what it never wrote: the bytes
written since the last checkpoint, and what sat in TCP buffers at the kill (nginx bursts about
2 MiB per connection whatever its rate limit; this fixed cost is why the files are
tens of MiB rather than a few).
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from servers import NginxServer, make_data

import resumable

MiB = 1 << 20
ROUNDS = int(os.environ.get("RESUMABLE_TORTURE_ROUNDS", "2"))

CHILD = """
import sys, resumable
d = resumable.ResumableDownloader(connections=int(sys.argv[3]), segment_threshold=1 << 20)
d.download(sys.argv[1], sys.argv[2])
"""

MODES = {
    # mode: (file size, connections, nginx limit_rate): ~1-2 s per uninterrupted download
    "single": (48 * MiB, 1, "16m"),
    "segmented": (128 * MiB, 4, "8m"),
}


@pytest.mark.slow
@pytest.mark.parametrize("mode", sorted(MODES))
def test_kill9_at_random_moments_then_resume(
    make_nginx,
    mode: str,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    size, connections, rate = MODES[mode]
    nginx: NginxServer = make_nginx(limit_rate=rate)
    rng = random.Random(f"{mode}-{os.getpid()}-{time.time()}")
    ratios = []
    total_sent = 0
    for round_ in range(ROUNDS):
        name = f"{mode}-{round_}.bin"
        data = make_data(size, seed=round_)
        nginx.add(name, data)
        url = nginx.slow_url(name)
        dest = tmp_path / name
        partial = dest.with_name(name + ".partial")
        proc = subprocess.Popen([sys.executable, "-c", CHILD, url, str(dest), str(connections)])
        deadline = time.monotonic() + 20
        while not partial.exists():
            assert proc.poll() is None, "the download ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, 0.8))  # a random moment inside the transfer
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL
        assert not dest.exists()  # really killed mid-download: nothing was published
        d = resumable.ResumableDownloader(connections=connections, segment_threshold=MiB)
        r = d.download(url, dest, sha256=hashlib.sha256(data).hexdigest())
        d.close()
        assert dest.read_bytes() == data
        sent = sum(e.body_bytes_sent for e in nginx.access_log_for(name, min_lines=2))
        ratios.append(sent / size)
        total_sent += sent
        print(f"{mode} round {round_}: {r.status}, server sent {sent / size:.3f} x the file")
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(name)) == [name]
    # Over the run, at most 5% more than the files; any one round at most 10% (a kill in the
    # first milliseconds can lose the connection's initial burst from the TCP buffers).
    assert total_sent <= 1.05 * size * ROUNDS, ratios
    assert max(ratios) <= 1.10, ratios
