"""Self-tests for the test servers: every behaviour and fault the suite relies on.

Why: a downloader test that passes against a fault that silently did not happen proves
nothing. These tests pin down, with plain ``requests`` and raw sockets, what each server and
each :class:`Fault` really puts on the wire, and what the client then observes.
"""

from __future__ import annotations

import email.utils
import gzip
import http.client
import socket
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import pytest
import requests
import urllib3
from servers import (
    Fault,
    FaultServer,
    NginxServer,
    Record,
    SimpleHTTPServer,
    make_data,
    parse_range,
)

SIZE = 300_000  # several 64 KiB chunks, so cuts land mid-body
CHUNK = 64 * 1024


def get(url: str, **kwargs: object) -> requests.Response:
    """GET with a fresh connection, body fully read, connection released."""
    kwargs.setdefault("timeout", 5)
    with requests.Session() as session, session.get(url, **kwargs) as response:
        _ = response.content
        return response


def raw_exchange(url: str, headers: str = "", timeout: float = 5.0) -> tuple[bytes, bytes, str]:
    """Send one GET on a raw socket and read until the server ends the connection.

    Returns (head, body, ending) where ending is "FIN" (clean EOF) or "RST" (reset), which
    ``requests`` cannot tell apart reliably. Requests ``Connection: close`` so a healthy
    response also ends with FIN.
    """
    parts = urlsplit(url)
    request = f"GET {parts.path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{headers}\r\n"
    received = b""
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
        sock.sendall(request.encode())
        try:
            while chunk := sock.recv(65536):
                received += chunk
            ending = "FIN"
        except ConnectionResetError:
            ending = "RST"
    head, _, body = received.partition(b"\r\n\r\n")
    return head, body, ending


def drain_read1(response: requests.Response, into: bytearray) -> None:
    """Read the undecoded body with ``read1`` until EOF, appending to ``into`` as we go."""
    while chunk := response.raw.read1(CHUNK, decode_content=False):
        into += chunk


def one(records: list[Record]) -> Record:
    assert len(records) == 1, records
    return records[0]


# --------------------------------------------------------------------------- parse_range


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-9", (0, 9)),
        ("bytes=10-", (10, 99)),
        ("bytes=-10", (90, 99)),
        ("bytes=-1000", (0, 99)),
        ("bytes=90-1000", (90, 99)),
        ("bytes=100-", "unsatisfiable"),
        ("bytes=-0", "unsatisfiable"),
        ("bytes=0-1,5-6", None),
        ("bytes=9-1", None),
        ("bytes=abc", None),
        ("items=0-1", None),
        ("bytes=-", None),
    ],
)
def test_parse_range(header: str, expected: object) -> None:
    assert parse_range(header, 100) == expected


# ----------------------------------------------------------------- fault server: normal


def test_full_get_and_head_headers(fault_server: FaultServer) -> None:
    data = make_data(SIZE)
    url = fault_server.add("a.bin", data)
    response = get(url)
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["Content-Length"] == str(SIZE)
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.headers["Content-Type"] == "application/octet-stream"
    etag = response.headers["ETag"]
    assert etag.startswith('"')
    assert etag.endswith('"')
    email.utils.parsedate_to_datetime(response.headers["Last-Modified"])

    with requests.head(url, timeout=5, headers={"Range": "bytes=0-9"}) as head:
        assert head.status_code == 200  # Range is defined for GET only
        assert head.headers["Content-Length"] == str(SIZE)
        assert head.headers["ETag"] == etag
    records = fault_server.requests_for("a.bin")
    assert [(r.method, r.status, r.body_bytes_sent) for r in records] == [
        ("GET", 200, SIZE),
        ("HEAD", 200, 0),
    ]
    assert records[0].etag == etag


