"""Issue 15, the HTTP protocol edge and prompt cancellation (items 10, 11, 12 and 15c).

Every test talks to the real fault server over loopback, on each HTTP engine:

- ``plain``: ``http://`` through the standard library's ``http.client`` (``_http_plain``);
- ``requests``: the same server with credentials in the URL, which goes through requests;
- ``tls``: ``https://`` through the adapter's urllib3 pool directly.

and proves its fault happened from the server's request log. Time bounds have margins: the
machine running the tests is shared.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from servers import Fault, FaultServer, make_data, make_tls

import resumable
from resumable import ResumableDownloader, RetryPolicy, Timeouts

KiB = 1 << 10
MiB = 1 << 20
ENGINES = ("plain", "requests", "tls")
PROMPT = 1.0  # seconds from cancel() to the call returning
LONG_STALL = 20.0  # a stall timeout that a prompt cancel must not wait out


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Engine:
    """A fault server reached through one of the HTTP engines."""

    def __init__(self, kind: str, server: FaultServer, bundle: Path | None) -> None:
        self.kind, self.server, self.bundle = kind, server, bundle

    def url(self, name: str) -> str:
        url = self.server.url_for(name)
        if self.kind == "requests":  # credentials in the URL: requests sends them
            url = url.replace("http://", "http://user:secret@", 1)
        return url

    def downloader(self, **options: Any) -> ResumableDownloader:
        if self.bundle is not None:
            options.setdefault("verify", self.bundle)
        return ResumableDownloader(**options)


@pytest.fixture(params=ENGINES)
def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    bundle = None
    context = None
    if request.param == "tls":
        files = make_tls(tmp_path_factory.mktemp("tls"))
        bundle, context = files.ca_bundle, files.server_context
    with FaultServer(ssl_context=context) as server:
        yield Engine(request.param, server, bundle)
        assert server.errors == []


def gets(server: FaultServer, name: str) -> list[Any]:
    return [r for r in server.requests_for(name) if r.method == "GET"]


def quick(**options: Any) -> dict[str, Any]:
    """Downloader options: no real sleeping between retries, a short stall timeout."""
    options.setdefault("retry", RetryPolicy(attempts=3, backoff=0.01, jitter=0))
    options.setdefault("timeouts", Timeouts(connect=5, stall=2.0))
    return options


# -- 12: informational answers ------------------------------------------------------------------


@pytest.mark.parametrize("codes", [(103,), (100,), (102,), (103, 103, 100)], ids=str)
def test_informational_answers_before_the_answer_are_skipped(
    engine: Engine, tmp_path: Path, codes: tuple[int, ...]
) -> None:
    """Finding 12: ``103 Early Hints`` (or 100, 102, several) before the 200 is skipped on
    every engine, once, without a retry; the connection is not left holding the real answer."""
    data = make_data(300 * KiB, seed=12)
    engine.server.add("a.bin", data)
    engine.server.add("b.bin", data[::-1])
    engine.server.plan("a.bin", Fault.informational(*codes))
    with engine.downloader(**quick(retry=RetryPolicy.never())) as d:
        result = d.download(engine.url("a.bin"), tmp_path / "a.bin")
        second = d.download(engine.url("b.bin"), tmp_path / "b.bin")  # the next request
    assert (tmp_path / "a.bin").read_bytes() == data
    assert result.sha256 == sha(data)
    assert (tmp_path / "b.bin").read_bytes() == data[::-1]
    assert second.status == "downloaded"
    log = gets(engine.server, "a.bin")
    assert [(r.fault, r.status) for r in log] == [("informational", 200)]  # no retry


def test_101_is_never_an_interim_answer_and_its_connection_is_not_reused(
    engine: Engine, tmp_path: Path
) -> None:
    """``101 Switching Protocols`` (never asked for) is the final answer: an unexpected status.
    What follows it on that connection is another protocol, never the next file's answer."""
    engine.server.add("a.bin", make_data(64 * KiB, seed=28))
    wanted = make_data(64 * KiB, seed=29)
    engine.server.add("b.bin", wanted)
    engine.server.plan("a.bin", Fault.informational(101))
    with engine.downloader(**quick()) as d:
        with pytest.raises(resumable.RemoteError, match="101"):
            d.download(engine.url("a.bin"), tmp_path / "a.bin")
        d.download(engine.url("b.bin"), tmp_path / "b.bin")
    assert (tmp_path / "b.bin").read_bytes() == wanted
    assert [r.fault for r in gets(engine.server, "a.bin")] == ["informational"]


