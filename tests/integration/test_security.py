"""Credentials and transport safety, end to end against loopback servers.

- TLS is verified by default: a ``trustme`` certificate is refused with a typed error unless the
  downloader is given its CA bundle (which wins over ``REQUESTS_CA_BUNDLE``).
- Redirects: another scheme is refused; another host (or https -> http) loses ``Authorization``.
- No secret (URL password, signature parameters, SAS fields, Meta CDN ``oh=``, an
  ``Authorization`` header) reaches any artifact: exception str/repr/traceback, DEBUG logs of
  ``resumable`` and ``urllib3``, progress events, results, sidecars, the ledger.
"""

from __future__ import annotations

import hashlib
import logging
import socket
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest
import urllib3
from servers import Fault, FaultServer, make_data, make_tls

import resumable
from resumable import Item, ResumableDownloader, RetryPolicy, Timeouts
from resumable.errors import (
    AccessDenied,
    RemoteError,
    SourceNotFound,
    UntrustedCertificate,
)
from resumable.sources import RemoteInfo, SourceConfig
from resumable.urls import redact_text

MiB = 1 << 20


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def tls(tmp_path: Path) -> Iterator[tuple[FaultServer, Path]]:
    files = make_tls(tmp_path)
    with FaultServer(ssl_context=files.server_context) as server:
        yield server, files.ca_bundle


@pytest.fixture
def no_env_bundle(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)


def fast(**kwargs: object) -> ResumableDownloader:
    policy = RetryPolicy(attempts=2, backoff=0.0, jitter=0)
    return ResumableDownloader(
        retry=policy,
        timeouts=Timeouts(connect=5, stall=5),
        **kwargs,  # type: ignore[arg-type]
    )


# -- TLS -------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("no_env_bundle")
def test_an_untrusted_certificate_is_refused_with_a_typed_error(
    tls: tuple[FaultServer, Path], tmp_path: Path
) -> None:
    server, _ = tls
    url = server.add("f.bin", make_data(1000))
    assert url.startswith("https://")
    with fast() as d, pytest.raises(UntrustedCertificate) as caught:
        d.download(url, tmp_path / "f.bin")
    assert isinstance(caught.value, RemoteError)
    assert "certificate verify failed" in str(caught.value).lower()
    assert server.log == []  # the handshake failed: no request was ever read
    assert not (tmp_path / "f.bin").exists()
    assert not (tmp_path / "f.bin.partial").exists()


@pytest.mark.usefixtures("no_env_bundle")
def test_the_ca_bundle_makes_the_server_trusted_single_and_segmented(
    tls: tuple[FaultServer, Path], tmp_path: Path
) -> None:
    server, bundle = tls
    small, large = make_data(5000, 1), make_data(3 * MiB, 2)
    with fast(verify=bundle, segment_threshold=MiB, connections=3) as d:
        d.download(server.add("s.bin", small), tmp_path / "s.bin", sha256=sha(small))
        r = d.download(server.add("l.bin", large), tmp_path / "l.bin", sha256=sha(large))
    assert (tmp_path / "l.bin").read_bytes() == large
    assert r.size == len(large)
    assert len([rec for rec in server.requests_for("l.bin") if rec.range]) >= 2  # segmented


def test_an_explicit_bundle_wins_over_requests_ca_bundle(
    tls: tuple[FaultServer, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, bundle = tls
    url = server.add("f.bin", make_data(100))
    (tmp_path / "other").mkdir()
    other = make_tls(tmp_path / "other")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(other.ca_bundle))  # another CA
    with fast() as d, pytest.raises(UntrustedCertificate):
        d.download(url, tmp_path / "a.bin")  # verify=True: the environment's bundle is used
    with fast(verify=str(bundle)) as d:
        d.download(url, tmp_path / "b.bin")
    assert (tmp_path / "b.bin").read_bytes() == server.content("f.bin")


@pytest.mark.usefixtures("no_env_bundle")
def test_verify_false_is_possible_and_warned_about(
    tls: tuple[FaultServer, Path], tmp_path: Path
) -> None:
    server, _ = tls
    url = server.add("f.bin", make_data(100))
    with (
        fast(verify=False, connections=1) as d,
        pytest.warns(urllib3.exceptions.InsecureRequestWarning),
    ):
        d.download(url, tmp_path / "f.bin")
    assert (tmp_path / "f.bin").read_bytes() == server.content("f.bin")


def test_verify_must_be_a_bool_or_a_path() -> None:
    with pytest.raises(resumable.InvalidArgument):
        ResumableDownloader(verify=3)  # type: ignore[arg-type]


# -- redirects ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "location", ["file:///etc/passwd", "ftp://127.0.0.1/f.bin?sig=LOCSECRET", "gopher://x/1"]
)
def test_a_redirect_to_another_scheme_is_refused(
    fault_server: FaultServer, tmp_path: Path, location: str
) -> None:
    url = fault_server.add_redirect("f.bin", location)
    with fast() as d, pytest.raises(RemoteError) as caught:
        d.download(url, tmp_path / "f.bin")
    scheme = location.split(":", 1)[0]
    assert f"refused a redirect to a {scheme}: URL" in str(caught.value)
    assert caught.value.status == 302
    assert "LOCSECRET" not in str(caught.value)
    # Refused at once (not retried, not followed): only the redirecting server was asked.
    assert [r.status for r in fault_server.requests_for("f.bin") if r.method == "GET"] == [302]