def test_ranges(fault_server: FaultServer) -> None:
    data = make_data(1000)
    url = fault_server.add("r.bin", data)
    cases = {
        "bytes=100-199": (206, "bytes 100-199/1000", data[100:200]),
        "bytes=900-": (206, "bytes 900-999/1000", data[900:]),
        "bytes=-10": (206, "bytes 990-999/1000", data[-10:]),
        "bytes=1000-": (416, "bytes */1000", b""),
        "bytes=0-1,5-9": (200, None, data),
        "bytes=oops": (200, None, data),
    }
    for range_header, (status, content_range, body) in cases.items():
        response = get(url, headers={"Range": range_header})
        assert response.status_code == status, range_header
        assert response.headers.get("Content-Range") == content_range, range_header
        assert response.content == body, range_header
    records = fault_server.requests_for("r.bin")
    assert [r.range for r in records] == list(cases)
    assert [r.body_bytes_sent for r in records] == [100, 100, 10, 0, 1000, 1000]


def test_if_range(fault_server: FaultServer) -> None:
    data = make_data(1000)
    url = fault_server.add("i.bin", data)
    etag = get(url).headers["ETag"]
    last_modified = get(url).headers["Last-Modified"]
    later = email.utils.formatdate(
        email.utils.parsedate_to_datetime(last_modified).timestamp() + 1, usegmt=True
    )
    cases = {etag: 206, last_modified: 206, f"W/{etag}": 200, '"other"': 200, later: 200}
    for if_range, status in cases.items():
        response = get(url, headers={"Range": "bytes=500-", "If-Range": if_range})
        assert response.status_code == status, if_range
        assert response.content == (data[500:] if status == 206 else data)
    assert [r.if_range for r in fault_server.requests_for("i.bin")[2:]] == list(cases)


def test_weak_etag_never_validates_if_range(fault_server: FaultServer) -> None:
    data = make_data(1000)
    url = fault_server.add("w.bin", data, etag="weak", last_modified=False)
    response = get(url)
    weak = response.headers["ETag"]
    assert weak.startswith('W/"')
    assert "Last-Modified" not in response.headers
    for if_range in (weak, weak[2:]):
        response = get(url, headers={"Range": "bytes=10-", "If-Range": if_range})
        assert response.status_code == 200
    assert get(url, headers={"Range": "bytes=10-"}).status_code == 206  # ranges still work


def test_object_without_ranges_or_validators(fault_server: FaultServer) -> None:
    data = make_data(1000)
    url = fault_server.add("n.bin", data, etag=None, last_modified=False, ranges=False)
    response = get(url, headers={"Range": "bytes=10-"})
    assert response.status_code == 200
    assert response.content == data
    for header in ("Accept-Ranges", "ETag", "Last-Modified", "Content-Range"):
        assert header not in response.headers


def test_unknown_name_is_404(fault_server: FaultServer) -> None:
    assert get(fault_server.url_for("missing")).status_code == 404
    assert one(fault_server.requests_for("missing")).status == 404


def test_replace_changes_validators(fault_server: FaultServer) -> None:
    url = fault_server.add("v.bin", b"old")
    before = get(url)
    fault_server.replace("v.bin", b"old")  # same bytes, still a new version
    after = get(url)
    assert after.headers["ETag"] != before.headers["ETag"]
    old_date = email.utils.parsedate_to_datetime(before.headers["Last-Modified"])
    new_date = email.utils.parsedate_to_datetime(after.headers["Last-Modified"])
    assert (new_date - old_date).total_seconds() >= 1


def test_keep_alive_and_reset(fault_server: FaultServer) -> None:
    url = fault_server.add("k.bin", b"x" * 10, etag=None)
    with requests.Session() as session:
        for _ in range(3):
            with session.get(url, timeout=5) as response:
                assert response.content == b"x" * 10
    assert len({r.conn_id for r in fault_server.log}) == 1  # one connection, reused
    fault_server.reset()
    assert fault_server.log == []
    assert get(url).status_code == 404


