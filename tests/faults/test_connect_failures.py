"""A dead or mistyped host fails in seconds, as a ConnectionError; a server that goes away
mid-download still gets the whole retry budget.

A name under ``.invalid`` resolves nowhere (RFC 6761) and a closed loopback port refuses at
once, so both fail without any network. The "server restarts mid-download" cases put a
:class:`Switch` between the downloader and a FaultServer: a forwarder on a fixed loopback
port that the test turns off (the port then refuses connections, as a restarting server's
does) and on again, from the retry policy's injected ``sleep``, so each attempt's outcome is
decided, not raced.
"""

from __future__ import annotations

import contextlib
import logging
import pickle
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from servers import Fault, FaultServer, make_data

import resumable
from resumable import (
    ConnectionFailed,
    ProgressEvent,
    ResumableDownloader,
    ResumableError,
    RetriesExhausted,
    RetryPolicy,
    ServerBusy,
    StallTimeout,
    Timeouts,
)
from resumable.errors import (
    CannotConnect,
    ConnectionRetriesExhausted,
    ConnectTimeout,
    TimeoutRetriesExhausted,
)

SIZE = 1_000_000
FAST = 10.0  # seconds: "fails in seconds", with room for a loaded machine


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def assert_fails_fast_as_connection_error(url: str, tmp_path: Path, **options: object) -> None:
    dest = tmp_path / "f.bin"
    started = time.monotonic()
    with ResumableDownloader(**options) as d, pytest.raises(ConnectionError) as caught:  # type: ignore[arg-type]
        d.download(url, dest)
    elapsed = time.monotonic() - started
    assert elapsed < FAST, f"took {elapsed:.1f}s"
    error = caught.value
    assert isinstance(error, ResumableError)
    assert isinstance(error, RetriesExhausted)  # what existing callers catch
    assert error.attempts == RetryPolicy().connect_attempts
    assert isinstance(error.__cause__, CannotConnect)
    assert sorted(tmp_path.iterdir()) == []  # no partial, no sidecar, no destination
    assert pickle.loads(pickle.dumps(error)).attempts == error.attempts


# -- a wrong or dead address ----------------------------------------------------------------------


def test_an_unknown_host_is_a_connection_error_within_seconds(tmp_path: Path) -> None:
    assert_fails_fast_as_connection_error("http://no-such-host.invalid/x.bin", tmp_path)


def test_an_unknown_https_host_is_a_connection_error_within_seconds(tmp_path: Path) -> None:
    assert_fails_fast_as_connection_error("https://no-such-host.invalid/x.bin", tmp_path)


def test_a_refused_port_is_a_connection_error_within_seconds_and_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="resumable")
    url = f"http://127.0.0.1:{closed_port()}/x.bin"
    assert_fails_fast_as_connection_error(url, tmp_path)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in caplog.records]
    assert "failed attempt 2 of at most 3" in warnings[0].getMessage()
    assert "Connection refused" in warnings[0].getMessage()


def test_a_refused_https_port_is_a_connection_error_within_seconds(tmp_path: Path) -> None:
    assert_fails_fast_as_connection_error(f"https://127.0.0.1:{closed_port()}/x.bin", tmp_path)


def test_s3_at_a_refused_endpoint_is_a_connection_error_within_seconds(tmp_path: Path) -> None:
    options = {
        "endpoint_url": f"http://127.0.0.1:{closed_port()}",
        "key": "AKIAEXAMPLEKEY",
        "secret": "example-secret-access-key",
    }
    assert_fails_fast_as_connection_error(
        "s3://bucket/key.bin", tmp_path, storage_options={"s3": options}
    )


def test_s3_at_an_unknown_endpoint_host_is_a_connection_error_within_seconds(
    tmp_path: Path,
) -> None:
    options = {
        "endpoint_url": "http://no-such-host.invalid:9000",
        "key": "AKIAEXAMPLEKEY",
        "secret": "example-secret-access-key",
    }
    assert_fails_fast_as_connection_error(
        "s3://bucket/key.bin", tmp_path, storage_options={"s3": options}
    )


