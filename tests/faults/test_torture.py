"""kill -9 at random moments, then resume: always the right SHA-256, little fetched twice.

Four modes: single-stream and segmented downloads, over HTTP (nginx) and S3 (moto). One
round per mode runs in the normal suite; ``nox -s torture`` runs ``RESUMABLE_TORTURE_ROUNDS``
per mode (25: 100 rounds in all). Every round starts a child process, kills it with SIGKILL at
a random moment inside the transfer, resumes in this process with the expected SHA-256, and
checks the file byte for byte.

Bytes are counted on the server side, so everything sent to the killed process counts,
including what it never wrote: the bytes since its last checkpoint and what sat in TCP buffers
at the kill. HTTP: nginx's access log (body bytes). S3: a :class:`~servers.proxy.CountingProxy`
between the clients and moto, which counts every byte moto sent on the wire, headers and
HEAD/list answers included (an upper bound on the body bytes). nginx bursts about 2 MiB per
connection whatever its rate limit, and the proxy fills the client's socket buffers too; this
fixed cost is why the files are tens of MiB rather than a few.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from servers import MotoS3Server, NginxServer, make_data
from servers.moto_s3 import KEY, SECRET
from servers.proxy import CountingProxy

import resumable

MiB = 1 << 20
ROUNDS = int(os.environ.get("RESUMABLE_TORTURE_ROUNDS", "1"))

CHILD = """
import json, sys, resumable
d = resumable.ResumableDownloader(
    connections=int(sys.argv[3]), segment_threshold=1 << 20, storage_options=json.loads(sys.argv[4])
)
d.download(sys.argv[1], sys.argv[2])
"""


@dataclass(frozen=True)
class Mode:
    transport: str  # "http" or "s3"
    size: int
    connections: int
    rate: float  # bytes per second per connection: ~1-2 s per uninterrupted download
    worst_round: float = 1.10  # the most the server may send in one round, times the file


MODES = {
    "http-single": Mode("http", 48 * MiB, 1, 16 * MiB),
    "http-segmented": Mode("http", 128 * MiB, 4, 8 * MiB),
    # S3 is counted on the wire at the proxy, headers included, and a killed client's socket
    # buffers on loopback can hold ~10 MiB when it was starved of CPU (seen once in 100 rounds
    # on a loaded 2-core machine: 1.23x of 48 MiB); the bound over a whole run stays 1.05x.
    "s3-single": Mode("s3", 48 * MiB, 1, 16 * MiB, worst_round=1.25),
    "s3-segmented": Mode("s3", 64 * MiB, 4, 8 * MiB, worst_round=1.25),
}


@dataclass
class Backend:
    """Where the rounds' objects live, and how the bytes sent for one are counted."""

    add: Callable[[str, bytes], str]  # name, data -> URL
    sent: Callable[[str], int]  # name -> bytes the server sent for it so far
    remove: Callable[[str], None]  # a round's object, once done (moto keeps objects in memory)
    storage_options: dict[str, dict[str, str]]


@pytest.fixture
def backend(request: pytest.FixtureRequest, make_nginx) -> Iterator[Backend]:  # type: ignore[no-untyped-def]
    mode: Mode = MODES[request.param]
    if mode.transport == "http":
        nginx: NginxServer = make_nginx(limit_rate=f"{mode.rate // MiB}m")

        def add_http(name: str, data: bytes) -> str:
            nginx.add(name, data)
            return nginx.slow_url(name)

        def sent_http(name: str) -> int:
            return sum(e.body_bytes_sent for e in nginx.access_log_for(name, min_lines=2))

        yield Backend(add_http, sent_http, lambda name: (nginx.root / name).unlink(), {})
        return
    moto: MotoS3Server = request.getfixturevalue("moto_s3")
    client = moto.client()
    bucket = f"torture-{os.getpid()}-{random.randrange(1 << 30)}"
    client.create_bucket(Bucket=bucket)
    with CountingProxy(moto.port, rate=mode.rate) as proxy:
        marks: dict[str, int] = {}

        def add_s3(name: str, data: bytes) -> str:
            client.put_object(Bucket=bucket, Key=name, Body=data)  # straight to moto: not counted
            marks[name] = proxy.sent
            return f"s3://{bucket}/{name}"

        def sent_s3(name: str) -> int:
            return proxy.sent - marks[name]  # rounds run one at a time

        def remove_s3(name: str) -> None:
            client.delete_object(Bucket=bucket, Key=name)

        options = {"s3": {"endpoint_url": proxy.url, "key": KEY, "secret": SECRET}}
        yield Backend(add_s3, sent_s3, remove_s3, options)


@pytest.mark.slow
@pytest.mark.parametrize("backend", sorted(MODES), indirect=True)
def test_kill9_at_random_moments_then_resume(
    backend: Backend, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    import json

    name_of_mode = request.node.callspec.params["backend"]
    mode = MODES[name_of_mode]
    rng = random.Random(f"{name_of_mode}-{os.getpid()}-{time.time()}")
    ratios = []
    total_sent = 0
    statuses = []
    for round_ in range(ROUNDS):
        name = f"{name_of_mode}-{round_}.bin"
        data = make_data(mode.size, seed=round_)
        url = backend.add(name, data)
        dest = tmp_path / name
        sidecar = dest.with_name(name + ".partial.json")  # written once the answer arrives
        options = json.dumps(backend.storage_options)
        args = [sys.executable, "-c", CHILD, url, str(dest), str(mode.connections), options]
        proc = subprocess.Popen(args)
        deadline = time.monotonic() + 30
        while not sidecar.exists():
            assert proc.poll() is None, "the download ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.005)
        # A random moment inside the transfer (which takes size / (rate * connections)).
        time.sleep(rng.uniform(0.0, 0.7 * mode.size / (mode.rate * mode.connections)))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL
        assert not dest.exists()  # really killed mid-download: nothing was published
        with resumable.ResumableDownloader(
            connections=mode.connections,
            segment_threshold=MiB,
            storage_options=backend.storage_options,
        ) as d:
            r = d.download(url, dest, sha256=hashlib.sha256(data).hexdigest())
        assert dest.read_bytes() == data
        sent = backend.sent(name)
        ratios.append(sent / mode.size)
        total_sent += sent
        statuses.append(r.status)
        print(f"{name_of_mode} round {round_}: {r.status}, server sent {sent / mode.size:.3f}x")
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(name)) == [name]
        backend.remove(name)
        dest.unlink()
    overall = total_sent / (mode.size * ROUNDS)
    summary = (
        f"TORTURE {name_of_mode}: {ROUNDS} rounds, 0 failures, "
        f"{statuses.count('resumed')} resumed; server sent {overall:.3f}x "
        f"the files in total (max {max(ratios):.3f}x, min {min(ratios):.3f}x in one round)"
    )
    print(summary)
    # Over the run, at most 5% more than the files; any one round at most 10% for HTTP (a kill
    # in the first milliseconds can lose the connection's initial burst from the TCP buffers).
    assert total_sent <= 1.05 * mode.size * ROUNDS, ratios
    assert max(ratios) <= mode.worst_round, ratios