def test_faults_are_consumed_in_order_by_get_only(fault_server: FaultServer) -> None:
    url = fault_server.add("q.bin", b"payload")
    fault_server.plan("q.bin", Fault.status(500), Fault.status(503))
    with requests.head(url, timeout=5) as head:
        assert head.status_code == 200
    assert len(fault_server.pending("q.bin")) == 2
    assert [get(url).status_code for _ in range(3)] == [500, 503, 200]
    assert [r.fault for r in fault_server.requests_for("q.bin")] == [None, "status", "status", None]
    assert fault_server.pending("q.bin") == []


# ----------------------------------------------------------------- fault server: faults


def test_cut_closes_with_fin_after_exact_bytes(fault_server: FaultServer) -> None:
    data = make_data(SIZE)
    url = fault_server.add("c.bin", data)
    fault_server.plan("c.bin", Fault.cut(after=1000), Fault.cut(after=70_000))
    head, body, ending = raw_exchange(url)
    assert ending == "FIN"
    assert f"Content-Length: {SIZE}".encode() in head
    assert body == data[:1000]
    with pytest.raises(requests.exceptions.ChunkedEncodingError, match="IncompleteRead"):
        get(url)
    assert [(r.fault, r.body_bytes_sent) for r in fault_server.requests_for("c.bin")] == [
        ("cut", 1000),
        ("cut", 70_000),
    ]


def test_cut_with_reset_sends_rst(fault_server: FaultServer) -> None:
    data = make_data(SIZE)
    url = fault_server.add("c.bin", data)
    fault_server.plan("c.bin", Fault.cut(after=1000, reset=True), Fault.cut(1000, reset=True))
    _, body, ending = raw_exchange(url)
    assert ending == "RST"
    assert body == data[:1000]  # on Linux loopback, bytes before the RST still arrive
    with pytest.raises(requests.exceptions.ChunkedEncodingError) as excinfo:
        get(url)
    assert "ConnectionResetError" in str(excinfo.value)
    assert {(r.fault, r.body_bytes_sent) for r in fault_server.requests_for("c.bin")} == {
        ("cut", 1000)
    }


def test_short_body(fault_server: FaultServer) -> None:
    data = make_data(SIZE)
    url = fault_server.add("s.bin", data)
    fault_server.plan("s.bin", Fault.short_body(5000), Fault.short_body(5000))
    head, body, ending = raw_exchange(url)
    assert (ending, body) == ("FIN", data[:5000])
    assert f"Content-Length: {SIZE}".encode() in head
    with pytest.raises(requests.exceptions.ChunkedEncodingError, match="IncompleteRead"):
        get(url)
    assert fault_server.requests_for("s.bin")[-1].body_bytes_sent == 5000


def test_status_faults(fault_server: FaultServer) -> None:
    url = fault_server.add("st.bin", make_data(1234))
    date = email.utils.formatdate(time.time() + 60, usegmt=True)
    fault_server.plan(
        "st.bin",
        Fault.status(503, retry_after=7),
        Fault.status(429, retry_after=date, headers={"X-Why": "busy"}, body=b"slow down"),
        Fault.status(416),
        Fault.status(410),
    )
    first, second, third, fourth, normal = (get(url) for _ in range(5))
    assert (first.status_code, first.headers["Retry-After"]) == (503, "7")
    assert (second.status_code, second.headers["Retry-After"]) == (429, date)
    assert (second.headers["X-Why"], second.content) == ("busy", b"slow down")
    assert (third.status_code, third.headers["Content-Range"]) == (416, "bytes */1234")
    assert fourth.status_code == 410
    assert normal.status_code == 200
    records = fault_server.requests_for("st.bin")
    assert [r.status for r in records] == [503, 429, 416, 410, 200]
    assert records[1].body_bytes_sent == len(b"slow down")