@pytest.fixture
def other_server() -> Iterator[FaultServer]:
    with FaultServer() as server:
        yield server


def test_a_redirect_to_another_host_drops_authorization(
    fault_server: FaultServer, other_server: FaultServer, tmp_path: Path
) -> None:
    data = make_data(2000)
    other_server.add("f.bin", data)
    # Same path, other host name ("localhost", not "127.0.0.1") and port.
    url = fault_server.add_redirect("f.bin", f"http://localhost:{other_server.port}/f.bin")
    with fast(headers={"Authorization": "Bearer HDRSECRET"}, connections=1) as d:
        d.download(url, tmp_path / "f.bin")
    assert (tmp_path / "f.bin").read_bytes() == data
    first = [r for r in fault_server.log if r.method == "GET"]
    assert first
    assert all(r.header("Authorization") == "Bearer HDRSECRET" for r in first)
    followed = other_server.requests_for("f.bin")
    assert followed
    assert all(r.header("Authorization") is None for r in followed)


def test_a_redirect_to_another_host_drops_url_credentials(
    fault_server: FaultServer, other_server: FaultServer, tmp_path: Path
) -> None:
    other_server.add("f.bin", make_data(2000))
    url = fault_server.add_redirect("f.bin", f"http://localhost:{other_server.port}/f.bin")
    with fast(connections=1) as d:
        d.download(url.replace("http://", "http://user:URLPW@"), tmp_path / "f.bin")
    asked = [r for r in fault_server.log if r.method == "GET"]
    assert asked
    assert all((r.header("Authorization") or "").startswith("Basic ") for r in asked)
    assert all(r.header("Authorization") is None for r in other_server.requests_for("f.bin"))