def test_informational_answers_on_a_range_request(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    """A 103 before a 206 (resuming a cut download) is skipped too."""
    data = make_data(3 * MiB, seed=13)
    fault_server.add("r.bin", data)
    fault_server.plan("r.bin", Fault.cut(after=MiB), Fault.informational(103))
    with ResumableDownloader(**quick(block_size=256 * KiB)) as d:
        d.download(fault_server.url_for("r.bin"), tmp_path / "r.bin", connections=1)
    assert (tmp_path / "r.bin").read_bytes() == data
    log = gets(fault_server, "r.bin")
    assert [(r.fault, r.status) for r in log] == [("cut", 200), ("informational", 206)]


# -- 11: encodings the client cannot decode --------------------------------------------------


def _undecodable() -> list[str]:
    import urllib3

    known = set(urllib3.response.HTTPResponse.CONTENT_DECODERS)
    found = ["compress", "x-unknown-coding", "gzip, x-unknown-coding"]
    found += [e for e in ("br", "zstd") if e not in known]
    found += [f"gzip, {e}" for e in ("br", "zstd") if e not in known][:1]
    return found


@pytest.mark.parametrize("encoding", _undecodable())
def test_an_encoding_the_client_cannot_decode_is_a_clear_error(
    engine: Engine, tmp_path: Path, encoding: str
) -> None:
    """Finding 11: ``Content-Encoding: br`` without brotli (or any coding the client cannot
    decode) is a ``RemoteError`` naming the encoding; the encoded bytes are never stored."""
    data = make_data(200 * KiB, seed=11)
    engine.server.add("e.bin", data)
    engine.server.plan("e.bin", Fault.encoded(encoding))
    dest = tmp_path / "e.bin"
    with engine.downloader(**quick()) as d, pytest.raises(resumable.RemoteError) as caught:
        d.download(engine.url("e.bin"), dest)
    assert encoding.split(",")[-1].strip() in str(caught.value)
    assert "secret" not in str(caught.value)
    assert not dest.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing encoded kept either
    assert [r.fault for r in gets(engine.server, "e.bin")] == ["encoded"]  # not retried


def test_an_undecodable_encoding_on_a_segment_is_a_clear_error(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    """The same on a segmented download's range request: no encoded byte reaches the file."""
    data = make_data(3 * MiB, seed=14)
    fault_server.add("s.bin", data)
    fault_server.plan("s.bin", None, Fault.encoded("br"), Fault.encoded("br"))  # type: ignore[arg-type]
    dest = tmp_path / "s.bin"
    options = quick(block_size=256 * KiB, segment_threshold=MiB)
    with ResumableDownloader(**options) as d, pytest.raises(resumable.RemoteError) as caught:
        d.download(fault_server.url_for("s.bin"), dest, connections=3)
    assert "br" in str(caught.value)
    assert not dest.exists()
    assert any(r.fault == "encoded" and r.range for r in gets(fault_server, "s.bin"))


@pytest.mark.parametrize("encoding", ["identity", "IDENTITY", ""])
def test_content_encoding_identity_is_the_plain_bytes(
    engine: Engine, tmp_path: Path, encoding: str
) -> None:
    """``Content-Encoding: identity`` (said explicitly, any case, or empty) is no encoding."""
    data = make_data(200 * KiB, seed=15)
    engine.server.add("i.bin", data)
    engine.server.plan("i.bin", Fault.encoded(encoding))
    with engine.downloader(**quick()) as d:
        d.download(engine.url("i.bin"), tmp_path / "i.bin")
    assert (tmp_path / "i.bin").read_bytes() == data
    assert [r.fault for r in gets(engine.server, "i.bin")] == ["encoded"]


@pytest.mark.parametrize("encoding", ["x-gzip", "gzip", "GZip"])
def test_gzip_spellings_are_decoded(engine: Engine, tmp_path: Path, encoding: str) -> None:
    """``x-gzip`` is gzip (RFC 9110 8.4.1.3); decoded as before."""
    data = make_data(200 * KiB, seed=16)
    engine.server.add("g.bin", data)
    engine.server.plan("g.bin", Fault.encoded(encoding, gzip.compress(data, mtime=0)))
    with engine.downloader(**quick()) as d:
        d.download(engine.url("g.bin"), tmp_path / "g.bin")
    assert (tmp_path / "g.bin").read_bytes() == data


def test_a_truncated_gzip_body_is_never_published(engine: Engine, tmp_path: Path) -> None:
    """A gzip'd body whose HTTP framing is complete but whose gzip stream is cut short is an
    error (retried: it may be a broken cache), never a shorter file reported downloaded."""
    data = make_data(200 * KiB, seed=17)
    packed = gzip.compress(data, mtime=0)
    engine.server.add("t.bin", data)
    engine.server.plan("t.bin", *[Fault.encoded("gzip", packed[: len(packed) // 2])] * 10)
    dest = tmp_path / "t.bin"
    with engine.downloader(**quick()) as d, pytest.raises(resumable.RetriesExhausted) as caught:
        d.download(engine.url("t.bin"), dest)
    assert "compressed stream" in str(caught.value)
    assert not dest.exists()
    log = gets(engine.server, "t.bin")
    assert len(log) >= 3
    assert all(r.fault == "encoded" for r in log)


@pytest.mark.parametrize("coding", ["gzip, chunked", "x-custom"])
def test_a_transfer_coding_other_than_chunked_is_refused(
    engine: Engine, tmp_path: Path, coding: str
) -> None:
    """``Transfer-Encoding: gzip, chunked`` (or an unknown coding): ``http.client`` reads only
    ``chunked`` alone and would store the coded bytes as the file. A ``RemoteError`` instead."""
    engine.server.add("f.bin", make_data(64 * KiB, seed=26))
    body = gzip.compress(b"framed differently")
    headers = {"Transfer-Encoding": coding, "ETag": '"x"'}
    engine.server.plan("f.bin", Fault.status(200, headers=headers, body=body))
    dest = tmp_path / "f.bin"
    with engine.downloader(**quick()) as d, pytest.raises(resumable.RemoteError) as caught:
        d.download(engine.url("f.bin"), dest)
    assert "Transfer-Encoding" in str(caught.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    assert [(r.fault, r.status) for r in gets(engine.server, "f.bin")] == [("status", 200)]


# -- 15c: a time bound on receiving headers -----------------------------------------------------


@pytest.mark.parametrize("bytewise", [False, True], ids=["lines", "bytes"])
def test_trickled_headers_are_bounded_in_time(
    engine: Engine, tmp_path: Path, bytewise: bool
) -> None:
    """Header lines trickled one per 0.2 s (or one endless line, a byte per 0.2 s: never a
    stall) end in a retryable timeout after about one stall timeout, not after 100 header lines
    (or a 64 KiB line) or never; the retry then succeeds."""
    data = make_data(100 * KiB, seed=18)
    engine.server.add("h.bin", data)
    engine.server.plan("h.bin", Fault.slow_headers(0.2, bytewise=bytewise))
    stall = 1.5
    began = time.monotonic()
    with engine.downloader(**quick(timeouts=Timeouts(connect=5, stall=stall))) as d:
        result = d.download(engine.url("h.bin"), tmp_path / "h.bin")
    elapsed = time.monotonic() - began
    assert result.sha256 == sha(data)
    log = gets(engine.server, "h.bin")
    assert [r.fault for r in log] == ["slow_headers", None]
    assert log[0].header_lines >= 3  # the headers really were trickling
    assert elapsed < 2 * stall + 3.0, f"took {elapsed:.1f} s"


def test_endless_early_hints_are_bounded_in_time(fault_server: FaultServer, tmp_path: Path) -> None:
    """Interim answers sent forever cannot keep a request waiting past the header bound."""
    data = make_data(64 * KiB, seed=19)
    fault_server.add("x.bin", data)
    fault_server.plan("x.bin", Fault.informational(*[103] * 200_000))
    began = time.monotonic()
    options = quick(retry=RetryPolicy.never(), timeouts=Timeouts(connect=5, stall=1.0))
    with ResumableDownloader(**options) as d, pytest.raises(resumable.ResumableError):
        d.download(fault_server.url_for("x.bin"), tmp_path / "x.bin")
    assert time.monotonic() - began < 5.0


# -- 10: cancel and Ctrl-C are prompt whatever the network does ---------------------------------


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition never came true"
        time.sleep(0.02)


def cancel_promptly(job: resumable.Job) -> float:
    """Cancel ``job`` and return the seconds until ``wait()`` returned."""
    began = time.monotonic()
    job.cancel()
    result = job.wait(timeout=LONG_STALL * 2)
    took = time.monotonic() - began
    assert result.cancelled
    return took


def slow_downloader(**options: Any) -> ResumableDownloader:
    options.setdefault("timeouts", Timeouts(connect=5, stall=LONG_STALL))
    return ResumableDownloader(**options)


def test_cancel_before_the_headers_is_prompt(engine: Engine, tmp_path: Path) -> None:
    """Finding 10: a server that accepts the request and sends nothing; cancel returns at
    once, not after the 20 s stall timeout."""
    engine.server.add("q.bin", make_data(64 * KiB, seed=20))
    engine.server.plan("q.bin", Fault.hang(seconds=60))
    with engine.downloader(timeouts=Timeouts(connect=5, stall=LONG_STALL)) as d:
        job = d.start([engine.url("q.bin")], tmp_path)
        wait_until(lambda: engine.server.arrived >= 1)
        time.sleep(0.2)  # blocked in the read by now
        took = cancel_promptly(job)
    assert took < PROMPT, f"cancel took {took:.2f} s"
    assert [r.fault for r in gets(engine.server, "q.bin")] == ["hang"]


def test_cancel_mid_body_is_prompt_and_the_partial_resumes(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    """Cancel while the body has stalled mid-way: prompt, the bytes are kept as a partial,
    and the next run resumes from them."""
    data = make_data(4 * MiB, seed=21)
    fault_server.add("m.bin", data)
    fault_server.plan("m.bin", Fault.stall(after=MiB, seconds=60))
    partial = tmp_path / "m.bin.partial"
    with slow_downloader(block_size=256 * KiB) as d:
        job = d.start([fault_server.url_for("m.bin")], tmp_path)
        wait_until(lambda: job.status().bytes_transferred >= MiB)
        took = cancel_promptly(job)
        assert took < PROMPT, f"cancel took {took:.2f} s"
        assert partial.stat().st_size >= MiB
        again = d.download_many([fault_server.url_for("m.bin")], tmp_path)
    assert again.ok[0].status == "resumed"
    assert (tmp_path / "m.bin").read_bytes() == data
    log = gets(fault_server, "m.bin")
    assert log[0].fault == "stall"
    assert log[0].body_bytes_sent == MiB
    assert log[1].range == f"bytes={MiB}-"


def test_cancel_with_every_segment_stalled_is_prompt(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    """A segmented download whose connections all stall mid-piece: cancel is prompt, and the
    ranges written so far are recorded for the next run."""
    data = make_data(8 * MiB, seed=22)
    fault_server.add("g.bin", data)
    fault_server.plan("g.bin", *[Fault.stall(after=256 * KiB, seconds=60)] * 4)
    options = {"block_size": 256 * KiB, "segment_threshold": MiB, "connections": 4}
    with slow_downloader(**options) as d:
        job = d.start([fault_server.url_for("g.bin")], tmp_path)
        wait_until(lambda: not fault_server.pending("g.bin"))
        wait_until(lambda: job.status().bytes_transferred >= 4 * 256 * KiB)
        took = cancel_promptly(job)
        assert took < PROMPT, f"cancel took {took:.2f} s"
        again = d.download_many([fault_server.url_for("g.bin")], tmp_path)
    assert again.ok[0].status == "resumed"
    assert (tmp_path / "g.bin").read_bytes() == data
    assert sum(r.fault == "stall" for r in gets(fault_server, "g.bin")) == 4


@pytest.mark.parametrize("segmented", [False, True], ids=["single", "segmented"])
def test_cancel_during_a_retry_after_backoff_is_prompt(
    fault_server: FaultServer, tmp_path: Path, segmented: bool
) -> None:
    """A 503 with ``Retry-After: 60``: cancel does not sleep it out (segmented: a piece's
    connection backs off while the others are done or stalled)."""
    data = make_data(4 * MiB, seed=23)
    fault_server.add("b.bin", data)
    lead = [None] if segmented else []
    faults = [Fault.status(503, retry_after=60)] * (4 if segmented else 1)
    fault_server.plan("b.bin", *lead, *faults)  # type: ignore[arg-type]
    options = {"block_size": 256 * KiB, "segment_threshold": MiB, "connections": 4}
    with slow_downloader(**options) as d:
        job = d.start([fault_server.url_for("b.bin")], tmp_path)
        wait_until(lambda: any(r.status == 503 for r in fault_server.log))
        time.sleep(0.3)  # in the back-off by now
        took = cancel_promptly(job)
    assert took < PROMPT, f"cancel took {took:.2f} s"


def test_cancel_while_waiting_for_another_writers_lock_is_prompt(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    """Another process holds ``D.partial.lock`` (it is downloading the same file): a cancel
    stops the wait for that lock at once."""
    from filelock import FileLock

    fault_server.add("l.bin", make_data(64 * KiB, seed=24))
    lock = FileLock(str(tmp_path / "l.bin.partial.lock"))
    (tmp_path / "l.bin.partial").write_bytes(b"")  # a partial: no direct path, straight to the lock
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, str(tmp_path / "l.bin.partial.lock")],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == b"locked"
        with slow_downloader() as d:
            job = d.start([fault_server.url_for("l.bin")], tmp_path)
            time.sleep(0.5)
            took = cancel_promptly(job)
        assert took < PROMPT, f"cancel took {took:.2f} s"
    finally:
        holder.kill()
        holder.communicate()
    del lock


_HOLD_LOCK = """
import sys, time
from filelock import FileLock
lock = FileLock(sys.argv[1]); lock.acquire()
print("locked", flush=True)
time.sleep(120)
"""


@pytest.mark.parametrize("where", ["headers", "body"])
def test_ctrl_c_in_the_cli_is_prompt(fault_server: FaultServer, tmp_path: Path, where: str) -> None:
    """Finding 10, the CLI: SIGINT while every transfer is blocked on a silent server exits
    130 at once (not after ``--stall-timeout``), and a partial with bytes stays resumable."""
    data = make_data(4 * MiB, seed=25)
    fault_server.add("c.bin", data)
    fault = Fault.hang(seconds=60) if where == "headers" else Fault.stall(after=MiB, seconds=60)
    fault_server.plan("c.bin", fault)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "resumable",
            fault_server.url_for("c.bin"),
            "--dir",
            str(tmp_path),
            "--stall-timeout",
            str(LONG_STALL),
            "--connections",
            "1",
            "--quiet",
        ],
        env=env,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until(lambda: fault_server.arrived >= 1)
        time.sleep(1.0)  # the first MiB (body) has arrived, and the read is blocked
        began = time.monotonic()
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=LONG_STALL * 2)
        took = time.monotonic() - began
    finally:
        process.kill()
        _, stderr = process.communicate()
    assert code == 130
    assert took < 1.5 * PROMPT, f"exit took {took:.2f} s"
    assert b"interrupted" in stderr
    if where == "body":
        assert _size(tmp_path / "c.bin.partial") >= MiB
        with ResumableDownloader() as d:
            assert d.download(fault_server.url_for("c.bin"), tmp_path / "c.bin").status == "resumed"
        assert (tmp_path / "c.bin").read_bytes() == data


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


_SEGMENTED_CALL = """
import sys
from resumable import ResumableDownloader, Timeouts
options = dict(
    timeouts=Timeouts(connect=5, stall=20), block_size=256 << 10, segment_threshold=1 << 20
)
with ResumableDownloader(**options) as d:
    try:
        d.download(sys.argv[1], sys.argv[2], connections=4)
    except KeyboardInterrupt:
        sys.exit(130)
"""


def test_ctrl_c_in_a_segmented_download_call_is_prompt(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    """``download()`` on the main thread, segmented, every connection stalled mid-piece: Ctrl-C
    reaches the calling thread, which stops its workers at once (not one stall timeout per
    worker), and the recorded ranges resume."""
    data = make_data(8 * MiB, seed=27)
    fault_server.add("k.bin", data)
    fault_server.plan("k.bin", *[Fault.stall(after=256 * KiB, seconds=60)] * 4)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    dest = tmp_path / "k.bin"
    process = subprocess.Popen(
        [sys.executable, "-c", _SEGMENTED_CALL, fault_server.url_for("k.bin"), str(dest)], env=env
    )
    try:
        wait_until(lambda: fault_server.arrived >= 4)
        time.sleep(1.0)  # every connection has its first 256 KiB and is blocked
        began = time.monotonic()
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=LONG_STALL * 2)
        took = time.monotonic() - began
    finally:
        process.kill()
        process.wait()
    assert code == 130
    assert took < 1.5 * PROMPT, f"exit took {took:.2f} s"
    with ResumableDownloader(block_size=256 * KiB, segment_threshold=MiB) as d:
        assert d.download(fault_server.url_for("k.bin"), dest, connections=4).status == "resumed"
    assert dest.read_bytes() == data
    assert sum(r.fault == "stall" for r in gets(fault_server, "k.bin")) == 4


def test_cancel_during_a_tls_handshake_is_prompt(tmp_path: Path) -> None:
    """A server that accepts TCP connections and never answers the TLS ClientHello: urllib3
    connects (handshake included) before it sends the request, and a cancel still stops the
    wait at once."""
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                accepted.append(listener.accept()[0])  # and never a byte back

    threading.Thread(target=accept, daemon=True).start()
    url = f"https://127.0.0.1:{listener.getsockname()[1]}/silent.bin"
    try:
        with slow_downloader() as d:
            job = d.start([url], tmp_path)
            wait_until(lambda: len(accepted) >= 1)
            time.sleep(0.3)  # the ClientHello is out; the handshake waits for an answer
            took = cancel_promptly(job)
        assert took < PROMPT, f"cancel took {took:.2f} s"
    finally:
        listener.close()
        for sock in accepted:
            sock.close()


def test_cancel_of_a_fanned_out_batch_is_prompt(fault_server: FaultServer, tmp_path: Path) -> None:
    """``executor=``: the cancel reaches the chunk's threads through the link's token, and
    their reads blocked on a silent server end at once."""
    from concurrent.futures import ThreadPoolExecutor

    names = [f"p{i}.bin" for i in range(3)]
    for name in names:
        fault_server.add(name, make_data(64 * KiB, seed=30))
        fault_server.plan(name, Fault.hang(seconds=60))
    with ThreadPoolExecutor(2) as pool, slow_downloader(workers=3) as d:
        job = d.start([fault_server.url_for(n) for n in names], tmp_path, executor=pool)
        wait_until(lambda: fault_server.arrived >= 3)
        time.sleep(0.2)
        took = cancel_promptly(job)
    assert took < PROMPT, f"cancel took {took:.2f} s"


_SINGLE_CALL = """
import sys
from resumable import ResumableDownloader, Timeouts
with ResumableDownloader(timeouts=Timeouts(connect=5, stall=20)) as d:
    try:
        d.download(sys.argv[1], sys.argv[2], connections=1)
    except KeyboardInterrupt:
        sys.exit(130)
"""


@pytest.mark.parametrize("where", ["headers", "body"])
def test_ctrl_c_in_a_single_stream_download_call_is_prompt(
    fault_server: FaultServer, tmp_path: Path, where: str
) -> None:
    """``download()`` on the main thread, one stream blocked on a silent server: Ctrl-C ends
    it at once, and bytes received before it are kept for the next call."""
    data = make_data(4 * MiB, seed=31)
    fault_server.add("s.bin", data)
    fault = Fault.hang(seconds=60) if where == "headers" else Fault.stall(after=MiB, seconds=60)
    fault_server.plan("s.bin", fault)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    dest = tmp_path / "s.bin"
    process = subprocess.Popen(
        [sys.executable, "-c", _SINGLE_CALL, fault_server.url_for("s.bin"), str(dest)], env=env
    )
    try:
        wait_until(lambda: fault_server.arrived >= 1)
        time.sleep(1.0)
        began = time.monotonic()
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=LONG_STALL * 2)
        took = time.monotonic() - began
    finally:
        process.kill()
        process.wait()
    assert code == 130
    assert took < 1.5 * PROMPT, f"exit took {took:.2f} s"
    if where == "body":
        assert _size(tmp_path / "s.bin.partial") >= MiB
        with ResumableDownloader() as d:
            assert d.download(fault_server.url_for("s.bin"), dest).status == "resumed"
        assert dest.read_bytes() == data