def test_ignore_range(fault_server: FaultServer) -> None:
    data = make_data(SIZE)
    url = fault_server.add("ir.bin", data)
    fault_server.plan("ir.bin", Fault.ignore_range())
    response = get(url, headers={"Range": "bytes=1000-"})
    assert (response.status_code, response.content) == (200, data)
    assert "Content-Range" not in response.headers
    assert get(url, headers={"Range": "bytes=1000-"}).status_code == 206  # fault consumed


def test_wrong_content_range(fault_server: FaultServer) -> None:
    data = make_data(1000)
    url = fault_server.add("wcr.bin", data)
    fault_server.plan("wcr.bin", Fault.wrong_content_range(start=500))
    response = get(url, headers={"Range": "bytes=100-"})
    assert response.status_code == 206
    assert response.headers["Content-Range"] == "bytes 500-999/1000"
    assert response.content == data[500:]
    assert one(fault_server.requests_for("wcr.bin")).content_range == "bytes 500-999/1000"


def test_stall_trips_read_timeout_then_closes(fault_server: FaultServer) -> None:
    data = make_data(SIZE)
    url = fault_server.add("st.bin", data)
    fault_server.plan("st.bin", Fault.stall(after=1000, seconds=5), Fault.stall(1000, 0.4))
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ConnectionError, match="Read timed out"):
        get(url, timeout=(5, 0.2))  # mid-body read timeout: ConnectionError, not Timeout!
    assert time.monotonic() - started < 1
    started = time.monotonic()
    _, body, ending = raw_exchange(url)  # no client timeout: wait out the stall
    assert 0.35 < time.monotonic() - started < 3
    assert (ending, body) == ("FIN", data[:1000])
    records = fault_server.requests_for("st.bin")  # the 5 s stall ended when the client left
    assert [(r.fault, r.body_bytes_sent) for r in records if r.fault] == [("stall", 1000)] * 2


def test_hang_before_headers(fault_server: FaultServer) -> None:
    url = fault_server.add("h.bin", b"data")
    fault_server.plan("h.bin", Fault.hang(0.5), Fault.hang(0))
    with pytest.raises(requests.exceptions.ReadTimeout):
        get(url, timeout=(5, 0.2))
    with pytest.raises(requests.exceptions.ConnectionError, match="without response"):
        get(url)
    assert [(r.fault, r.status) for r in fault_server.requests_for("h.bin")] == [("hang", 0)] * 2


def test_trickle(fault_server: FaultServer) -> None:
    data = make_data(3000)
    url = fault_server.add("t.bin", data)
    fault_server.plan("t.bin", Fault.trickle(bytes_per_second=6000))
    started = time.monotonic()
    assert get(url).content == data
    assert 0.4 < time.monotonic() - started < 2
    record = one(fault_server.requests_for("t.bin"))
    assert (record.fault, record.body_bytes_sent) == ("trickle", 3000)


def test_gzip(fault_server: FaultServer) -> None:
    data = make_data(SIZE)
    url = fault_server.add("g.bin", data)
    fault_server.plan("g.bin", Fault.gzip(), Fault.gzip())
    headers = {"Accept-Encoding": "identity", "Range": "bytes=1000-"}
    with requests.get(url, headers=headers, stream=True, timeout=5) as response:
        compressed = response.raw.read(decode_content=False)
    assert response.status_code == 200  # Range ignored
    assert response.headers["Content-Encoding"] == "gzip"
    assert response.headers["Content-Length"] == str(len(compressed))
    assert gzip.decompress(compressed) == data
    assert get(url, headers=headers).content == data  # requests decodes transparently
    assert [r.fault for r in fault_server.requests_for("g.bin")] == ["gzip", "gzip"]