def test_a_redirect_on_the_same_host_keeps_authorization(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    """The control for the two tests above: the header is sent when it should be."""
    fault_server.add("real.bin", make_data(500))
    url = fault_server.add_redirect("f.bin", "/real.bin")
    with fast(headers={"Authorization": "Bearer HDRSECRET"}, connections=1) as d:
        d.download(url, tmp_path / "f.bin")
    served = [r for r in fault_server.requests_for("real.bin") if r.method == "GET"]
    assert served
    assert all(r.header("Authorization") == "Bearer HDRSECRET" for r in served)


@pytest.mark.usefixtures("no_env_bundle")
def test_a_redirect_from_https_to_http_drops_authorization(
    tls: tuple[FaultServer, Path], fault_server: FaultServer, tmp_path: Path
) -> None:
    server, bundle = tls
    fault_server.add("f.bin", make_data(500))
    url = server.add_redirect("f.bin", fault_server.url_for("f.bin"))  # same host, http
    with fast(verify=bundle, headers={"Authorization": "Bearer HDRSECRET"}, connections=1) as d:
        d.download(url, tmp_path / "f.bin")
    assert all(r.header("Authorization") == "Bearer HDRSECRET" for r in server.log)
    followed = fault_server.requests_for("f.bin")
    assert followed
    assert all(r.header("Authorization") is None for r in followed)


# -- no secret anywhere ---------------------------------------------------------------------------

SECRETS = {
    "password": "URLPASSWORD0",
    "X-Amz-Credential": "AKIAEXAMPLECRED1",
    "X-Amz-Security-Token": "AMZSESSIONTOKEN2",
    "X-Amz-Signature": "AMZSIGNATURE3",
    "X-Goog-Signature": "GOOGSIGNATURE4",
    "sig": "AZURESASSIG5",
    "token": "PLAINTOKEN6",
    "oh": "METACDNHASH7",
    "Authorization": "BEARERHEADER8",
}


def signed(url: str) -> str:
    query = "&".join(
        f"{name}={value}"
        for name, value in SECRETS.items()
        if name not in ("password", "Authorization")
    )
    url = url.replace("http://", f"http://user:{SECRETS['password']}@")
    return f"{url}?sv=2022-11-02&se=2030-01-01&sp=r&X-Amz-Date=20260101T000000Z&{query}"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def assert_clean(text: str, where: str) -> None:
    leaked = [value for value in SECRETS.values() if value in text]
    assert not leaked, f"{leaked} found in {where}"


def test_no_secret_reaches_any_artifact(
    fault_server: FaultServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger: resumable, urllib3, requests
    for name in ("ok.bin", "kept.bin", "big.bin"):
        fault_server.add(name, make_data(300_000 if name != "big.bin" else 3 * MiB))
    fault_server.plan("ok.bin", Fault.status(503, retry_after=0), Fault.cut(after=70_000))
    fault_server.plan("kept.bin", Fault.cut(after=70_000), Fault.status(403))
    fault_server.plan("big.bin", Fault.cut(after=70_000, reset=True))
    items = [
        Item(signed(fault_server.url_for("ok.bin"))),
        Item(signed(fault_server.url_for("kept.bin"))),
        Item(signed(fault_server.url_for("gone.bin"))),
        Item(signed(fault_server.url_for("big.bin"))),
        Item(signed(f"http://127.0.0.1:{closed_port()}/refused.bin")),
    ]
    events: list[resumable.ProgressEvent] = []
    d = fast(
        headers={"Authorization": f"Bearer {SECRETS['Authorization']}"},
        segment_threshold=MiB,
        connections=3,
    )
    with d:
        job = d.start(items, tmp_path, progress=events.append)
        result = job.wait()
        status = job.status()
    # The scenario happened as planned: two files done, three typed failures.
    assert sorted(r.path.name for r in result.ok) == ["big.bin", "ok.bin"]
    kinds = {Path(item.url.split("?")[0]).name: type(e) for item, e in result.failed}  # type: ignore[attr-defined]
    assert kinds["kept.bin"] is AccessDenied
    assert kinds["gone.bin"] is SourceNotFound
    assert kinds["refused.bin"].__name__ == "ConnectionRetriesExhausted"
    assert [r.fault for r in fault_server.requests_for("ok.bin") if r.method == "GET"][:2] == [
        "status",
        "cut",
    ]
    assert any(SECRETS["X-Amz-Signature"] in r.path for r in fault_server.log)  # really sent

    # Exceptions: str, repr, the whole chained traceback (requests' errors quote the URL).
    with pytest.raises(resumable.BatchError) as batch_error:
        result.raise_for_errors()
    errors: list[BaseException] = [batch_error.value, *(e for _, e in result.failed)]
    for error in errors:
        assert_clean(str(error), f"str({type(error).__name__})")
        assert_clean(repr(error), f"repr({type(error).__name__})")
        assert_clean("".join(traceback.format_exception(error)), f"traceback of {error!r}")
    assert any(e.__cause__ is not None for _, e in result.failed)  # chains were checked

    # Results, items, events, job status.
    assert_clean(repr(result), "repr(BatchResult)")
    assert_clean(str(result), "str(BatchResult)")
    assert_clean(repr(status) + str(status), "JobStatus")
    assert_clean(repr(events), "progress events")
    assert any(e.kind == "retrying" for e in events)

    # Logs at DEBUG, urllib3's request lines included.
    urllib3_lines = [r for r in caplog.records if r.name.startswith("urllib3")]
    assert any("GET /ok.bin?" in r.getMessage() for r in urllib3_lines)
    assert any(r.name == "resumable" for r in caplog.records)
    assert_clean(caplog.text, "log records")
    assert_clean("\n".join(r.getMessage() for r in caplog.records), "log messages")

    # Files on disk: the kept partial's sidecar and the ledger (SQLite and its journals).
    sidecars = list(tmp_path.rglob("*.partial.json"))
    assert [p.name for p in sidecars] == ["kept.bin.partial.json"]
    ledger_files = [p for p in (tmp_path / ".resumable").rglob("*") if p.is_file()]  # claims too
    assert ledger_files
    for path in [*sidecars, *ledger_files]:
        assert_clean(path.read_bytes().decode("latin-1"), str(path))
    assert b"gone.bin" in b"".join(p.read_bytes() for p in ledger_files)  # errors were recorded


def test_reprs_of_configuration_and_remote_info_hide_secrets() -> None:
    config = SourceConfig(
        headers={"Authorization": f"Bearer {SECRETS['Authorization']}"},
        storage_options={"s3": {"secret": SECRETS["token"]}},
    )
    assert "Authorization" in repr(config)
    info = RemoteInfo(url=signed("http://h/x.bin"), size=3, etag='"e"')
    item = Item(signed("http://h/x.bin"), mirrors=[signed("http://m/x.bin")])
    for text in (repr(config), repr(info), repr(item)):
        assert_clean(text, text)
    assert "REDACTED" in repr(info)
    assert "x.bin" in repr(item)
    assert item.url == signed("http://h/x.bin")  # the attribute is kept as given


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Max retries exceeded with url: /a.bin?X-Amz-Signature=abc&b=1 (Caused by X)",
            "Max retries exceeded with url: /a.bin?X-Amz-Signature=REDACTED&b=1 (Caused by X)",
        ),
        ('"GET /k?oe=65&oh=zz HTTP/1.1" 200', '"GET /k?oe=65&oh=REDACTED HTTP/1.1" 200'),
        (
            "see http://u:pw@h/x and https://tok@h/y",
            "see http://u:REDACTED@h/x and https://REDACTED@h/y",
        ),
        ("{'Authorization': 'Bearer abc', 'X': '1'}", "{'Authorization': 'REDACTED', 'X': '1'}"),
        ("nothing secret ?a=1&b=2", "nothing secret ?a=1&b=2"),
    ],
)
def test_redact_text(text: str, expected: str) -> None:
    assert redact_text(text) == expected