def test_a_batch_of_dead_urls_fails_each_item_fast_and_warns_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="resumable")
    port = closed_port()
    items = [(f"http://127.0.0.1:{port}/{n}.bin", f"{n}.bin") for n in range(6)]
    started = time.monotonic()
    with ResumableDownloader(workers=3) as d:
        result = d.download_many(items, tmp_path)
    assert time.monotonic() - started < FAST
    assert len(result.failed) == len(items)
    assert all(isinstance(error, ConnectionError) for _, error in result.failed)
    assert [p.name for p in tmp_path.iterdir() if p.name != ".resumable"] == []  # the ledger
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # one host, one outage: one warning, not one per file


def test_a_missing_object_and_a_denied_one_keep_their_builtin_family(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    url = fault_server.add("f.bin", b"x" * 1000)
    fault_server.plan("f.bin", Fault.status(404))
    with ResumableDownloader() as d:
        with pytest.raises(FileNotFoundError) as missing:
            d.download(url, tmp_path / "a.bin")
        fault_server.plan("f.bin", Fault.status(403))
        with pytest.raises(PermissionError) as denied:
            d.download(url, tmp_path / "b.bin")
    assert isinstance(missing.value, ResumableError)
    assert isinstance(denied.value, ResumableError)


def test_a_stalling_server_ends_as_a_timeout_error(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    url = fault_server.add("f.bin", make_data(SIZE))
    fault_server.plan("f.bin", *[Fault.hang(2.0)] * 3)
    policy = RetryPolicy(attempts=2, backoff=0.01, jitter=0)
    with (
        ResumableDownloader(retry=policy, timeouts=Timeouts(connect=2, stall=0.3)) as d,
        pytest.raises(TimeoutError) as caught,
    ):
        d.download(url, tmp_path / "f.bin")
    assert isinstance(caught.value, RetriesExhausted)
    assert isinstance(caught.value.__cause__, StallTimeout)


# -- a server that goes away mid-download ----------------------------------------------------------


class Switch:
    """A TCP forwarder from a fixed loopback port to ``upstream``, that can be turned off
    (its port refuses connections and its connections are cut) and on again."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.off_after: int | None = None  # turn off once the server has sent this many bytes
        self.sent = 0
        self.port = closed_port()
        self._listener: socket.socket | None = None
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        self.on()

    def on(self) -> None:
        with self._lock:
            if self._listener is not None:
                return
            listener = socket.socket()
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", self.port))
            listener.listen(16)
            listener.settimeout(0.05)
            self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def off(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            sockets, self._open = self._open, []
        if listener is not None:
            # Stops the listening at once: a close alone waits for a thread blocked in
            # accept(), and a connection arriving meanwhile would be accepted, then reset.
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.upstream))
            client.settimeout(None)
            with self._lock:
                self._open += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while chunk := source.recv(65536):
                sink.sendall(chunk)
                if sink in self._open[::2]:  # towards a client
                    self._count(len(chunk))
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def _count(self, sent: int) -> None:
        with self._lock:
            self.sent += sent
            due = self.off_after is not None and self.sent >= self.off_after
            if due:
                self.off_after = None
        if due:
            self.off()


@pytest.fixture
def switch(fault_server: FaultServer) -> Iterator[Switch]:
    switch = Switch(fault_server.port)
    yield switch
    switch.off()


def scripted(switch: Switch, *, off_at: int, on_at: int) -> Callable[[float], None]:
    """A ``sleep`` that turns the server off when a thread starts its ``off_at``-th wait and on
    at its ``on_at``-th (each thread counts its own: one budget per thread), and lets the
    others run meanwhile."""
    waits: dict[int, int] = {}

    def sleep(_seconds: float) -> None:
        me = threading.get_ident()
        waits[me] = waits.get(me, 0) + 1
        if waits[me] == off_at:
            switch.off()
        if waits[me] == on_at:
            switch.on()
        time.sleep(0.01)

    return sleep


def through(switch: Switch, url: str) -> str:
    return url.replace(f":{switch.upstream}/", f":{switch.port}/")


def refusals(events: list[ProgressEvent]) -> int:
    return sum(1 for e in events if e.kind == "retrying" and isinstance(e.error, CannotConnect))


def test_a_server_restarting_mid_download_gets_the_whole_budget(
    fault_server: FaultServer, switch: Switch, tmp_path: Path
) -> None:
    data = make_data(SIZE)
    url = through(switch, fault_server.add("f.bin", data))
    fault_server.plan("f.bin", Fault.cut(after=300_000))  # then the server is down a while
    policy = RetryPolicy(jitter=0, sleep=scripted(switch, off_at=1, on_at=7))
    events: list[ProgressEvent] = []
    with ResumableDownloader(retry=policy, connections=1) as d:
        result = d.download(url, tmp_path / "f.bin", progress=events.append)
    assert (tmp_path / "f.bin").read_bytes() == data
    assert refusals(events) == 6  # twice connect_attempts: the ordinary budget applied
    ranges = [r.range for r in fault_server.requests_for("f.bin") if r.method == "GET"]
    assert ranges[-1] == "bytes=300000-"  # resumed, not restarted
    assert result.bytes_transferred == SIZE


def test_a_resumed_partial_survives_a_server_that_is_down_for_a_while(
    fault_server: FaultServer, switch: Switch, tmp_path: Path
) -> None:
    data = make_data(SIZE)
    url = through(switch, fault_server.add("f.bin", data))
    fault_server.plan("f.bin", Fault.cut(after=300_000), Fault.status(404))
    quick = RetryPolicy(jitter=0, backoff=0)
    with ResumableDownloader(retry=quick, connections=1) as d, pytest.raises(FileNotFoundError):
        d.download(url, tmp_path / "f.bin")
    assert (tmp_path / "f.bin.partial").stat().st_size == 300_000
    # A new run while the server restarts: the bytes on disk say the address is right.
    switch.off()
    policy = RetryPolicy(jitter=0, sleep=scripted(switch, off_at=0, on_at=5))
    events: list[ProgressEvent] = []
    with ResumableDownloader(retry=policy, connections=1) as d:
        d.download(url, tmp_path / "f.bin", progress=events.append)
    assert (tmp_path / "f.bin").read_bytes() == data
    assert refusals(events) == 5
    ranges = [r.range for r in fault_server.requests_for("f.bin") if r.method == "GET"]
    assert ranges[-1] == "bytes=300000-"


def test_a_segmented_download_survives_a_server_restart(
    fault_server: FaultServer, switch: Switch, tmp_path: Path
) -> None:
    data = make_data(8 << 20, 3)
    url = through(switch, fault_server.add("f.bin", data))
    switch.off_after = 3 << 20  # the server goes away with a third of the file sent
    # On again when one of the connections has failed 5 times in a row (4 or more refused).
    policy = RetryPolicy(jitter=0, sleep=scripted(switch, off_at=0, on_at=5))
    events: list[ProgressEvent] = []
    with ResumableDownloader(retry=policy, connections=4, segment_threshold=1 << 20) as d:
        d.download(url, tmp_path / "f.bin", progress=events.append)
    assert (tmp_path / "f.bin").read_bytes() == data
    retried = [e.error for e in events if e.kind == "retrying"]
    assert sum(isinstance(error, CannotConnect) for error in retried) > 3


def test_a_server_down_from_the_start_gets_only_the_connect_attempts(
    fault_server: FaultServer, switch: Switch, tmp_path: Path
) -> None:
    url = through(switch, fault_server.add("f.bin", make_data(SIZE)))
    switch.off()
    policy = RetryPolicy(jitter=0, sleep=scripted(switch, off_at=0, on_at=5))
    with (
        ResumableDownloader(retry=policy) as d,
        pytest.raises(ConnectionRetriesExhausted) as caught,
    ):
        d.download(url, tmp_path / "f.bin")
    assert caught.value.attempts == 3
    assert fault_server.requests_for("f.bin") == []
    assert sorted(tmp_path.iterdir()) == []


def test_a_server_cutting_connections_mid_body_resumes_with_the_normal_budget(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    data = make_data(SIZE)
    url = fault_server.add("f.bin", data)
    cuts = [Fault.cut(after=100_000, reset=n % 2 == 0) for n in range(7)]
    fault_server.plan("f.bin", *cuts)
    policy = RetryPolicy(attempts=2, backoff=0, jitter=0)
    with ResumableDownloader(retry=policy, connections=1) as d:
        d.download(url, tmp_path / "f.bin")
    assert (tmp_path / "f.bin").read_bytes() == data
    assert len([r for r in fault_server.requests_for("f.bin") if r.method == "GET"]) == 8


# -- the budget, as a value ------------------------------------------------------------------------


def test_connect_failures_use_the_connect_attempts_until_the_file_has_bytes() -> None:
    policy = RetryPolicy(attempts=8, connect_attempts=3, sleep=lambda _: None)
    refused = CannotConnect("connection failed: refused", url="http://h/f")
    budget = policy.budget()
    for _ in range(2):
        budget, _wait = budget.failed(refused)
    with pytest.raises(ConnectionRetriesExhausted) as caught:
        budget.failed(refused)
    assert caught.value.attempts == 3
    assert caught.value.__cause__ is refused
    # The same refusals after the file has bytes: the ordinary budget.
    for start in (policy.budget().resuming(1), policy.budget().moved(refused, 10)[0]):
        budget = start
        for _ in range(6):
            budget, _wait = budget.failed(refused)
        assert budget.connect_failures == 0
    # Never more than ``attempts``; resuming nothing changes nothing.
    budget = RetryPolicy(attempts=2, connect_attempts=5).budget().resuming(0)
    budget, _wait = budget.failed(refused)
    with pytest.raises(ConnectionRetriesExhausted):
        budget.failed(refused)


def test_other_failures_in_between_do_not_reset_the_connect_count() -> None:
    policy = RetryPolicy(attempts=8, connect_attempts=2, jitter=0)
    budget = policy.budget()
    budget, _ = budget.failed(ConnectTimeout("timed out connecting", url="http://h/f"))
    budget, _ = budget.failed(ServerBusy(url="http://h/f", status=503))
    with pytest.raises(TimeoutRetriesExhausted) as caught:
        budget.failed(ConnectTimeout("timed out connecting", url="http://h/f"))
    assert isinstance(caught.value, TimeoutError)
    assert caught.value.attempts == 3


@pytest.mark.parametrize(
    ("error", "family"),
    [
        (ConnectionFailed("reset", url="http://h/f"), ConnectionError),
        (CannotConnect("refused", url="http://h/f"), ConnectionError),
        (StallTimeout("stalled", url="http://h/f", seconds=1.0), TimeoutError),
        (ConnectTimeout("timed out connecting", url="http://h/f"), TimeoutError),
    ],
)
def test_the_final_error_is_of_its_cause_family(error: Exception, family: type) -> None:
    budget = RetryPolicy(attempts=1).budget()
    with pytest.raises(RetriesExhausted) as caught:
        budget.failed(error)  # type: ignore[arg-type]
    assert isinstance(caught.value, family)
    assert not isinstance(caught.value, resumable.TransientError)  # never retried again


def test_a_server_busy_to_the_end_is_a_plain_retries_exhausted() -> None:
    budget = RetryPolicy(attempts=1).budget()
    with pytest.raises(RetriesExhausted) as caught:
        budget.failed(ServerBusy(url="http://h/f", status=503))
    assert type(caught.value) is RetriesExhausted


def test_retry_warnings_start_at_the_second_failure_and_are_rate_limited(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="resumable")
    policy = RetryPolicy(attempts=50, jitter=0)
    url = f"http://127.0.0.1:{closed_port()}/f"  # a host no other test warned about
    error = ConnectionFailed("reset", url=url)
    budget, _ = policy.budget().failed(error)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    for _ in range(20):  # a long outage
        budget, _ = budget.failed(error)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [f"failed attempt 2 of at most 50, retrying in 1.0s: reset [{url}]"]


def test_connect_attempts_is_validated() -> None:
    with pytest.raises(resumable.InvalidArgument, match="connect_attempts"):
        RetryPolicy(connect_attempts=0)
    with pytest.raises(resumable.InvalidArgument):
        RetryPolicy(connect_attempts=1.5)  # type: ignore[arg-type]