def test_redirects(fault_server: FaultServer) -> None:
    data = make_data(100)
    url = fault_server.add("target.bin", data)
    fault_server.add("from.bin", b"never served")
    fault_server.plan("from.bin", Fault.redirect("/target.bin"), Fault.redirect("/from.bin", 307))
    first = get(fault_server.url_for("from.bin"))
    assert (first.content, [r.status_code for r in first.history]) == (data, [302])
    second = get(fault_server.url_for("from.bin"))  # loops once, then the plan is used up
    assert (second.content, [r.status_code for r in second.history]) == (b"never served", [307])

    loop = fault_server.add_redirect("loop.bin", fault_server.url_for("loop.bin"))
    with pytest.raises(requests.exceptions.TooManyRedirects):
        get(loop)
    assert len(fault_server.requests_for("loop.bin")) == 31  # requests' default limit + 1
    assert get(url).status_code == 200


def test_replace_fault_invalidates_if_range(fault_server: FaultServer) -> None:
    old, new = make_data(SIZE, seed=1), make_data(SIZE, seed=2)
    url = fault_server.add("rp.bin", old)
    old_etag = get(url, headers={"Range": "bytes=0-99"}).headers["ETag"]
    fault_server.plan("rp.bin", Fault.replace(new))
    response = get(url, headers={"Range": "bytes=100-", "If-Range": old_etag})
    assert (response.status_code, response.content) == (200, new)
    assert response.headers["ETag"] not in (old_etag, None)
    assert fault_server.content("rp.bin") == new
    assert [r.fault for r in fault_server.requests_for("rp.bin")] == [None, "replace"]


def test_stop_is_prompt_with_stalled_and_idle_connections() -> None:
    server = FaultServer().start()
    url = server.add("x.bin", make_data(SIZE))
    parts = urlsplit(url)
    with (
        socket.create_connection((parts.hostname, parts.port), timeout=5) as stalled,
        requests.Session() as idle,
    ):
        with idle.get(url, timeout=5) as response:  # leaves an idle keep-alive connection
            assert response.content
        server.plan("x.bin", Fault.stall(after=1000, seconds=60))
        stalled.sendall(b"GET /x.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        assert stalled.recv(100).startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 2
    assert [r.fault for r in server.log] == [None, "stall"]


@pytest.mark.parametrize(
    ("fault", "raw_error", "cause", "requests_error"),
    [
        (
            Fault.cut(100_000),
            urllib3.exceptions.ProtocolError,
            http.client.IncompleteRead,
            requests.exceptions.ChunkedEncodingError,
        ),
        (
            Fault.short_body(100_000),
            urllib3.exceptions.ProtocolError,
            http.client.IncompleteRead,
            requests.exceptions.ChunkedEncodingError,
        ),
        (
            Fault.cut(100_000, reset=True),
            urllib3.exceptions.ProtocolError,
            ConnectionResetError,
            requests.exceptions.ChunkedEncodingError,
        ),
        (
            Fault.stall(100_000, seconds=5),
            urllib3.exceptions.ReadTimeoutError,
            TimeoutError,
            requests.exceptions.ConnectionError,  # not requests.Timeout: raised mid-body
        ),
    ],
    ids=["cut", "short_body", "cut-rst", "stall"],
)
def test_client_view_of_broken_bodies(
    fault_server: FaultServer,
    fault: Fault,
    raw_error: type[Exception],
    cause: type[Exception],
    requests_error: type[Exception],
) -> None:
    """The exception table a downloader has to translate, and where its data went.

    ``raw.read1()`` hands over every byte received before the failure; ``iter_content()``
    and ``raw.read(n)`` may drop the partial chunk that was being filled when it happened.
    """
    data = make_data(SIZE)
    url = fault_server.add("b.bin", data)
    fault_server.plan("b.bin", fault, fault)
    received = bytearray()
    with (
        requests.get(url, stream=True, timeout=(5, 0.2)) as response,
        pytest.raises(raw_error) as excinfo,
    ):
        drain_read1(response, received)
    assert bytes(received) == data[:100_000]
    assert isinstance(excinfo.value.__cause__ or excinfo.value.__context__, cause)
    with pytest.raises(requests_error):
        get(url, timeout=(5, 0.2))
    assert [r.body_bytes_sent for r in fault_server.requests_for("b.bin")] == [100_000] * 2


# -------------------------------------------------------------------- real servers


def test_nginx_range_if_range_and_strong_etag(nginx: NginxServer, unique_prefix: str) -> None:
    name = f"{unique_prefix}/file.bin"
    data = make_data(SIZE)
    url = nginx.add(name, data)
    full = get(url)
    etag = full.headers["ETag"]
    assert (full.status_code, full.content) == (200, data)
    assert full.headers["Accept-Ranges"] == "bytes"
    assert etag.startswith('"')  # strong
    last_modified = full.headers["Last-Modified"]

    part = get(url, headers={"Range": "bytes=1000-1999"})
    assert (part.status_code, part.content) == (206, data[1000:2000])
    assert part.headers["Content-Range"] == f"bytes 1000-1999/{SIZE}"
    assert get(url, headers={"Range": f"bytes={SIZE}-"}).status_code == 416
    for if_range, status in ((etag, 206), (last_modified, 206), (f"W/{etag}", 200)):
        response = get(url, headers={"Range": "bytes=1000-", "If-Range": if_range})
        assert response.status_code == status, if_range

    new = make_data(SIZE, seed=1)  # same size: the ETag must still change (mtime bump)
    nginx.add(name, new)
    stale = get(url, headers={"Range": "bytes=1000-", "If-Range": etag})
    assert (stale.status_code, stale.content) == (200, new)
    assert stale.headers["ETag"] != etag

    entries = nginx.access_log_for(name, min_lines=7)
    assert [e.status for e in entries] == [200, 206, 416, 206, 206, 200, 200]
    assert entries[1].range == "bytes=1000-1999"
    assert entries[1].body_bytes_sent == 1000
    assert entries[5].if_range == f"W/{etag}"


def test_nginx_slow_location_serves_the_same_files(nginx: NginxServer, unique_prefix: str) -> None:
    name = f"{unique_prefix}/f.bin"
    data = make_data(1000)
    nginx.add(name, data)
    response = get(nginx.slow_url(name), headers={"Range": "bytes=10-"})
    assert (response.status_code, response.content) == (206, data[10:])


def test_nginx_limit_rate_throttles(make_nginx: Callable[..., NginxServer]) -> None:
    data = make_data(2 * 1024 * 1024)
    server = make_nginx(limit_rate="1m")
    server.add("big.bin", data)
    started = time.monotonic()
    assert get(server.url_for("big.bin")).content == data
    fast = time.monotonic() - started
    started = time.monotonic()
    assert get(server.slow_url("big.bin")).content == data
    slow = time.monotonic() - started
    # nginx sends the first second's quota at once, so 2 MiB at 1 MiB/s takes about 1 s.
    assert fast < 0.5
    assert slow > 0.7


def test_simple_http_server_ignores_range(
    simple_http: SimpleHTTPServer, unique_prefix: str
) -> None:
    data = make_data(1000)
    url = simple_http.add(f"{unique_prefix}/f.bin", data)
    response = get(url, headers={"Range": "bytes=10-", "If-Range": '"x"'})
    assert (response.status_code, response.content) == (200, data)
    assert "Accept-Ranges" not in response.headers
    assert "ETag" not in response.headers
    assert "Last-Modified" in response.headers


def test_server_bugs_are_collected_not_hidden() -> None:
    with FaultServer() as server:
        server.plan("nothing.bin", Fault.replace(b"new"))  # replace needs an existing object
        with pytest.raises(requests.exceptions.ConnectionError):
            get(server.url_for("nothing.bin"))
        assert [type(e) for e in server.errors] == [KeyError]
        assert one(server.requests_for("nothing.bin")).header("host") is not None
